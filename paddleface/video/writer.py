"""Writing MP4 files: OpenCV's ``mp4v`` writer in a writer thread (encoding runs beside the
detector), then, when the source has an audio track to keep, one ffmpeg pass that copies the
video stream and adds the audio (AAC). ffmpeg encoding every frame itself (H.264 through a
pipe) cost 56 ms per 1280x720 frame on the loaded machine against 7.6 ms for ``mp4v``. The
file appears under its name only when complete (``<stem>.part.mp4`` until then, also after
Ctrl-C: close() finishes it)."""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from ..errors import PaddleFaceError


def find_ffmpeg() -> Tuple[Optional[str], str]:
    """(path of an ffmpeg executable or None, where it came from). ``$PADDLEFACE_FFMPEG``
    names one (``none``: act as if there were none); else Debian's (or any) ``ffmpeg`` on the
    PATH; else the binary of the ``imageio-ffmpeg`` wheel."""
    env = os.environ.get("PADDLEFACE_FFMPEG")
    if env:
        if env.lower() == "none":
            return None, "$PADDLEFACE_FFMPEG=none"
        return env, "$PADDLEFACE_FFMPEG"
    path = shutil.which("ffmpeg")
    if path:
        return path, "PATH"
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"
    except Exception:  # not installed, or its binary missing for this platform
        return None, "nowhere"


NO_FFMPEG = ("no ffmpeg was found (install Debian's ffmpeg or `pip install imageio-ffmpeg`), "
             "so the video is written by OpenCV without its audio track")


class VideoOutput:
    """An MP4 file written frame by frame at ``fps``. ``audio_from``: a media file whose first
    audio track (if any) is copied in (re-encoded as AAC), cut to the video's length."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int],
                 audio_from: Optional[Union[str, Path]] = None, queue_frames: int = 8):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # OpenCV picks the container from the suffix: the temporary name ends in .mp4 too
        self.part = self.path.with_name(self.path.stem + ".part.mp4")
        self.fps, self.size = fps, size
        self.frames = 0
        self.warning: Optional[str] = None
        self.audio_from = audio_from
        self._ffmpeg = find_ffmpeg()[0] if audio_from is not None else None
        if audio_from is not None and self._ffmpeg is None:
            self.warning = f"{audio_from}: {NO_FFMPEG}"
        self._cv = cv2.VideoWriter(str(self.part), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._cv.isOpened():
            raise PaddleFaceError(f"{self.path}: OpenCV cannot write an MP4 file here")
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_frames)
        self._thread = threading.Thread(target=self._write_loop, name="paddleface-write",
                                        daemon=True)
        self._thread.start()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            image, repeat = item
            for _ in range(repeat):
                self._cv.write(image)

    def write(self, image: np.ndarray, repeat: int = 1) -> None:
        """Queue one BGR frame (``repeat`` times: a live source's skipped frames keep the
        file's timing)."""
        if (image.shape[1], image.shape[0]) != tuple(self.size):
            image = cv2.resize(image, tuple(self.size))
        self._queue.put((image, repeat))
        self.frames += repeat

    def close(self) -> None:
        """Finish the file (also after Ctrl-C), add the audio, and give it its name."""
        self._queue.put(None)
        self._thread.join()
        self._cv.release()
        if not self.frames:
            self.part.unlink(missing_ok=True)
            return
        if self._ffmpeg is not None:
            self._add_audio()
        os.replace(self.part, self.path)

    def _add_audio(self) -> None:
        """Copy the video stream and the source's first audio track (if any, as AAC, cut to
        the video's length) into a new file that replaces the .part one."""
        muxed = self.path.with_name(self.path.stem + ".part-audio.mp4")
        cmd = [self._ffmpeg, "-loglevel", "error", "-nostdin", "-y", "-i", str(self.part),
               "-i", str(self.audio_from), "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy",
               "-c:a", "aac", "-shortest", "-movflags", "+faststart", "-f", "mp4", str(muxed)]
        # its own session: a second Ctrl-C in the terminal does not cut it short
        r = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
        if r.returncode != 0:
            muxed.unlink(missing_ok=True)
            last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
            self.warning = f"{self.path}: the audio track could not be added ({last})"
            return
        os.replace(muxed, self.part)
