"""Reading images with one-sentence errors, and normalising arrays to BGR uint8."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, List, Tuple

import cv2
import numpy as np

from .errors import PaddleFaceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm",
                  ".ppm", ".pbm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
MAX_PIXELS = 1 << 28  # 268 M pixels (about 16k x 16k): beyond that decoding alone takes GBs


def as_bgr(image: np.ndarray, name: str = "image") -> np.ndarray:
    """A 3-channel BGR uint8 view of a grayscale (H, W), (H, W, 1), BGR or BGRA array."""
    if not isinstance(image, np.ndarray):
        raise PaddleFaceError(f"{name}: a numpy array (H x W x 3, BGR uint8) was expected, "
                              f"got {type(image).__name__}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise PaddleFaceError(f"{name}: an H x W x 3 image was expected, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise PaddleFaceError(f"{name}: the image is empty ({image.shape[1]}x{image.shape[0]})")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        else:
            raise PaddleFaceError(f"{name}: uint8 pixels were expected, got {image.dtype}")
    return image


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode encoded image bytes to BGR uint8 (alpha dropped, grayscale expanded)."""
    if not data:
        raise PaddleFaceError(f"{name}: the file is empty")
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PaddleFaceError(f"{name}: not a readable image (corrupt, truncated or not an "
                              "image format OpenCV decodes)")
    return as_bgr(image, name)


def read_image(path) -> np.ndarray:
    """Read an image file as BGR uint8, or raise a one-sentence PaddleFaceError."""
    p = Path(path)
    if not p.exists():
        raise PaddleFaceError(f"{p}: no such file")
    if p.is_dir():
        raise PaddleFaceError(f"{p}: is a folder, an image file was expected")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PaddleFaceError(f"{p}: cannot be read ({e.strerror})") from None
    return decode_image(data, str(p))


def expand_inputs(paths: List[str]) -> Tuple[List[Tuple[Path, Path]], List[Tuple[str, str]]]:
    """Files to process from files and folders (folders: their images and videos, sorted,
    recursively), each with a relative name for its outputs: a folder's files keep their
    path below the folder, a named file its name. Names are unique (``-1``, ``-2`` before
    the suffix when two inputs share one); a file named twice is processed once.
    Returns (files as (path, relative name), errors as (path, message))."""
    found: List[Tuple[Path, Path]] = []
    errors: List[Tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            inside = sorted(f for f in p.rglob("*")
                            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not inside:
                errors.append((raw, f"{raw}: the folder holds no images"))
            found.extend((f, f.relative_to(p)) for f in inside)
        elif p.exists():
            found.append((p, Path(p.name)))
        else:
            errors.append((raw, f"{raw}: no such file or folder"))
    files: List[Tuple[Path, Path]] = []
    seen_files, taken = set(), set()
    for path, rel in found:
        key = path.resolve()
        if key in seen_files:
            continue
        seen_files.add(key)
        name, k = rel, 0
        while str(name).lower() in taken:
            k += 1
            name = rel.with_name(f"{rel.stem}-{k}{rel.suffix}")
        taken.add(str(name).lower())
        files.append((path, name))
    return files, errors


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@contextlib.contextmanager
def silenced_stderr():
    """Send file descriptor 2 to /dev/null for the block: FFmpeg inside OpenCV writes its
    complaints ("moov atom not found") there directly, and our own one-line error follows."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class VideoReader:
    """The frames of a video file and its frame rate (25 when the file does not say)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with silenced_stderr():
            self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise PaddleFaceError(f"{path}: not a readable video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                with silenced_stderr():
                    ok, frame = self._cap.read()
                if not ok:
                    break
                yield frame
        finally:
            self._cap.release()


def video_frames(path: Path) -> Iterator[np.ndarray]:
    return iter(VideoReader(path))
