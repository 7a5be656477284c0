"""Training augmentation (numpy + OpenCV), one random generator per sample.

Boxes are corner form in pixels on input and normalised to [0, 1] on output; landmarks are
(N, 5, 2) pixels (ignored where ``has_lm`` is False). Images are BGR float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

# a mirrored face swaps left and right eyes and mouth corners (the nose stays)
MIRROR_LANDMARK_ORDER = [1, 0, 2, 4, 3]


@dataclass
class Sample:
    image: np.ndarray  # H x W x 3 BGR (uint8 until the photometric distortion, then float32)
    boxes: np.ndarray  # (N, 4) pixels
    landmarks: np.ndarray  # (N, 5, 2) pixels
    has_lm: np.ndarray  # (N,) bool
    # (N,) int64 class of each box, 1-based (the record's labels[k - 1]); None = all faces
    labels: Optional[np.ndarray] = None

    def kept_labels(self, keep: np.ndarray) -> Optional[np.ndarray]:
        return None if self.labels is None else self.labels[keep]


def ssd_photometric_distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SSD's PhotometricDistort as ULFD runs it, on a float image: brightness +-32, then
    contrast 0.5-1.5 either first or last around saturation 0.5-1.5 and hue +-18 degrees in
    HSV, then a random channel permutation; each step half of the time. Nothing is clipped:
    upstream lets values leave [0, 255], and the network sees them."""
    img = img.astype(np.float32)  # a copy
    if rng.random() < 0.5:
        img += np.float32(rng.uniform(-32, 32))
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        img *= np.float32(rng.uniform(0.5, 1.5))
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    if rng.random() < 0.5:
        hsv[..., 1] *= np.float32(rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:
        hue = hsv[..., 0] + np.float32(rng.uniform(-18, 18))
        hue[hue > 360.0] -= 360.0
        hue[hue < 0.0] += 360.0
        hsv[..., 0] = hue
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and rng.random() < 0.5:
        img *= np.float32(rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:  # RandomLightingNoise: one of the 6 channel orders
        img = img[..., rng.permutation(3)]
    return img


def _clip_convert(channel: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(channel.astype(np.float64) * alpha + beta, 0, 255).astype(np.uint8)


def retinaface_distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pytorch_Retinaface's ``_distort`` on a uint8 image (float input is rounded first):
    brightness +-32 and contrast 0.5-1.5 clipped to [0, 255] at each step, saturation
    0.5-1.5 and hue +-18 in OpenCV's uint8 HSV (hue in [0, 180)), contrast either before or
    after the HSV steps; each step half of the time; no channel permutation."""
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    contrast_first = rng.random() < 0.5
    if rng.random() < 0.5:
        img = _clip_convert(img, beta=rng.uniform(-32, 32))
    if contrast_first and rng.random() < 0.5:
        img = _clip_convert(img, alpha=rng.uniform(0.5, 1.5))
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    if rng.random() < 0.5:
        hsv[..., 1] = _clip_convert(hsv[..., 1], alpha=rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:
        hsv[..., 0] = (hsv[..., 0].astype(np.int64) + int(rng.integers(-18, 19))) % 180
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and rng.random() < 0.5:
        img = _clip_convert(img, alpha=rng.uniform(0.5, 1.5))
    return img.astype(np.float32)


def mirror(s: Sample, rng: np.random.Generator, normalised: bool = False) -> Sample:
    """Flip horizontally half of the time (``normalised``: coordinates are in [0, 1])."""
    if rng.random() >= 0.5:
        return s
    w = 1.0 if normalised else s.image.shape[1]
    boxes = s.boxes.copy()
    boxes[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    lms = s.landmarks.copy()
    lms[..., 0] = np.where(s.has_lm[:, None], w - lms[..., 0], lms[..., 0])
    lms = np.where(s.has_lm[:, None, None], lms[:, MIRROR_LANDMARK_ORDER], lms)
    return Sample(s.image[:, ::-1].copy(), boxes, lms, s.has_lm, s.labels)


def _random_crop_rect(boxes: np.ndarray, w: float, h: float, rng: np.random.Generator):
    """ULFD's RandomSampleCrop_v2 on a w x h canvas: the whole canvas one time in five, else a
    square patch of 0.3-1 of the short side that holds at least one whole face (None = whole)."""
    if len(boxes) == 0 or rng.random() < 0.2:
        return None
    short = min(w, h)
    for _ in range(50):
        side = rng.uniform(0.3 * short, short)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        rect = np.array([x0, y0, x0 + side, y0 + side], np.float32)
        inside = ((boxes[:, :2] >= rect[:2]) & (boxes[:, 2:] <= rect[2:])).all(1)
        if inside.any():
            return rect
    return None


def ssd_geometry(s: Sample, size: Tuple[int, int], mean, rng: np.random.Generator,
                 max_expand: float = 1.0) -> Sample:
    """Expand (zoom out onto a mean-coloured canvas up to ``max_expand`` x, half of the time;
    1 = never, as ULFD's TrainAugmentation), random sample crop and resize, done as one affine
    warp so a large canvas is never built."""
    h, w = s.image.shape[:2]
    r = rng.uniform(1, max_expand) if (max_expand > 1 and rng.random() < 0.5) else 1.0
    left, top = rng.uniform(0, w * r - w), rng.uniform(0, h * r - h)
    shift = np.array([left, top], np.float32)
    boxes, lms = s.boxes + np.tile(shift, 2), s.landmarks + shift
    rect = _random_crop_rect(boxes, w * r, h * r, rng)
    if rect is None:
        rect = np.array([0, 0, w * r, h * r], np.float32)
    x0, y0, x1, y1 = rect
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    keep = ((centers >= [x0, y0]) & (centers < [x1, y1])).all(1)
    boxes = boxes[keep].copy()
    boxes[:, :2] = np.maximum(boxes[:, :2], [x0, y0])
    boxes[:, 2:] = np.minimum(boxes[:, 2:], [x1, y1])
    tw, th = size
    sx, sy = tw / (x1 - x0), th / (y1 - y0)
    m = np.array([[sx, 0, -(x0 - left) * sx], [0, sy, -(y0 - top) * sy]], np.float32)
    img = cv2.warpAffine(s.image, m, (tw, th), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in mean))
    scale = np.array([x1 - x0, y1 - y0], np.float32)
    origin = np.array([x0, y0], np.float32)
    return Sample(img, (boxes - np.tile(origin, 2)) / np.tile(scale, 2),
                  (lms[keep] - origin) / scale, s.has_lm[keep], s.kept_labels(keep))


def _crop(s: Sample, x0: int, y0: int, x1: int, y1: int) -> Sample:
    centers = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
    keep = ((centers >= [x0, y0]) & (centers < [x1, y1])).all(1)
    boxes = s.boxes[keep].copy()
    boxes[:, :2] = np.maximum(boxes[:, :2], [x0, y0]) - [x0, y0]
    boxes[:, 2:] = np.minimum(boxes[:, 2:], [x1, y1]) - [x0, y0]
    return Sample(s.image[y0:y1, x0:x1], boxes, s.landmarks[keep] - [x0, y0], s.has_lm[keep],
                  s.kept_labels(keep))


def square_crop(s: Sample, rng: np.random.Generator) -> Sample:
    """RetinaFace's ``_crop``: a random square of 0.3, 0.45, 0.6, 0.8 or 1.0 of the short side
    that holds at least one whole face; faces whose centre falls inside are kept and clipped.
    After 250 failed draws the image is kept whole (and later padded to a square)."""
    h, w = s.image.shape[:2]
    for _ in range(250):
        side = int(rng.choice([0.3, 0.45, 0.6, 0.8, 1.0]) * min(h, w))
        x0 = 0 if w == side else int(rng.integers(0, w - side))
        y0 = 0 if h == side else int(rng.integers(0, h - side))
        whole = ((s.boxes[:, :2] >= [x0, y0]) & (s.boxes[:, 2:] <= [x0 + side, y0 + side])).all(1)
        if not whole.any():
            continue
        out = _crop(s, x0, y0, x0 + side, y0 + side)
        if len(out.boxes):
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
    return Sample(canvas, s.boxes, s.landmarks, s.has_lm, s.labels)


def resize_normalised(s: Sample, size: Tuple[int, int], rng: np.random.Generator,
                      random_interp: bool) -> Sample:
    """Resize to (width, height) and express boxes / landmarks in [0, 1]."""
    h, w = s.image.shape[:2]
    interp = (rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST,
                          cv2.INTER_LANCZOS4]) if random_interp else cv2.INTER_LINEAR)
    img = cv2.resize(s.image, size, interpolation=int(interp))
    scale = np.array([w, h], np.float32)
    return Sample(img, s.boxes / np.tile(scale, 2), s.landmarks / scale, s.has_lm, s.labels)


def augment(s: Sample, kind: str, size: Tuple[int, int], mean, rng: np.random.Generator) -> Sample:
    """``kind``:
    - "ulfd": what ULFD's TrainAugmentation does in effect: the whole image resized, SSD's
      photometric distortion (unclipped), mirror. (Its RandomSampleCrop_v2 only accepts
      patches with h / w == 1 drawn as two independent uniforms, which never happens, so it
      always keeps the whole image.)
    - "ssd": SSD's expand (up to 4x) and random sample crop before the resize, then as "ulfd".
    - "retinaface": square crop, pad to square, resize with a random interpolation,
      Pytorch_Retinaface's clipped uint8 distortion, mirror (its preproc).
    The pixel-wise distortion runs after the resize, on the small image: the same
    distribution at a fraction of the cost."""
    if kind == "ulfd":
        s = resize_normalised(s, size, rng, False)
    elif kind == "ssd":
        s = ssd_geometry(s, size, mean, rng, max_expand=4.0)
    elif kind == "retinaface":
        s = resize_normalised(pad_to_square(square_crop(s, rng), mean), size, rng, True)
    else:
        raise ValueError(f"unknown augmentation {kind!r}")
    distort = retinaface_distort if kind == "retinaface" else ssd_photometric_distort
    s = Sample(distort(s.image, rng), s.boxes, s.landmarks, s.has_lm, s.labels)
    return mirror(s, rng, normalised=True)
