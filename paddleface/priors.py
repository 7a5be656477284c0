"""Prior (anchor) boxes for any input size.

Priors are returned in centre form ``(cx, cy, w, h)``, normalised by the input width and
height, shape (P, 4) float32, ordered level by level, then row-major over the feature map,
then by anchor size: the order in which the network heads emit their predictions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple

import numpy as np


@dataclass(frozen=True)
class PriorBoxes:
    """Square anchors of ``min_sizes[k]`` pixels on a feature map of stride ``steps[k]``.

    ``centers``: ``"step"`` puts centres at ``(i + 0.5) * step / size`` (RetinaFace's
    ``PriorBox``); ``"grid"`` at ``(i + 0.5) / ceil(size / step)`` (ULFD's
    ``generate_priors``, whose centres follow the feature map rather than the stride).
    ``clip`` clamps every coordinate to [0, 1] (ULFD clamps, RetinaFace does not).
    """

    min_sizes: Tuple[Tuple[float, ...], ...]
    steps: Tuple[int, ...]
    variances: Tuple[float, float] = (0.1, 0.2)
    clip: bool = False
    centers: str = "step"

    def __post_init__(self):
        if len(self.min_sizes) != len(self.steps):
            raise ValueError("PriorBoxes: one list of min_sizes per step is expected")
        if self.centers not in ("step", "grid"):
            raise ValueError(f"PriorBoxes: centers must be 'step' or 'grid', not {self.centers!r}")

    def feature_map_sizes(self, height: int, width: int):
        """(rows, cols) per level: each stride-2 conv with padding 1 gives ceil(n / 2)."""
        return [(math.ceil(height / s), math.ceil(width / s)) for s in self.steps]

    def anchors_per_level(self):
        return [len(m) for m in self.min_sizes]

    def __call__(self, height: int, width: int) -> np.ndarray:
        """Priors for an input of ``height`` x ``width`` pixels: (P, 4) centre form, normalised."""
        return _priors(self, int(height), int(width))


@lru_cache(maxsize=64)
def _priors(spec: PriorBoxes, height: int, width: int) -> np.ndarray:
    levels = []
    for (rows, cols), step, sizes in zip(spec.feature_map_sizes(height, width), spec.steps,
                                         spec.min_sizes):
        if spec.centers == "step":
            cx = (np.arange(cols) + 0.5) * step / width
            cy = (np.arange(rows) + 0.5) * step / height
        else:
            cx = (np.arange(cols) + 0.5) / cols
            cy = (np.arange(rows) + 0.5) / rows
        k = len(sizes)
        grid_y, grid_x = np.meshgrid(cy, cx, indexing="ij")  # (rows, cols)
        level = np.empty((rows, cols, k, 4), dtype=np.float64)
        level[..., 0] = grid_x[..., None]
        level[..., 1] = grid_y[..., None]
        level[..., 2] = np.asarray(sizes, dtype=np.float64) / width
        level[..., 3] = np.asarray(sizes, dtype=np.float64) / height
        levels.append(level.reshape(-1, 4))
    priors = np.concatenate(levels).astype(np.float32)
    if spec.clip:
        np.clip(priors, 0.0, 1.0, out=priors)
    priors.setflags(write=False)  # shared by the cache
    return priors
