"""Image -> network input, following each model's :class:`~paddleface.registry.Preprocess`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from .registry import Preprocess


@dataclass
class Prepared:
    """A network input and how to map its normalised boxes back to original pixels.

    ``tensor``: (3, H, W) float32. ``to_pixels``: (2,) = (sx, sy); a normalised x times sx is
    an x in the original image (ULFD: the original width; the landmark models: the resized
    width divided by the resize factor, exactly as upstream scales).
    """

    tensor: np.ndarray
    to_pixels: np.ndarray
    resized: np.ndarray  # H x W x 3 image as the network saw it, before normalisation


def resize_for(spec: Preprocess, image: np.ndarray, size: Optional[Tuple[int, int]] = None,
               long_side: Optional[int] = -1) -> Tuple[np.ndarray, float, float]:
    """Resize a BGR image as ``spec`` says; returns (resized, fx, fy).

    ``size`` overrides a fixed size; ``long_side`` overrides the long side (None = original
    size, -1 = the spec's default).
    """
    h, w = image.shape[:2]
    src = image.astype(np.float32) if spec.resize_dtype == "float32" else image
    if spec.resize == "fixed":
        tw, th = size or spec.size
        if (tw, th) == (w, h):
            return src, 1.0, 1.0
        return cv2.resize(src, (tw, th), interpolation=cv2.INTER_LINEAR), tw / w, th / h
    side = spec.long_side if long_side == -1 else long_side
    if side is None or side == max(h, w):
        return src, 1.0, 1.0
    r = float(side) / max(h, w)
    # cv2 computes the output size as round(w * r), as upstream's cv2.resize(fx=, fy=) does.
    return cv2.resize(src, None, None, fx=r, fy=r, interpolation=cv2.INTER_LINEAR), r, r


def normalize(spec: Preprocess, resized_bgr: np.ndarray) -> np.ndarray:
    """H x W x 3 BGR (uint8 or float32) -> (3, H, W) float32 ``(x - mean) / std``.

    Works on the channel-first view and writes the float result once: this runs per frame.
    """
    chw = resized_bgr.transpose(2, 0, 1)
    if spec.channel_order == "RGB":
        chw = chw[::-1]
    out = np.empty(chw.shape, dtype=np.float32)
    np.subtract(chw, np.asarray(spec.mean, dtype=np.float32)[:, None, None], out=out)
    if spec.std != 1.0:
        out *= np.float32(1.0 / spec.std)
    return out


def prepare(spec: Preprocess, image_bgr: np.ndarray, size: Optional[Tuple[int, int]] = None,
            long_side: Optional[int] = -1) -> Prepared:
    """Resize and normalise one BGR uint8 image (H x W x 3)."""
    h, w = image_bgr.shape[:2]
    resized, fx, fy = resize_for(spec, image_bgr, size, long_side)
    rh, rw = resized.shape[:2]
    return Prepared(normalize(spec, resized), np.array([rw / fx, rh / fy], dtype=np.float32),
                    resized)
