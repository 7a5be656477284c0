"""SSD box and landmark coding (numpy; every array is float32 and broadcasts over a batch).

Conventions: priors are centre form ``(cx, cy, w, h)``; decoded boxes are corner form
``(x1, y1, x2, y2)``; both normalised to [0, 1] by the network input size.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def center_to_corner(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) ``cx cy w h`` -> ``x1 y1 x2 y2``."""
    half = boxes[..., 2:] / 2
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def corner_to_center(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) ``x1 y1 x2 y2`` -> ``cx cy w h``."""
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2,
                           boxes[..., 2:] - boxes[..., :2]], axis=-1)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Network offsets (..., P, 4) -> corner-form normalised boxes (..., P, 4)."""
    centers = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    sizes = priors[..., 2:] * np.exp(loc[..., 2:] * variances[1])
    return np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=-1)


def encode_boxes(boxes: np.ndarray, priors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Corner-form normalised boxes (..., P, 4) -> regression targets (inverse of decode_boxes)."""
    c = corner_to_center(boxes)
    return np.concatenate([
        (c[..., :2] - priors[..., :2]) / (variances[0] * priors[..., 2:]),
        np.log(c[..., 2:] / priors[..., 2:]) / variances[1]], axis=-1)


def decode_landmarks(landms: np.ndarray, priors: np.ndarray,
                     variances: Sequence[float]) -> np.ndarray:
    """Offsets (..., P, 10) -> normalised points (..., P, 5, 2) as (x, y)."""
    pts = landms.reshape(landms.shape[:-1] + (5, 2))
    return priors[..., None, :2] + pts * variances[0] * priors[..., None, 2:]


def encode_landmarks(points: np.ndarray, priors: np.ndarray,
                     variances: Sequence[float]) -> np.ndarray:
    """Normalised points (..., P, 5, 2) -> targets (..., P, 10) (inverse of decode_landmarks)."""
    t = (points - priors[..., None, :2]) / (variances[0] * priors[..., None, 2:])
    return t.reshape(t.shape[:-2] + (10,))
