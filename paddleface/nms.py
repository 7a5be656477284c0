"""Greedy hard non-maximum suppression (numpy).

Boxes are corner form ``(x1, y1, x2, y2)``. ``offset`` is 1 for the pixel convention of
Pytorch_Retinaface's ``py_cpu_nms`` (width = x2 - x1 + 1) and 0 for ULFD's ``hard_nms`` on
normalised boxes, whose IoU carries ``eps`` = 1e-5 in the denominator. A box whose IoU
with an already kept box is greater than ``iou_threshold`` is dropped.
"""
from __future__ import annotations

import numpy as np


def box_iou(box: np.ndarray, boxes: np.ndarray, offset: float = 0.0, eps: float = 0.0) -> np.ndarray:
    """IoU of one box (4,) with each of ``boxes`` (M, 4) -> (M,)."""
    w = np.maximum(0.0, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + offset)
    h = np.maximum(0.0, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + offset)
    inter = w * h
    area = (box[2] - box[0] + offset) * (box[3] - box[1] + offset)
    areas = (boxes[:, 2] - boxes[:, 0] + offset) * (boxes[:, 3] - boxes[:, 1] + offset)
    return inter / (area + areas - inter + eps)


def pairwise_iou(boxes: np.ndarray, offset: float = 0.0, eps: float = 0.0) -> np.ndarray:
    """(N, 4) -> (N, N) IoU of every pair."""
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    w = np.maximum(0.0, np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1) + offset)
    h = np.maximum(0.0, np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1) + offset)
    inter = w * h
    area = (x2 - x1 + offset) * (y2 - y1 + offset)
    return inter / (area[:, None] + area - inter + eps)


#: up to this many candidates, NMS computes the whole IoU matrix at once (N^2 floats)
MATRIX_NMS_MAX = 1024


#: passes of :func:`greedy_from_matrix` before the per-box loop takes over
MATRIX_NMS_PASSES = 8


def greedy_from_matrix(suppress: np.ndarray, passes: int = MATRIX_NMS_PASSES):
    """Greedy NMS of score-sorted boxes from their (N, N) "i would suppress j" matrix: the
    (N,) mask of kept boxes, or None if it did not settle within ``passes``.

    Box j is kept iff no kept box before it suppresses it. Each pass applies that rule to
    every box at once from the previous pass's mask, which makes at least one more box (in
    score order) final, and a mask that a pass leaves unchanged is the greedy result (the
    rule determines it box by box). Suppression chains in detections are short, so two to
    four matrix-vector products replace a Python loop over the kept boxes.
    """
    rank = np.arange(suppress.shape[0])
    before = (suppress & (rank[:, None] < rank)).astype(np.float32)  # only better boxes count
    kept = np.ones(rank.size, dtype=np.float32)  # 1.0 = kept
    for _ in range(passes):
        new = (kept @ before == 0).astype(np.float32)
        if (new == kept).all():
            return new.astype(bool)
        kept = new
    return None


def hard_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
             candidates: int = -1, keep: int = -1, offset: float = 0.0,
             eps: float = 0.0) -> np.ndarray:
    """Indices of the kept boxes, highest score first.

    ``candidates`` > 0: only the best ``candidates`` boxes take part; ``keep`` > 0: stop
    after that many are kept. Each round keeps the best remaining box and removes the
    remaining boxes it overlaps, so the loop runs once per kept box, not per box; with few
    candidates the IoUs come from one matrix computed up front.
    """
    order = np.argsort(-scores, kind="stable")
    if candidates > 0:
        order = order[:candidates]
    if order.size == 0:
        return order.astype(np.int64)
    b = boxes[order].astype(np.float32, copy=False)
    if order.size <= MATRIX_NMS_MAX:
        suppress = ~(pairwise_iou(b, offset, eps) <= iou_threshold)
        kept_mask = greedy_from_matrix(suppress)
        if kept_mask is not None:
            kept_idx = np.flatnonzero(kept_mask)
            return order[kept_idx[:keep] if keep > 0 else kept_idx]
    else:
        suppress = None
    kept = []
    remaining = np.arange(order.size)
    while remaining.size:
        best = remaining[0]
        kept.append(best)
        if keep > 0 and len(kept) == keep:
            break
        rest = remaining[1:]
        if suppress is not None:
            remaining = rest[~suppress[best, rest]]
        else:
            remaining = rest[box_iou(b[best], b[rest], offset, eps) <= iou_threshold]
    return order[np.asarray(kept, dtype=np.int64)]
