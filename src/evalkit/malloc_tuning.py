"""Keep freed memory in the process for reuse (glibc ``mallopt``), for processes that run evaluations.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a fresh
``mmap`` and returns it to the kernel with ``munmap`` on free. A national panel's columns are
4.8 M rows × 8 bytes = 38 MiB, so each temporary array of the fit engine was a new mapping whose
pages the kernel had to fault in and zero again: 1.6 M minor page faults and ~100 s of SYSTEM time
in one 40,000 × 120 evaluation (against ~80 s of user time). With the threshold raised to 1 GiB and
the heap's trim threshold to 2 GiB, freed arrays stay in the heap and are reused: same user time,
system time −70 s, the same peak resident memory (tests/test_malloc_tuning.py; figures in the
session-22 report). No number changes: only where the bytes live.

Call :func:`retain_freed_memory` once, early, in a process that runs evaluations (the notebook
kernel: :mod:`evalkit.kernel_launcher`). ``EVALKIT_MALLOC_TUNING=0`` turns it off. On a C library
without ``mallopt`` (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: allocations up to this size come from the heap (a national column is 38 MiB; 1 GiB leaves room)
MMAP_THRESHOLD = 1 << 30
#: free memory at the top of the heap kept rather than returned (mallopt takes a C int: < 2 GiB)
TRIM_THRESHOLD = (1 << 31) - 1
ENV = "EVALKIT_MALLOC_TUNING"


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (module docstring); True when both were set."""
    if os.environ.get(ENV, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["ENV", "retain_freed_memory"]
