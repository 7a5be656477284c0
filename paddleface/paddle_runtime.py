"""Importing Paddle: one clear sentence when it is missing, and without its start-up noise.

paddlepaddle is not a hard dependency of the package because CPU and GPU users install
different distributions (``paddlepaddle`` or ``paddlepaddle-gpu``); ``pip install
paddleface[cpu]`` / ``paddleface[gpu]`` pull in the right one.
"""
from __future__ import annotations

import os
import warnings

from .errors import PaddleFaceError

PADDLE_MISSING = ("PaddlePaddle is not installed: pip install paddlepaddle (CPU) or "
                  "paddlepaddle-gpu (CUDA), or install this package as paddleface[cpu] / "
                  "paddleface[gpu]")


class MissingDependency(PaddleFaceError, ImportError):
    """A required package is not installed (the command line prints it as one line)."""


def import_paddle():
    """``import paddle`` with its C++ INFO/WARNING log lines and the cpp_extension ccache
    warning kept out of the caller's output (they say nothing about the user's run)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found")
        try:
            import paddle
        except ModuleNotFoundError as e:
            if e.name != "paddle":
                raise
            raise MissingDependency(PADDLE_MISSING) from None
    return paddle
