"""The 1 MB SSD-style face detectors: ULFD slim/RFB and their landmark variants.

Both families share one network (a 13-block MobileNet-like backbone, one extra
stride-64 layer and a head per feature map at strides 8, 16, 32, 64); they differ in
the attribute names of the upstream PyTorch code (which fix the checkpoint keys) and in
whether a landmark head exists.

Output (see :class:`paddleface.models.base.DetectorOutput`): ``loc`` (N, P, 4) raw
offsets, ``conf`` (N, P, C) logits in training and softmax probabilities in eval mode
(C = 2, background and face, except ULFD's masked-face models: C = 3, background, face,
masked_face),
``landms`` (N, P, 10) raw offsets or None. P is the number of priors for the input size.
"""
from __future__ import annotations

from typing import Sequence

import paddle.nn as nn

from .layers import (TINY_STAGES, optional_softmax, run_heads, tiny_backbone, tiny_extra,
                     tiny_heads)


class ULFDNet(nn.Layer):
    """Ultra-Light-Fast-Generic-Face-Detector-1MB (``version-slim`` / ``version-RFB``).

    Parameter names follow ``vision/ssd/ssd.py``: ``base_net.*``, ``extras.0.*``,
    ``classification_headers.*``, ``regression_headers.*``. ``num_classes`` counts the
    background: 2 for the face detectors, 3 for ``masked_face/``'s models.
    """

    def __init__(self, rfb: bool, anchors_per_level: Sequence[int] = (3, 2, 2, 3),
                 num_classes: int = 2):
        super().__init__()
        self.num_classes = num_classes
        self.base_net = nn.Sequential(*tiny_backbone(rfb))
        self.extras = nn.LayerList([tiny_extra()])
        self.classification_headers = nn.LayerList(tiny_heads(anchors_per_level, num_classes))
        self.regression_headers = nn.LayerList(tiny_heads(anchors_per_level, 4))

    def forward(self, x):
        features = []
        for start, end in TINY_STAGES:
            for i in range(start, end):
                x = self.base_net[i](x)
            features.append(x)
        features.append(self.extras[0](x))
        conf = run_heads(features, self.classification_headers, self.num_classes)
        loc = run_heads(features, self.regression_headers, 4)
        return loc, optional_softmax(conf, self.training), None


class LandmarkTinyNet(nn.Layer):
    """Face-Detector-1MB-with-landmark ``Slim`` / ``RFB``: the ULFD network plus a landmark head.

    Parameter names follow ``models/net_slim.py`` / ``net_rfb.py``: ``conv1`` ... ``conv14``,
    ``loc``, ``conf``, ``landm``.
    """

    def __init__(self, rfb: bool, anchors_per_level: Sequence[int] = (3, 2, 2, 3)):
        super().__init__()
        for i, block in enumerate(tiny_backbone(rfb)):
            setattr(self, f"conv{i + 1}", block)
        self.conv14 = tiny_extra()
        self.loc = nn.Sequential(*tiny_heads(anchors_per_level, 4))
        self.conf = nn.Sequential(*tiny_heads(anchors_per_level, 2))
        self.landm = nn.Sequential(*tiny_heads(anchors_per_level, 10))

    def forward(self, x):
        features = []
        for start, end in TINY_STAGES:
            for i in range(start, end):
                x = getattr(self, f"conv{i + 1}")(x)
            features.append(x)
        features.append(self.conv14(x))
        loc = run_heads(features, self.loc, 4)
        conf = run_heads(features, self.conf, 2)
        landms = run_heads(features, self.landm, 10)
        return loc, optional_softmax(conf, self.training), landms
