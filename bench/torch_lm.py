"""A PyTorch Face-Detector-1MB RFB (with landmarks) training step: the control for the
RFB-lm replay (``bench/train_replay.py --family lm --torch-control``).

The network has the upstream module names (``conv1`` ... ``conv14``, ``loc``, ``conf``,
``landm``) so the upstream ``init.pth`` loads into it with ``strict=True``: the check that it
is the same network. Its blocks are ULFD RFB's (bench/torch_ulfd.py): FD-1MB's ``RFB`` is
that backbone with the RFB block's scale 1.0, default BatchNorm in ``conv_bn`` / ``conv_dw``
(momentum 0.1) and momentum 0.01 inside the RFB block, plus a landmark head of the same form.

The loss is Pytorch_Retinaface's MultiBoxLoss as FD-1MB runs it (``MultiBoxLoss(2, 0.35,
True, 0, True, 7, 0.35, False)``), on per-prior targets: smooth L1 on the landmarks of the
positives whose face has landmarks (label > 0), divided by their number; smooth L1 on the
boxes of all positives (label != 0); cross-entropy on the positives and the 7:1 hardest
negatives, ranked by ``log_sum_exp - logit`` with the positives set to 0; boxes and classes
divided by the number of positives. Written here from those facts, not copied.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.torch_ulfd import BasicRFB, conv_bn, conv_dw, separable


class TorchRFBLandmark(nn.Module):
    """(N, 3, H, W) BGR minus (104, 117, 123) -> loc (N, P, 4), conf logits (N, P, 2),
    landmarks (N, P, 10); P over the strides 8, 16, 32, 64 with 3, 2, 2, 3 anchors."""

    def __init__(self):
        super().__init__()
        b = 16
        blocks = [conv_bn(3, b, 2), conv_dw(b, 2 * b, 1), conv_dw(2 * b, 2 * b, 2),
                  conv_dw(2 * b, 2 * b, 1), conv_dw(2 * b, 4 * b, 2), conv_dw(4 * b, 4 * b, 1),
                  conv_dw(4 * b, 4 * b, 1), BasicRFB(4 * b, 4 * b), conv_dw(4 * b, 8 * b, 2),
                  conv_dw(8 * b, 8 * b, 1), conv_dw(8 * b, 8 * b, 1), conv_dw(8 * b, 16 * b, 2),
                  conv_dw(16 * b, 16 * b, 1)]
        for i, block in enumerate(blocks):
            setattr(self, f"conv{i + 1}", block)
        self.conv14 = nn.Sequential(nn.Conv2d(256, 64, 1), nn.ReLU(), separable(64, 256, 2),
                                    nn.ReLU())
        anchors, chans = (3, 2, 2, 3), (64, 128, 256)

        def heads(v):
            return nn.Sequential(*[separable(c, a * v) for c, a in zip(chans, anchors)],
                                 nn.Conv2d(256, 3 * v, 3, padding=1))
        self.loc, self.conf, self.landm = heads(4), heads(2), heads(10)

    def forward(self, x):
        feats = []
        for start, end in ((0, 8), (8, 11), (11, 13)):
            for i in range(start, end):
                x = getattr(self, f"conv{i + 1}")(x)
            feats.append(x)
        feats.append(self.conv14(x))

        def run(hs, v):
            return torch.cat([h(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, v)
                              for f, h in zip(feats, hs)], 1)
        return run(self.loc, 4), run(self.conf, 2), run(self.landm, 10)


def multibox_loss_lm(loc, conf, landms, loc_t, conf_t, landm_t, neg_pos_ratio: int = 7):
    """(loss_l, loss_c, loss_landm). conf_t (N, P) int64: 1 face with landmarks, -1 face
    without, 0 background; loc_t (N, P, 4), landm_t (N, P, 10) encoded targets."""
    pos_lm = conf_t > 0
    n_lm = max(float(pos_lm.sum()), 1.0)
    loss_landm = F.smooth_l1_loss(landms[pos_lm], landm_t[pos_lm], reduction="sum")
    pos = conf_t != 0
    labels = pos.long()
    loss_l = F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum")
    with torch.no_grad():
        flat = conf.reshape(-1, 2)
        shift = flat.max()  # upstream's log_sum_exp shifts by the batch maximum
        mining = (torch.log(torch.exp(flat - shift).sum(1, keepdim=True)) + shift
                  - flat.gather(1, labels.reshape(-1, 1)))
        mining[pos.reshape(-1, 1)] = 0
        mining = mining.reshape(conf.shape[0], -1)
        _, order = mining.sort(1, descending=True)
        _, rank = order.sort(1)
        num_neg = torch.clamp(neg_pos_ratio * pos.long().sum(1, keepdim=True), max=pos.shape[1] - 1)
        neg = rank < num_neg
    chosen = pos | neg
    loss_c = F.cross_entropy(conf[chosen], labels[chosen], reduction="sum")
    n = max(float(pos.sum()), 1.0)
    return loss_l / n, loss_c / n, loss_landm / n_lm
