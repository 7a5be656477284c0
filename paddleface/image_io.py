"""Reading images with one-sentence errors, and normalising arrays to BGR uint8."""
from __future__ import annotations

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


def expand_inputs(paths: List[str]) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """Files to process from files and folders (folders: their images and videos, sorted,
    recursively). Returns (files, errors) where each error is (path, message)."""
    files: List[Path] = []
    errors: List[Tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                errors.append((raw, f"{raw}: the folder holds no images"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            errors.append((raw, f"{raw}: no such file or folder"))
    return files, errors


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def video_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise PaddleFaceError(f"{path}: not a readable video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
    finally:
        cap.release()
