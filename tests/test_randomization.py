"""Randomization inference: fast TWFE path vs estimate_twfe (the shared engine), size and power."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.twfe import estimate_twfe
from evalkit.inference.randomization import permuted_cohorts, randomization_inference
from evalkit.viz.placebo import plot_placebo

matplotlib.use("Agg")


def panel(n=40, T=24, effect=0.0, seed=0, missing=0.0, n_strata=4):
    rng = np.random.default_rng(seed)
    units = np.arange(n)
    first = np.where(units % 3 == 0, 0, np.array([8, 12, 16])[units % 3])
    uu, tt = np.meshgrid(units, np.arange(T), indexing="ij")
    ff = first[uu]
    d = (ff > 0) & (tt >= ff)
    ar = np.zeros((n, T))
    e = rng.normal(0, 1, (n, T))
    for t in range(T):  # serially correlated errors
        ar[:, t] = (0.5 * ar[:, t - 1] if t else 0) + e[:, t]
    y = 10 + rng.normal(0, 2, n)[uu] + np.sin(tt) + effect * d + ar
    df = pd.DataFrame({"station_id": uu.ravel(), "period": 24000 + tt.ravel(),
                       "first_treat": np.where(ff > 0, 24000 + ff, 0).ravel(), "y": y.ravel(),
                       "county": (uu % n_strata).ravel()})
    df["treated"] = ((df.first_treat > 0) & (df.period >= df.first_treat)).astype(int)
    if missing:
        df = df.drop(df.sample(frac=missing, random_state=seed).index).reset_index(drop=True)
    return df


def test_fast_path_equals_estimator_calls():
    df = panel(n=24, T=16, effect=0.5, missing=0.05)
    fast = randomization_inference(df, "y", draws=12, seed=3)
    slow = randomization_inference(df, "y", draws=12, seed=3, estimator=lambda d, o, **k: estimate_twfe(d, o, **k))
    assert fast.meta["fast_path"] and not slow.meta["fast_path"]
    assert fast.att == pytest.approx(estimate_twfe(df, "y").att, abs=1e-10)
    np.testing.assert_allclose(fast.tables["placebo"]["estimate"], slow.tables["placebo"]["estimate"], atol=1e-9)
    f2 = randomization_inference(df, "y", draws=12, seed=3, scheme="placebo_dates")
    s2 = randomization_inference(df, "y", draws=12, seed=3, scheme="placebo_dates", estimator=estimate_twfe_wrap)
    np.testing.assert_allclose(f2.tables["placebo"]["estimate"], s2.tables["placebo"]["estimate"], atol=1e-9)
    assert f2.meta["n_placebo_obs"] < f2.meta["n_obs"]


def estimate_twfe_wrap(d, o, **k):
    return estimate_twfe(d, o, **k)


def test_registry_estimator_and_determinism():
    df = panel(effect=1.0, n=24, T=16)
    a = randomization_inference(df, "y", estimator="did2x2", draws=15, seed=1, treated_cohort=24012, window=4)
    b = randomization_inference(df, "y", estimator="did2x2", draws=15, seed=1, treated_cohort=24012, window=4)
    assert a.estimator == "ri" and a.meta["statistic"] == "did2x2"
    pd.testing.assert_frame_equal(a.tables["placebo"], b.tables["placebo"])


def test_strong_effect_small_p_and_ci():
    df = panel(effect=2.0)
    r = randomization_inference(df, "y", draws=999, seed=0)
    assert r.overall["p_value"] < 0.01
    assert r.overall["ci_low"] < 2.0 < r.overall["ci_high"]
    assert r.meta["draws"] == 999 and len(r.tables["placebo"]) == 999
    assert randomization_inference(df, "y", draws=199, seed=0, scheme="placebo_dates").overall["p_value"] < 0.01


def test_permutation_within_strata():
    g = np.array([0, 5, 6, 0, 7, 8, 9, 0.0])
    s = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    P = permuted_cohorts(g, s, 50, np.random.default_rng(0))
    for k in range(3):
        m = s == k
        assert np.all(np.sort(P[:, m], axis=1) == np.sort(g[m]))
    df = panel(effect=0.0)
    r = randomization_inference(df, "y", draws=99, seed=2, strata="county")
    assert r.meta["strata"] == "county" and 0 < r.overall["p_value"] <= 1


def test_size_monte_carlo_no_effect():
    """100 panels without effect: RI rejection rate at 5% within [0, 0.12] (permute) ."""
    rej, rej_pd = [], []
    for s in range(100):
        df = panel(n=30, T=20, effect=0.0, seed=1000 + s)
        rej.append(randomization_inference(df, "y", draws=199, seed=s).overall["p_value"] <= 0.05)
        if s < 40:
            rej_pd.append(randomization_inference(df, "y", draws=99, seed=s, scheme="placebo_dates",
                                                  ci=False).overall["p_value"] <= 0.05)
    assert 0.0 <= np.mean(rej) <= 0.12
    assert np.mean(rej_pd) <= 0.15


def test_plot_placebo():
    r = randomization_inference(panel(effect=0.3), "y", draws=99, seed=0)
    ax = plot_placebo(r)
    assert len(ax.patches) > 0 and ax.get_lines()
    ax2 = plot_placebo(r, lang="zh")
    assert "随机化" in ax2.get_title()


def _cs_call(d, o, **k):
    from evalkit.estimators.cs import estimate_cs
    return estimate_cs(d, o, **k)


def _imp_call(d, o, **k):
    from evalkit.estimators.imputation import estimate_imputation
    return estimate_imputation(d, o, **k)


@pytest.mark.parametrize(("name", "call", "opts"), [
    ("cs", _cs_call, {}),
    ("cs", _cs_call, {"control": "notyet", "weights": "pop", "trim_e": (-4, 6)}),
    ("imputation", _imp_call, {}),
    ("imputation", _imp_call, {"weights": "pop", "anticipation": 1}),
])
@pytest.mark.parametrize("scheme", ["permute", "placebo_dates"])
def test_headline_estimators_fast_equal_brute_force(name, call, opts, scheme):
    df = panel(n=30, T=20, effect=0.7, seed=4)
    df["pop"] = 1.0 + df["station_id"] % 3
    kw = dict(draws=25, seed=9, scheme=scheme, cluster="county", **opts)
    fast = randomization_inference(df, "y", estimator=name, **kw)
    slow = randomization_inference(df, "y", estimator=call, **kw)  # a callable: one full estimator call per draw
    assert not slow.meta["fast_path"]
    if name == "imputation" or scheme == "permute":  # CS placebo dates move the cohort levels: refits
        assert fast.meta["fast_path"]
    np.testing.assert_allclose(fast.tables["placebo"]["estimate"], slow.tables["placebo"]["estimate"],
                               rtol=0, atol=1e-10, equal_nan=True)
    assert fast.att == pytest.approx(slow.att, abs=1e-12)
    assert fast.overall["p_value"] == pytest.approx(slow.overall["p_value"], abs=1e-10)
    assert fast.meta["p_value_right"] == pytest.approx(slow.meta["p_value_right"], abs=1e-10)


@pytest.mark.parametrize("name", ["cs", "imputation"])
def test_headline_placebo_centred_on_no_effect_panel(name):
    df = panel(n=60, T=30, effect=0.0, seed=2)
    ri = randomization_inference(df, "y", estimator=name, draws=199, seed=0)
    pl = ri.tables["placebo"]["estimate"].to_numpy()
    assert ri.meta["fast_path"] and np.isfinite(pl).all()
    assert abs(pl.mean()) < 3 * pl.std() / np.sqrt(pl.size) + 0.02  # centred on zero
    assert 0.02 < ri.overall["p_value"] <= 1.0
    again = randomization_inference(df, "y", estimator=name, draws=199, seed=0)
    pd.testing.assert_frame_equal(ri.tables["placebo"], again.tables["placebo"])  # same seed, same numbers


def test_ri_options_switch_imputation_pretrend_off_same_numbers():
    """ri_options: imputation's own pre-trend test is switched off (pretrend_leads=0), not left to
    its default (every lead: a second regression per fit); the RI result is the same."""
    from evalkit.evaluation_steps import ri_options
    from evalkit.params import validate_params

    p = validate_params({"evaluation_id": "ri", "reform": "两队一室", "outcomes": ["incidents_fight"],
                         "warehouse": "w.duckdb", "headline": "imputation", "estimators": ["imputation"]})
    opts = ri_options(p)
    assert opts["pretrend_leads"] == 0
    df = panel(n=30, T=20, effect=0.7, seed=4)
    kw = dict(draws=25, seed=9, scheme="permute", cluster="county")
    off = randomization_inference(df, "y", estimator="imputation", **kw, **opts)
    on = randomization_inference(df, "y", estimator="imputation", **kw,
                                 **{k: v for k, v in opts.items() if k != "pretrend_leads"})
    assert off.meta["fast_path"] and on.meta["fast_path"]
    pd.testing.assert_frame_equal(off.estimates, on.estimates)
    pd.testing.assert_frame_equal(off.tables["placebo"], on.tables["placebo"])
