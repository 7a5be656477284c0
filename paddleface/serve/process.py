"""Running ``paddleface serve`` as a child process on a free loopback port (the tests and
bench/serve_load.py talk to a real uvicorn, not to an in-process test client)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List, Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (Linux /proc): ``VmRSS`` all of it, ``RssAnon``
    the part not backed by files. Only the latter tells a leak: the file-backed part (the
    pages of libpaddle's 1 GB of code and data) grows as code paths run for the first time
    and shrinks when the kernel reclaims them under memory pressure."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServiceProcess:
    """``python -m paddleface serve ARGS --port P`` until :meth:`stop`; :meth:`start` returns
    once ``/healthz`` answers (the default model is loaded by then)."""

    def __init__(self, args: List[str], port: Optional[int] = None, log: Optional[Path] = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.log = log
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 300.0) -> "ServiceProcess":
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "paddleface", "serve", *self.args],
                                     stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"paddleface serve exited with {self.proc.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    self.health = json.load(r)
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"paddleface serve did not answer /healthz within {timeout:.0f} s")

    def rss_mb(self, field: str = "VmRSS") -> float:
        return rss_mb(self.proc.pid, field)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
