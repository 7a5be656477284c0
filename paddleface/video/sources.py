"""Where frames come from.

- video files: every frame, in order; a prefetch thread decodes ahead of the detector;
- live sources (``camera:N``, ``/dev/videoN``, ``rtsp://``, ``http(s)://`` MJPEG or HLS, read by
  OpenCV's FFmpeg backend): a reader thread keeps only the newest frame, so the latency does not
  grow when the detector is slower than the source; a dropped stream is reopened with backoff.
"""
from __future__ import annotations

import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import cv2
import numpy as np

from ..errors import PaddleFaceError
from ..image_io import silenced_stderr

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
CAMERA_PATTERN = re.compile(r"^(?:camera:(\d+)|/dev/video(\d+))$")
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class SourceSpec:
    """A frame source as the user named it. ``kind``: "file", "camera" or "network";
    ``target``: the path, the URL or the camera index."""

    text: str
    kind: str
    target: Union[str, int]

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def output_stem(self) -> str:
        """A file name stem for the drawing of this source (``camera0``, ``host_8080_live``)."""
        if self.kind == "file":
            return Path(self.text).stem
        if self.kind == "camera":
            return f"camera{self.target}"
        rest = re.sub(r"^[a-z]+://", "", self.text)
        return re.sub(r"[^A-Za-z0-9.-]+", "_", rest).strip("_")[:80] or "stream"


def parse_source(text: str) -> SourceSpec:
    """``camera:N`` / ``/dev/videoN`` -> camera N, a URL -> network stream, else a file path."""
    m = CAMERA_PATTERN.match(text)
    if m:
        return SourceSpec(text, "camera", int(m.group(1) or m.group(2)))
    if text.lower().startswith(NETWORK_SCHEMES):
        return SourceSpec(text, "network", text)
    return SourceSpec(text, "file", text)


def is_live(text: str) -> bool:
    return parse_source(text).live


def check_camera(spec: SourceSpec) -> None:
    """A camera index that does not exist: one sentence naming the cameras there are (Linux
    lists them as /dev/video*; elsewhere OpenCV's open decides)."""
    if spec.kind != "camera" or not sys.platform.startswith("linux"):
        return
    device = Path(f"/dev/video{spec.target}")
    if not device.exists():
        present = sorted(str(p) for p in Path("/dev").glob("video*"))
        there = ", ".join(present) if present else "none"
        raise PaddleFaceError(f"{spec.text}: no such camera ({device} does not exist; cameras "
                              f"here: {there})")


def open_capture(spec: SourceSpec, timeout_s: float) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` or a one-sentence error. Network streams go through the
    FFmpeg backend with open and read timeouts, so a dead server does not hang the reader."""
    check_camera(spec)
    ms = int(timeout_s * 1000)
    with silenced_stderr():
        if spec.kind == "camera":
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            cap = cv2.VideoCapture(int(spec.target), backend)
        elif spec.kind == "network":
            cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(str(spec.target))
    if not cap.isOpened():
        cap.release()
        if spec.kind == "file":
            if not Path(spec.text).exists():
                raise PaddleFaceError(f"{spec.text}: no such file")
            raise PaddleFaceError(f"{spec.text}: not a readable video")
        if spec.kind == "camera":
            raise PaddleFaceError(f"{spec.text}: the camera cannot be opened (busy, or not a "
                                  "video capture device)")
        raise PaddleFaceError(f"{spec.text}: the stream cannot be opened (nothing answered "
                              f"within {timeout_s:g} s, or not a video stream OpenCV's FFmpeg "
                              "reads)")
    return cap


def capture_fps(cap: cv2.VideoCapture) -> Optional[float]:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None


@dataclass
class Frame:
    """One decoded frame: ``index`` counts the source's frames from 0 (a live source's skipped
    frames leave gaps), ``time`` is in seconds (a file's frame time; a live source's seconds
    since its first frame), ``image`` is BGR uint8 (H, W, 3)."""

    index: int
    time: float
    image: np.ndarray


class FileFrames:
    """Every frame of a video file in order, decoded by a thread up to ``prefetch`` frames
    ahead of the consumer (decoding releases the GIL, so it runs beside the detector). Also a
    network stream of known length (an HLS VOD playlist, an MP4 over HTTP): ``cap`` given."""

    live = False

    def __init__(self, spec: SourceSpec, prefetch: int = 4,
                 cap: Optional[cv2.VideoCapture] = None):
        self.spec = spec
        self._cap = cap if cap is not None else open_capture(spec, 10.0)
        self.fps = capture_fps(self._cap) or DEFAULT_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: Optional[int] = count if count > 0 else None
        self.reconnects = 0
        self._queue: "queue.Queue" = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="paddleface-decode", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            i = 0
            while not self._stop.is_set():
                with silenced_stderr():
                    ok, image = self._cap.read()
                if not ok:
                    break
                frame = Frame(i, round(i / self.fps, 4), image)
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                i += 1
        finally:
            self._cap.release()
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        try:  # unblock a reader waiting on a full queue
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


class LiveFrames:
    """The newest frame of a camera or network stream. A reader thread reads as fast as the
    source sends and overwrites one slot; the consumer takes the newest frame it has not seen.
    A read failure closes the capture and reopens it after 0.25, 0.5, 1, 2, 4, 4 ... s; after
    ``max_reconnects`` failed attempts in a row the iteration ends with a PaddleFaceError.
    ``reconnects`` counts the successful reopenings, ``dropped`` the frames never consumed."""

    live = True

    def __init__(self, spec: SourceSpec, max_reconnects: int = 5, timeout_s: float = 10.0,
                 cap: Optional[cv2.VideoCapture] = None):
        self.spec = spec
        self.max_reconnects = max_reconnects
        self.timeout_s = timeout_s
        self._cap: Optional[cv2.VideoCapture] = cap or open_capture(spec, timeout_s)
        self.fps = capture_fps(self._cap) or DEFAULT_FPS
        self.frame_count = None
        self.reconnects = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._latest: Optional[Frame] = None
        self._next_index = 0
        self._t0: Optional[float] = None
        self._error: Optional[str] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="paddleface-live", daemon=True)
        self._thread.start()

    @staticmethod
    def backoff(attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...)."""
        return min(0.25 * 2 ** (attempt - 1), 4.0)

    def _read(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                if self._cap is None:
                    failures += 1
                    if failures > self.max_reconnects:
                        self._fail(f"{self.spec.text}: the stream dropped and did not come back "
                                   f"after {self.max_reconnects} reconnect attempts")
                        return
                    if self._stop.wait(self.backoff(failures)):
                        return
                    try:
                        self._cap = open_capture(self.spec, self.timeout_s)
                    except PaddleFaceError:
                        continue
                    self.reconnects += 1
                with silenced_stderr():
                    ok, image = self._cap.read()
                if not ok:
                    self._cap.release()
                    self._cap = None
                    continue
                failures = 0
                now = time.monotonic()
                if self._t0 is None:
                    self._t0 = now
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = Frame(self._next_index, round(now - self._t0, 4), image)
                    self._next_index += 1
                    self._cond.notify_all()
        finally:
            if self._cap is not None:
                self._cap.release()

    def _fail(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and self._error is None and not self._stop.is_set():
                    self._cond.wait(0.2)
                if self._latest is not None:
                    frame, self._latest = self._latest, None
                elif self._error is not None:
                    raise PaddleFaceError(self._error)
                else:
                    return
            yield frame

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout_s + 5)


def open_frames(source: Union[str, Path, SourceSpec], max_reconnects: int = 5,
                timeout_s: float = 10.0):
    """A :class:`FileFrames` or :class:`LiveFrames` for ``source`` (see :func:`parse_source`)."""
    spec = source if isinstance(source, SourceSpec) else parse_source(str(source))
    if spec.kind == "network":
        # a stream that knows its length (HLS VOD, a file over HTTP) has an end: every frame,
        # in order, like a file; live streams (MJPEG, RTSP, live HLS) report none
        cap = open_capture(spec, timeout_s)
        if cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
            return FileFrames(spec, cap=cap)
        return LiveFrames(spec, max_reconnects, timeout_s, cap=cap)
    if spec.live:
        return LiveFrames(spec, max_reconnects, timeout_s)
    return FileFrames(spec)
