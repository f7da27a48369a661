"""Issue 15 (compute): the Frank–Wolfe batches of the SDID / SC placebo draws.

Before 2026-12-05 a placebo refit's time- and unit-weight batches were zero-padded to a common shape
and iterated as one batch; now each batch iterates on its own arrays. Padding changed BLAS's
summation blocks, so the numbers move at the rounding level: synthetic control (one batch, never
padded) is bit-identical, SDID's draws within 1e-12 of the padded reference (kept below, verbatim
from commit 4ed1690) and each problem's solution no longer depends on the rest of its batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import sdid
from evalkit.estimators.sdid import _fw_batch, _fw_groups, fit_matrix, placebo_draws


def _fw_groups_padded(groups, min_decrease, max_iter):
    """The padded batch loop of commit 4ed1690 (reference only)."""
    sizes = [g[0].shape for g in groups]
    B = sum(sz[0] for sz in sizes)
    n = max(sz[1] for sz in sizes)
    k = max(sz[2] - 1 for sz in sizes)
    A, b, x = np.zeros((B, n, k)), np.zeros((B, n)), np.zeros((B, k))
    blocked, n_rows, zeta2 = np.zeros((B, k)), np.empty(B), np.empty(B)
    lo = 0
    for (Y, zeta, intercept, x0), (bg, ng, kg1) in zip(groups, sizes, strict=True):
        kg, hi = kg1 - 1, lo + bg
        if intercept:
            Y = Y - Y.mean(axis=1, keepdims=True)
        A[lo:hi, :ng, :kg] = Y[:, :, :-1]
        b[lo:hi, :ng] = Y[:, :, -1]
        x[lo:hi, :kg] = 1.0 / kg if x0 is None else np.asarray(x0, dtype=float).reshape(bg, kg)
        blocked[lo:hi, kg:] = np.inf
        n_rows[lo:hi] = ng
        zeta2[lo:hi] = float(zeta) ** 2
        lo = hi
    eta = n_rows * zeta2
    thresh = float(min_decrease) ** 2
    out = np.empty((B, k))
    At = np.ascontiguousarray(A.transpose(0, 2, 1))
    Ax = np.matmul(A, x[:, :, None])[:, :, 0]
    idx, prev, rows, t = np.arange(B), np.full(B, np.inf), np.arange(B), 0
    while idx.size:
        t += 1
        half_grad = np.matmul(At, (Ax - b)[:, :, None])[:, :, 0]
        half_grad += eta[:, None] * x
        i = (half_grad + blocked).argmin(axis=1)
        d_x = -x
        d_x[rows, i] += 1.0
        d_err = At[rows, i] - Ax
        num = np.vecdot(half_grad, d_x)
        den = np.vecdot(d_err, d_err) + eta * np.vecdot(d_x, d_x)
        moving = den > 0
        step = np.minimum(np.maximum(-num / np.where(moving, den, 1.0), 0.0), 1.0) * moving
        x += step[:, None] * d_x
        Ax = np.matmul(A, x[:, :, None])[:, :, 0]
        err = Ax - b
        val = zeta2 * np.vecdot(x, x) + np.vecdot(err, err) / n_rows
        done = np.ones(idx.size, bool) if t >= max_iter else (~(prev - val > thresh) if t >= 2 else None)
        prev = val
        if done is not None and done.any():
            out[idx[done]] = x[done]
            keep = ~done
            idx, x, Ax, prev = idx[keep], x[keep], Ax[keep], prev[keep]
            A, At, b, blocked = A[keep], At[keep], b[keep], blocked[keep]
            eta, zeta2, n_rows = eta[keep], zeta2[keep], n_rows[keep]
            rows = np.arange(idx.size)
    res, lo = [], 0
    for bg, _, kg1 in sizes:
        res.append(out[lo:lo + bg, :kg1 - 1])
        lo += bg
    return res


@pytest.fixture(scope="module")
def prop99() -> np.ndarray:
    # source and licence: tests/data/README.md; California (the treated state) last, 1989 the first post year
    df = pd.read_csv(Path(__file__).parent / "data" / "california_prop99.csv", sep=";")
    wide = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    order = [s for s in wide.index if s != "California"] + ["California"]
    return wide.loc[order].to_numpy(float)


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_placebo_draws_equal_padded_reference(prop99, method, monkeypatch):
    Y, N0, T0 = prop99, prop99.shape[0] - 1, 19  # 1970–1988 pre-periods
    fit = fit_matrix(Y, N0, T0, method)
    new = placebo_draws(Y, N0, T0, fit, reps=60, seed=3)
    monkeypatch.setattr(sdid, "_fw_groups", _fw_groups_padded)
    old = placebo_draws(Y, N0, T0, fit, reps=60, seed=3)
    if method == "sc":  # one batch, never padded: the same arithmetic
        assert np.array_equal(new, old)
    else:
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-12 * np.abs(old).max())
        se = [np.std(d, ddof=1) for d in (new, old)]
        assert se[0] == pytest.approx(se[1], rel=1e-13)


def test_a_problem_does_not_depend_on_its_batch():
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(6, 12, 9)).cumsum(axis=1)
    together = _fw_batch(Y, 0.3, True, None, 1e-6, 10_000)
    for j in range(Y.shape[0]):
        assert np.array_equal(together[j], _fw_batch(Y[j:j + 1], 0.3, True, None, 1e-6, 10_000)[0])
    lam, omega = _fw_groups([(Y, 0.3, True, None), (Y[:, :7, :], 0.1, False, None)], 1e-6, 10_000)
    assert np.array_equal(lam, together)
    assert np.array_equal(omega, _fw_batch(Y[:, :7, :], 0.1, False, None, 1e-6, 10_000))
