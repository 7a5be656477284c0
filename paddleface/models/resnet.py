"""torchvision's ResNet-50 (v1.5: the stride sits on the 3x3 conv of a bottleneck) as the
RetinaFace backbone, without the classifier.

Pytorch_Retinaface wraps ``torchvision.models.resnet50`` in an ``IntermediateLayerGetter``
over ``layer2``, ``layer3`` and ``layer4``, so the parameters are torchvision's own names
under ``body.``: ``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1,2,3}`` / ``bn{1,2,3}`` /
``downsample.{0,1}``. Paddle's ``paddle.vision.models.resnet50`` uses the same names and
layout, so its ImageNet weights load here too (without ``fc``).

Input (N, 3, H, W); outputs (N, 512, H/8, W/8), (N, 1024, H/16, W/16), (N, 2048, H/32, W/32),
each side rounded up (every stride-2 layer maps n to ceil(n / 2)).
"""
from __future__ import annotations

from typing import Tuple

import paddle
import paddle.nn as nn

from .layers import TORCH_DEFAULT_BN_MOMENTUM

#: bottlenecks per stage and their widths (the output has 4x the width)
RESNET50_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
#: channels of layer2, layer3 and layer4: the FPN inputs
RESNET50_FEATURE_CHANNELS = (512, 1024, 2048)


def _bn(channels: int) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(channels, momentum=TORCH_DEFAULT_BN_MOMENTUM, epsilon=1e-5)


class Bottleneck(nn.Layer):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4; ReLU after the residual sum."""

    expansion = 4

    def __init__(self, inp: int, width: int, stride: int = 1):
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2D(inp, width, 1, bias_attr=False)
        self.bn1 = _bn(width)
        self.conv2 = nn.Conv2D(width, width, 3, stride, 1, bias_attr=False)
        self.bn2 = _bn(width)
        self.conv3 = nn.Conv2D(width, out, 1, bias_attr=False)
        self.bn3 = _bn(out)
        self.relu = nn.ReLU()
        # torchvision projects the shortcut whenever the shape changes
        self.downsample = (nn.Sequential(nn.Conv2D(inp, out, 1, stride, bias_attr=False), _bn(out))
                           if stride != 1 or inp != out else None)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu(y + shortcut)


class ResNet50Body(nn.Layer):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and layer1-4; returns layer2, 3 and 4."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 64, 7, 2, 3, bias_attr=False)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2D(3, 2, 1)
        inp = 64
        for i, (blocks, width) in enumerate(RESNET50_STAGES):
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(inp, width, stride if b == 0 else 1))
                inp = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))

    def forward(self, x) -> Tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return c2, c3, self.layer4(c3)
