"""Progress inside a training epoch: images done, images/s and the loss.

On a terminal a tqdm bar (images, rate, ETA; the loss and learning rate beside it). When
stderr is a file or a pipe (``nohup``, ``| tee``, CI logs) a bar's carriage returns are
unreadable, so one plain line is printed every ``interval`` seconds instead, and at the end
of the epoch. ``enabled=False`` (``--quiet``, or a rank other than 0) prints nothing.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EpochProgress:
    """``update(images, loss, lr)`` after every iteration; ``close()`` at the end."""

    def __init__(self, desc: str, total_images: int, enabled: bool = True,
                 interval: float = 30.0, stream: Optional[TextIO] = None,
                 tty: Optional[bool] = None):
        self.desc, self.total, self.enabled, self.interval = desc, total_images, enabled, interval
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.seen, self.loss, self.lr = 0, float("nan"), float("nan")
        self.start = self.last_line = time.time()
        self.bar = None
        if enabled and self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total_images, desc=desc, unit="img", file=self.stream,
                            dynamic_ncols=True)

    @property
    def rate(self) -> float:
        """Images per second since the epoch started."""
        return self.seen / max(time.time() - self.start, 1e-9)

    def update(self, images: int, loss: float, lr: float) -> None:
        self.seen += images
        self.loss, self.lr = loss, lr
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(images)
            self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2g}", refresh=False)
        elif time.time() - self.last_line >= self.interval:
            self._line()

    def _line(self) -> None:
        self.last_line = time.time()
        left = (self.total - self.seen) / self.rate if self.rate > 0 and self.total else 0.0
        pct = f" ({100 * self.seen / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.seen}/{self.total} images{pct}, {self.rate:.1f} images/s, "
              f"loss {self.loss:.4f}, lr {self.lr:.2g}, {_clock(left)} left",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.seen and self.last_line > self.start:
            self._line()  # the last state, when a line was printed during the epoch
