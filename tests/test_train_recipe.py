"""Details of the upstream recipes a user meets: where the learning rate steps, which
parameters weight decay reaches, BatchNorm momentum and epsilon."""
import numpy as np
import paddle
import pytest

from paddleface.registry import REGISTRY
from paddleface.training.step import make_optimizer
from paddleface.training.trainer import TrainConfig, Trainer



def _lrs(tree, tmp_path, model, **kw):
    cfg = TrainConfig(model=model, data_root=str(tree), split="test", output_dir=str(tmp_path),
                      val_every=0, save_every=0, workers=0, lr=1e-2, **kw)
    return [h["lrs"] for h in Trainer(cfg).train()["history"]]


def test_ulfd_steps_the_lr_once_per_epoch(small_tree, tmp_path):
    """ULFD's train.py: scheduler.step() at the start of every epoch after the first, so
    milestone m changes the lr from epoch m on (0-based), for the whole epoch."""
    lrs = _lrs(small_tree, tmp_path, "ulfd-slim-320", epochs=3, batch_size=6, milestones=(1, 2),
               max_iters=9)
    assert [len(e) for e in lrs] == [3, 3, 3]  # 16 images, batch 6: the last batch is kept
    assert np.allclose(lrs, [[1e-2] * 3, [1e-3] * 3, [1e-4] * 3])


def test_retinaface_family_steps_at_iteration_milestone_times_epoch_size(small_tree, tmp_path):
    """Face-Detector-1MB's train.py: step_index rises at iteration decay * ceil(N / batch)."""
    lrs = _lrs(small_tree, tmp_path, "rfb-lm", epochs=2, batch_size=6, milestones=(1,),
               input_size=(160, 160), max_iters=5)
    flat = [v for e in lrs for v in e]
    assert np.allclose(flat, [1e-2] * 3 + [1e-3] * 2)


def test_weight_decay_reaches_every_parameter():
    """torch.optim.SGD(net.parameters(), weight_decay=5e-4): BatchNorm scale and shift and
    conv biases decay too. With zero gradients one step scales every parameter by 1 - lr*wd."""
    rec = REGISTRY["ulfd-rfb-320"]
    net = rec.build()
    trainable = [p for p in net.parameters() if not p.stop_gradient]  # not BN statistics
    for p in trainable:
        p.set_value(paddle.full_like(p, 2.0))
    opt = make_optimizer(net, rec, 0.1)
    loss = sum((p * 0).sum() for p in trainable)
    loss.backward()
    opt.step()
    names = {p.name: n for n, p in net.named_parameters()}
    for p in trainable:
        assert np.allclose(p.numpy(), 2.0 * (1 - 0.1 * 5e-4), rtol=1e-6), names[p.name]
    assert any(n.endswith("bn.weight") or ".1.weight" in n for n in names.values())


@pytest.mark.parametrize("model_id", ["ulfd-rfb-320", "rfb-lm", "mnet-lm"])
def test_batchnorm_momentum_and_epsilon_are_upstream(model_id):
    """torch BatchNorm2d(momentum=0.1, eps=1e-5) by default; the RFB BasicConv uses
    momentum=0.01. Paddle's momentum is the weight of the old statistic: 1 - torch's."""
    net = REGISTRY[model_id].build()
    seen = 0
    for name, layer in net.named_sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            expected = 0.99 if name.endswith(".bn") else 0.9  # BasicConv.bn in the RFB block
            assert layer._momentum == pytest.approx(expected), name
            assert layer._epsilon == pytest.approx(1e-5), name
            seen += 1
    assert seen > 10
