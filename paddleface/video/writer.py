"""Writing MP4 files: through an ffmpeg process (H.264, and the source's audio track kept)
when ffmpeg is there, else OpenCV's ``mp4v`` writer (no audio). Frames are handed to a
writer thread so that encoding runs beside the detector. The file appears under its name only
when it is complete (``<stem>.part.mp4`` until then, also after Ctrl-C: close() finishes it)."""
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
        ffmpeg, _ = find_ffmpeg()
        self._proc = self._cv = None
        if ffmpeg:
            cmd = [ffmpeg, "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo",
                   "-pix_fmt", "bgr24", "-s", f"{size[0]}x{size[1]}", "-r", f"{fps:.6g}",
                   "-i", "pipe:0"]
            if audio_from is not None:
                cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0?",
                        "-c:a", "aac", "-shortest"]
            # even sizes for yuv420p; H.264 plays everywhere (browsers too)
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset",
                    "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                    "-f", "mp4", str(self.part)]
            # its own session: a Ctrl-C in the terminal reaches us, and we finish the file
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                          start_new_session=True)
        else:
            if audio_from is not None:
                self.warning = f"{audio_from}: {NO_FFMPEG}"
            self._cv = cv2.VideoWriter(str(self.part), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                       size)
            if not self._cv.isOpened():
                raise PaddleFaceError(f"{self.path}: OpenCV cannot write an MP4 file here")
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_frames)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._write_loop, name="paddleface-write",
                                        daemon=True)
        self._thread.start()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            image, repeat = item
            try:
                for _ in range(repeat):
                    if self._proc is not None:
                        self._proc.stdin.write(memoryview(np.ascontiguousarray(image)))
                    else:
                        self._cv.write(image)
            except (BrokenPipeError, OSError) as e:
                self._error = e
                return

    def write(self, image: np.ndarray, repeat: int = 1) -> None:
        """Queue one BGR frame (``repeat`` times: a live source's skipped frames keep the
        file's timing)."""
        if self._error is not None:
            raise PaddleFaceError(f"{self.path}: writing the video failed ({self._error})")
        if (image.shape[1], image.shape[0]) != tuple(self.size):
            image = cv2.resize(image, tuple(self.size))
        self._queue.put((image, repeat))
        self.frames += repeat

    def close(self) -> None:
        """Finish the file (also after Ctrl-C) and give it its name."""
        self._queue.put(None)
        self._thread.join()
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            err = self._proc.stderr.read().decode(errors="replace").strip()
            if self._proc.wait() != 0:
                self.part.unlink(missing_ok=True)
                last = err.splitlines()[-1] if err else f"exit status {self._proc.returncode}"
                raise PaddleFaceError(f"{self.path}: ffmpeg could not write the video ({last})")
        else:
            self._cv.release()
        if self.frames:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)
