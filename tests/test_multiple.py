"""BH vs statsmodels; Romano–Wolf stepdown properties and FWER."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.inference.multiple import adjust_pvalues, romano_wolf, stepdown


def test_adjust_matches_statsmodels():
    mt = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 17):
        p = np.concatenate([rng.uniform(0, 0.05, m // 2), rng.uniform(0, 1, m - m // 2)])
        p[0] = p[-1] if m > 1 else p[0]  # a tie
        d = {f"o{i}": v for i, v in enumerate(p)}
        for ours, theirs in (("bh", "fdr_bh"), ("by", "fdr_by"), ("holm", "holm"), ("bonferroni", "bonferroni")):
            got = np.array(list(adjust_pvalues(d, ours).values()))
            ref = mt.multipletests(p, method=theirs)[1]
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)
    out = adjust_pvalues({"a": 0.01, "b": np.nan, "c": 0.04})
    assert np.isnan(out["b"]) and out["a"] == pytest.approx(0.02) and out["c"] == pytest.approx(0.04)


def test_stepdown_monotone_and_above_raw():
    rng = np.random.default_rng(1)
    tb = rng.standard_normal((2000, 4)) @ np.linalg.cholesky(0.5 * np.eye(4) + 0.5).T
    t = np.array([3.0, 0.2, 2.2, 1.5])
    p_rw = stepdown(t, tb)
    p_raw = np.mean(np.abs(tb) >= np.abs(t), axis=0)
    assert np.all(p_rw >= p_raw - 1e-12)
    order = np.argsort(-np.abs(t))
    assert np.all(np.diff(p_rw[order]) >= 0)


def outcomes_panel(G=16, per=2, T=12, effects=(0.0, 0.0, 0.0), rho=0.6, seed=0):
    rng = np.random.default_rng(seed)
    n = G * per
    units = np.arange(n)
    county = units // per
    first = np.where(county % 2 == 0, 0, np.where(county % 4 == 1, 5, 8))
    uu, tt = np.meshgrid(units, np.arange(T), indexing="ij")
    ff = first[uu]
    d = (ff > 0) & (tt >= ff)
    common = rng.normal(0, 1, uu.shape) + rng.normal(0, 1, G)[county[uu]] * tt / T
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(),
                       "county": county[uu].ravel()})
    for k, eff in enumerate(effects):
        own = rng.normal(0, 1, uu.shape)
        df[f"y{k}"] = (np.sqrt(rho) * common + np.sqrt(1 - rho) * own + eff * d).ravel()
    return df


def test_romano_wolf_frame_and_power():
    df = outcomes_panel(effects=(2.0, 0.0, 0.5))
    rw = romano_wolf(df, ["y0", "y1", "y2"], B=999, seed=1, cluster="county", weights="webb")
    assert list(rw.columns[:7]) == ["outcome", "estimate", "std_error", "t_stat", "p_value", "p_romano_wolf", "p_bh"]
    assert np.all(rw.p_romano_wolf >= rw.p_value - 1e-12)
    assert rw.set_index("outcome").loc["y0", "p_romano_wolf"] < 0.05
    order = np.argsort(-np.abs(rw.t_stat.to_numpy()))
    assert np.all(np.diff(rw.p_romano_wolf.to_numpy()[order]) >= 0)
    from evalkit.estimators.twfe import estimate_twfe

    assert rw.estimate.iloc[0] == pytest.approx(estimate_twfe(df, "y0").att, abs=1e-10)
    again = romano_wolf(df, ["y0", "y1", "y2"], B=999, seed=1, cluster="county", weights="webb")
    pd.testing.assert_frame_equal(rw, again)


def test_romano_wolf_fwer_global_null():
    """Global null, 3 correlated outcomes, 16 county clusters: FWER of RW at 5% near nominal."""
    any_rw, any_raw = [], []
    for s in range(60):
        df = outcomes_panel(seed=500 + s)
        rw = romano_wolf(df, ["y0", "y1", "y2"], B=199, seed=s, cluster="county", weights="webb")
        any_rw.append((rw.p_romano_wolf <= 0.05).any())
        any_raw.append((rw.p_value <= 0.05).any())
    assert np.mean(any_rw) <= 0.12
    assert np.mean(any_rw) <= np.mean(any_raw)


def test_romano_wolf_pairs_bootstrap_other_estimator():
    df = outcomes_panel(G=10, effects=(1.0, 0.0))
    rw = romano_wolf(df, ["y0", "y1"], estimator="did2x2", B=9, seed=0, treated_cohort=5, window=3)
    assert rw.method.iloc[0].startswith("cluster pairs") and rw.B.iloc[0] <= 9
    assert np.all(rw.p_romano_wolf >= rw.p_value - 1e-12)
