"""Building blocks shared by the face detectors.

Every block is an ``nn.Sequential`` (or a layer whose children carry the upstream
attribute names) so that the parameter names of a Paddle model equal the PyTorch
state-dict keys after x2paddle's renaming (``running_mean`` -> ``_mean``,
``running_var`` -> ``_variance``). Activations sit at the same positions as upstream,
because a Sequential's child index is part of every key after it.

All layers take and return NCHW tensors.
"""
from __future__ import annotations

from typing import List, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

# PyTorch's BatchNorm momentum m updates running = (1-m)*running + m*batch;
# Paddle's momentum is the weight of the old value, hence 1 - m.
TORCH_DEFAULT_BN_MOMENTUM = 0.9


def activation(negative_slope: float = 0.0) -> nn.Layer:
    """ReLU, or LeakyReLU when ``negative_slope`` is non-zero (RetinaFace uses 0.1)."""
    return nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU()


def conv_bn(inp: int, oup: int, stride: int = 1, slope: float = 0.0, kernel: int = 3,
            relu: bool = True) -> nn.Sequential:
    """Conv(kernel, no bias) -> BN [-> activation]; padding keeps 'same' size at stride 1."""
    layers = [nn.Conv2D(inp, oup, kernel, stride, kernel // 2, bias_attr=False),
              nn.BatchNorm2D(oup, momentum=TORCH_DEFAULT_BN_MOMENTUM)]
    if relu:
        layers.append(activation(slope))
    return nn.Sequential(*layers)


def conv_dw(inp: int, oup: int, stride: int, slope: float = 0.0) -> nn.Sequential:
    """MobileNet depthwise-separable block: dw3x3-BN-act, pw1x1-BN-act."""
    return nn.Sequential(
        nn.Conv2D(inp, inp, 3, stride, 1, groups=inp, bias_attr=False),
        nn.BatchNorm2D(inp, momentum=TORCH_DEFAULT_BN_MOMENTUM),
        activation(slope),
        nn.Conv2D(inp, oup, 1, 1, 0, bias_attr=False),
        nn.BatchNorm2D(oup, momentum=TORCH_DEFAULT_BN_MOMENTUM),
        activation(slope),
    )


def separable_conv(inp: int, oup: int, kernel: int = 3, stride: int = 1,
                   padding: int = 1) -> nn.Sequential:
    """Depthwise conv (with bias) -> ReLU -> pointwise conv (with bias); the SSD heads."""
    return nn.Sequential(
        nn.Conv2D(inp, inp, kernel, stride, padding, groups=inp),
        nn.ReLU(),
        nn.Conv2D(inp, oup, 1),
    )


class BasicConv(nn.Layer):
    """Conv -> BN(momentum 0.01 in PyTorch terms) [-> ReLU], the RFB branch unit."""

    def __init__(self, inp: int, oup: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2D(inp, oup, kernel, stride, padding, dilation=dilation,
                              bias_attr=False)
        self.bn = nn.BatchNorm2D(oup, momentum=0.99, epsilon=1e-5)
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class BasicRFB(nn.Layer):
    """Receptive Field Block: three dilated branches, a 1x1 fuse and a shortcut."""

    def __init__(self, inp: int, oup: int, stride: int = 1, scale: float = 1.0,
                 map_reduce: int = 8, vision: int = 1):
        super().__init__()
        self.scale = scale
        inter = inp // map_reduce
        self.branch0 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False),
            BasicConv(inter, 2 * inter, 3, stride, 1),
            BasicConv(2 * inter, 2 * inter, 3, 1, vision + 1, vision + 1, relu=False))
        self.branch1 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False),
            BasicConv(inter, 2 * inter, 3, stride, 1),
            BasicConv(2 * inter, 2 * inter, 3, 1, vision + 2, vision + 2, relu=False))
        self.branch2 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False),
            BasicConv(inter, (inter // 2) * 3, 3, 1, 1),
            BasicConv((inter // 2) * 3, 2 * inter, 3, stride, 1),
            BasicConv(2 * inter, 2 * inter, 3, 1, vision + 4, vision + 4, relu=False))
        self.ConvLinear = BasicConv(6 * inter, oup, 1, relu=False)
        self.shortcut = BasicConv(inp, oup, 1, stride, relu=False)

    def forward(self, x):
        out = paddle.concat([self.branch0(x), self.branch1(x), self.branch2(x)], axis=1)
        out = self.ConvLinear(out) * self.scale + self.shortcut(x)
        return F.relu(out)


def tiny_backbone(rfb: bool, base: int = 16) -> List[nn.Layer]:
    """The 13 blocks of ULFD's Mb_Tiny / Mb_Tiny_RFB (input /32 after block 12).

    Block 7 is a plain conv_dw in the slim variant and a BasicRFB in the RFB variant.
    Feature maps for the heads come out of blocks 7, 10 and 12 (strides 8, 16, 32).
    """
    b = base
    return [
        conv_bn(3, b, 2),
        conv_dw(b, 2 * b, 1),
        conv_dw(2 * b, 2 * b, 2),
        conv_dw(2 * b, 2 * b, 1),
        conv_dw(2 * b, 4 * b, 2),
        conv_dw(4 * b, 4 * b, 1),
        conv_dw(4 * b, 4 * b, 1),
        BasicRFB(4 * b, 4 * b, stride=1, scale=1.0) if rfb else conv_dw(4 * b, 4 * b, 1),
        conv_dw(4 * b, 8 * b, 2),
        conv_dw(8 * b, 8 * b, 1),
        conv_dw(8 * b, 8 * b, 1),
        conv_dw(8 * b, 16 * b, 2),
        conv_dw(16 * b, 16 * b, 1),
    ]


#: blocks [start, end) of ``tiny_backbone`` that produce the three backbone feature maps.
TINY_STAGES = ((0, 8), (8, 11), (11, 13))
#: channels of the four feature maps (three backbone stages + the extra layer).
TINY_FEATURE_CHANNELS = (64, 128, 256, 256)


def tiny_extra(base: int = 16) -> nn.Sequential:
    """The stride-64 extra layer: 1x1 reduce, ReLU, separable 3x3/2, ReLU."""
    return nn.Sequential(
        nn.Conv2D(16 * base, 4 * base, 1), nn.ReLU(),
        separable_conv(4 * base, 16 * base, 3, 2, 1), nn.ReLU())


def tiny_heads(anchors_per_level: Sequence[int], values_per_anchor: int) -> List[nn.Layer]:
    """One head per feature map: separable 3x3 on the first three, a plain 3x3 conv last."""
    chans = TINY_FEATURE_CHANNELS
    heads: List[nn.Layer] = [separable_conv(c, a * values_per_anchor)
                             for c, a in zip(chans[:3], anchors_per_level[:3])]
    heads.append(nn.Conv2D(chans[3], anchors_per_level[3] * values_per_anchor, 3, padding=1))
    return heads


def flatten_head(x: paddle.Tensor, values_per_anchor: int) -> paddle.Tensor:
    """(N, A*V, H, W) -> (N, H*W*A, V): the anchor order is row-major over the map, anchors last."""
    x = paddle.transpose(x, [0, 2, 3, 1])
    return paddle.reshape(x, [0, -1, values_per_anchor])


def run_heads(features: Sequence[paddle.Tensor], heads: Sequence[nn.Layer],
              values_per_anchor: int) -> paddle.Tensor:
    """Apply ``heads[i]`` to ``features[i]`` and concatenate over levels: (N, num_priors, V)."""
    return paddle.concat([flatten_head(h(f), values_per_anchor)
                          for f, h in zip(features, heads)], axis=1)


def upsample_like(x: paddle.Tensor, ref: paddle.Tensor) -> paddle.Tensor:
    """Nearest-neighbour resize of ``x`` (N, C, H, W) to the spatial size of ``ref``, which must
    be (2H or 2H-1, 2W or 2W-1), as between neighbouring FPN levels.

    Each pixel repeated 2x2, then cropped: for those sizes this equals F.interpolate(size=,
    mode="nearest") exactly. The interp op is avoided because its float-array attribute stops
    Paddle 3.3.1's oneDNN executor from running the graph.
    """
    cols = paddle.reshape(paddle.stack([x, x], axis=-1), [0, 0, 0, -1])   # (N, C, H, 2W)
    rows = paddle.concat([cols, cols], axis=-1)                            # (N, C, H, 4W)
    up = paddle.reshape(rows, [0, 0, -1, paddle.shape(cols)[3]])          # (N, C, 2H, 2W)
    size = paddle.shape(ref)  # symbolic when the graph is exported with dynamic H, W
    return up[:, :, :size[2], :size[3]]


def optional_softmax(conf: paddle.Tensor, training: bool) -> paddle.Tensor:
    """Training returns logits (the loss applies log-softmax); inference returns probabilities."""
    return conf if training else F.softmax(conf, axis=-1)

