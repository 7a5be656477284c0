"""BlazeFace with 5 landmarks (zineos/blazeface ``net_blaze.py``).

Parameter names follow upstream: ``conv1`` ... ``conv12`` (BlazeBlocks with ``conv`` and, when
they downsample, ``shortcut``), ``loc``, ``conf``, ``landm``. Heads at strides 8 and 16 with 2 and
6 anchors. Output as every detector here: ``loc`` (N, P, 4), ``conf`` (N, P, 2), ``landms``
(N, P, 10). Input sides must be multiples of 16 (the max-pool shortcut floors, the convs ceil).
"""
from __future__ import annotations

import paddle.nn as nn
import paddle.nn.functional as F

from .layers import TORCH_DEFAULT_BN_MOMENTUM, conv_bn, optional_softmax, run_heads, separable_conv


def _bn(c: int) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(c, momentum=TORCH_DEFAULT_BN_MOMENTUM)


def blaze_dw(inp: int, oup: int, stride: int, k: int = 5, groups: bool = True) -> nn.Sequential:
    """k x k (depthwise, or full when ``groups`` is False) conv-BN-ReLU, then 1x1 conv-BN."""
    return nn.Sequential(
        nn.Conv2D(inp, inp, k, stride, k // 2, groups=inp if groups else 1, bias_attr=False),
        _bn(inp), nn.ReLU(),
        nn.Conv2D(inp, oup, 1, bias_attr=False), _bn(oup))


class BlazeBlock(nn.Layer):
    """Single (one depthwise unit) or double BlazeBlock; stride 2 adds a max-pool shortcut."""

    def __init__(self, inp: int, oup: int, double_oup: int = None, stride: int = 1, k: int = 5):
        super().__init__()
        if double_oup is None:
            self.conv = nn.Sequential(blaze_dw(inp, oup, stride, k))
        else:
            self.conv = nn.Sequential(blaze_dw(inp, oup, stride, k), nn.ReLU(),
                                      blaze_dw(oup, double_oup, 1, k, groups=False), nn.ReLU())
        self.shortcut = None
        if stride != 1:
            out = double_oup or oup
            self.shortcut = nn.Sequential(nn.MaxPool2D(stride, stride), nn.Conv2D(inp, out, 1),
                                          _bn(out), nn.ReLU())

    def forward(self, x):
        h = self.conv(x)
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class BlazeFaceNet(nn.Layer):
    def __init__(self, anchors=(2, 6)):
        super().__init__()
        self.conv1 = conv_bn(3, 24, 2)
        self.conv2 = BlazeBlock(24, 24)
        self.conv3 = BlazeBlock(24, 24)
        self.conv4 = BlazeBlock(24, 48, stride=2)
        self.conv5 = BlazeBlock(48, 48)
        self.conv6 = BlazeBlock(48, 48)
        self.conv7 = BlazeBlock(48, 24, 96, stride=2)
        self.conv8 = BlazeBlock(96, 24, 96)
        self.conv9 = BlazeBlock(96, 24, 96)
        self.conv10 = BlazeBlock(96, 24, 96, stride=2)
        self.conv11 = BlazeBlock(96, 24, 96)
        self.conv12 = BlazeBlock(96, 24, 96)
        self.loc = nn.Sequential(*[separable_conv(96, a * 4) for a in anchors])
        self.conf = nn.Sequential(*[separable_conv(96, a * 2) for a in anchors])
        self.landm = nn.Sequential(*[separable_conv(96, a * 10) for a in anchors])

    def forward(self, x):
        for i in range(1, 10):
            x = getattr(self, f"conv{i}")(x)
        f1 = x
        for i in range(10, 13):
            x = getattr(self, f"conv{i}")(x)
        feats = [f1, x]
        loc = run_heads(feats, self.loc, 4)
        conf = run_heads(feats, self.conf, 2)
        landms = run_heads(feats, self.landm, 10)
        return loc, optional_softmax(conf, self.training), landms
