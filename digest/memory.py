"""Resource settings of this process: fewer malloc arenas for the polling threads, one BLAS thread."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
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
    import ctypes  # here, not above: `digest --help` loads this module for one_blas_thread alone

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc, or no such symbol
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


# The thread-count variables of the BLAS builds numpy may load (OpenBLAS, MKL, BLIS, Apple's
# Accelerate) and of OpenMP; each is read once, when its library loads.
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def one_blas_thread() -> None:
    """Ask numpy's BLAS for one thread, before numpy loads: its matrices here are small (one article's
    sentences), a second thread only spins, and workers are already one per core (BENCHMARKS.md).
    Spawned worker processes inherit it; a value the user set is kept."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_memory() -> None:
    """Hand the free pages of glibc's heap back to the system (malloc_trim) once a big edition's
    documents are dropped: else each edition's composing leaves holes that the next cannot wholly
    reuse, and the process's peak climbs with every delivery of it (issue 19, BENCHMARKS.md)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
