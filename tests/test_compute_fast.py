"""Issue 15 (compute): the per-draw shortcuts of the BJS permutation pre-test equal what they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators._fe import nested_in, wald_test
from evalkit.inference._bjs import _levels_nested, _wald_stat


@pytest.mark.parametrize("seed", range(6))
def test_levels_nested_equals_unique_and_nested_in(seed):
    rng = np.random.default_rng(seed)
    nu, nt = 9, 7
    om0 = rng.random((nu, nt)) < 0.6
    om0[rng.integers(nu)] = False  # a unit without cells
    by_unit = np.repeat(rng.integers(0, 4, nu)[:, None], nt, axis=1)  # clusters = groups of units
    by_cell = rng.integers(0, 3, (nu, nt))
    for grid in (by_unit, by_cell, np.zeros((nu, nt), dtype=np.int64)):
        cl = np.full((nu, nt), -1, dtype=np.int64)
        cl[om0] = pd.factorize(grid[om0])[0]
        rows, cols = np.nonzero(om0)
        clc = cl[om0]
        for axis, lv in ((1, rows), (0, cols)):
            assert _levels_nested(om0, cl, axis) == (int(np.unique(lv).size), nested_in(pd.factorize(lv)[0], clc))


@pytest.mark.parametrize("singular", [False, True])
def test_wald_stat_equals_wald_test(singular):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 4))
    V = X.T @ X
    if singular:
        V[:, -1] = V[:, 0]
        V[-1, :] = V[0, :]
    b = rng.normal(size=4)
    w = wald_test(b, V)
    assert _wald_stat(b, V) == (w["stat"], w["df"])
    assert np.isnan(_wald_stat(np.zeros(0), np.zeros((0, 0)))[0])


def _staggered(seed: int = 0, n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    units, periods = np.arange(n), np.arange(1, 25)
    cohort = rng.choice([0, 9, 13, 17], size=units.size)
    u, t = np.repeat(units, periods.size), np.tile(periods, units.size)
    g = np.repeat(cohort, periods.size)
    base = rng.normal(size=units.size)[u] + 0.1 * t
    return pd.DataFrame({"unit": u, "period": t, "first_treat": g, "county": u % 6,
                         "y1": base + rng.normal(size=u.size) + 0.5 * ((g > 0) & (t >= g)),
                         "y2": 2 * base + rng.normal(size=u.size)})


@pytest.mark.parametrize(("cluster", "kind"), [(None, "wald"), ("county", "t2sum")])
def test_shared_designs_change_no_number(cluster, kind):
    from evalkit.inference import _fast, _shared

    frame = _staggered()
    units = pd.Index(np.sort(frame["unit"].unique()))
    cohorts = frame.groupby("unit")["first_treat"].first().to_numpy()
    rng = np.random.default_rng(4)
    draws = [cohorts] + [rng.permutation(cohorts) for _ in range(15)]

    def stats(outcome):
        stat = _fast.bjs_pretrend(frame, outcome, unit="unit", time="period", cohort_units=units, weights=None,
                                  cluster=cluster, anticipation=0, leads=None, kind=kind)
        return [stat(c) for c in draws]

    alone = {o: stats(o) for o in ("y1", "y2")}
    with _shared.shared_designs():
        shared = {o: stats(o) for o in ("y1", "y2")}
        caches = [c for c in _shared._SHARED.get().values() if isinstance(c, _shared._Designs)]
    assert len(caches) == 1 and len(caches[0].items) == len(draws)  # one grid, each draw's design kept once
    for o in alone:
        assert np.isfinite(alone[o]).all()
        assert np.array_equal(shared[o], alone[o])
    assert _shared._SHARED.get() is None  # nothing kept after the block


def test_shared_imputation_draws_change_no_number():
    from evalkit.inference import _fast, _shared

    frame = _staggered(1)
    units = pd.Index(np.sort(frame["unit"].unique()))
    cohorts = frame.groupby("unit")["first_treat"].first().to_numpy(float)
    rng = np.random.default_rng(9)
    G = np.stack([cohorts] + [rng.permutation(cohorts) for _ in range(12)])

    def draws(outcome):
        stats = _fast.fast_headline("imputation", None, frame, outcome, unit="unit", time="period", weights=None,
                                    cluster="county", options={}, units=units)
        return stats(G, se=True)

    alone = {o: draws(o) for o in ("y1", "y2")}
    with _shared.shared_designs():
        shared = {o: draws(o) for o in ("y1", "y2")}
        again = draws("y1")  # a second step on the same grid (e.g. Romano–Wolf after randomization inference)
        caches = [c for c in _shared._SHARED.get().values() if isinstance(c, _shared._Designs)]
    assert len(caches) == 1 and len(caches[0].items) == len(G)  # one grid: each draw's design computed once
    for o in alone:
        assert np.isfinite(alone[o][0]).all() and np.isfinite(alone[o][1]).all()
        for got in (shared[o], again if o == "y1" else shared[o]):
            assert np.array_equal(got[0], alone[o][0]) and np.array_equal(got[1], alone[o][1])


@pytest.mark.parametrize(("kw", "kind", "holes", "n"), [
    ({}, "wald", False, 30),
    ({"cluster": "county", "weights": "w"}, "t2sum", True, 30),
    ({"anticipation": 1, "pretrend_leads": 4}, "wald", True, 30),
    # clusters x units above 100,000: the cluster scores from per-unit sums (no dense clusters x units)
    ({"pretrend_leads": 4}, "wald", True, 330),
    ({"cluster": "county", "weights": "w", "pretrend_leads": 3}, "t2sum", False, 330),
])
def test_bjs_draws_equal_full_refits(kw, kind, holes, n):
    """Draw by draw, BJS test 1 from the per-draw designs (outcome-free part computed once) equals the
    statistic of a full imputation re-fit on the permuted rows (balanced and unbalanced samples)."""
    from evalkit.estimators import get_estimator
    from evalkit.inference import _fast
    from evalkit.inference._refit import refit_of
    from evalkit.inference.pretrend import _statistic

    frame = _staggered(2, n)
    frame["w"] = 1.0 + frame["unit"] % 3
    if holes:  # missing cells: an unbalanced sample
        frame = frame[~(((frame["unit"] % 7) == 3) & (frame["period"] % 5 == 2))].reset_index(drop=True)
    r = get_estimator("imputation")(frame, "y1", unit="unit", **kw)
    rf = refit_of(r)
    assert rf.sample.info.balanced is not holes
    _, units, cohorts = rf.unit_cohorts()
    codes = units.get_indexer(rf.frame["unit"])
    stat = _fast.bjs_pretrend(rf.frame, "y1", unit="unit", time="period", cohort_units=units,
                              weights=rf.weights, cluster=rf.cluster, anticipation=kw.get("anticipation", 0),
                              leads=kw.get("pretrend_leads"), kind=kind)
    rng = np.random.default_rng(7)
    for draw in [cohorts] + [rng.permutation(cohorts) for _ in range(5)]:
        full = _statistic(rf.fit(rf.permuted(draw[codes]), pretrend=True), kind, kw.get("anticipation", 0))
        assert np.isfinite(full) and stat(draw) == pytest.approx(full, rel=1e-9)


@pytest.mark.parametrize("case", ["several clusters", "one cell alone", "one treated cluster"])
def test_tau_bar_equals_the_estimators_leaveout_means(case):
    """The per-draw BJS residual means (their tau-free sums kept in the draw's design) are the
    estimator's own leave-own-cluster-out means (imputation._leaveout_means), bit for bit."""
    import warnings

    from evalkit.estimators.imputation import _leaveout_means
    from evalkit.inference._fast import _tau_bar, _tau_bar_cells

    rng = np.random.default_rng(3)
    n = 60
    g1 = rng.choice([13.0, 17.0, 21.0], n)
    e1 = rng.integers(-2, 6, n).astype(float)
    c1 = rng.integers(0, 8, n)
    if case == "one cell alone":  # a cohort x event-time cell held by one cluster: pooled to event time
        g1[0], e1[0] = 25.0, 9.0
    if case == "one treated cluster":
        c1[:] = 4
    w1 = rng.uniform(0.5, 2.0, n)
    for _ in range(3):
        tau = rng.normal(size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = _leaveout_means(tau, g1, e1, c1, w1)[0]
        got = _tau_bar(tau, w1, _tau_bar_cells(g1, e1, c1, w1, True))
        assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", ["small integers", "coded pairs", "wide range", "fractions", "nan", "signed zero",
                                  "labels", "labels with gaps", "int extremes"])
def test_rank_codes_equal_unique_inverse(kind):
    """The leave-out cell codes of a draw and the fit engine's FE / cluster codes (one helper: a presence
    count for integers in a short range) are ``np.unique(x, return_inverse=True)[1]``: the same integers
    and dtype, whatever the values; ``compact_codes`` adds the number of distinct values."""
    from evalkit.estimators._fe_within import compact_codes, rank_codes

    rng = np.random.default_rng(7)
    for n in (1, 2, 17, 744):
        make = {"small integers": lambda n: rng.integers(-50, 50, n).astype(float),
                "coded pairs": lambda n: rng.integers(0, 3, n) * 340.0 + rng.integers(-90, 90, n),
                "wide range": lambda n: rng.integers(0, 5, n) * 1e9,
                "fractions": lambda n: rng.integers(0, 9, n) / 4.0,
                "nan": lambda n: np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 9, n).astype(float)),
                "signed zero": lambda n: np.where(rng.random(n) < 0.5, -0.0, 0.0) + rng.integers(0, 3, n),
                "labels": lambda n: rng.permutation(n),  # 0..n-1, all present: their own codes
                "labels with gaps": lambda n: rng.integers(0, 40, n) * 3,
                "int extremes": lambda n: rng.choice(np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max]),
                                                     n)}
        x = make[kind](n)
        want = np.unique(x, return_inverse=True)[1].ravel()
        got = rank_codes(x)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        codes, k = compact_codes(x)
        assert np.array_equal(codes, want) and k == np.unique(x).size
    assert np.array_equal(rank_codes(np.array([3, 1, 3, 7])), [1, 0, 1, 2])  # integer arrays too
    assert compact_codes(np.array([], dtype=np.int64))[1] == 0
