"""Training retinaface-r50: the cfg_re50 recipe, the upstream initialisation (torchvision's
ResNet init for the backbone, torch defaults elsewhere), the ImageNet ResNet-50 backbone
(Paddle's paddle.vision layout or torchvision's file through x2paddle) and a few iterations."""
import io
import math

import numpy as np
import paddle
import pytest

from paddleface.errors import PaddleFaceError
from paddleface.registry import get_record
from paddleface.training.trainer import TrainConfig, Trainer

MODEL = "retinaface-r50"


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    """A randomly initialised paddle.vision ResNet-50 (ImageNet classifier included), saved as
    Paddle's .pdparams and as torchvision's .pth (its names, fc weight (out, in))."""
    import torch
    from paddle.vision.models import resnet50
    paddle.seed(1)
    state = {k: v.numpy() for k, v in resnet50().state_dict().items()}
    folder = tmp_path_factory.mktemp("imagenet")
    pdparams = folder / "resnet50.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(pdparams))
    rename = {"_mean": "running_mean", "_variance": "running_var"}
    torch_state = {}
    for k, v in state.items():
        head, _, last = k.rpartition(".")
        torch_state[f"{head}.{rename.get(last, last)}"] = torch.from_numpy(
            v.T.copy() if k == "fc.weight" else v)
    weights = folder / "weights"
    pth = weights / get_record(MODEL).backbone.path
    pth.parent.mkdir(parents=True)
    torch.save(torch_state, str(pth))
    return state, pdparams, weights


def _body_equals(net, state):
    ours = {k[len("body."):]: v.numpy() for k, v in net.state_dict().items()
            if k.startswith("body.")}
    assert set(ours) == {k for k in state if not k.startswith("fc.")}
    for k, v in ours.items():
        assert np.array_equal(v, state[k]), k


def _cfg(small_tree, tmp_path, **kw):
    return TrainConfig(model=MODEL, data_root=str(small_tree), split="test",
                       output_dir=str(tmp_path / "run"), val_every=0, save_every=0, workers=0,
                       **kw)


def test_defaults_are_cfg_re50_and_backbone_loads_from_either_file(small_tree, imagenet_like,
                                                                    tmp_path, monkeypatch):
    state, pdparams, weights = imagenet_like
    # Paddle's own layout (paddle.vision.models.resnet50's ImageNet .pdparams)
    t = Trainer(_cfg(small_tree, tmp_path, pretrained=f"backbone:{pdparams}"))
    assert (t.epochs, t.batch_size, t.milestones, t.size, t.lr) == \
        (100, 24, (70, 90), (840, 840), 1e-3)
    assert t.init_note == f"ImageNet backbone {pdparams}"
    _body_equals(t.net, state)
    # the record's torchvision file under $PADDLEFACE_WEIGHTS, through x2paddle
    monkeypatch.setenv("PADDLEFACE_WEIGHTS", str(weights))
    t = Trainer(_cfg(small_tree, tmp_path, pretrained="backbone"))
    assert t.init_note == f"ImageNet backbone {weights / get_record(MODEL).backbone.path}"
    _body_equals(t.net, state)


def test_backbone_download_is_checked_and_offline_says_where_to_put_it(small_tree, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("PADDLEFACE_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: io.BytesIO(b"tampered"))
    with pytest.raises(PaddleFaceError, match="does not match the expected 0676ba61b6795bbe"):
        Trainer(_cfg(small_tree, tmp_path, pretrained="backbone"))
    assert not list((tmp_path / "home").rglob("*.pth"))
    monkeypatch.setattr("urllib.request.urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    with pytest.raises(PaddleFaceError) as e:
        Trainer(_cfg(small_tree, tmp_path, pretrained="backbone"))
    assert "resnet50-0676ba61.pth" in str(e.value)
    assert str(tmp_path / "empty" / "torchvision") in str(e.value)
    assert str(e.value).endswith("or pass --pretrained backbone:FILE")


def test_a_mobilenet_backbone_file_is_refused(shared, small_tree, tmp_path):
    src = shared / "weights/retinaface/mobilenetV1X0.25_pretrain.tar"
    with pytest.raises(PaddleFaceError, match="not a retinaface-r50 backbone checkpoint"):
        Trainer(_cfg(small_tree, tmp_path, pretrained=f"backbone:{src}"))


def test_from_scratch_is_torchvision_resnet_init_in_the_body_torch_defaults_elsewhere():
    from paddleface.training.init import torchvision_resnet_init
    paddle.seed(0)
    net = torchvision_resnet_init(get_record(MODEL).build())
    checked = {"body": 0, "rest": 0}
    for name, p in net.named_parameters():
        v = p.numpy()
        if name.endswith(("_mean", "_variance")):  # running statistics 0 and 1
            assert np.all(v == (0.0 if name.endswith("_mean") else 1.0)), name
            continue
        if v.ndim == 1:  # BatchNorm weight 1, bias 0; head biases torch-default uniform
            if name.startswith(("ClassHead", "BboxHead", "LandmarkHead")):
                assert np.abs(v).max() <= 1 / math.sqrt(256) and v.std() > 0, name
            else:
                assert np.all(v == (1.0 if name.endswith("weight") else 0.0)), name
            continue
        if name.startswith("body."):
            # kaiming_normal_(mode="fan_out", nonlinearity="relu")
            std = math.sqrt(2.0 / (v.shape[0] * v.shape[2] * v.shape[3]))
            assert abs(v.std() / std - 1) < 6 / math.sqrt(v.size) + 0.01, name
            assert np.abs(v).max() > math.sqrt(3) * std  # normal, not uniform
            checked["body"] += 1
        else:
            bound = 1 / math.sqrt(int(np.prod(v.shape[1:])))  # torch's kaiming_uniform(a=sqrt 5)
            assert np.abs(v).max() <= bound * (1 + 1e-6), name
            assert abs(v.std() / (bound / math.sqrt(3)) - 1) < 6 / math.sqrt(v.size) + 0.01, name
            checked["rest"] += 1
    assert checked == {"body": 53, "rest": 29}  # 1 + 16 x 3 + 4 projections; FPN 5, SSH 15, heads 9


def test_a_few_iterations_from_the_imagenet_backbone(small_tree, imagenet_like, tmp_path):
    _, pdparams, _ = imagenet_like
    t = Trainer(_cfg(small_tree, tmp_path, pretrained=f"backbone:{pdparams}", epochs=1,
                     batch_size=2, input_size=(160, 160), max_iters=3))
    result = t.train()
    assert result["steps"] == 3
    losses = result["history"][0]["losses"]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert (tmp_path / "run" / "last.pdparams").is_file()
