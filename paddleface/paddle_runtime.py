"""Importing Paddle: one clear sentence when it is missing, and without its start-up noise.

paddlepaddle is not a hard dependency of the package because CPU and GPU users install
different distributions (``paddlepaddle`` or ``paddlepaddle-gpu``); ``pip install
paddleface[cpu]`` / ``paddleface[gpu]`` pull in the right one.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import warnings

from .errors import PaddleFaceError

PADDLE_MISSING = ("PaddlePaddle is not installed: pip install paddlepaddle (CPU) or "
                  "paddlepaddle-gpu (CUDA), or install this package as paddleface[cpu] / "
                  "paddleface[gpu]")


class MissingDependency(PaddleFaceError, ImportError):
    """A required package is not installed (the command line prints it as one line)."""


# printed by paddle/base/__init__.py whenever OMP_NUM_THREADS > 1, which we set on purpose
OMP_NOTICE = ("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY.")


def import_paddle():
    """``import paddle`` with its start-up noise kept out of the caller's output: the C++
    INFO/WARNING log lines, the cpp_extension ccache warning, the OMP_NUM_THREADS notice and
    BatchNorm's warning on every training step (none says anything about the user's run)."""
    warnings.filterwarnings("ignore", message="When training, we now always track global mean")
    if "paddle" in sys.modules:
        return sys.modules["paddle"]
    os.environ.setdefault("GLOG_minloglevel", "2")
    captured = io.StringIO()
    python_handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
        warnings.filterwarnings("ignore", message="No ccache found")
        try:
            import paddle
        except ModuleNotFoundError as e:
            if e.name != "paddle":
                raise
            raise MissingDependency(PADDLE_MISSING) from None
        finally:
            kept = [line for line in captured.getvalue().splitlines(keepends=True)
                    if not line.startswith(OMP_NOTICE)]
        restore_signal_handlers(python_handlers)
    sys.stderr.write("".join(kept))
    return paddle


# Paddle's import replaces the SIGTERM action with a C++ handler that prints a "FatalError:
# Termination signal" banner and aborts, so `kill PID` (systemd, Docker, Kubernetes) could
# never stop a service gracefully. Its handlers for crashes (SIGSEGV, SIGABRT ...) are kept.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def restore_signal_handlers(handlers) -> None:
    """Re-install the Python-level handlers ``{signal: handler}`` (as ``signal.getsignal``
    returned them), which also replaces whatever C handler was installed since."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; Python's stay as they were
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
