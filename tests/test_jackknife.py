"""Delete-one-cluster jackknife for the headline estimate (evalkit.inference.jackknife)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.estimators import get_estimator
from evalkit.evaluation_steps import small_sample_headline_se
from evalkit.inference import jackknife


def _panel(seed=0, T=24):
    rng = np.random.default_rng(seed)
    ft = np.array([0] * 8 + [13] * 3 + [17] * 1 + [19] * 2)
    S = len(ft)
    y = rng.normal(0, 1, (S, 1)) + rng.normal(0, 1, (S, T))
    y += np.where((np.arange(1, T + 1)[None, :] >= ft[:, None]) & (ft[:, None] > 0), 2.0, 0.0)
    return pd.DataFrame({"station_id": np.repeat([f"s{i:02d}" for i in range(S)], T),
                         "period": np.tile(np.arange(1, T + 1), S), "first_treat": np.repeat(ft, T),
                         "county": np.repeat(np.arange(S) // 3, T), "y": y.ravel()})


def test_matches_a_hand_loop():
    panel = _panel()
    cs = get_estimator("cs")
    r = cs(panel, "y")
    jk = jackknife(r)
    thetas = [float(cs(panel[panel.station_id != s], "y").overall["estimate"]) for s in panel.station_id.unique()]
    n = len(thetas)
    se = np.sqrt((n - 1) / n * np.sum((np.array(thetas) - np.mean(thetas)) ** 2))
    assert jk.ok and jk.std_error == pytest.approx(se, rel=1e-12)
    assert jk.n_clusters == n == 14 and jk.df == 13
    est = float(r.overall["estimate"])
    crit = stats.t.ppf(0.975, 13)
    assert jk.ci_low == pytest.approx(est - crit * se) and jk.ci_high == pytest.approx(est + crit * se)
    assert jk.p_value == pytest.approx(2 * stats.t.sf(abs(est) / se, 13))


def _params(**kw):
    return SimpleNamespace(**({"headline": "cs", "headline_se": "jackknife", "cluster": "station_id",
                               "alpha": 0.05} | kw))


def test_cluster_level_and_apply():
    """The evaluation step puts the jackknife on a copy of the headline row; the fit is unchanged."""
    panel = _panel(1)
    r = get_estimator("cs")(panel, "y", cluster="county")
    analytic = r.overall.copy()
    jk = jackknife(r)
    assert jk.cluster == "county" and jk.n_clusters == 5
    res = {"cs": r}
    small_sample_headline_se(panel, "y", _params(cluster="county"), res)
    out = res["cs"]
    assert out is not r and float(r.overall["std_error"]) == float(analytic["std_error"]) and r.inference == {}
    assert float(out.overall["std_error"]) == jk.std_error and float(out.overall["estimate"]) == analytic["estimate"]
    assert float(out.overall["p_value"]) == jk.p_value
    assert out.meta["analytic_overall"]["std_error"] == pytest.approx(float(analytic["std_error"]))
    assert out.meta["headline_se"]["method"] == "jackknife" and out.meta["headline_se"]["df"] == 4
    assert out.inference["jackknife"].to_dict() == jk.to_dict()


def test_errors():
    panel = _panel()
    r = get_estimator("cs")(panel, "y")
    bad = jackknife(r, cluster="city")
    assert bad.status == "failed" and "'city' is not in the sample" in bad.reason
    one = panel[~panel.station_id.isin([f"s{i:02d}" for i in range(9, 14)])]  # s08 is the only adopter
    r1 = get_estimator("cs")(one, "y")
    jk1 = jackknife(r1)
    assert jk1.status == "not_available" and np.isnan(jk1.p_value)
    assert "only 1 station_id adopts (s08)" in jk1.reason and "single-station design" in jk1.reason
    two = panel[panel.station_id.isin(["s00", "s09"])]
    jk2 = jackknife(get_estimator("cs")(two, "y"))
    assert jk2.status == "not_available" and "at least 3" in jk2.reason


def test_not_available_jackknife_keeps_the_analytic_se_with_its_reason():
    panel = _panel()
    one = panel[~panel.station_id.isin([f"s{i:02d}" for i in range(9, 14)])]
    r = get_estimator("cs")(one, "y")
    res = {"cs": r}
    small_sample_headline_se(one, "y", _params(), res)
    out = res["cs"]
    hs = out.meta["headline_se"]
    assert hs["method"] == "analytic" and hs["jackknife_status"] == "not_available"
    assert "single-station design" in hs["jackknife_error"]
    assert float(out.overall["p_value"]) == float(r.overall["p_value"])  # the verdict reads the analytic p-value
    assert out.inference["jackknife"].status == "not_available" and "headline_se" not in r.meta


# ---------------------------------------------------------------- imputation without refits
def _imp_panel(seed=3, T=24, never=8):
    """Staggered adoption (cohorts 9, 13, 17, 19), a weight column, counties of 3 stations (the
    never-treated stations first: with ``never=3`` county 0 holds all of them)."""
    rng = np.random.default_rng(seed)
    ft = np.array([0] * never + [9, 9, 13, 13, 13, 17, 19, 19])
    S = len(ft)
    t = np.arange(1, T + 1)
    y = rng.normal(0, 1, (S, 1)) + 0.05 * t[None, :] + rng.normal(0, 1, (S, T))
    y += np.where((t[None, :] >= ft[:, None]) & (ft[:, None] > 0), 1.0 + 0.1 * (t[None, :] - ft[:, None]), 0.0)
    return pd.DataFrame({"station_id": np.repeat([f"s{i:02d}" for i in range(S)], T),
                         "period": np.tile(t, S), "first_treat": np.repeat(ft, T),
                         "county": np.repeat(np.arange(S) // 3, T), "y": y.ravel(),
                         "w": np.repeat(rng.uniform(0.5, 3.0, S), T)})


def _count_refits(monkeypatch) -> list:
    """Each full re-fit the jackknife makes appends to the returned list."""
    from evalkit.inference._refit import Refit

    calls: list = []
    real = Refit.fit
    monkeypatch.setattr(Refit, "fit", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    return calls


def _by_refits(monkeypatch, r, **kw):
    """The jackknife with every leave-one-out estimate from a full estimator re-fit."""
    jkm = importlib.import_module("evalkit.inference.jackknife")  # the package exports the function

    with monkeypatch.context() as m:
        m.setattr(jkm, "_fast_thetas", lambda *a, **k: None)
        return jackknife(r, **kw)


@pytest.mark.parametrize("opts", [
    {},
    {"cluster": "county"},
    {"weights": "w"},
    {"max_e": 4},
    {"anticipation": 1, "max_e": 6, "weights": "w", "cluster": "county"},
])
def test_imputation_leave_out_without_refits_equals_refits(monkeypatch, opts):
    panel = _imp_panel()
    r = get_estimator("imputation")(panel, "y", **opts)
    refits = _count_refits(monkeypatch)
    fast = jackknife(r)
    assert refits == [] and fast.ok  # the fast route gave every leave-one-out estimate
    slow = _by_refits(monkeypatch, r)
    assert len(refits) == slow.n_clusters
    assert slow.ok and fast.n_clusters == slow.n_clusters == (6 if "cluster" in opts else 16)
    np.testing.assert_allclose(fast.leave_out, slow.leave_out, rtol=0, atol=1e-10)
    for k in ("std_error", "ci_low", "ci_high", "p_value"):
        assert getattr(fast, k) == pytest.approx(getattr(slow, k), rel=1e-10, abs=1e-12)
    assert {k: v for k, v in fast.to_dict().items() if k not in ("std_error", "ci_low", "ci_high", "p_value",
                                                                  "leave_out")} == \
        {k: v for k, v in slow.to_dict().items() if k not in ("std_error", "ci_low", "ci_high", "p_value",
                                                              "leave_out")}


def test_imputation_leave_out_when_a_county_holds_every_never_treated_station(monkeypatch):
    """Deleting county 0 (all three never-treated stations) leaves the months after the last cohort
    without untreated cells: their treated cells are not imputable, in the refit as in the fast route."""
    panel = _imp_panel(never=3)
    r = get_estimator("imputation")(panel, "y", cluster="county")
    refits = _count_refits(monkeypatch)
    fast = jackknife(r)
    assert refits == []
    slow = _by_refits(monkeypatch, r)
    assert fast.ok and slow.ok
    np.testing.assert_allclose(fast.leave_out, slow.leave_out, rtol=0, atol=1e-10)


def test_imputation_fast_route_falls_back_to_refits(monkeypatch):
    fm = importlib.import_module("evalkit.inference._leave_out")
    jkm = importlib.import_module("evalkit.inference.jackknife")  # the package exports the function
    from evalkit.inference._refit import refit_of

    panel = _imp_panel()
    r = get_estimator("imputation")(panel, "y")
    slow = _by_refits(monkeypatch, r)
    # a cluster the route has no number for is refitted by the loop
    real = fm.imputation_leave_out

    def holes(*a, **k):
        full, out = real(*a, **k)
        out = out.copy()
        out[[0, 9]] = np.nan
        return full, out

    monkeypatch.setattr(fm, "imputation_leave_out", holes)
    with monkeypatch.context() as m:
        refits = _count_refits(m)
        patched = jackknife(r)
    assert len(refits) == 2
    np.testing.assert_allclose(patched.leave_out, slow.leave_out, rtol=0, atol=1e-10)
    monkeypatch.setattr(fm, "imputation_leave_out", real)
    # not covered: a wrong full-sample estimate, a cluster that splits a station
    rf = refit_of(r)
    est = float(r.overall["estimate"])
    codes = pd.factorize(rf.frame["station_id"], sort=True)[0]
    assert jkm._fast_thetas(rf, "ATT", est, codes, 16) is not None
    assert jkm._fast_thetas(rf, "ATT", est + 1e-6, codes, 16) is None
    split = (rf.frame["period"].to_numpy() > 12).astype(int) + 2 * (codes % 2)
    assert jkm._fast_thetas(rf, "ATT", est, split, 4) is None


@pytest.mark.parametrize("opts", [{}, {"weights": "w"}, {"cluster": "county", "max_e": 6}])
def test_imputation_leave_out_on_an_unbalanced_sample_equals_refits(monkeypatch, opts):
    """Unbalanced rows (a missing cell; s00 alone observed in months 1–8, s01 alone in month 24):
    without refits, except for the cluster whose deletion makes the re-fit's validation drop units
    (without s00 the first month is 9, the month the cohort-9 stations adopt)."""
    panel = _imp_panel()
    drop = (((panel.station_id == "s03") & (panel.period == 5))
            | ((panel.station_id != "s00") & (panel.period <= 8))
            | ((panel.station_id != "s01") & (panel.period == 24)))
    r = get_estimator("imputation")(panel[~drop.to_numpy()], "y", **opts)
    assert not refit_of_(r).sample.info.balanced
    refits = _count_refits(monkeypatch)
    fast = jackknife(r)
    assert len(refits) == 1  # only the cluster of s00
    slow = _by_refits(monkeypatch, r)
    assert fast.ok and slow.ok and fast.n_clusters == slow.n_clusters
    np.testing.assert_allclose(fast.leave_out, slow.leave_out, rtol=0, atol=1e-10)
    # the fast route's own number for s00's cluster is not the re-fit's: the refit there is needed
    jkm = importlib.import_module("evalkit.inference.jackknife")
    rf = refit_of_(r)
    codes = pd.factorize(rf.frame[rf.cluster or rf.unit], sort=True)[0]
    same = jkm._same_window(rf.frame["period"].to_numpy(), rf.frame["first_treat"].to_numpy(), codes,
                            fast.n_clusters)
    assert same.sum() == fast.n_clusters - 1 and not same[0]


def test_same_window_reads_the_first_and_last_period():
    jkm = importlib.import_module("evalkit.inference.jackknife")
    t = np.array([1, 2, 3, 2, 3, 4, 3, 4, 5, 2, 3, 4])
    c = np.repeat([0, 2, 0, 5], 3)
    g = np.repeat([0, 1, 2, 3], 3)
    # without cluster 0 the first period is 2 (cluster 1 adopts then); without 2 the last is 4 (< cohort 5)
    assert jkm._same_window(t, c, g, 4).tolist() == [False, True, False, True]
    assert jkm._same_window(t, np.zeros(12), g, 4).tolist() == [True] * 4
    # the rows as they are already re-validate (a cohort at the first period): every cluster checked alone
    c1 = np.repeat([1, 2, 0, 0], 3)
    assert jkm._same_window(t, c1, g, 4).tolist() == [False, False, False, False]


def refit_of_(r):
    from evalkit.inference._refit import refit_of

    return refit_of(r)


def test_refit_skips_the_pretrend_test_only_when_asked():
    from evalkit.inference._refit import refit_of

    panel = _imp_panel()
    r = get_estimator("imputation")(panel, "y")
    rf = refit_of(r)
    with_test, without = rf.fit(pretrend=True), rf.fit(pretrend=False)
    assert with_test.meta["pretrend"]["leads"] and not without.meta["pretrend"]["leads"]
    assert float(without.overall["estimate"]) == float(with_test.overall["estimate"])
    assert float(without.overall["std_error"]) == float(with_test.overall["std_error"])


@pytest.mark.parametrize("opts", [
    {},
    {"cluster": "county"},
    {"weights": "w"},
    {"trim_e": (-6, 4)},
    {"control": "notyet", "base_period": "universal", "anticipation": 1},
])
def test_cs_leave_out_without_refits_equals_refits(monkeypatch, opts):
    """Station s13 is cohort 17's only station: deleting it empties the cohort (its cells drop out)."""
    panel = _imp_panel()
    r = get_estimator("cs")(panel, "y", **opts)
    refits = _count_refits(monkeypatch)
    fast = jackknife(r)
    assert refits == [] and fast.ok
    slow = _by_refits(monkeypatch, r)
    assert slow.ok and len(refits) == slow.n_clusters
    np.testing.assert_allclose(fast.leave_out, slow.leave_out, rtol=0, atol=1e-10)
    assert fast.std_error == pytest.approx(slow.std_error, rel=1e-10)


def test_cs_leave_out_refits_a_cluster_whose_cells_lose_their_comparison(monkeypatch):
    """Never-treated comparison, county 0 holds every never-treated station: without it no cell has a
    comparison unit, the route gives NaN and the loop refits that county (the re-fit's sample rules
    decide what happens then, exactly as without the fast route)."""
    panel = _imp_panel(never=3)
    r = get_estimator("cs")(panel, "y", cluster="county")
    refits = _count_refits(monkeypatch)
    fast = jackknife(r)
    slow = _by_refits(monkeypatch, r)
    assert len(refits) == 1 + slow.n_clusters  # the fast route refitted only county 0
    assert fast.ok and slow.ok
    np.testing.assert_allclose(fast.leave_out, slow.leave_out, rtol=0, atol=1e-10)
