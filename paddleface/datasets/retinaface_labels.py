"""Streaming parser of RetinaFace's ``label.txt`` files.

Format: a ``# event/name.jpg`` line per image, then one line per face: ``x y w h`` (val) or
``x y w h`` + 5 x ``(lx ly flag)`` + ``blur`` = 20 numbers (train; every landmark value is
-1 when the face has none).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np


@dataclass
class FaceLabel:
    """One face: box ``x y w h`` in pixels; ``landmarks`` (5, 2) or None; ``flag`` (the last
    point's visibility flag, as upstream writes it) and ``blur``; ``line`` in label.txt."""

    box: np.ndarray
    line: int
    landmarks: Optional[np.ndarray] = None
    flag: float = -1.0
    blur: float = -1.0


@dataclass
class ImageLabel:
    name: str  # event/name.jpg
    line: int
    faces: List[FaceLabel] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)  # "label.txt:LINE: what"


def parse_labels(path: Path, with_landmarks: bool) -> Iterator[ImageLabel]:
    """Yield one :class:`ImageLabel` per ``#`` line; bad face lines become errors of their
    image (the rest of the image still converts)."""
    expected = 20 if with_landmarks else 4
    current: Optional[ImageLabel] = None
    orphans: List[str] = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path.name}:{n}"
            if line.startswith("#"):
                if current is not None:
                    yield current
                name = line[1:].strip()
                current = ImageLabel(name, n)
                if not name:
                    current.errors.append(f"{where}: an image path was expected after '#'")
                continue
            if current is None:
                orphans.append(f"{where}: a face line comes before any '# image' line")
                continue
            parts = line.split()
            if len(parts) != expected and not (with_landmarks and len(parts) == 4):
                current.errors.append(f"{where}: {expected} numbers were expected, got {len(parts)}")
                continue
            try:
                vals = np.array([float(v) for v in parts], dtype=np.float64)
            except ValueError:
                current.errors.append(f"{where}: not a number in {line!r}")
                continue
            if not np.all(np.isfinite(vals)):
                current.errors.append(f"{where}: a value is not finite")
                continue
            face = FaceLabel(vals[:4], n)
            if with_landmarks and len(vals) == 20:
                face.blur = float(vals[19])
                if vals[4] != -1:
                    face.landmarks = vals[4:19].reshape(5, 3)[:, :2].copy()
                    face.flag = float(vals[18])
            current.faces.append(face)
    if current is not None:
        if orphans:
            current.errors.extend(orphans)
        yield current
    elif orphans:
        yield ImageLabel("", 0, errors=orphans)
