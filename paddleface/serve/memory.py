"""Bounding glibc's malloc arenas in a service process.

glibc gives threads that allocate at the same time their own arenas (up to 8 per core) and
keeps the memory freed in each for reuse. A request thread here allocates a decoded photo
and its network input (crowd.jpg: ~4 MB + ~4 MB), so with 8 concurrent clients the
service's RSS climbed for minutes (bench/serve_load.py, ulfd-rfb-320: 488 -> 584 MB in
20 s of load in rounds) before levelling off; with two arenas it stayed within 455-464 MB.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # malloc.h


def limit_malloc_arenas(count: int = 2) -> bool:
    """``mallopt(M_ARENA_MAX, count)`` unless MALLOC_ARENA_MAX is set; False where the C
    library is not glibc. Call it before the threads start: arenas made earlier stay."""
    import os
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, count))
    except (OSError, AttributeError):
        return False
