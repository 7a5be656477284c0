"""What ``FaceDetector.detect_batch(..., errors="skip")`` puts in place of a bad item."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict

from .errors import PaddleFaceError

ERROR_MODES = ("raise", "skip")


@dataclass(frozen=True)
class ItemError:
    """A batch item that could not be detected in, in its place in the results.

    ``index``: its position in the input sequence; ``source``: the path given, or
    ``"images[<index>]"`` for an array; ``message``: the one-sentence reason (the text of
    the :class:`PaddleFaceError` that ``errors="raise"`` would have raised), which names the
    source. Falsy, like an empty face list, so ``if faces:`` skips it; tell the two apart
    with ``isinstance(item, ItemError)``.
    """

    index: int
    source: str
    message: str

    def __bool__(self) -> bool:
        return False

    def to_dict(self) -> Dict[str, object]:
        """``{"index": i, "source": ..., "error": message}`` (JSON-ready)."""
        return {"index": self.index, "source": self.source, "error": self.message}


def check_error_mode(errors: str) -> None:
    if errors not in ERROR_MODES:
        raise PaddleFaceError(f"errors={errors!r}: expected 'raise' (the first bad image "
                              "raises) or 'skip' (a bad image gives an ItemError in its place)")


def source_name(image, index: int) -> str:
    """How a batch item is named in its error: its path, or its position."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"images[{index}]"
