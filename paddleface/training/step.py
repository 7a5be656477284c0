"""One training iteration, as the upstream PyTorch trainers do it.

The trainer (tools/train.py) and the step-by-step replay against the upstream trainers
(bench/train_replay.py, tests/test_train_replay.py) both run these functions, so what the
replay proves is what training does:

- :class:`TargetEncoder`: faces of one image -> per-prior targets (matching + encoding);
- :func:`make_optimizer`: SGD with momentum and L2 weight decay on every parameter;
- :func:`compute_loss`: forward pass and the record's weighted multibox loss;
- :func:`train_step`: forward, loss, backward, optimizer step (BatchNorm statistics are
  updated by the forward pass in train mode).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..registry import ModelRecord
from .matching import MatchConfig, match_priors


class TargetEncoder:
    """Per-prior targets of one image for ``record`` at a (width, height) input size."""

    def __init__(self, record: ModelRecord, size: Tuple[int, int]):
        recipe = record.train
        self.record = record
        self.cfg = MatchConfig(recipe.match_iou, recipe.force_min_iou, recipe.iou_eps,
                               record.priors.variances)
        self.priors = record.priors(size[1], size[0])  # (P, 4) centre form, normalised

    def __call__(self, boxes: np.ndarray, has_lm: np.ndarray,
                 landmarks: Optional[np.ndarray] = None, classes: Optional[np.ndarray] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """boxes (G, 4) corner form in [0, 1]; has_lm (G,) bool; landmarks (G, 5, 2) in [0, 1];
        classes (G,) 1-based class of each box (None: all 1, "face").

        Faces of zero width or height are dropped. Labels follow each upstream: the class
        (ULFD: 1 face, 2 masked_face for the masked-face models); 1 with landmarks and -1
        without (RetinaFace family, one class).
        Returns loc_t (P, 4) float32, conf_t (P,) int64, landm_t (P, 10) float32 (zeros for
        models without landmarks).
        """
        keep = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
        if self.record.landmarks:
            labels = np.where(has_lm[keep], 1, -1)
        elif classes is not None:
            labels = classes[keep]
        else:
            labels = np.ones(int(keep.sum()))
        lms = landmarks[keep] if (self.record.landmarks and landmarks is not None) else None
        if self.record.landmarks and lms is None:
            lms = np.zeros((int(keep.sum()), 5, 2), np.float32)
        loc_t, conf_t, landm_t = match_priors(boxes[keep], labels.astype(np.int64),
                                              self.priors, self.cfg, lms)
        if landm_t is None:
            landm_t = np.zeros((len(self.priors), 10), np.float32)
        return loc_t, conf_t, landm_t


def make_optimizer(net, record: ModelRecord, learning_rate):
    """SGD, momentum and L2 weight decay on every parameter (BatchNorm scale and shift
    included), as torch.optim.SGD(net.parameters(), momentum=, weight_decay=) in both upstream
    trainers: v = m v + (g + wd w); w -= lr v. ``learning_rate``: a float or an LRScheduler."""
    import paddle
    r = record.train
    return paddle.optimizer.Momentum(
        learning_rate=learning_rate, momentum=r.momentum, parameters=net.parameters(),
        weight_decay=paddle.regularizer.L2Decay(r.weight_decay))


def compute_loss(model, record: ModelRecord, batch: Sequence, amp: bool = False):
    """Forward ``batch`` = (images (N, 3, H, W), loc_t (N, P, 4), conf_t (N, P),
    landm_t (N, P, 10)) and return (total, terms): total = loc_weight * loc + conf_weight *
    conf [+ landm_weight * landm], each term normalised as upstream (see loss.py)."""
    import paddle
    from .loss import multibox_loss
    images, loc_t, conf_t, landm_t = batch
    with paddle.amp.auto_cast(enable=amp):
        loc, conf, landms = model(images)
    if not model.training:  # eval mode returns probabilities; their log are logits
        conf = paddle.log(paddle.clip(conf, min=1e-12))
    r = record.train
    terms = multibox_loss(loc.astype("float32"), conf.astype("float32"),
                          None if landms is None else landms.astype("float32"),
                          loc_t, conf_t, landm_t if landms is not None else None,
                          r.neg_pos_ratio)
    total = r.loc_weight * terms["loc"] + r.conf_weight * terms["conf"]
    if "landm" in terms:
        total = total + r.landm_weight * terms["landm"]
    return total, terms


def train_step(model, record: ModelRecord, optimizer, batch: Sequence, scaler=None,
               check=None) -> Tuple[float, Dict[str, float]]:
    """One iteration: forward, loss, backward, optimizer step, gradients cleared.

    ``check(total, terms)`` runs before the backward pass (the trainer stops on a non-finite
    loss there, leaving the weights untouched). Returns the total and the terms as floats.
    """
    total, terms = compute_loss(model, record, batch, amp=scaler is not None)
    value = float(total)
    if check is not None:
        check(value, terms)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.minimize(optimizer, total)
    else:
        total.backward()
        optimizer.step()
    optimizer.clear_grad()
    return value, {k: float(v) for k, v in terms.items()}
