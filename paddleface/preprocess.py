"""Image -> network input, following each model's :class:`~paddleface.registry.Preprocess`."""
from __future__ import annotations

import math
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
    offset: np.ndarray = None  # (2,) pixels added after scaling (letterbox padding), or zeros
    image_size: Optional[Tuple[int, int]] = None  # (width, height) of the original image

    def __post_init__(self):
        if self.offset is None:
            self.offset = np.zeros(2, np.float32)


def pad_short_side(image: np.ndarray, ratio: float, color) -> np.ndarray:
    """Pad the bottom or right edge with ``color`` so that neither side scales to less than one
    pixel (a 3000x2 image at long side 640 would resize to 640x0). Padding after the image
    keeps its pixel coordinates, so the boxes need no correction."""
    h, w = image.shape[:2]
    need = math.ceil(1.0 / ratio)
    if min(h, w) >= need:
        return image
    out = np.empty((max(h, need), max(w, need), image.shape[2]), dtype=image.dtype)
    out[:] = color
    out[:h, :w] = image
    return out


def letterbox(image: np.ndarray, side: int, stride: int, color) -> Tuple[np.ndarray, float, Tuple[float, float]]:
    """YOLO's letterbox (auto): scale the long side to ``side``, pad the short side only up to
    a multiple of ``stride``, half on each side. Returns (image, ratio, (left, top))."""
    image = pad_short_side(image, side / max(image.shape[:2]), color)
    h, w = image.shape[:2]
    r = min(side / h, side / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = ((side - nw) % stride) / 2, ((side - nh) % stride) / 2
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=tuple(float(c) for c in color))
    return image, r, (left, top)


def resize_for(spec: Preprocess, image: np.ndarray, size: Optional[Tuple[int, int]] = None,
               long_side: Optional[int] = -1):
    """Resize a BGR image as ``spec`` says; returns (resized, fx, fy, (left, top) padding).

    ``size`` overrides a fixed size; ``long_side`` overrides the long side (None = original
    size, -1 = the spec's default).
    """
    h, w = image.shape[:2]
    src = image.astype(np.float32) if spec.resize_dtype == "float32" else image
    if spec.resize == "fixed":
        tw, th = size or spec.size
        if (tw, th) == (w, h):
            return src, 1.0, 1.0, (0, 0)
        return cv2.resize(src, (tw, th), interpolation=cv2.INTER_LINEAR), tw / w, th / h, (0, 0)
    if spec.resize == "letterbox":
        side = max(size) if size else spec.size[0]
        out, r, pad = letterbox(src, side, spec.stride, spec.mean)
        return out, r, r, pad
    if spec.resize == "square_pad":
        # the image at the top-left of a mean-coloured square, resized to the model size
        side = max(size) if size else spec.size[0]
        s = max(h, w)
        square = np.empty((s, s, 3), dtype=src.dtype)
        square[:] = spec.mean
        square[:h, :w] = src
        return cv2.resize(square, (side, side), interpolation=cv2.INTER_LINEAR), side / s, side / s, (0, 0)
    side = spec.long_side if long_side == -1 else long_side
    if side is None or side == max(h, w):
        return src, 1.0, 1.0, (0, 0)
    r = float(side) / max(h, w)
    src = pad_short_side(src, r, spec.mean)
    # cv2 computes the output size as round(w * r), as upstream's cv2.resize(fx=, fy=) does.
    return cv2.resize(src, None, None, fx=r, fy=r, interpolation=cv2.INTER_LINEAR), r, r, (0, 0)


def normalize(spec: Preprocess, resized_bgr: np.ndarray) -> np.ndarray:
    """H x W x 3 BGR (uint8 or float32) -> (3, H, W) float32 ``(x - mean) / std``.

    This runs per frame: OpenCV splits the interleaved pixels into planes (a third of the
    time numpy takes to read the channel-first strided view), then float32 arithmetic in place.
    """
    planes = cv2.split(resized_bgr)
    if spec.channel_order == "RGB":
        planes = planes[::-1]
    out = np.empty((3,) + resized_bgr.shape[:2], dtype=np.float32)
    for channel, plane in zip(out, planes):
        channel[...] = plane
    out -= np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    if spec.std != 1.0:
        out *= np.float32(1.0 / spec.std)
    return out


def prepare(spec: Preprocess, image_bgr: np.ndarray, size: Optional[Tuple[int, int]] = None,
            long_side: Optional[int] = -1) -> Prepared:
    """Resize and normalise one BGR uint8 image (H x W x 3)."""
    resized, fx, fy, (left, top) = resize_for(spec, image_bgr, size, long_side)
    rh, rw = resized.shape[:2]
    return Prepared(normalize(spec, resized), np.array([rw / fx, rh / fy], dtype=np.float32),
                    resized, np.array([-left / fx, -top / fy], dtype=np.float32),
                    (image_bgr.shape[1], image_bgr.shape[0]))
