"""LightWeightFaceDetector (midasklr): RetinaFace heads on MobileNetV2 x0.1, MobileNetV3-small
and EfficientNet-B0 backbones.

Each backbone has ``stage1`` (stride 8), ``stage2`` (stride 16) and ``stage3`` (stride 32); the
detector uses stages 2 and 3: a two-level FPN (``output2``, ``output3``, ``merge2``; upstream
also builds an unused ``merge1``, kept so parameter counts compare), SSH modules ``ssh2``,
``ssh3`` and 1x1 heads with 2 anchors per position. No trained checkpoints are published, so
these networks are trained here; the names follow upstream for a later import.

Output as every detector here: ``loc`` (N, P, 4), ``conf`` (N, P, 2), ``landms`` (N, P, 10).
EfficientNet's TF "same" padding is replaced by symmetric k // 2 padding (identical output
sizes for even inputs; there are no weights whose behaviour it would change).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import TORCH_DEFAULT_BN_MOMENTUM, conv_bn, upsample_like
from .retinaface import SSH, Conv1x1Head

LEAKY = 0.1  # FPN and SSH with 64 output channels use LeakyReLU(0.1), as in RetinaFace


def _bn(c: int, momentum: float = TORCH_DEFAULT_BN_MOMENTUM, eps: float = 1e-5) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(c, momentum=momentum, epsilon=eps)


def make_divisible(v: float, divisor: int) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# ---------------------------------------------------------------- MobileNetV2
class InvertedResidual(nn.Layer):
    def __init__(self, inp: int, oup: int, stride: int, expand: int):
        super().__init__()
        hidden = round(inp * expand)
        self.identity = stride == 1 and inp == oup
        layers: List[nn.Layer] = []
        if expand != 1:
            layers += [nn.Conv2D(inp, hidden, 1, bias_attr=False), _bn(hidden), nn.ReLU6()]
        layers += [nn.Conv2D(hidden, hidden, 3, stride, 1, groups=hidden, bias_attr=False),
                   _bn(hidden), nn.ReLU6(),
                   nn.Conv2D(hidden, oup, 1, bias_attr=False), _bn(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.identity else self.conv(x)


class MobileNetV2(nn.Layer):
    """MobileNetV2 with a width multiplier (0.1 here: 4 to 32 channels, a 1280-channel head)."""

    CFGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, width: float = 0.1):
        super().__init__()
        c_in = make_divisible(32 * width, 4)
        stages: List[List[nn.Layer]] = [[nn.Sequential(nn.Conv2D(3, c_in, 3, 2, 1, bias_attr=False),
                                                       _bn(c_in), nn.ReLU6())], [], []]
        for idx, (t, c, n, s) in enumerate(self.CFGS):
            stage = 0 if idx < 3 else (1 if idx < 5 else 2)
            c_out = make_divisible(c * width, 4)
            for i in range(n):
                stages[stage].append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        head = make_divisible(1280 * width, 4) if width > 1.0 else 1280
        stages[2].append(nn.Sequential(nn.Conv2D(c_in, head, 1, bias_attr=False), _bn(head), nn.ReLU6()))
        self.stage1, self.stage2, self.stage3 = (nn.Sequential(*s) for s in stages)
        self.channels = (make_divisible(96 * width, 4), head)


# ---------------------------------------------------------------- MobileNetV3-small
class HSwish(nn.Layer):
    def forward(self, x):
        return x * F.relu6(x + 3) / 6


class HSigmoid(nn.Layer):
    def forward(self, x):
        return F.relu6(x + 3) / 6


class SeModule(nn.Layer):
    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.se = nn.Sequential(nn.AdaptiveAvgPool2D(1),
                                nn.Conv2D(c, c // reduction, 1, bias_attr=False), _bn(c // reduction),
                                nn.ReLU(), nn.Conv2D(c // reduction, c, 1, bias_attr=False), _bn(c),
                                HSigmoid())

    def forward(self, x):
        return x * self.se(x)


class V3Block(nn.Layer):
    """Expand 1x1, depthwise k x k, project 1x1 (+ SE); residual at stride 1."""

    def __init__(self, k: int, inp: int, expand: int, oup: int, act: str, se: bool, stride: int):
        super().__init__()
        self.stride = stride
        act_layer = (lambda: nn.ReLU()) if act == "relu" else HSwish
        self.conv1, self.bn1, self.nolinear1 = nn.Conv2D(inp, expand, 1, bias_attr=False), _bn(expand), act_layer()
        self.conv2 = nn.Conv2D(expand, expand, k, stride, k // 2, groups=expand, bias_attr=False)
        self.bn2, self.nolinear2 = _bn(expand), act_layer()
        self.conv3, self.bn3 = nn.Conv2D(expand, oup, 1, bias_attr=False), _bn(oup)
        self.se = SeModule(oup) if se else None
        self.shortcut = (nn.Sequential(nn.Conv2D(inp, oup, 1, bias_attr=False), _bn(oup))
                         if stride == 1 and inp != oup else None)

    def forward(self, x):
        out = self.nolinear1(self.bn1(self.conv1(x)))
        out = self.nolinear2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        if self.stride == 1:
            out = out + (self.shortcut(x) if self.shortcut is not None else x)
        return out


class MobileNetV3Small(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            nn.Conv2D(3, 16, 3, 2, 1, bias_attr=False), _bn(16), HSwish(),
            V3Block(3, 16, 16, 16, "relu", True, 2), V3Block(3, 16, 72, 24, "relu", False, 2),
            V3Block(3, 24, 88, 24, "relu", False, 1))
        self.stage2 = nn.Sequential(
            V3Block(5, 24, 96, 40, "hswish", True, 2), V3Block(5, 40, 240, 40, "hswish", True, 1),
            V3Block(5, 40, 240, 40, "hswish", True, 1), V3Block(5, 40, 120, 48, "hswish", True, 1),
            V3Block(5, 48, 144, 48, "hswish", True, 1))
        self.stage3 = nn.Sequential(
            V3Block(5, 48, 288, 96, "hswish", True, 2), V3Block(5, 96, 576, 96, "hswish", True, 1),
            V3Block(5, 96, 576, 96, "hswish", True, 1),
            nn.Conv2D(96, 576, 1, bias_attr=False), _bn(576), HSwish())
        self.channels = (48, 576)


# ---------------------------------------------------------------- EfficientNet-B0
class MBConv(nn.Layer):
    """EfficientNet's mobile inverted bottleneck with squeeze-excitation (ratio 0.25) and swish."""

    def __init__(self, k: int, stride: int, expand: int, inp: int, oup: int):
        super().__init__()
        mid = inp * expand
        bn = dict(momentum=0.99, eps=1e-3)  # TF's batch-norm settings, as upstream
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2D(inp, mid, 1, bias_attr=False)
            self._bn0 = _bn(mid, **bn)
        self._depthwise_conv = nn.Conv2D(mid, mid, k, stride, k // 2, groups=mid, bias_attr=False)
        self._bn1 = _bn(mid, **bn)
        squeezed = max(1, int(inp * 0.25))
        self._se_reduce = nn.Conv2D(mid, squeezed, 1)
        self._se_expand = nn.Conv2D(squeezed, mid, 1)
        self._project_conv = nn.Conv2D(mid, oup, 1, bias_attr=False)
        self._bn2 = _bn(oup, **bn)
        self.skip = stride == 1 and inp == oup

    def forward(self, inputs):
        x = F.swish(self._bn0(self._expand_conv(inputs))) if self.expand else inputs
        x = F.swish(self._bn1(self._depthwise_conv(x)))
        s = self._se_expand(F.swish(self._se_reduce(F.adaptive_avg_pool2d(x, 1))))
        x = self._bn2(self._project_conv(F.sigmoid(s) * x))
        return x + inputs if self.skip else x


class EfficientNetB0(nn.Layer):
    # (kernel, stride, expand, in, out, repeats) of efficientnet-b0
    BLOCKS = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
              (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]

    def __init__(self):
        super().__init__()
        stages: List[List[nn.Layer]] = [[nn.Conv2D(3, 32, 3, 2, 1, bias_attr=False),
                                         _bn(32, 0.99, 1e-3), nn.Swish()], [], []]
        for idx, (k, s, e, i, o, r) in enumerate(self.BLOCKS):
            stage = 0 if idx < 3 else (1 if idx < 5 else 2)
            for n in range(r):
                stages[stage].append(MBConv(k, s if n == 0 else 1, e, i if n == 0 else o, o))
        stages[2] += [nn.Conv2D(320, 1280, 1, bias_attr=False), _bn(1280, 0.99, 1e-3), nn.Swish()]
        self.stage1, self.stage2, self.stage3 = (nn.Sequential(*s) for s in stages)
        self.channels = (112, 1280)


# ---------------------------------------------------------------- the detector
class Body(nn.Layer):
    """Stages 1-3 of a backbone, returning the stride-16 and stride-32 features."""

    def __init__(self, backbone: nn.Layer):
        super().__init__()
        self.stage1, self.stage2, self.stage3 = backbone.stage1, backbone.stage2, backbone.stage3

    def forward(self, x):
        c2 = self.stage2(self.stage1(x))
        return c2, self.stage3(c2)


class FPN2(nn.Layer):
    def __init__(self, in_channels: Sequence[int], out_channels: int = 64):
        super().__init__()
        self.output2 = conv_bn(in_channels[0], out_channels, 1, LEAKY, kernel=1)
        self.output3 = conv_bn(in_channels[1], out_channels, 1, LEAKY, kernel=1)
        self.merge1 = conv_bn(out_channels, out_channels, 1, LEAKY)  # unused, as upstream
        self.merge2 = conv_bn(out_channels, out_channels, 1, LEAKY)

    def forward(self, feats: Tuple[paddle.Tensor, paddle.Tensor]):
        o2, o3 = self.output2(feats[0]), self.output3(feats[1])
        return self.merge2(o2 + upsample_like(o3, o2)), o3


BACKBONES = {"mobilenetv2_0.1": lambda: MobileNetV2(0.1), "mobilenetv3_small": MobileNetV3Small,
             "efficientnet_b0": EfficientNetB0}


class LightweightRetinaFace(nn.Layer):
    def __init__(self, backbone: str, out_channels: int = 64, anchors: int = 2):
        super().__init__()
        net = BACKBONES[backbone]()
        self.body = Body(net)
        self.fpn = FPN2(net.channels, out_channels)
        self.ssh2 = SSH(out_channels, out_channels, LEAKY)
        self.ssh3 = SSH(out_channels, out_channels, LEAKY)
        self.ClassHead = nn.LayerList([Conv1x1Head(out_channels, anchors, 2) for _ in range(2)])
        self.BboxHead = nn.LayerList([Conv1x1Head(out_channels, anchors, 4) for _ in range(2)])
        self.LandmarkHead = nn.LayerList([Conv1x1Head(out_channels, anchors, 10) for _ in range(2)])

    def forward(self, x):
        p2, p3 = self.fpn(self.body(x))
        feats = [self.ssh2(p2), self.ssh3(p3)]
        loc = paddle.concat([h(f) for h, f in zip(self.BboxHead, feats)], axis=1)
        conf = paddle.concat([h(f) for h, f in zip(self.ClassHead, feats)], axis=1)
        landms = paddle.concat([h(f) for h, f in zip(self.LandmarkHead, feats)], axis=1)
        return loc, conf if self.training else F.softmax(conf, axis=-1), landms
