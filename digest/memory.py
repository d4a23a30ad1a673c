"""Memory settings of this process: fewer malloc arenas for the polling threads."""

from __future__ import annotations

import ctypes
import sys
from functools import lru_cache

_M_ARENA_MAX = -8  # glibc's mallopt() parameter number for the arena cap
MALLOC_ARENAS = 2


@lru_cache(maxsize=1)
def fewer_malloc_arenas() -> None:
    """Cap glibc's malloc arenas (by default up to 8 a core) before hundreds of threads start.

    Each polling thread would get an arena of its own, and what is freed in one
    arena serves no other: a run over 200 feeds held ~20 MB more for it
    (BENCHMARKS.md). The same as MALLOC_ARENA_MAX=2; nothing elsewhere than glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc, or no such symbol
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
