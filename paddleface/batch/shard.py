"""A deterministic split of a file list into N shards (one per machine or array task)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Sequence, Tuple, TypeVar

from ..errors import PaddleFaceError

T = TypeVar("T")


def parse_shard(text: str) -> Tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N (shards count from 1, as job arrays do)."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise PaddleFaceError(f"--shard {text}: expected K/N with 1 <= K <= N, such as 1/4")
    return k, n


def shard_of(rel: Path, n: int) -> int:
    """The shard (1..n) of a relative path: a hash of the path's text, so the split depends
    neither on the listing order nor on which other files exist (an archive that grows keeps
    every old file in its shard)."""
    digest = hashlib.sha1(Path(rel).as_posix().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select_shard(items: Sequence[Tuple[T, Path]], k: int, n: int) -> List[Tuple[T, Path]]:
    """The (path, relative name) items of shard ``k`` of ``n``, in their given order."""
    return [(p, rel) for p, rel in items if shard_of(rel, n) == k]
