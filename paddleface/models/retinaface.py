"""RetinaFace with a MobileNet-0.25 or a ResNet-50 backbone (Pytorch_Retinaface and
Face-Detector-1MB).

Parameter names follow ``models/retinaface.py``: ``body.stage{1,2,3}`` (MobileNet) or
``body.conv1 ... body.layer4`` (torchvision's ResNet-50, :mod:`.resnet`), ``fpn``,
``ssh{1,2,3}``, ``ClassHead``, ``BboxHead``, ``LandmarkHead``. The ImageNet checkpoint
``mobilenetV1X0.25_pretrain.tar`` holds ``stage*`` and ``fc`` keys of :class:`MobileNetV1`.

Output as every detector here: ``loc`` (N, P, 4), ``conf`` (N, P, 2), ``landms`` (N, P, 10).
"""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import conv_bn, conv_dw, flatten_head, optional_softmax, upsample_like
from .resnet import RESNET50_FEATURE_CHANNELS, ResNet50Body

# Pytorch_Retinaface uses LeakyReLU(0.1) in every block of the 0.25 model (out_channel <= 64);
# Face-Detector-1MB's copy of the same network uses plain ReLU (slope 0).
RETINAFACE_SLOPE = 0.1


def upstream_slope(out_channels: int) -> float:
    """The FPN/SSH LeakyReLU slope Pytorch_Retinaface's net.py picks: 0.1 when out_channel
    <= 64, else 0 (plain ReLU; the ResNet-50 model with 256 channels)."""
    return RETINAFACE_SLOPE if out_channels <= 64 else 0.0


class MobileNetV1(nn.Layer):
    """MobileNetV1 x0.25 in three stages (strides 8, 16, 32; 64, 128, 256 channels)."""

    def __init__(self, num_classes: int = 1000, slope: float = RETINAFACE_SLOPE):
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, slope), conv_dw(8, 16, 1, slope), conv_dw(16, 32, 2, slope),
            conv_dw(32, 32, 1, slope), conv_dw(32, 64, 2, slope), conv_dw(64, 64, 1, slope))
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2, slope),
                                    *[conv_dw(128, 128, 1, slope) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2, slope), conv_dw(256, 256, 1, slope))
        self.avg = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(paddle.flatten(self.avg(x), 1))


class Body(nn.Layer):
    """The backbone stages without the classifier (torchvision's IntermediateLayerGetter)."""

    def __init__(self, slope: float = RETINAFACE_SLOPE):
        super().__init__()
        net = MobileNetV1(slope=slope)
        self.stage1, self.stage2, self.stage3 = net.stage1, net.stage2, net.stage3

    def forward(self, x):
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)


class FPN(nn.Layer):
    """Top-down feature pyramid: 1x1 laterals, nearest upsampling, 3x3 merges."""

    def __init__(self, in_channels=(64, 128, 256), out_channels: int = 64,
                 slope: float = RETINAFACE_SLOPE):
        super().__init__()
        self.output1 = conv_bn(in_channels[0], out_channels, 1, slope, kernel=1)
        self.output2 = conv_bn(in_channels[1], out_channels, 1, slope, kernel=1)
        self.output3 = conv_bn(in_channels[2], out_channels, 1, slope, kernel=1)
        self.merge1 = conv_bn(out_channels, out_channels, 1, slope)
        self.merge2 = conv_bn(out_channels, out_channels, 1, slope)

    def forward(self, feats):
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + upsample_like(o3, o2))
        o1 = self.merge1(o1 + upsample_like(o2, o1))
        return o1, o2, o3


class SSH(nn.Layer):
    """Single Stage Headless context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches."""

    def __init__(self, in_channel: int = 64, out_channel: int = 64,
                 slope: float = RETINAFACE_SLOPE):
        super().__init__()
        q = out_channel // 4
        self.conv3X3 = conv_bn(in_channel, out_channel // 2, relu=False)
        self.conv5X5_1 = conv_bn(in_channel, q, 1, slope)
        self.conv5X5_2 = conv_bn(q, q, relu=False)
        self.conv7X7_2 = conv_bn(q, q, 1, slope)
        self.conv7x7_3 = conv_bn(q, q, relu=False)

    def forward(self, x):
        c5_1 = self.conv5X5_1(x)
        out = paddle.concat([self.conv3X3(x), self.conv5X5_2(c5_1),
                             self.conv7x7_3(self.conv7X7_2(c5_1))], axis=1)
        return F.relu(out)


class Conv1x1Head(nn.Layer):
    """A 1x1 conv predicting ``values`` numbers per anchor (ClassHead/BboxHead/LandmarkHead)."""

    def __init__(self, in_channels: int, num_anchors: int, values: int):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2D(in_channels, num_anchors * values, 1)

    def forward(self, x):
        return flatten_head(self.conv1x1(x), self.values)


class RetinaFaceNet(nn.Layer):
    """RetinaFace: backbone (strides 8, 16, 32), FPN, three SSH modules, three heads per level.

    ``backbone``: ``"mobilenet0.25"`` (its blocks use ``slope`` too) or ``"resnet50"``
    (torchvision's, ReLU inside). ``slope`` None: the upstream rule, :func:`upstream_slope`.
    """

    def __init__(self, out_channels: int = 64, anchors_per_level: int = 2,
                 slope: Optional[float] = RETINAFACE_SLOPE, backbone: str = "mobilenet0.25"):
        super().__init__()
        slope = upstream_slope(out_channels) if slope is None else slope
        if backbone == "resnet50":
            self.body, in_channels = ResNet50Body(), RESNET50_FEATURE_CHANNELS
        else:
            self.body, in_channels = Body(slope), (64, 128, 256)
        self.fpn = FPN(in_channels, out_channels, slope)
        self.ssh1 = SSH(out_channels, out_channels, slope)
        self.ssh2 = SSH(out_channels, out_channels, slope)
        self.ssh3 = SSH(out_channels, out_channels, slope)
        self.ClassHead = nn.LayerList([Conv1x1Head(out_channels, anchors_per_level, 2)
                                       for _ in range(3)])
        self.BboxHead = nn.LayerList([Conv1x1Head(out_channels, anchors_per_level, 4)
                                      for _ in range(3)])
        self.LandmarkHead = nn.LayerList([Conv1x1Head(out_channels, anchors_per_level, 10)
                                          for _ in range(3)])

    def forward(self, x):
        p1, p2, p3 = self.fpn(self.body(x))
        feats = [self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)]
        loc = paddle.concat([h(f) for h, f in zip(self.BboxHead, feats)], axis=1)
        conf = paddle.concat([h(f) for h, f in zip(self.ClassHead, feats)], axis=1)
        landms = paddle.concat([h(f) for h, f in zip(self.LandmarkHead, feats)], axis=1)
        return loc, optional_softmax(conf, self.training), landms
