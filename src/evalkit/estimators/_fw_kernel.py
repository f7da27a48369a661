"""Compiled Frank–Wolfe loop of the SDID / SC point fits and placebo draws (numba; loaded in the background
when :mod:`evalkit.estimators.sdid` is imported, see :func:`evalkit.estimators._sdid_fw.warm_kernel`).

:func:`solve_one` runs one Gram-updated problem of :func:`evalkit.estimators._sdid_fw._fw_gram` to
its stop. Each step updates the half-gradient p over the problem's k weights, x, p·x, x·x and the
argmin i' of p for the next step, then A x over its n rows with ‖A x − b‖² and the next step's
‖A_i' − A x‖² (the numpy loop made ~20 passes over the whole batch).

A step's passes (since 2026-12-05; the fused one-pass step of before is kept as ``dense=True``, the
tests hold the two to the same bits): p's and A x's updates are plain elementwise loops, which LLVM's
loop vectoriser runs in SIMD registers without any global flag (same operations per element, so the
same bits); the sums and the argmin follow in read-only passes. x changes only on its support (the
columns with a nonzero weight, kept sorted as steps add vertices): a weight outside it is 0 and stays 0,
so its p·x and x·x terms are exact zeros and are skipped while p is finite (a non-finite p_m makes the
full sums, NaN, as before). Session 24 measured on the medium world's placebo problems ~0.7× of the fused
step's time (unit weights of SC, supports of ~20 of 656), ~0.85× (SDID's, wider supports) and ~0.7× (time
weights); a re-measurement on synthetic problems (session 25, shared host) found 0.63× (narrow supports), 0.78×
(full supports) and only 0.87–0.97× on time weights of 84 or 60 periods. Whole placebo runs: docs/performance.md.

Exactness: every elementwise update is that of the numpy Gram solver it replaces (main until
2026-12-05) operation for operation, in IEEE double precision (no fastmath, no contraction into
fused multiply-adds), and the stopping rule and step cap are R's; only the dot products are
summed in a different fixed order than numpy's BLAS ``vecdot`` — four interleaved partial sums
(element m into sum m mod 4; in a step's sums of p·x and x·x the last k mod 4 elements go to sum 0),
added as (s0 + s1) + (s2 + s3) — so they round differently (draws within ~1e-13 relative of numpy's),
and a problem's bits do not depend on the thread that runs it.

Compiled once per installation (``cache=True``: machine code kept in ``__pycache__`` beside this
file, or, where that is read-only, in numba's user cache or ``NUMBA_CACHE_DIR``; with no usable
location it compiles in memory on each run). Numba writes a cache file under a temporary name and
renames it into place, so two processes compiling at once (``evalkit run --jobs 2``) are safe.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _jit(fn):
    # error_model="numpy": a division by zero gives inf/nan as in numpy, never an exception
    try:
        return njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available": no writable cache location
        return njit(cache=False, nogil=True, error_model="numpy")(fn)


_WIDE = 4  # a support of ≥ k/_WIDE columns takes the full-width step (faster there; same bits)


@njit(inline="always")
def _move(x: np.ndarray, p: np.ndarray, G: np.ndarray, c: np.ndarray, i: int, m: int, s: float, rs: float,
          eta: float) -> tuple[float, float]:
    """Weight m ≠ i after a step of size s towards vertex i: x_m ← (1−s)x_m and
    p_m ← (1−s)p_m + s(G_im − c_m); returns (x_m, p_m)."""
    xm = x[m] * rs
    pm = p[m] * rs + (G[i, m] - c[m]) * s
    x[m] = xm
    p[m] = pm
    return xm, pm


@njit(inline="always")
def _move_any(x: np.ndarray, p: np.ndarray, G: np.ndarray, c: np.ndarray, i: int, m: int, s: float,
              rs: float, eta: float) -> tuple[float, float]:
    """:func:`_move` for any m: weight i gains s and its half-gradient nζ²·s (R: x + s(e_i − x))."""
    if m != i:
        return _move(x, p, G, c, i, m, s, rs, eta)
    xm = x[m] * rs + s
    pm = p[m] * rs + ((G[i, m] - c[m]) + eta) * s
    x[m] = xm
    p[m] = pm
    return xm, pm


@njit(inline="always")
def _add_gap4(R: np.ndarray, j: int, Ax: np.ndarray, r: int, s0: float, s1: float, s2: float,
              s3: float) -> tuple[float, float, float, float]:
    """The four summation lanes of ‖A_j − A x‖² after rows r..r+3 (A_j is row j of R = A')."""
    e0 = R[j, r] - Ax[r]
    e1 = R[j, r + 1] - Ax[r + 1]
    e2 = R[j, r + 2] - Ax[r + 2]
    e3 = R[j, r + 3] - Ax[r + 3]
    return s0 + e0 * e0, s1 + e1 * e1, s2 + e2 * e2, s3 + e3 * e3


@njit(inline="always")
def _lane_dots(x: np.ndarray, p: np.ndarray, tail: int) -> tuple[float, float, float, float, float, float, float,
                                                                  float]:
    """The four summation lanes of p·x and of x·x over all k weights: element m in lane m mod 4, those
    from ``tail`` on in lane 0."""
    px0 = px1 = px2 = px3 = 0.0
    xx0 = xx1 = xx2 = xx3 = 0.0
    for m in range(x.shape[0]):
        pm, xm = p[m], x[m]
        q = m & 3 if m < tail else 0
        if q == 0:
            px0 += pm * xm
            xx0 += xm * xm
        elif q == 1:
            px1 += pm * xm
            xx1 += xm * xm
        elif q == 2:
            px2 += pm * xm
            xx2 += xm * xm
        else:
            px3 += pm * xm
            xx3 += xm * xm
    return px0, px1, px2, px3, xx0, xx1, xx2, xx3


@njit(inline="always")
def _lane(px: float, xx: float, b: float, ib: int, pm: float, xm: float, m: int) -> tuple[float, float, float, int]:
    """One summation lane after element m: p·x and x·x gain p_m·x_m and x_m², and the lane's first minimum
    of p (value b at column ib) moves to m if p_m < b. The lanes are independent: their order does not change
    any bit."""
    if pm < b:
        b, ib = pm, m
    return px + pm * xm, xx + xm * xm, b, ib


@njit(inline="always")
def _lanes4(st, p0: float, p1: float, p2: float, p3: float, x0: float, x1: float, x2: float, x3: float, m: int):
    """:func:`_lane` for elements m..m+3 (lanes 0..3) of the state ``st`` = (p·x lanes, x·x lanes, minima,
    their columns)."""
    px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3 = st
    px0, xx0, b0, i0 = _lane(px0, xx0, b0, i0, p0, x0, m)
    px1, xx1, b1, i1 = _lane(px1, xx1, b1, i1, p1, x1, m + 1)
    px2, xx2, b2, i2 = _lane(px2, xx2, b2, i2, p2, x2, m + 2)
    px3, xx3, b3, i3 = _lane(px3, xx3, b3, i3, p3, x3, m + 3)
    return px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3


@njit(inline="always")
def _step_dense(x: np.ndarray, p: np.ndarray, G: np.ndarray, c: np.ndarray, i: int, s: float, rs: float,
                eta: float):
    """x ← (1−s)x + s e_i and p ← (1−s)p + s(G_i − A'b + nζ²e_i) over all k weights; returns the lanes
    of p·x and x·x and each lane's first minimum of p (value, column; column k if none is < inf)."""
    k = x.shape[0]
    st = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.inf, np.inf, np.inf, np.inf, k, k, k, k)
    ib = i - (i & 3)  # the block of four holding column i
    m = 0
    while m + 4 <= k:
        if m != ib:
            x0_, p0_ = _move(x, p, G, c, i, m, s, rs, eta)
            x1_, p1_ = _move(x, p, G, c, i, m + 1, s, rs, eta)
            x2_, p2_ = _move(x, p, G, c, i, m + 2, s, rs, eta)
            x3_, p3_ = _move(x, p, G, c, i, m + 3, s, rs, eta)
        else:
            x0_, p0_ = _move_any(x, p, G, c, i, m, s, rs, eta)
            x1_, p1_ = _move_any(x, p, G, c, i, m + 1, s, rs, eta)
            x2_, p2_ = _move_any(x, p, G, c, i, m + 2, s, rs, eta)
            x3_, p3_ = _move_any(x, p, G, c, i, m + 3, s, rs, eta)
        st = _lanes4(st, p0_, p1_, p2_, p3_, x0_, x1_, x2_, x3_, m)
        m += 4
    px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3 = st
    while m < k:
        x0_, p0_ = _move_any(x, p, G, c, i, m, s, rs, eta)
        px0, xx0, b0, i0 = _lane(px0, xx0, b0, i0, p0_, x0_, m)
        m += 1
    return px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3


@njit(inline="always")
def _update_p(p: np.ndarray, G: np.ndarray, c: np.ndarray, i: int, s: float, rs: float, eta: float) -> None:
    """p ← (1−s)p + s(G_i − A'b + nζ²e_i): one elementwise loop (LLVM's loop vectoriser runs it in SIMD
    registers, the same operations per element as :func:`_move`), p_i then set from its old value with
    its nζ² term as :func:`_move_any` computes it."""
    pi = p[i] * rs + ((G[i, i] - c[i]) + eta) * s
    for m in range(p.shape[0]):
        p[m] = p[m] * rs + (G[i, m] - c[m]) * s
    p[i] = pi


@njit(inline="always")
def _update_x(x: np.ndarray, i: int, s: float, rs: float) -> None:
    """x ← (1−s)x + s e_i over all k weights (one elementwise loop, vectorised)."""
    xi = x[i] * rs + s
    for m in range(x.shape[0]):
        x[m] *= rs
    x[i] = xi


@njit(inline="always")
def _scan_min(p: np.ndarray):
    """Each lane's first minimum of p (value, column; column k if none is < inf) and whether every p_m
    is finite."""
    k = p.shape[0]
    b0 = b1 = b2 = b3 = np.inf
    i0 = i1 = i2 = i3 = k
    z0 = z1 = z2 = z3 = 0.0  # Σ 0·p_m per lane: 0 while every p_m is finite, NaN otherwise
    m = 0
    while m + 4 <= k:
        p0_, p1_, p2_, p3_ = p[m], p[m + 1], p[m + 2], p[m + 3]
        z0 += p0_ * 0.0
        z1 += p1_ * 0.0
        z2 += p2_ * 0.0
        z3 += p3_ * 0.0
        if p0_ < b0:
            b0, i0 = p0_, m
        if p1_ < b1:
            b1, i1 = p1_, m + 1
        if p2_ < b2:
            b2, i2 = p2_, m + 2
        if p3_ < b3:
            b3, i3 = p3_, m + 3
        m += 4
    while m < k:
        p0_ = p[m]
        z0 += p0_ * 0.0
        if p0_ < b0:
            b0, i0 = p0_, m
        m += 1
    return b0, b1, b2, b3, i0, i1, i2, i3, (z0 + z1) + (z2 + z3) == 0.0


@njit(inline="always")
def _scan_all(p: np.ndarray, x: np.ndarray):
    """:func:`_scan_min` with the lanes of p·x and x·x (as :func:`_step_dense` sums them) in the same pass."""
    k = p.shape[0]
    st = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.inf, np.inf, np.inf, np.inf, k, k, k, k)
    m = 0
    while m + 4 <= k:
        p0_, p1_, p2_, p3_ = p[m], p[m + 1], p[m + 2], p[m + 3]
        x0_, x1_, x2_, x3_ = x[m], x[m + 1], x[m + 2], x[m + 3]
        st = _lanes4(st, p0_, p1_, p2_, p3_, x0_, x1_, x2_, x3_, m)
        m += 4
    px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3 = st
    while m < k:
        px0, xx0, b0, i0 = _lane(px0, xx0, b0, i0, p[m], x[m], m)
        m += 1
    return px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3


@njit(inline="always")
def _insert(sup: np.ndarray, ns: int, i: int) -> int:
    """Insert column i into the sorted support sup[:ns]; returns the new length."""
    r = ns
    while r > 0 and sup[r - 1] > i:
        sup[r] = sup[r - 1]
        r -= 1
    sup[r] = i
    return ns + 1


@njit(inline="always")
def _step_x(x: np.ndarray, p: np.ndarray, sup: np.ndarray, ns: int, i: int, s: float, rs: float, tail: int,
            acc: np.ndarray):
    """x ← (1−s)x + s e_i over the support sup[:ns] (sorted; holds i), with the lanes of p·x and x·x as
    :func:`_step_dense` sums them (element m in lane m mod 4, the last k mod 4 in lane 0; increasing m).
    ``acc`` (8) holds the lanes (p·x in 0–3, x·x in 4–7): an indexed lane needs no branch."""
    xi = x[i] * rs + s
    for r in range(ns):
        m = sup[r]
        x[m] *= rs
    x[i] = xi
    for q in range(8):
        acc[q] = 0.0
    for r in range(ns):
        m = sup[r]
        xm = x[m]
        q = m & 3 if m < tail else 0
        acc[q] += p[m] * xm
        acc[q + 4] += xm * xm
    return acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]


@_jit
def _argmin(p: np.ndarray) -> int:
    """numpy's argmin: the first NaN, else the first minimum."""
    i, best = 0, p[0]
    for m in range(p.shape[0]):
        if p[m] != p[m]:
            return m
        if p[m] < best:
            i, best = m, p[m]
    return i


@_jit
def solve_one(x: np.ndarray, p: np.ndarray, c: np.ndarray, Ax: np.ndarray, b: np.ndarray, R: np.ndarray,
              G: np.ndarray, eta: float, zeta2: float, thresh: float, max_iter: int, dense: bool = False) -> int:
    """Frank–Wolfe on one problem from its state; x (k), p (k) and Ax (n) are updated in place.

    ``R`` is A' (k × n: row i is column i of A), ``G`` = A'A (k × k), ``c`` = A'b (k), ``p`` the
    half-gradient A'(A x − b) + nζ²x and ``Ax`` = A x at the start. ``eta`` = nζ², ``zeta2`` = ζ²,
    ``thresh`` = min_decrease². Stops by R's rule (objective decrease ≤ ``thresh`` from step 2 on)
    or after ``max_iter`` steps; returns the number of steps. A column the problem may not use has
    x = 0 and p, c held huge (the caller's ``_BARRED``), so it is never chosen.

    ``dense=True`` runs every step as one fused pass over all k weights (the loop of main until
    2026-12-05); the default splits it (see the module docstring) with the same bits
    (``tests/test_compute_sdid.py``).
    """
    k, n = x.shape[0], Ax.shape[0]
    if k == 0:
        return 0
    i = _argmin(p)
    px0, px1, px2, px3, xx0, xx1, xx2, xx3 = _lane_dots(x, p, k)
    px = (px0 + px1) + (px2 + px3)
    xx = (xx0 + xx1) + (xx2 + xx3)
    # the support: every column whose weight may be nonzero (sorted), kept as steps add vertices
    sup = np.empty(k, np.int64)
    insup = np.zeros(k, np.bool_)
    ns = 0
    for m in range(k):
        if x[m] != 0.0:  # NaN included
            sup[ns] = m
            insup[m] = True
            ns += 1
    acc = np.empty(8)
    tail = k - (k & 3)  # the steps' sums put the last k mod 4 weights in lane 0
    # ‖A d_x‖² of the first step, with A d_x = A_i − A x (later steps' come with the update of A x)
    d0 = d1 = d2 = d3 = 0.0
    r = 0
    while r + 4 <= n:
        d0, d1, d2, d3 = _add_gap4(R, i, Ax, r, d0, d1, d2, d3)
        r += 4
    while r < n:
        e0 = R[i, r] - Ax[r]
        d0 += e0 * e0
        r += 1
    dd = (d0 + d1) + (d2 + d3)
    prev = np.inf
    t = 0
    while True:
        t += 1
        num = p[i] - px  # p·(e_i − x)
        den = dd + eta * (xx + 1.0 - 2.0 * x[i])  # ‖A d_x‖² + nζ²‖e_i − x‖²
        if den > 0:
            s = -num / den
            if s < 0.0:
                s = 0.0
            if s > 1.0:
                s = 1.0
        else:  # den == 0 iff x is already the vertex e_i: R returns x unchanged
            s = 0.0
        rs = 1.0 - s
        if dense or s != s:
            # (a NaN step comes only from non-finite data: every weight becomes NaN, so the support no
            # longer bounds the nonzero weights and the fused step runs from here on)
            dense = True
            px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3 = _step_dense(
                x, p, G, c, i, s, rs, eta)
        else:
            # p ← (1−s)p + s(G_i − A'b + nζ²e_i) over all k, with the first minimum of p per lane; x and
            # p·x, x·x only over the support (a weight outside it is 0 and stays 0: its terms are ±0)
            _update_p(p, G, c, i, s, rs, eta)
            if not insup[i]:
                ns = _insert(sup, ns, i)
                insup[i] = True
            if ns * _WIDE >= k:  # a wide support: x in full, its sums with the minimum in one pass
                _update_x(x, i, s, rs)
                px0, px1, px2, px3, xx0, xx1, xx2, xx3, b0, b1, b2, b3, i0, i1, i2, i3 = _scan_all(p, x)
            else:
                b0, b1, b2, b3, i0, i1, i2, i3, finite = _scan_min(p)
                px0, px1, px2, px3, xx0, xx1, xx2, xx3 = _step_x(x, p, sup, ns, i, s, rs, tail, acc)
                if not finite:  # a non-finite p_m outside the support makes p·x NaN in the full sums: here too
                    px0, px1, px2, px3, xx0, xx1, xx2, xx3 = _lane_dots(x, p, tail)
        px = (px0 + px1) + (px2 + px3)
        xx = (xx0 + xx1) + (xx2 + xx3)
        # first minimum over the lanes (smallest value, then smallest column); numpy's rule (first NaN)
        # where p holds a NaN or no finite minimum (a NaN or inf in p makes p·x NaN or inf)
        j, best = i0, b0
        if b1 < best or (b1 == best and i1 < j):
            j, best = i1, b1
        if b2 < best or (b2 == best and i2 < j):
            j, best = i2, b2
        if b3 < best or (b3 == best and i3 < j):
            j, best = i3, b3
        if j == k or not (abs(px) < np.inf):
            j = _argmin(p)
        # A x ← A x + s(A_i − A x) (one elementwise loop, vectorised), then ‖A x − b‖² and the next
        # step's ‖A_j − A x‖² in one pass
        for r in range(n):
            Ax[r] += s * (R[i, r] - Ax[r])
        d0 = d1 = d2 = d3 = 0.0
        f0 = f1 = f2 = f3 = 0.0
        r = 0
        while r + 4 <= n:
            e0 = Ax[r] - b[r]
            e1 = Ax[r + 1] - b[r + 1]
            e2 = Ax[r + 2] - b[r + 2]
            e3 = Ax[r + 3] - b[r + 3]
            d0 += e0 * e0
            d1 += e1 * e1
            d2 += e2 * e2
            d3 += e3 * e3
            f0, f1, f2, f3 = _add_gap4(R, j, Ax, r, f0, f1, f2, f3)
            r += 4
        while r < n:
            e0 = Ax[r] - b[r]
            d0 += e0 * e0
            e0 = R[j, r] - Ax[r]
            f0 += e0 * e0
            r += 1
        ee = (d0 + d1) + (d2 + d3)
        dd = (f0 + f1) + (f2 + f3)
        i = j
        val = zeta2 * xx + ee / n
        if t >= max_iter or (t >= 2 and not (prev - val > thresh)):
            return t
        prev = val
