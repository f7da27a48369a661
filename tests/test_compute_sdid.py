"""Issue 15: the Frank–Wolfe solvers of the SDID / SC placebo draws.

The placebo refits run :func:`_fw_gram` (gradient updated from A'A, O(k) per step; unit weights
share the controls' Gram matrix; each problem solved by the compiled loop of ``_fw_kernel``).
These tests hold it to the recomputing loop of R's ``sc.weight.fw`` (:func:`_fw_batch`, A x and
A'(A x − b) recomputed at every step), which the placebo draws used until 2026-12-05, at the
rounding level, and check that a problem's bits depend neither on its batch nor on the threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import sdid
from evalkit.estimators._sdid_fw import _fw_batch, _fw_gram, _fw_groups, _gram_solve, _sparsify
from evalkit.estimators.sdid import fit_matrix, placebo_draws


@pytest.fixture(scope="module")
def prop99() -> np.ndarray:
    # source and licence: tests/data/README.md; California (the treated state) last, 1989 the first post year
    df = pd.read_csv(Path(__file__).parent / "data" / "california_prop99.csv", sep=";")
    wide = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    order = [s for s in wide.index if s != "California"] + ["California"]
    return wide.loc[order].to_numpy(float)


def _recomputing(monkeypatch):
    """Route the placebo refits through the recomputing batch loop (the pre-2026-12-05 path)."""
    def recomputing(Yt, T0, opts, omega0, lam0, Y_co, cols):  # each draw's whole matrix: controls, then treated
        return sdid._solve_weights(np.concatenate([Y_co[cols], Yt], axis=1), cols.shape[1], T0, opts, omega0, lam0)

    monkeypatch.setattr(sdid, "_placebo_weights", recomputing)


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_placebo_draws_equal_recomputing_loop(prop99, method, monkeypatch):
    Y, N0, T0 = prop99, prop99.shape[0] - 1, 19  # 1970–1988 pre-periods
    fit = fit_matrix(Y, N0, T0, method)
    new = placebo_draws(Y, N0, T0, fit, reps=60, seed=3)
    _recomputing(monkeypatch)
    old = placebo_draws(Y, N0, T0, fit, reps=60, seed=3)
    assert not np.array_equal(new, old)  # the two paths really differ (rounding), so the check below is one
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-12 * np.abs(old).max())
    se = [np.std(d, ddof=1) for d in (new, old)]
    assert se[0] == pytest.approx(se[1], rel=1e-12)


def test_placebo_draws_with_two_placebo_treated_units(prop99, monkeypatch):
    Y, N0, T0 = prop99[:38], 36, 19  # two control states as the treated block: each draw relabels two
    fit = fit_matrix(Y, N0, T0, "sdid")
    new = placebo_draws(Y, N0, T0, fit, reps=25, seed=8)
    _recomputing(monkeypatch)
    old = placebo_draws(Y, N0, T0, fit, reps=25, seed=8)
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-12 * np.abs(old).max())


def test_gram_solver_equals_recomputing_loop_shared_and_per_problem():
    rng = np.random.default_rng(5)
    T0, K, B = 14, 23, 6
    M = rng.normal(size=(T0, K)).cumsum(axis=0)
    M -= M.mean(axis=0)
    cols = np.stack([rng.permutation(K)[:K - 1] for _ in range(B)])
    b = rng.normal(size=(B, T0)).cumsum(axis=1)
    b -= b.mean(axis=1, keepdims=True)
    A = np.ascontiguousarray(M[:, cols].transpose(1, 0, 2))  # B × T0 × (K−1): problem j's columns
    Y = np.concatenate([A, b[:, :, None]], axis=2)
    x0 = rng.dirichlet(np.ones(K - 1), size=B)
    for zeta, max_iter in ((0.4, 10_000), (1e-6, 10_000), (0.4, 3)):
        ref = _fw_batch(Y, zeta, False, x0, 1e-7, max_iter)
        per = _fw_gram(A, b, zeta, x0, 1e-7, max_iter)
        shared = _fw_gram(None, b, zeta, x0, 1e-7, max_iter, shared=(M, cols))
        np.testing.assert_allclose(per, ref, rtol=0, atol=1e-11)
        np.testing.assert_allclose(shared, ref, rtol=0, atol=1e-11)
        assert np.allclose(shared.sum(axis=1), 1.0) and shared.min() >= 0


def test_a_problem_does_not_depend_on_its_batch():
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(6, 12, 9)).cumsum(axis=1)
    together = _fw_batch(Y, 0.3, True, None, 1e-6, 10_000)
    for j in range(Y.shape[0]):
        assert np.array_equal(together[j], _fw_batch(Y[j:j + 1], 0.3, True, None, 1e-6, 10_000)[0])
    lam, omega = _fw_groups([(Y, 0.3, True, None), (Y[:, :7, :], 0.1, False, None)], 1e-6, 10_000)
    assert np.array_equal(lam, together)
    assert np.array_equal(omega, _fw_batch(Y[:, :7, :], 0.1, False, None, 1e-6, 10_000))
    Yc = Y - Y.mean(axis=1, keepdims=True)
    A, b = np.ascontiguousarray(Yc[:, :, :-1]), np.ascontiguousarray(Yc[:, :, -1])
    x0 = np.full((6, 8), 1 / 8)
    gram = _fw_gram(A, b, 0.3, x0, 1e-6, 10_000)
    for j in range(Y.shape[0]):
        assert np.array_equal(gram[j], _fw_gram(A[j:j + 1], b[j:j + 1], 0.3, x0[j:j + 1], 1e-6, 10_000)[0])


def test_gram_batch_with_staggered_stops_equals_each_problem_alone():
    """Problems of one batch stop at different steps (early, by R's rule, and at the cap): each one's
    solution is bit-identical to the problem solved alone and equals the recomputing loop (R's)."""
    rng = np.random.default_rng(11)
    B, n, k, cap = 8, 40, 9, 400
    Y = rng.normal(size=(B, n, k + 1)).cumsum(axis=1)
    Y[::2] += rng.normal(scale=3.0, size=(B // 2, n, k + 1))  # uneven problems: uneven stopping steps
    Yc = Y - Y.mean(axis=1, keepdims=True)
    A, b = np.ascontiguousarray(Yc[:, :, :-1]), np.ascontiguousarray(Yc[:, :, -1])
    x0 = rng.dirichlet(np.ones(k), size=B)
    # (ζ, min_decrease): all 8 stop early, at 7 different steps; 2 stop early (at 13 and 195), 6 at the cap
    for zeta, min_decrease, n_capped in ((0.5, 1e-2, 0), (1e-6, 1e-3, 6)):
        together, steps = _gram_solve(A, b, zeta, x0, min_decrease, cap)
        assert np.count_nonzero(steps == cap) == n_capped and steps.min() >= 2
        assert len({t for t in steps if t < cap}) >= 2  # e.g. steps 8, 31, 54, 66, 162, 172, 172, 224
        for j in range(B):
            alone, steps_alone = _gram_solve(A[j:j + 1], b[j:j + 1], zeta, x0[j:j + 1], min_decrease, cap)
            assert np.array_equal(together[j], alone[0]) and steps_alone[0] == steps[j]
        ref = _fw_batch(Yc, zeta, False, x0, min_decrease, cap)
        np.testing.assert_allclose(together, ref, rtol=0, atol=1e-12)


def test_placebo_solver_gives_the_same_bits_on_one_and_two_threads(prop99):
    """Each problem runs alone on one thread, so the thread count changes timings only."""
    Y, N0, T0 = prop99, prop99.shape[0] - 1, 19
    M = Y[:N0, :T0].T - Y[:N0, :T0].T.mean(axis=0)
    rng = np.random.default_rng(2)
    cols = np.stack([rng.permutation(N0)[:N0 - 1] for _ in range(9)])
    b = Y[N0, :T0] + rng.normal(size=(9, T0))  # California's pre-period path, perturbed per problem
    b -= b.mean(axis=1, keepdims=True)
    x0 = rng.dirichlet(np.ones(N0 - 1), size=9)
    one = _gram_solve(None, b, 0.5, x0, 1e-6, 10_000, shared=(M, cols), threads=1)
    two = _gram_solve(None, b, 0.5, x0, 1e-6, 10_000, shared=(M, cols), threads=2)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    assert one[1].max() > 100  # long runs: the threads really overlap


def test_per_problem_refit_equals_two_calls():
    """``problem=`` with ``refit`` (A_j formed where problem j runs, sparsify between the runs) gives the
    bits of two batch calls with R's sparsification between them."""
    rng = np.random.default_rng(4)
    B, n, k = 5, 30, 7
    Yc = rng.normal(size=(B, n, k + 1)).cumsum(axis=1)
    Yc -= Yc.mean(axis=1, keepdims=True)
    A, b = np.ascontiguousarray(Yc[:, :, :-1]), np.ascontiguousarray(Yc[:, :, -1])
    x0 = np.full((B, k), 1 / k)
    first = _fw_gram(A, b, 1e-3, x0, 1e-6, 100)
    two_calls = _fw_gram(A, b, 1e-3, _sparsify(first), 1e-6, 10_000)
    one_call = _fw_gram(None, None, 1e-3, x0, 1e-6, 100, problem=lambda j: (Yc[j, :, :-1], Yc[j, :, -1]),
                        refit=10_000)
    assert np.array_equal(one_call, two_calls)
    np.testing.assert_allclose(one_call, _fw_batch(Yc, 1e-3, False, _sparsify(first), 1e-6, 10_000), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_point_estimate_by_gram_kernel_equals_recomputing_loop(prop99, method, monkeypatch):
    """The point estimate's fits run the compiled Gram loop (``_fw_point``); R's recomputing loop
    (``_fw_one``, the path until 2026-12-05) gives the same τ̂ and weights up to rounding."""
    Y, N0, T0 = prop99, prop99.shape[0] - 1, 19
    new = fit_matrix(Y, N0, T0, method)
    def recomputing(A, zeta, intercept, x0, min_decrease, max_iter, refit=None):  # R's two calls, R's loop
        x = sdid._fw(A, zeta, intercept, x0, min_decrease, max_iter)
        return x if refit is None else sdid._fw(A, zeta, intercept, _sparsify(x), min_decrease, refit)

    monkeypatch.setattr(sdid, "_fw_point", recomputing)  # the recomputing loop for the one problem
    old = fit_matrix(Y, N0, T0, method)
    assert new.tau == pytest.approx(old.tau, rel=1e-12, abs=0)
    np.testing.assert_allclose(new.omega, old.omega, rtol=0, atol=1e-12)
    np.testing.assert_allclose(new.lam, old.lam, rtol=0, atol=1e-12)
    if method == "sc":  # the paths really differ (rounding): the check above is one
        assert new.tau != old.tau


def _kernel_state(rng, n: int, k: int, zeta: float, x0: np.ndarray):
    A = rng.normal(size=(n, k)).cumsum(axis=0)
    b = rng.normal(size=n).cumsum()
    A -= A.mean(axis=0)
    b -= b.mean()
    At = np.ascontiguousarray(A.T)
    Ax = A @ x0
    return [x0.copy(), At @ (Ax - b) + n * zeta ** 2 * x0, At @ b, Ax, b, At, At @ A, n * zeta ** 2, zeta ** 2]


@pytest.mark.parametrize("n, k", [(14, 23), (37, 50), (9, 8)])
def test_split_kernel_step_gives_the_fused_steps_bits(n, k):
    """The kernel's default step (p updated in one vectorised loop, x and p·x, x·x over the support or
    all weights) gives bit for bit the fused one-pass step of ``dense=True``: sparse and wide supports,
    k not a multiple of 4 (the last k mod 4 weights summed in lane 0), early stops and the cap, and a
    half-gradient turning non-finite outside the support (p·x NaN, then NaN steps, as in the fused step)."""
    from evalkit.estimators._fw_kernel import solve_one

    rng = np.random.default_rng(n * k)
    sparse = np.zeros(k)
    sparse[rng.choice(k, 2, replace=False)] = [0.3, 0.7]  # support 2 of k: the support path
    wide = rng.dirichlet(np.ones(k))  # every column: the full-width path
    cases = [(zeta, x0, cap, None) for zeta in (1e-6, 0.3) for x0 in (sparse, wide) for cap in (5, 10_000)]
    cases.append((0.3, sparse, 50, "inf"))
    cases.append((0.3, sparse, 50, "nan"))
    for zeta, x0, cap, bad in cases:
        runs = []
        for dense in (True, False):
            state = _kernel_state(np.random.default_rng(k), n, k, zeta, x0)
            if bad:  # a column outside the support whose half-gradient turns non-finite at the first step
                m = int(np.flatnonzero(x0 == 0)[-1])
                state[6][:, m] = np.inf if bad == "inf" else np.nan
            steps = solve_one(*state, 1e-12, cap, dense)
            runs.append((steps, state[0], state[1], state[3]))
        (s1, *arrays1), (s2, *arrays2) = runs
        assert s1 == s2
        for a1, a2 in zip(arrays1, arrays2, strict=True):
            np.testing.assert_array_equal(a1, a2)  # NaN where NaN: bitwise for finite values
            assert a1.tobytes() == a2.tobytes() or bad
        if bad is None and zeta == 1e-6 and cap == 10_000:
            assert s1 > 20  # long runs: both paths really iterate


def test_placebo_estimates_do_not_depend_on_how_many_draws_are_gathered_at_once(prop99, monkeypatch):
    """τ̂ of the placebo draws is computed a few draws at a time (``_TAU_CHUNK``), never from all draws'
    outcome matrices at once: the same bits for any chunk size (four placebo-treated units here)."""
    Y, N0, T0 = prop99[:39], 35, 19
    fit = fit_matrix(Y, N0, T0, "sdid")
    runs = []
    for chunk in (1, 16, 1000):
        monkeypatch.setattr(sdid, "_TAU_CHUNK", chunk)
        runs.append(placebo_draws(Y, N0, T0, fit, reps=40, seed=5))
    assert len(np.unique(runs[0])) > 16  # several chunks of distinct draws
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
