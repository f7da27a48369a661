"""Compiled Frank–Wolfe loop of the SDID / SC point fits and placebo draws (numba; loaded in the background
when :mod:`evalkit.estimators.sdid` is imported, see :func:`evalkit.estimators._sdid_fw.warm_kernel`).

:func:`solve_one` runs one Gram-updated problem of :func:`evalkit.estimators._sdid_fw._fw_gram` to
its stop. Each step is one fused pass over the problem's k weights (x and the half-gradient p
updated; for the next step the argmin i' of p, p·x and x·x) and one over its n rows (A x updated,
‖A x − b‖², and the next step's ‖A_i' − A x‖²), where the numpy loop made ~20 passes over the
whole batch.

Exactness: every elementwise update is that of the numpy Gram solver it replaces (main until
2026-12-05) operation for operation, in IEEE double precision (no fastmath, no contraction into
fused multiply-adds), and the stopping rule and step cap are R's; only the dot products are
summed in a different fixed order than numpy's BLAS ``vecdot`` — four interleaved partial sums
(element m into sum m mod 4), added as (s0 + s1) + (s2 + s3) — so they round differently (draws
within ~1e-13 relative of numpy's), and a problem's bits do not depend on the thread that runs it.

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
              G: np.ndarray, eta: float, zeta2: float, thresh: float, max_iter: int) -> int:
    """Frank–Wolfe on one problem from its state; x (k), p (k) and Ax (n) are updated in place.

    ``R`` is A' (k × n: row i is column i of A), ``G`` = A'A (k × k), ``c`` = A'b (k), ``p`` the
    half-gradient A'(A x − b) + nζ²x and ``Ax`` = A x at the start. ``eta`` = nζ², ``zeta2`` = ζ²,
    ``thresh`` = min_decrease². Stops by R's rule (objective decrease ≤ ``thresh`` from step 2 on)
    or after ``max_iter`` steps; returns the number of steps. A column the problem may not use has
    x = 0 and p, c held huge (the caller's ``_BARRED``), so it is never chosen.
    """
    k, n = x.shape[0], Ax.shape[0]
    if k == 0:
        return 0
    i = _argmin(p)
    px0 = px1 = px2 = px3 = 0.0
    xx0 = xx1 = xx2 = xx3 = 0.0
    for m in range(k):
        pm, xm = p[m], x[m]
        q = m & 3
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
    px = (px0 + px1) + (px2 + px3)
    xx = (xx0 + xx1) + (xx2 + xx3)
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
        # x ← (1−s)x + s e_i, p ← (1−s)p + s(G_i − A'b + nζ²e_i); with them p·x, x·x and the first
        # minimum of p per lane (element m in lane m mod 4) for the next step
        px0 = px1 = px2 = px3 = 0.0
        xx0 = xx1 = xx2 = xx3 = 0.0
        b0 = b1 = b2 = b3 = np.inf
        i0 = i1 = i2 = i3 = k
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
            px0 += p0_ * x0_
            px1 += p1_ * x1_
            px2 += p2_ * x2_
            px3 += p3_ * x3_
            xx0 += x0_ * x0_
            xx1 += x1_ * x1_
            xx2 += x2_ * x2_
            xx3 += x3_ * x3_
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
            x0_, p0_ = _move_any(x, p, G, c, i, m, s, rs, eta)
            px0 += p0_ * x0_
            xx0 += x0_ * x0_
            if p0_ < b0:
                b0, i0 = p0_, m
            m += 1
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
        # A x ← A x + s(A_i − A x), ‖A x − b‖², and the next step's ‖A_j − A x‖² in the same pass
        d0 = d1 = d2 = d3 = 0.0
        f0 = f1 = f2 = f3 = 0.0
        r = 0
        while r + 4 <= n:
            Ax[r] += s * (R[i, r] - Ax[r])
            Ax[r + 1] += s * (R[i, r + 1] - Ax[r + 1])
            Ax[r + 2] += s * (R[i, r + 2] - Ax[r + 2])
            Ax[r + 3] += s * (R[i, r + 3] - Ax[r + 3])
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
            Ax[r] += s * (R[i, r] - Ax[r])
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
