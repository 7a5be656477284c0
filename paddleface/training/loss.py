"""The multibox loss: smooth L1 boxes, cross-entropy with hard negative mining, smooth L1
landmarks (paddle, batched).

Inputs: loc (N, P, 4), conf (N, P, C) logits (C = 2, or 3 for the masked-face models),
landms (N, P, 10) or None; targets from :func:`paddleface.training.matching.match_priors`
stacked over the batch (conf_t: 0 background, k > 0 class k; -1 a face without landmarks).
"""
from __future__ import annotations

from typing import Dict

import paddle
import paddle.nn.functional as F


def hard_negative_mask(bg_loss: paddle.Tensor, pos: paddle.Tensor, ratio: int) -> paddle.Tensor:
    """Per image, the ``ratio * num_pos`` negatives with the highest background loss.

    bg_loss, pos: (N, P). Positives are ranked last so they are never mined.
    """
    num_priors = bg_loss.shape[1]
    ranked = paddle.where(pos, paddle.full_like(bg_loss, float("-inf")), bg_loss)
    order = paddle.argsort(ranked, axis=1, descending=True, stable=True)
    rank = paddle.argsort(order, axis=1)
    num_neg = paddle.clip(pos.astype("int64").sum(1, keepdim=True) * ratio, max=num_priors - 1)
    return rank < num_neg


def multibox_loss(loc, conf, landms, loc_t, conf_t, landm_t, neg_pos_ratio: int = 3
                  ) -> Dict[str, paddle.Tensor]:
    """Loss terms, each normalised as upstream: boxes and classes by the number of positive
    priors; landmarks by the number of positive priors whose face has landmarks (label > 0).
    """
    pos = conf_t != 0
    num_pos = paddle.clip(pos.astype("float32").sum(), min=1.0)
    with paddle.no_grad():
        bg_loss = -F.log_softmax(conf, axis=-1)[:, :, 0]
        neg = hard_negative_mask(bg_loss, pos, neg_pos_ratio)
    pos_f = pos.astype("float32")
    loss_l = (F.smooth_l1_loss(loc, loc_t, reduction="none").sum(-1) * pos_f).sum() / num_pos
    # the class of each positive prior (|-1| = 1: a face without landmarks), 0 elsewhere
    target = paddle.abs(conf_t).astype("int64")
    ce = F.cross_entropy(conf, target.unsqueeze(-1), reduction="none").squeeze(-1)
    loss_c = (ce * (pos | neg).astype("float32")).sum() / num_pos
    out = {"loc": loss_l, "conf": loss_c}
    if landms is not None and landm_t is not None:
        lm_pos = (conf_t > 0).astype("float32")
        n_lm = paddle.clip(lm_pos.sum(), min=1.0)
        out["landm"] = (F.smooth_l1_loss(landms, landm_t, reduction="none").sum(-1)
                        * lm_pos).sum() / n_lm
    return out
