"""Inference on a fitted result (jackknife, pre-trend tests, Romano–Wolf) reuses the fit's own sample
and options, is deterministic, and reports failures as failures (issues 13 and 14).

The design throughout: a 12-station county, 48 months, negative-binomial counts with station
levels and seasonality, 4 adopters in 2 cohorts of 2 (months 25 and 31), 8 never-treated stations.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.estimators import get_estimator
from evalkit.estimators._sample import build_sample
from evalkit.inference import (
    JackknifeResult,
    PretrendResult,
    RomanoWolfResult,
    jackknife,
    pretrend_permutation,
    pretrend_test,
    romano_wolf,
)
from evalkit.inference._refit import NoFitContext, Refit, refit_of
from evalkit.inference.pretrend import pretrend_refit
from evalkit.results import EstimationResult, FitContext


def county_panel(seed=0, S=12, T=48, cohorts=(25, 31), per=2, effect=0.0, outcomes=("y",)):
    """NB counts (size 5), station level N(3, 0.3) on the log scale, yearly seasonality; ``effect``
    multiplies the treated stations' mean after adoption by ``1 + effect``; county = 4 × 3 stations,
    adopters 8, 9 (first cohort) and 10, 11 (second) in counties 2 and 3."""
    rng = np.random.default_rng(seed)
    ft = np.array([0] * (S - per * len(cohorts)) + [c for c in cohorts for _ in range(per)])
    t = np.arange(1, T + 1)
    df = pd.DataFrame({"station_id": np.repeat([f"s{i:02d}" for i in range(S)], T), "period": np.tile(t, S),
                       "first_treat": np.repeat(ft, T), "county": np.repeat([f"c{i // 3}" for i in range(S)], T)})
    post = (ft[:, None] > 0) & (t[None, :] >= ft[:, None])
    for k, name in enumerate(outcomes):
        level = rng.normal(3, 0.3, (S, 1)) + 0.1 * np.sin(2 * np.pi * t / 12)[None, :]
        mu = np.exp(level) * np.where(post, 1 + (effect if k == 0 else 0.0), 1.0)
        df[name] = rng.negative_binomial(5, 5 / (5 + mu)).ravel().astype(float)
    return df


def fit(panel, outcome, estimator="cs", **options):
    """Fit ``estimator`` and return the result with its fit context.

    Adapter for estimators that do not yet attach ``result.context`` themselves (until the cs and
    fe-engine branches convert them to ``finish_result``): the context is then built here the same
    way (``build_sample`` on the panel, the call's options)."""
    r = get_estimator(estimator)(panel, outcome, **options)
    if r.context is None:
        r.context = FitContext(estimator=estimator, options=dict(options),
                               sample=build_sample(panel, outcome, cluster=options.get("cluster")))
    return r


OPTS: dict = {}  # CS defaults (every event time); its window option is being renamed (min_e → trim_e)


# ------------------------------------------------------------------------------------ jackknife

def test_jackknife_equals_brute_force_delete_one_loop():
    panel = county_panel(effect=-0.2)
    r = fit(panel, "y", **OPTS)
    jk = jackknife(r)
    cs = get_estimator("cs")
    thetas = np.array([cs(panel[panel.station_id != s], "y", **OPTS).att for s in sorted(panel.station_id.unique())])
    G = thetas.size
    se = math.sqrt((G - 1) / G * np.sum((thetas - thetas.mean()) ** 2))
    assert isinstance(jk, JackknifeResult) and jk.ok
    assert jk.n_clusters == 12 and jk.n_treated_clusters == 4 and jk.df == 11
    np.testing.assert_allclose(jk.leave_out, thetas, rtol=1e-12)
    assert jk.std_error == pytest.approx(se, rel=1e-12)
    crit = stats.t.ppf(0.975, 11)
    assert jk.estimate == r.att
    assert jk.ci_low == pytest.approx(r.att - crit * se) and jk.ci_high == pytest.approx(r.att + crit * se)
    assert jk.p_value == pytest.approx(2 * stats.t.sf(abs(r.att) / se, 11))
    assert jackknife(r).to_dict() == jk.to_dict()  # deterministic
    before = r.to_dict()
    with_jk = r.with_inference("jackknife", jk)
    assert with_jk.inference["jackknife"] is jk and r.inference == {} and r.to_dict() == before
    back = EstimationResult.from_json(with_jk.to_json())
    assert back.inference["jackknife"]["std_error"] == pytest.approx(se, rel=1e-12)
    assert back.inference["jackknife"]["status"] == "ok" and back.context is None
    with pytest.raises(NoFitContext, match="has no fit context"):
        jackknife(back)


def test_jackknife_by_county_deletes_adopting_counties_too():
    panel = county_panel(seed=1)
    r = fit(panel, "y", cluster="county", **OPTS)
    jk = jackknife(r)  # the fit's own cluster
    assert jk.ok and jk.cluster == "county" and jk.n_clusters == 4 and jk.n_treated_clusters == 2
    cs = get_estimator("cs")
    thetas = [cs(panel[panel.county != c], "y", cluster="county", **OPTS).att for c in ("c0", "c1", "c2", "c3")]
    np.testing.assert_allclose(jk.leave_out, thetas, rtol=1e-12)


def test_jackknife_one_adopter_is_not_available():
    panel = county_panel(cohorts=(25,), per=1)
    r = fit(panel, "y", **OPTS)
    jk = jackknife(r)
    assert jk.status == "not_available" and math.isnan(jk.std_error) and math.isnan(jk.p_value)
    assert jk.reason == ("only 1 station_id adopts (s11): deleting it leaves no adopting unit, so the delete-one "
                         "jackknife is not defined (use the single-station design)")
    assert jk.to_dict()["p_value"] is None


def test_jackknife_failed_fit_is_failed_not_skipped(monkeypatch):
    r = fit(county_panel(), "y", **OPTS)
    real = Refit.fit

    def flaky(self, frame=None, **kw):
        if frame is not None and "s03" not in set(frame["station_id"]):
            raise np.linalg.LinAlgError("singular matrix")
        return real(self, frame, **kw)

    monkeypatch.setattr(Refit, "fit", flaky)
    # the route without re-fits off: every leave-one-out estimate comes from a (flaky) re-fit
    monkeypatch.setattr(sys.modules["evalkit.inference.jackknife"], "_fast_thetas", lambda *a, **k: None)
    jk = jackknife(r)
    assert jk.status == "failed" and jk.reason == "the fit without station_id s03 failed: singular matrix"


# ------------------------------------------------------------------------------------ pre-trend

def test_permutation_pretrend_county_deterministic_and_fast():
    r = fit(county_panel(seed=2), "y", **OPTS)
    t0 = time.perf_counter()
    a = pretrend_permutation(r, draws=199, seed=7)
    seconds = time.perf_counter() - t0
    b = pretrend_permutation(r, draws=199, seed=7)
    assert isinstance(a, PretrendResult) and a.ok and a.to_dict() == b.to_dict()
    assert a.test == "permutation" and a.draws == a.draws_valid == 199 and a.draws_failed == 0
    assert a.n_treated == 4 and a.df == 29
    # 29 leads from 4 treated stations: the Wald statistic cannot be trusted, Σ t² is permuted instead
    assert a.statistic == "t2sum" and a.notes
    assert 1 / 200 <= a.p_value == a.p_permutation <= 1
    assert a.p_chi2 is None  # the χ² p-value of an impossible Wald statistic is not reported
    assert a.others == {"chi2": "not defined: the covariance of the 29 leads from 12 clusters is singular (rank at most 11)",
                        "f": "not defined: the covariance of the 29 leads from 12 clusters is singular (rank at most 11)"}
    assert seconds < 20  # ~1 s on an idle core (a CS re-fit costs ~5 ms); no refit through linearmodels


def test_permutation_on_the_validated_sample_equals_revalidating_each_draw():
    """Permuted draws reuse the validated (balanced) sample; re-validating every draw gives the same test."""
    r = fit(county_panel(seed=5), "y", **OPTS)
    rf = refit_of(r)
    assert rf.sample is r.context.sample and rf.sample.info.balanced
    fast = pretrend_refit(rf, r, method="permutation", draws=40, seed=11)
    slow = pretrend_refit(replace(rf, sample=None), r, method="permutation", draws=40, seed=11)
    assert fast.ok and fast.to_dict() == slow.to_dict()


def test_permutation_statistic_is_the_wald_when_leads_are_few():
    panel = county_panel(seed=3, S=16, T=10, cohorts=(6, 8), per=4)  # 8 adopters, 6 leads
    r = fit(panel, "y")
    t = pretrend_test(r, method="permutation", draws=49, seed=0)
    assert t.ok and t.statistic == "wald" and t.df == 6 and t.stat == pytest.approx(r.meta["pretrend"]["stat"])
    f = pretrend_test(r, method="f")  # F = W (g-k) / (k (g-1)) ~ F(k, g-k), g = 8, k = 6
    assert f.test == "f" and f.p_value == pytest.approx(stats.f.sf(f.stat * 2 / (6 * 7), 6, 2))


def test_impossible_wald_is_not_available_and_tests_never_switch():
    """29 leads, 12 stations: the CS covariance has rank ≤ 11, its "Wald statistic" is ±1e17 (issue 14)."""
    for seed in (0, 2):  # CS printed one negative, one positive 1e17 statistic before it said "not available"
        r = fit(county_panel(seed=seed), "y", **OPTS)
        assert not 0 <= r.meta["pretrend"]["stat"] < 1e15  # NaN (not available) or ±1e17
        for method in ("chi2", "f"):
            t = pretrend_test(r, method=method)
            assert t.status == "not_available" and t.test == method and math.isnan(t.p_value) and t.p_chi2 is None
            assert t.reason == ("the Wald statistic of the 29 leads is not defined (the covariance of the 29 leads "
                                "from 12 clusters is singular (rank at most 11))")
        assert pretrend_test(r, method="auto", draws=9).test == "permutation"
    r = fit(county_panel(seed=3, S=16, T=10, cohorts=(6, 8), per=4), "y")  # 6 leads, 4 + 4 adopters
    chi = pretrend_test(r, method="chi2")
    assert chi.ok and chi.p_value == pytest.approx(stats.chi2.sf(chi.stat, chi.df)) and chi.df == 6
    assert chi.others["permutation"] == "not run (chosen test: chi2)"
    perm = pretrend_test(r, method="permutation", draws=9, seed=0)
    assert perm.others["chi2"].startswith("asymptotic: treats the covariance of the 6 leads as known, but it is "
                                          "estimated from about 8 treated stations")
    r = fit(county_panel(seed=3, S=16, T=10, cohorts=(6, 8), per=2), "y")  # 6 leads, 2 + 2 adopters
    f = pretrend_test(r, method="f")
    assert f.status == "not_available" and f.test == "f" and math.isnan(f.p_value)
    assert f.reason == "Hotelling's F needs more treated stations than leads + 1 (4 treated, 6 leads)"
    with pytest.raises(ValueError, match="unknown pre-trend test"):
        pretrend_test(r, method="bogus")


def test_all_permutation_draws_fail_is_reported_failed(monkeypatch):
    r = fit(county_panel(), "y", **OPTS)
    real = Refit.fit

    def draws_fail(self, frame=None, **kw):  # the unpermuted re-fit works, every permuted one fails
        if frame is not None:
            raise ValueError("no comparison units for cohort 25")
        return real(self, frame, **kw)

    monkeypatch.setattr(Refit, "fit", draws_fail)
    import evalkit.inference.pretrend as pt  # the draws through Refit.fit, not the fast routes

    monkeypatch.setattr(pt, "_batched_cs", lambda *a, **k: None)
    monkeypatch.setattr(pt, "_batched_imputation", lambda *a, **k: None)
    t = pretrend_permutation(r, draws=25, seed=0)
    assert t.status == "failed" and t.draws_valid == 0 and t.draws_failed == 25
    assert t.reason == "every one of the 25 permutation draws failed (no comparison units for cohort 25)"
    assert t.p_value is None or math.isnan(t.p_value)  # never the χ² p-value
    assert t.p_permutation is None


def test_no_leads_is_not_available():
    r = fit(county_panel(), "y", "twfe")
    t = pretrend_test(r, method="permutation", draws=9)
    assert t.status == "not_available" and "no event-study leads" in t.reason


def test_unbalanced_sample_is_revalidated_each_draw():
    """Missing cells make the sample unbalanced: permuted draws go through build_sample again."""
    panel = county_panel(seed=2, outcomes=("y0", "y1"))
    panel.loc[[5, 100, 300], "y0"] = np.nan
    r, r1 = fit(panel, "y0"), fit(panel, "y1")
    assert not r.context.sample.info.balanced and r.meta["sample"]["dropped_cells"] == {"missing_outcome": 3}
    t = pretrend_permutation(r, draws=19, seed=1)
    assert t.ok and t.draws_valid == 19 and t.to_dict() == pretrend_permutation(r, draws=19, seed=1).to_dict()
    jk = jackknife(r)
    cs = get_estimator("cs")
    thetas = [cs(panel[panel.station_id != s], "y0").att for s in sorted(panel.station_id.unique())]
    np.testing.assert_allclose(jk.leave_out, thetas, rtol=1e-12)
    rw = romano_wolf([r, r1], draws=9, seed=1)
    assert rw.ok and rw.draws_valid == 9


# ------------------------------------------------------------------------------------ Romano–Wolf

def test_romano_wolf_uses_the_headline_estimator():
    panel = county_panel(seed=4, S=16, per=4, effect=-0.9, outcomes=("y0", "y1", "y2"))  # 8 adopters
    res = [fit(panel, o, **OPTS) for o in ("y0", "y1", "y2")]
    rw = romano_wolf(res, draws=99, seed=3)
    assert isinstance(rw, RomanoWolfResult) and rw.ok and rw.estimator == "cs"
    assert rw.outcomes == ("y0", "y1", "y2") and rw.draws_valid == 99
    np.testing.assert_allclose(rw.estimate, [r.att for r in res], rtol=1e-12)
    np.testing.assert_allclose(rw.std_error, [r.se for r in res], rtol=1e-12)
    p_raw, p_rw = np.array(rw.p_value), np.array(rw.p_romano_wolf)
    assert np.all(p_rw >= p_raw - 1e-12)
    order = np.argsort(-np.abs(rw.t_stat))
    assert np.all(np.diff(p_rw[order]) >= 0)
    assert p_rw[0] < 0.05 and p_rw[1] > 0.5  # -90 % on y0, nothing on y1
    frame = rw.to_frame()
    assert list(frame.columns) == ["outcome", "estimate", "std_error", "t_stat", "p_value", "p_romano_wolf", "p_bh"]
    assert romano_wolf(res, draws=99, seed=3).to_dict() == rw.to_dict()


def test_romano_wolf_rejects_mixed_estimators():
    panel = county_panel(outcomes=("y0", "y1"))
    with pytest.raises(ValueError, match="one estimator"):
        romano_wolf([fit(panel, "y0", **OPTS), fit(panel, "y1", "imputation")], draws=9, seed=0)


# ------------------------------------------------------------------------------------ determinism

def test_same_numbers_serial_threaded_and_with_more_blas_threads(monkeypatch):
    """The re-fits use the fit's own options, executor included: a CS fit on 2 helper threads or with
    2 BLAS threads gives the same jackknife, pre-trend test and Romano–Wolf as a serial one."""
    from concurrent.futures import ThreadPoolExecutor

    panel = county_panel(seed=6, outcomes=("y0", "y1"))

    def run(**opts):
        res = [fit(panel, o, **opts) for o in ("y0", "y1")]
        return (jackknife(res[0]).to_dict(), pretrend_permutation(res[0], draws=19, seed=2).to_dict(),
                romano_wolf(res, draws=9, seed=2).to_dict())

    serial = run(executor=None)
    with ThreadPoolExecutor(max_workers=2) as ex:
        assert run(executor=ex) == serial
    monkeypatch.setenv("EVALKIT_BLAS_THREADS", "2")
    assert run(executor=None) == serial
