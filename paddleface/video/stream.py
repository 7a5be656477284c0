"""Faces in every frame of a video file or live source: ``FaceDetector.stream``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from .sources import Frame, SourceSpec, open_frames
from .tracking import FaceTracker


class FaceStream:
    """Iterate to get ``(frame_index, frame, faces)``: ``frame`` BGR uint8 (H, W, 3), ``faces``
    a list of :class:`paddleface.detector.Face` (``track_id`` set when tracking).

    Files give every frame in order; live sources (``camera:N``, ``/dev/videoN``, ``rtsp://``,
    ``http(s)://``) the newest frame each time the detector is ready (indices then have gaps).
    The source is opened on creation (a bad source raises PaddleFaceError at once) and closed
    when the iteration ends, breaks or fails. ``fps``, ``live``, ``reconnects`` and, after the
    run, ``processed`` and ``tracker_seconds`` describe it.
    """

    def __init__(self, detector, source: Union[str, Path, SourceSpec], track: bool = False,
                 smoothing: float = 0.0, max_frames: Optional[int] = None,
                 duration: Optional[float] = None, max_reconnects: int = 5,
                 timeout_s: float = 10.0, tracker: Optional[FaceTracker] = None):
        self.detector = detector
        self._frames = open_frames(source, max_reconnects, timeout_s)
        self.fps: float = self._frames.fps
        self.live: bool = self._frames.live
        self.frame_count: Optional[int] = self._frames.frame_count
        self.tracker = tracker or (FaceTracker(fps=self.fps, smoothing=smoothing)
                                   if track else None)
        self.max_frames, self.duration = max_frames, duration
        self.processed = 0
        self.tracker_seconds = 0.0

    @property
    def reconnects(self) -> int:
        return self._frames.reconnects

    def frames(self) -> Iterator[Tuple[Frame, List]]:
        """(:class:`Frame` with its index and time, faces) per processed frame."""
        try:
            for frame in self._frames:
                if self.max_frames is not None and self.processed >= self.max_frames:
                    break
                if self.duration is not None and frame.time > self.duration:
                    break
                faces = self.detector.detect(frame.image)
                if self.tracker is not None:
                    t0 = time.perf_counter()
                    h, w = frame.image.shape[:2]
                    faces = self.tracker.update(faces, (w, h))
                    self.tracker_seconds += time.perf_counter() - t0
                self.processed += 1
                yield frame, faces
        finally:
            self.close()

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray, List]]:
        for frame, faces in self.frames():
            yield frame.index, frame.image, faces

    def close(self) -> None:
        self._frames.close()
