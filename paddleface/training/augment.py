"""Training augmentation (numpy + OpenCV), one random generator per sample.

Boxes are corner form in pixels on input and normalised to [0, 1] on output; landmarks are
(N, 5, 2) pixels (ignored where ``has_lm`` is False). Images are BGR float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

# a mirrored face swaps left and right eyes and mouth corners (the nose stays)
MIRROR_LANDMARK_ORDER = [1, 0, 2, 4, 3]


@dataclass
class Sample:
    image: np.ndarray  # H x W x 3 float32 BGR
    boxes: np.ndarray  # (N, 4) pixels
    landmarks: np.ndarray  # (N, 5, 2) pixels
    has_lm: np.ndarray  # (N,) bool


def photometric_distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SSD's distortion: brightness, contrast (before or after), saturation, hue."""
    img = img.copy()
    if rng.random() < 0.5:
        img += rng.uniform(-32, 32)
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        img *= rng.uniform(0.5, 1.5)
    hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.float32), cv2.COLOR_BGR2HSV)
    if rng.random() < 0.5:
        hsv[..., 1] *= rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18)) % 360.0
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and rng.random() < 0.5:
        img *= rng.uniform(0.5, 1.5)
    return np.clip(img, 0, 255)


def mirror(s: Sample, rng: np.random.Generator) -> Sample:
    if rng.random() >= 0.5:
        return s
    w = s.image.shape[1]
    boxes = s.boxes.copy()
    boxes[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    lms = s.landmarks.copy()
    lms[..., 0] = np.where(s.has_lm[:, None], w - lms[..., 0], lms[..., 0])
    lms = np.where(s.has_lm[:, None, None], lms[:, MIRROR_LANDMARK_ORDER], lms)
    return Sample(s.image[:, ::-1].copy(), boxes, lms, s.has_lm)


def expand(s: Sample, rng: np.random.Generator, mean, max_ratio: float = 4.0) -> Sample:
    """Zoom out: place the image on a larger canvas of the mean colour (half of the time)."""
    if rng.random() >= 0.5:
        return s
    h, w = s.image.shape[:2]
    r = rng.uniform(1, max_ratio)
    left, top = int(rng.uniform(0, w * r - w)), int(rng.uniform(0, h * r - h))
    canvas = np.empty((int(h * r), int(w * r), 3), np.float32)
    canvas[:] = mean
    canvas[top:top + h, left:left + w] = s.image
    shift = np.array([left, top], np.float32)
    return Sample(canvas, s.boxes + np.tile(shift, 2), s.landmarks + shift, s.has_lm)


def _crop(s: Sample, x0: int, y0: int, x1: int, y1: int) -> Sample:
    centers = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
    keep = ((centers >= [x0, y0]) & (centers < [x1, y1])).all(1)
    boxes = s.boxes[keep].copy()
    boxes[:, :2] = np.maximum(boxes[:, :2], [x0, y0]) - [x0, y0]
    boxes[:, 2:] = np.minimum(boxes[:, 2:], [x1, y1]) - [x0, y0]
    return Sample(s.image[y0:y1, x0:x1], boxes, s.landmarks[keep] - [x0, y0], s.has_lm[keep])


def ssd_random_crop(s: Sample, rng: np.random.Generator) -> Sample:
    """SSD's random sample crop: a crop whose IoU with some face passes a random minimum,
    keeping the faces whose centres fall inside."""
    from .matching import iou_matrix
    h, w = s.image.shape[:2]
    while True:
        mode = rng.choice([-1.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0])  # -1: keep the image
        if mode < 0 or len(s.boxes) == 0:
            return s
        for _ in range(50):
            cw, ch = rng.uniform(0.3 * w, w), rng.uniform(0.3 * h, h)
            if not 0.5 <= ch / cw <= 2:
                continue
            x0, y0 = int(rng.uniform(0, w - cw)), int(rng.uniform(0, h - ch))
            rect = np.array([[x0, y0, x0 + int(cw), y0 + int(ch)]], np.float32)
            if iou_matrix(s.boxes, rect).max() < mode:
                continue
            out = _crop(s, *rect[0].astype(int))
            if len(out.boxes):
                return out


def square_crop(s: Sample, rng: np.random.Generator) -> Sample:
    """RetinaFace's crop: a random square of 0.3-1.0 of the short side holding a face centre."""
    h, w = s.image.shape[:2]
    for _ in range(250):
        side = int(rng.choice([0.3, 0.45, 0.6, 0.8, 1.0]) * min(h, w))
        x0 = 0 if w == side else int(rng.integers(0, w - side))
        y0 = 0 if h == side else int(rng.integers(0, h - side))
        out = _crop(s, x0, y0, x0 + side, y0 + side)
        if len(out.boxes) and ((out.boxes[:, 2:] - out.boxes[:, :2]) > 0).all():
            return out
    return s


def pad_to_square(s: Sample, mean) -> Sample:
    h, w = s.image.shape[:2]
    if h == w:
        return s
    side = max(h, w)
    canvas = np.empty((side, side, 3), np.float32)
    canvas[:] = mean
    canvas[:h, :w] = s.image
    return Sample(canvas, s.boxes, s.landmarks, s.has_lm)


def resize_normalised(s: Sample, size: Tuple[int, int], rng: np.random.Generator,
                      random_interp: bool) -> Sample:
    """Resize to (width, height) and express boxes / landmarks in [0, 1]."""
    h, w = s.image.shape[:2]
    interp = (rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST,
                          cv2.INTER_LANCZOS4]) if random_interp else cv2.INTER_LINEAR)
    img = cv2.resize(s.image, size, interpolation=int(interp))
    scale = np.array([w, h], np.float32)
    return Sample(img, s.boxes / np.tile(scale, 2), s.landmarks / scale, s.has_lm)


def augment(s: Sample, kind: str, size: Tuple[int, int], mean, rng: np.random.Generator) -> Sample:
    """``kind`` "ssd" (ULFD: distort, expand, random crop, mirror, resize) or "retinaface"
    (square crop, distort, pad to square, mirror, resize with a random interpolation)."""
    if kind == "ssd":
        s = Sample(photometric_distort(s.image, rng), s.boxes, s.landmarks, s.has_lm)
        s = ssd_random_crop(expand(s, rng, mean), rng)
        return resize_normalised(mirror(s, rng), size, rng, False)
    if kind == "retinaface":
        s = square_crop(s, rng)
        s = Sample(photometric_distort(s.image, rng), s.boxes, s.landmarks, s.has_lm)
        s = mirror(pad_to_square(s, mean), rng)
        return resize_normalised(s, size, rng, True)
    raise ValueError(f"unknown augmentation {kind!r}")
