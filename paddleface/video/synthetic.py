"""A test clip with known face trajectories, made from real photos: face crops moving over a
smooth background. Used by the tests, ``bench/stream_fps.py`` and the docs.

Faces (ids of the ground truth): 1 and 2 cross each other in the middle of the clip (2 is drawn
over 1), 3 goes down, leaves the picture at the bottom and comes back. Each frame carries its
index as a 12-bit code of black/white squares in the top-left corner, so a frame received
over a live stream (where frames are skipped) can be matched to its ground truth.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

CODE_BITS, CODE_CELL = 12, 10
# (photo, face index in the reference detections of Face-Detector-1MB RFB)
FACE_SOURCES = (("2.jpg", 0), ("2.jpg", 1), ("5.jpg", 0))


def write_frame_code(image: np.ndarray, index: int) -> None:
    for b in range(CODE_BITS):
        value = 255 if (index >> b) & 1 else 0
        image[:CODE_CELL, b * CODE_CELL:(b + 1) * CODE_CELL] = value


def read_frame_code(image: np.ndarray) -> int:
    """The frame index written by :func:`write_frame_code` (survives JPEG/H.264)."""
    index = 0
    for b in range(CODE_BITS):
        cell = image[2:CODE_CELL - 2, b * CODE_CELL + 2:(b + 1) * CODE_CELL - 2]
        if cell.mean() > 127:
            index |= 1 << b
    return index


def _face_crops(shared: Path, face_height: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(crop BGR, face box x1 y1 x2 y2 inside the crop) per FACE_SOURCES entry."""
    ref = json.loads((shared / "reference/fd1mb/RBF_Final/detections.json").read_text())
    out = []
    for name, k in FACE_SOURCES:
        image = cv2.imread(str(shared / "images" / name))
        x1, y1, x2, y2 = ref["detections"][name][k][:4]
        w, h = x2 - x1, y2 - y1
        cx1, cy1 = int(max(0, x1 - 0.3 * w)), int(max(0, y1 - 0.25 * h))
        cx2, cy2 = int(min(image.shape[1], x2 + 0.3 * w)), int(min(image.shape[0], y2 + 0.2 * h))
        s = face_height / h
        crop = cv2.resize(image[cy1:cy2, cx1:cx2], None, fx=s, fy=s,
                          interpolation=cv2.INTER_AREA)
        box = (np.array([x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1]) * s)
        out.append((crop, box))
    return out


def _centres(frames: int, width: int, height: int) -> Dict[int, np.ndarray]:
    """(frames, 2) crop centre per face id along its trajectory."""
    t = np.linspace(0.0, 1.0, frames)
    a = np.stack([0.1 + 0.55 * t, 0.3 + 0.4 * t], axis=1)  # right and down
    b = np.stack([0.65 - 0.55 * t, 0.3 + 0.4 * t], axis=1)  # left and down: crosses 1 at t=0.5
    # 3: down and out of the bottom (about t 0.4..0.6), then back up
    y3 = 0.25 + 0.95 * 2 * np.minimum(t, 1 - t)
    c = np.stack([np.full_like(t, 0.87), y3], axis=1)
    return {i + 1: p * [width, height] for i, p in enumerate((a, b, c))}


def make_face_clip(shared: Path, path: Path, size: Tuple[int, int] = (800, 450),
                   fps: float = 10.0, frames: int = 80, face_height: int = 90,
                   tone_hz: Optional[float] = None, ffmpeg: Optional[str] = None) -> dict:
    """Write the clip to ``path`` (MP4) and return its ground truth:
    ``{"fps", "size", "frames": [{id: [x1, y1, x2, y2]} per frame], "crossing": [1, 2]}``.
    A face is in a frame's truth when at least half of its box is inside the picture (boxes
    clipped). ``tone_hz``: also an audio track with that sine tone (needs ``ffmpeg``)."""
    width, height = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([90 + 60 * xx / width, 110 + 40 * yy / height,
                           140 - 50 * xx / width], axis=2)
    background += cv2.GaussianBlur(rng.normal(0, 25, (height, width, 1)).astype(np.float32),
                                   (0, 0), 6)[..., None]
    background = np.clip(background, 0, 255).astype(np.uint8)
    crops = _face_crops(shared, face_height)
    centres = _centres(frames, width, height)
    truth: List[Dict[int, List[float]]] = []
    video_path = path if tone_hz is None else path.with_name(path.stem + ".silent.mp4")
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        image = background.copy()
        boxes = {}
        for fid in (1, 3, 2):  # 2 drawn last: over 1 where they cross
            crop, box = crops[fid - 1]
            ch, cw = crop.shape[:2]
            cx, cy = centres[fid][i]
            x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
            sx1, sy1 = max(0, -x0), max(0, -y0)
            sx2, sy2 = min(cw, width - x0), min(ch, height - y0)
            if sx2 > sx1 and sy2 > sy1:
                image[y0 + sy1:y0 + sy2, x0 + sx1:x0 + sx2] = crop[sy1:sy2, sx1:sx2]
            b = box + [x0, y0, x0, y0]
            c = np.clip(b, 0, [width, height, width, height])
            area = (b[2] - b[0]) * (b[3] - b[1])
            if (c[2] - c[0]) * (c[3] - c[1]) >= 0.5 * area:
                boxes[fid] = [round(float(v), 2) for v in c]
        # 2 covers 1 where they overlap: 1 counts only while most of it is visible
        if 1 in boxes and 2 in boxes:
            b1, b2 = np.array(boxes[1]), np.array(boxes[2])
            ix = max(0.0, min(b1[2], b2[2]) - max(b1[0], b2[0]))
            iy = max(0.0, min(b1[3], b2[3]) - max(b1[1], b2[1]))
            if ix * iy > 0.5 * (b1[2] - b1[0]) * (b1[3] - b1[1]):
                del boxes[1]
        write_frame_code(image, i)
        writer.write(image)
        truth.append(boxes)
    writer.release()
    if tone_hz is not None:
        subprocess.run([ffmpeg or "ffmpeg", "-loglevel", "error", "-y", "-i", str(video_path),
                        "-f", "lavfi", "-i", f"sine=frequency={tone_hz}:duration={frames / fps}",
                        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                        "-shortest", str(path)], check=True)
        video_path.unlink()
    return {"fps": fps, "size": [width, height], "frames": truth, "crossing": [1, 2]}
