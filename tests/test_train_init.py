"""Training from scratch starts from the upstream (torch-default) initialisation, per layer,
and the partial starts of ULFD's train.py (--pretrained-ssd, --base-net)."""
import math
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddleface.registry import REGISTRY
from paddleface.training.init import torch_default_init, xavier_uniform_conv_weights
from paddleface.weights import convert_with_x2paddle, read_torch_state_dict

CASES = {"ulfd-rfb-320": "replay_ulfd_rfb320", "rfb-lm": "replay_rfb_lm"}


def _bound(name, shape):
    """torch's default bound 1/sqrt(fan_in) of the conv weight / bias named ``name``."""
    return 1 / math.sqrt(int(np.prod(shape[1:])))


@pytest.mark.parametrize("model_id", sorted(CASES))
def test_from_scratch_matches_torch_init_per_layer(shared, model_id):
    torch_init = convert_with_x2paddle(read_torch_state_dict(
        shared / "reference/train" / CASES[model_id] / "init.pth"))
    paddle.seed(0)
    net = torch_default_init(REGISTRY[model_id].build())
    ours = {k: v.numpy() for k, v in net.state_dict().items()}
    weights = {k[:-len(".weight")]: v.shape for k, v in ours.items() if k.endswith(".weight")}
    checked = 0
    for k, ref in torch_init.items():
        o = ours[k]
        if ref.std() == 0:  # BatchNorm weight 1 / bias 0, running mean 0 / variance 1
            assert np.array_equal(o, ref), k
            continue
        layer = k.rsplit(".", 1)[0]
        bound = _bound(k, weights[layer])  # a bias takes its weight's fan_in
        assert np.abs(o).max() <= bound * (1 + 1e-6), k
        assert np.abs(ref).max() <= bound * (1 + 1e-6), k  # the reference obeys the same law
        # std of U(-b, b) is b / sqrt(3); the sample std's relative spread is ~0.9 / sqrt(n)
        tol = max(0.03, 4 * 0.9 / math.sqrt(o.size))
        assert abs(o.std() / ref.std() - 1) < tol + 4 * 0.9 / math.sqrt(ref.size), (k, o.std(), ref.std())
        assert abs(o.std() / (bound / math.sqrt(3)) - 1) < tol, k
        checked += 1
    assert checked > 40


def test_paddle_defaults_differ_and_imports_are_untouched(shared):
    """The build() used by the import keeps Paddle's initialisation (imported weights overwrite
    every tensor); the conv weight std differs from torch's by far more than the tolerance."""
    torch_init = convert_with_x2paddle(read_torch_state_dict(
        shared / "reference/train/replay_ulfd_rfb320/init.pth"))
    net = REGISTRY["ulfd-rfb-320"].build()
    k = "base_net.8.3.weight"  # a 1x1 conv, 64 -> 128
    assert net.state_dict()[k].numpy().std() / torch_init[k].std() > 1.5


def test_xavier_uniform_conv_weights_bound():
    conv = paddle.nn.Conv2D(64, 64, 3, padding=1, groups=64)
    xavier_uniform_conv_weights(conv)
    w = conv.weight.numpy()
    bound = math.sqrt(6 / (1 * 9 + 64 * 9))  # torch: fan_in = 1*9, fan_out = 64*9
    assert np.abs(w).max() <= bound and w.std() > 0.9 * bound / math.sqrt(3)


def test_pretrained_ssd_loads_all_but_the_heads(shared, tmp_path):
    from paddleface.registry import get_record
    from paddleface.training.trainer import init_from_base_net, init_from_pretrained_ssd
    rec = get_record("ulfd-rfb-320")
    src = shared / "weights/ulfd/version-RFB-320.pth"
    full = convert_with_x2paddle(read_torch_state_dict(src))
    paddle.seed(0)
    net = torch_default_init(rec.build())
    init_from_pretrained_ssd(net, rec, str(src))
    got = {k: v.numpy() for k, v in net.state_dict().items()}
    heads = [k for k in got if k.startswith(("classification_headers", "regression_headers"))]
    body = [k for k in got if k not in heads]
    assert heads and all(np.array_equal(got[k], full[k]) for k in body)
    assert not any(np.array_equal(got[k], full[k]) for k in heads)
    # head conv weights xavier: the last 3x3 conv (256 -> 6) has bound sqrt(6 / (2304 + 54))
    w = got["classification_headers.3.weight"]
    assert np.abs(w).max() <= math.sqrt(6 / (256 * 9 + 6 * 9)) * (1 + 1e-6)
    # the base-net start: only base_net.* from the file, keys given without the prefix
    base = {k[len("base_net."):]: v for k, v in full.items() if k.startswith("base_net.")}
    paddle.save({k: paddle.to_tensor(v) for k, v in base.items()}, str(tmp_path / "base.pdparams"))
    net2 = torch_default_init(rec.build())
    init_from_base_net(net2, rec, str(tmp_path / "base.pdparams"))
    got2 = {k: v.numpy() for k, v in net2.state_dict().items()}
    assert all(np.array_equal(got2["base_net." + k], v) for k, v in base.items())
    assert not np.array_equal(got2["extras.0.0.weight"], full["extras.0.0.weight"])
