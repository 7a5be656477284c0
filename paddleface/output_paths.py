"""Checking output paths before any work starts, and writing result files atomically.

A run that detects faces in a thousand images must not find out at the end that its
``--json`` names a folder, or at the first image that ``--out`` is an existing file. The
checks try what the run will do (create the folder, create a file in it, remove it), so
they hold for root, read-only file systems and paths under a regular file alike; each
failure is a one-sentence :class:`PaddleFaceError` naming the option and the path.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from .errors import PaddleFaceError


def _try_writing_in(folder: Path, option: str, path: Path, what: str) -> None:
    """Create ``folder`` (with parents) and a scratch file in it, or say why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=folder, prefix=".paddleface-check-")
        os.close(fd)
        os.unlink(scratch)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [folder, *folder.parents] if p.is_file()), folder)
        raise PaddleFaceError(f"{option} {path}: cannot be created because {blocker} is a "
                              f"file, not a folder; {what}") from None
    except OSError as e:
        raise PaddleFaceError(f"{option} {path}: cannot write there ({e.strerror or e}); "
                              f"{what}") from None


def check_output_folder(out: Optional[str], option: str = "--out") -> None:
    """``out`` is, or can be created as, a writable folder (it is created now)."""
    if not out:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise PaddleFaceError(f"{option} {path}: exists and is a file; a folder for the drawn "
                              "images was expected (pass a new or existing folder)")
    _try_writing_in(path, option, path, "a writable folder for the drawn images was expected")


def check_output_file(target: Optional[str], option: str = "--json") -> None:
    """``target`` names a file that can be written (its folder is created now)."""
    if not target:
        return
    path = Path(target)
    if path.is_dir():
        raise PaddleFaceError(f"{option} {path}: is a folder; a file name was expected, "
                              f"e.g. {path / 'faces.json'}")
    if str(target).endswith(("/", os.sep)):
        raise PaddleFaceError(f"{option} {path}: ends with a slash; a file name was expected, "
                              f"e.g. {path / 'faces.json'}")
    _try_writing_in(path.parent, option, path, "a file in a writable folder was expected")


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a scratch file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
