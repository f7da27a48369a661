"""Per-draw designs shared by the permutation draws of several outcomes and steps of one evaluation.

The outcomes of an evaluation permute the stations' adoption dates with the same seed (the
pre-trend test, randomization inference, Romano–Wolf), so a draw's outcome-free part (which cells
are untreated, the two-way system and its factor, ...) is the same for every outcome and step on
the same grid. Inside :func:`shared_designs` the fast paths of :mod:`evalkit.inference._fast` keep
it per draw; a hit returns the very arrays a recomputation would produce, so no number depends on
the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

#: memory a shared-design cache may hold (bytes); past it, draws are computed without being kept. The small
#: world's 199 imputation draws with their SE parts take ~90 MB: at 64 MB the second and third outcomes of
#: Romano–Wolf and randomization inference recomputed ~40 % of them (0.04–0.09 s CPU on the critical
#: path); a national grid's design (~160 MB) is still not kept
SHARED_DESIGN_BYTES = 128 * 2**20
_SHARED: ContextVar[dict | None] = ContextVar("evalkit_shared_designs", default=None)


class _Designs:
    """The per-draw designs of one grid (same rows, weights, clusters, options), keyed by the draw's
    cohorts: the outcomes of an evaluation permute the same cohorts with the same seed, so their
    draws share everything but the outcome. Values are what the computation returns — a hit returns
    the very arrays a recomputation would produce, so no number depends on the cache."""

    def __init__(self, budget: list[int]) -> None:
        self.items: dict[tuple, Any] = {}
        self.budget = budget  # bytes held by all the caches of one shared_designs() block

    def get(self, cohorts: np.ndarray, make: Callable[[np.ndarray], Any]) -> Any:
        arr = np.asarray(cohorts)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self.items:
            return self.items[key]
        value = make(cohorts)
        size = _nbytes(value) + 1024
        if self.budget[0] + size <= SHARED_DESIGN_BYTES:
            self.items[key] = value
            self.budget[0] += size
        return value


    def reserve(self, value: Any) -> bool:
        """Whether ``value`` (a part added later to a kept design, e.g. what only an SE needs) may be
        kept too: its bytes are counted against the same budget (``False``: over it, nothing counted)."""
        size = _nbytes(value)
        if self.budget[0] + size > SHARED_DESIGN_BYTES:
            return False
        self.budget[0] += size
        return True


def _nbytes(value: Any) -> int:
    """Bytes of the arrays in ``value`` (dicts, tuples and lists searched; anything else 0)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


@contextmanager
def shared_designs() -> Iterator[None]:
    """Within this block, permutation draws on the same grid (BJS test 1 of several outcomes; the
    imputation headline's estimate and SE in randomization inference and Romano–Wolf, which permute
    with the same seed) compute each draw's outcome-free design once, up to
    :data:`SHARED_DESIGN_BYTES` in all; outside it (and after it) nothing is kept."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared_designs(signature: tuple) -> _Designs | None:
    """The shared cache of the grid ``signature`` (arrays and options), or ``None`` outside
    :func:`shared_designs`."""
    shared = _SHARED.get()
    if shared is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    for part in signature:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype.str}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
    budget = shared.setdefault("_bytes", [0])
    return shared.setdefault(h.hexdigest(), _Designs(budget))


__all__ = ["SHARED_DESIGN_BYTES", "shared_designs"]
