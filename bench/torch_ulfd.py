"""A PyTorch ULFD version-RFB training step, for side-by-side speed measurements only.

The network has the upstream module names (``base_net.*``, ``extras.*``,
``classification_headers.*``, ``regression_headers.*``) so the upstream ``init.pth`` loads into
it with ``strict=True``: that is the check that it is the same network. The loss is ULFD's
MultiboxLoss (smooth L1 on positives, cross-entropy on positives and 3:1 hard negatives, both
divided by the number of positives). Written here from the architecture, not copied.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup),
                         nn.ReLU(inplace=True))


def conv_dw(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                         nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
                         nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
                         nn.ReLU(inplace=True))


class BasicConv(nn.Module):
    def __init__(self, inp, oup, k, stride=1, padding=0, dilation=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, k, stride, padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(oup, eps=1e-5, momentum=0.01)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class BasicRFB(nn.Module):
    def __init__(self, inp, oup, vision=1):
        super().__init__()
        i = inp // 8
        self.branch0 = nn.Sequential(BasicConv(inp, i, 1, relu=False), BasicConv(i, 2 * i, 3, 1, 1),
                                     BasicConv(2 * i, 2 * i, 3, 1, vision + 1, vision + 1, relu=False))
        self.branch1 = nn.Sequential(BasicConv(inp, i, 1, relu=False), BasicConv(i, 2 * i, 3, 1, 1),
                                     BasicConv(2 * i, 2 * i, 3, 1, vision + 2, vision + 2, relu=False))
        self.branch2 = nn.Sequential(BasicConv(inp, i, 1, relu=False),
                                     BasicConv(i, (i // 2) * 3, 3, 1, 1),
                                     BasicConv((i // 2) * 3, 2 * i, 3, 1, 1),
                                     BasicConv(2 * i, 2 * i, 3, 1, vision + 4, vision + 4, relu=False))
        self.ConvLinear = BasicConv(6 * i, oup, 1, relu=False)
        self.shortcut = BasicConv(inp, oup, 1, relu=False)

    def forward(self, x):
        out = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)
        return F.relu(self.ConvLinear(out) + self.shortcut(x))


def separable(inp, oup, stride=1):
    return nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp), nn.ReLU(),
                         nn.Conv2d(inp, oup, 1))


class TorchULFDRFB(nn.Module):
    def __init__(self):
        super().__init__()
        b = 16
        self.base_net = nn.Sequential(
            conv_bn(3, b, 2), conv_dw(b, 2 * b, 1), conv_dw(2 * b, 2 * b, 2), conv_dw(2 * b, 2 * b, 1),
            conv_dw(2 * b, 4 * b, 2), conv_dw(4 * b, 4 * b, 1), conv_dw(4 * b, 4 * b, 1),
            BasicRFB(4 * b, 4 * b), conv_dw(4 * b, 8 * b, 2), conv_dw(8 * b, 8 * b, 1),
            conv_dw(8 * b, 8 * b, 1), conv_dw(8 * b, 16 * b, 2), conv_dw(16 * b, 16 * b, 1))
        self.extras = nn.ModuleList([nn.Sequential(nn.Conv2d(256, 64, 1), nn.ReLU(),
                                                   separable(64, 256, 2), nn.ReLU())])
        anchors, chans = (3, 2, 2, 3), (64, 128, 256)

        def heads(v):
            return nn.ModuleList([separable(c, a * v) for c, a in zip(chans, anchors)] +
                                 [nn.Conv2d(256, 3 * v, 3, padding=1)])
        self.classification_headers = heads(2)
        self.regression_headers = heads(4)

    def forward(self, x):
        feats = []
        for start, end in ((0, 8), (8, 11), (11, 13)):
            for i in range(start, end):
                x = self.base_net[i](x)
            feats.append(x)
        feats.append(self.extras[0](x))

        def run(hs, v):
            return torch.cat([h(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, v)
                              for f, h in zip(feats, hs)], 1)
        return run(self.classification_headers, 2), run(self.regression_headers, 4)


def multibox_loss(conf, loc, labels, loc_t, neg_pos_ratio=3):
    with torch.no_grad():
        bg = -F.log_softmax(conf, dim=2)[:, :, 0]
        pos = labels > 0
        num_neg = pos.long().sum(1, keepdim=True) * neg_pos_ratio
        bg[pos] = -float("inf")
        _, idx = bg.sort(1, descending=True)
        _, order = idx.sort(1)
        mask = pos | (order < num_neg)
    ce = F.cross_entropy(conf[mask].reshape(-1, 2), labels[mask], reduction="sum")
    sl1 = F.smooth_l1_loss(loc[pos].reshape(-1, 4), loc_t[pos].reshape(-1, 4), reduction="sum")
    n = max(int(pos.sum()), 1)
    return sl1 / n, ce / n
