"""Per-class VOC average precision (numpy): the masked-face models' evaluation.

Protocol (PASCAL VOC 2010+ as in the VOC devkit):
- Per class, every detection of every image ranked by score (highest first, ties in image
  order); a detection is a true positive when its best-overlapping ground-truth box of the
  same class and image has IoU > ``iou_threshold`` (0.5) and was not matched before; a
  detection whose best match is a ``difficult`` box counts neither way; the rest are false
  positives. Difficult boxes are not counted in the recall either.
- IoU on continuous pixel coordinates, ``x1 y1 x2 y2`` with area ``(x2 - x1) * (y2 - y1)``
  (the VOC trees here write ``xmax = x + w``).
- AP ``"all-point"``: the area under the precision-recall curve after making precision
  monotone (each precision replaced by the highest precision at any higher recall), summed
  over the recall steps (VOC 2010 onwards). ``"11-point"``: the mean of the interpolated
  precision at recall 0, 0.1, ..., 1 (VOC 2007).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np


@dataclass
class ImageTruth:
    boxes: np.ndarray  # (G, 4) x1 y1 x2 y2 pixels
    labels: np.ndarray  # (G,) int64, 0-based class index
    difficult: np.ndarray  # (G,) bool


@dataclass
class ImageDetections:
    boxes: np.ndarray  # (K, 4) x1 y1 x2 y2 pixels
    scores: np.ndarray  # (K,)
    labels: np.ndarray  # (K,) int64, 0-based class index


@dataclass
class ClassAP:
    name: str
    ap: float
    ground_truth: int  # boxes counted in the recall (not difficult)
    detections: int
    true_positives: int
    precision: np.ndarray  # (K,) after each ranked detection
    recall: np.ndarray  # (K,)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(4,) against (G, 4) -> (G,), continuous coordinates."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = ((box[2] - box[0]) * (box[3] - box[1])
             + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)
    return inter / np.maximum(union, np.finfo(np.float64).eps)


def average_precision(recall: np.ndarray, precision: np.ndarray,
                      metric: str = "all-point") -> float:
    """AP from a ranked list's recall and precision (see the module docstring)."""
    if metric == "11-point":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    if metric != "all-point":
        raise ValueError(f"metric must be 'all-point' or '11-point', not {metric!r}")
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # the precision envelope
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def evaluate_class(truths: Sequence[ImageTruth], dets: Sequence[ImageDetections], label: int,
                   name: str, iou_threshold: float = 0.5, metric: str = "all-point") -> ClassAP:
    """AP of class ``label`` over the images (``truths[i]`` and ``dets[i]`` describe image i)."""
    gt = [(t.boxes[t.labels == label].astype(np.float64), t.difficult[t.labels == label])
          for t in truths]
    n_gt = int(sum((~d).sum() for _, d in gt))
    rows = [(float(s), i, b) for i, d in enumerate(dets)
            for s, b, l in zip(d.scores, d.boxes, d.labels) if l == label]
    order = sorted(range(len(rows)), key=lambda k: -rows[k][0])  # stable: ties in image order
    matched = [np.zeros(len(g), bool) for g, _ in gt]
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, k in enumerate(order):
        _, i, box = rows[k]
        boxes, difficult = gt[i]
        if len(boxes) == 0:
            fp[rank] = 1
            continue
        ious = iou_one_to_many(np.asarray(box, np.float64), boxes)
        j = int(ious.argmax())
        if ious[j] > iou_threshold:
            if difficult[j]:
                continue  # neither way
            if not matched[i][j]:
                matched[i][j] = True
                tp[rank] = 1
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall = ctp / max(n_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    ap = average_precision(recall, precision, metric) if n_gt else float("nan")
    return ClassAP(name, ap, n_gt, len(order), int(tp.sum()), precision, recall)


def evaluate_voc(truths: Sequence[ImageTruth], dets: Sequence[ImageDetections],
                 class_names: Sequence[str], iou_threshold: float = 0.5,
                 metric: str = "all-point") -> List[ClassAP]:
    """One :class:`ClassAP` per class name (class index = position in ``class_names``)."""
    if len(truths) != len(dets):
        raise ValueError("one detection list per ground-truth image is expected")
    return [evaluate_class(truths, dets, k, name, iou_threshold, metric)
            for k, name in enumerate(class_names)]


def ap_rows(results: Sequence[ClassAP]) -> Dict[str, Dict[str, float]]:
    """JSON-ready summary per class (AP None for a class without ground truth)."""
    return {r.name: {"ap": None if np.isnan(r.ap) else r.ap, "ground_truth": r.ground_truth,
                     "detections": r.detections, "true_positives": r.true_positives,
                     "recall": float(r.recall[-1]) if len(r.recall) else 0.0}
            for r in results}
