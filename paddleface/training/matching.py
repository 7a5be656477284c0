"""Assigning ground-truth faces to priors (numpy, one image at a time, in the data workers).

Boxes are corner form normalised to [0, 1]; priors are centre form normalised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..box_coder import center_to_corner, encode_boxes, encode_landmarks


@dataclass(frozen=True)
class MatchConfig:
    """``iou_threshold``: a prior whose best IoU is below it is background.
    ``force_min_iou``: every face is forced onto its best prior; with a value, only when
    that prior's IoU is at least this (RetinaFace: 0.2; ULFD: None, always).
    ``iou_eps``: added to the IoU denominator (ULFD's ``iou_of`` uses 1e-5)."""

    iou_threshold: float = 0.35
    force_min_iou: Optional[float] = None
    iou_eps: float = 0.0
    variances: Tuple[float, float] = (0.1, 0.2)


def iou_matrix(a: np.ndarray, b: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """(A, 4) x (B, 4) corner boxes -> (A, B) IoU (no +1: normalised coordinates)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return inter / (area_a[:, None] + area_b[None, :] - inter + eps)


def match_priors(boxes: np.ndarray, labels: np.ndarray, priors: np.ndarray, cfg: MatchConfig,
                 landmarks: Optional[np.ndarray] = None):
    """Targets for every prior.

    Args:
        boxes: (G, 4) faces; labels: (G,) 1 = face with landmarks, -1 = face without
            (RetinaFace's convention; ULFD uses 1 for every face); priors: (P, 4).
        landmarks: (G, 5, 2) normalised points or None.
    Returns:
        loc_t (P, 4) encoded boxes, conf_t (P,) labels (0 = background), landm_t (P, 10)
        encoded points (zeros where the matched face has none) or None.
    """
    P = priors.shape[0]
    if boxes.shape[0] == 0:
        return (np.zeros((P, 4), np.float32), np.zeros(P, np.int64),
                None if landmarks is None else np.zeros((P, 10), np.float32))
    overlaps = iou_matrix(boxes, center_to_corner(priors), cfg.iou_eps)  # (G, P)
    best_prior = overlaps.argmax(1)  # per face
    best_prior_iou = overlaps[np.arange(len(boxes)), best_prior]
    best_face = overlaps.argmax(0)  # per prior
    best_face_iou = overlaps.max(0)
    forced = (best_prior_iou >= cfg.force_min_iou) if cfg.force_min_iou is not None \
        else np.ones(len(boxes), bool)
    if not forced.any() and cfg.force_min_iou is not None:
        # RetinaFace: no face reaches its best prior -> the whole image is background
        return (np.zeros((P, 4), np.float32), np.zeros(P, np.int64),
                None if landmarks is None else np.zeros((P, 10), np.float32))
    best_face_iou[best_prior[forced]] = 2.0
    # every face claims its best prior (later faces win ties, as upstream's loop does)
    best_face[best_prior] = np.arange(len(boxes))
    conf_t = labels[best_face].astype(np.int64)
    conf_t[best_face_iou < cfg.iou_threshold] = 0
    loc_t = encode_boxes(boxes[best_face], priors, cfg.variances).astype(np.float32)
    landm_t = None
    if landmarks is not None:
        landm_t = encode_landmarks(landmarks[best_face], priors, cfg.variances).astype(np.float32)
    return loc_t, conf_t, landm_t
