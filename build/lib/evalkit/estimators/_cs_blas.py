"""Best-effort control of the OpenBLAS thread count (no threadpoolctl dependency).

Multi-threaded OpenBLAS degrades badly when the machine is oversubscribed (threads spin while
other processes hold the cores), and the CS estimator's BLAS calls are mostly small. We run them
single-threaded by default and only let the one big bootstrap product use more threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
        "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
        "openblas_get_num_threads")
_funcs: list[tuple[object, object]] | None = None


def _find() -> list[tuple[object, object]]:
    global _funcs
    if _funcs is not None:
        return _funcs
    _funcs = []
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded)

    paths: set[str] = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and "blas" in parts[-1].lower() and ".so" in parts[-1]:
                    paths.add(parts[-1])
    except OSError:
        return _funcs
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        setter = next((getattr(lib, s) for s in _SET if hasattr(lib, s)), None)
        getter = next((getattr(lib, s) for s in _GET if hasattr(lib, s)), None)
        if setter is not None and getter is not None:
            setter.argtypes = [ctypes.c_int]
            getter.restype = ctypes.c_int
            _funcs.append((setter, getter))
    return _funcs


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Temporarily set the OpenBLAS thread count (``None`` = leave unchanged)."""
    if n is None or os.environ.get("EVALKIT_BLAS_THREADS") == "keep":
        yield
        return
    funcs = _find()
    old = [g() for _, g in funcs]
    try:
        for s, _ in funcs:
            s(int(n))
        yield
    finally:
        for (s, _), o in zip(funcs, old, strict=True):
            s(int(o))
