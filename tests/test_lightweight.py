"""The LightWeightFaceDetector backbones: shapes, priors, missing weights, and that each learns."""
import numpy as np
import paddle
import pytest

from paddleface.errors import PaddleFaceError
from paddleface.registry import REGISTRY
from paddleface.training.step import train_step
from paddleface.training.trainer import TrainConfig, Trainer

from conftest import build_voc

IDS = ["lwfd-mnv2-0.1", "lwfd-mnv3-small", "lwfd-effnet-b0"]


@pytest.mark.parametrize("model_id", IDS)
@pytest.mark.parametrize("w,h", [(320, 240), (640, 480), (300, 300)])
def test_outputs_match_the_priors(model_id, w, h):
    rec = REGISTRY[model_id]
    net = rec.build()
    net.eval()
    with paddle.no_grad():
        loc, conf, landms = net(paddle.zeros([2, 3, h, w]))
    priors = rec.priors(h, w)
    # two levels (strides 16, 32), two anchors each
    expected = 2 * (np.ceil(h / 16) * np.ceil(w / 16) + np.ceil(h / 32) * np.ceil(w / 32))
    assert priors.shape == (expected, 4)
    assert tuple(loc.shape) == (2, expected, 4) and tuple(landms.shape) == (2, expected, 10)
    assert np.allclose(conf.numpy().sum(-1), 1, atol=1e-5)
    assert np.allclose(priors[:2, 2:] * [w, h], [[64, 64], [128, 128]])


def test_no_published_weights_is_a_clear_error():
    from paddleface.detector import FaceDetector
    with pytest.raises(PaddleFaceError, match="no trained weights are published for lwfd-mnv2-0.1"):
        FaceDetector("lwfd-mnv2-0.1", device="cpu")


@pytest.fixture(scope="module")
def tiny_tree(shared, tmp_path_factory):
    names = sorted((shared / "widerface/val/subset.txt").read_text().split())[100:108]
    return build_voc(shared, tmp_path_factory.mktemp("lw"), keep=lambda n: n in names)


@pytest.mark.parametrize("model_id", IDS)
def test_each_backbone_learns_a_batch(tiny_tree, tmp_path, model_id):
    """30 steps on one fixed batch from scratch: the loss must fall well below its start."""
    cfg = TrainConfig(model=model_id, data_root=str(tiny_tree), split="test",
                      output_dir=str(tmp_path), batch_size=4, lr=1e-2, input_size=(224, 224),
                      workers=0, val_every=0, save_every=0)
    t = Trainer(cfg)
    t.net.train()
    batch = [paddle.to_tensor(np.stack(x)) for x in zip(*[t.train_set[i] for i in range(4)])]
    losses = []
    for _ in range(30):
        total, _ = train_step(t.net, t.record, t.optimizer, batch)
        losses.append(total)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
