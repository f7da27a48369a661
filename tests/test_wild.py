"""Wild cluster bootstrap (WCR) vs the ``wildboottest`` package and FWL identities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe
from evalkit.inference.wild import draw_weights, twfe_design, wcr_test, wild_bootstrap


def county_panel(G=10, per=3, T=20, effect=0.15, seed=1, missing=0.0):
    """Stations nested in counties; adoption by county; county-specific trends (few clusters)."""
    rng = np.random.default_rng(seed)
    n = G * per
    units = np.arange(n)
    county = units // per
    first = np.where(county % 3 == 0, 0, np.array([0, 7, 12])[county % 3])
    uu, tt = np.meshgrid(units, np.arange(T), indexing="ij")
    ff = first[uu]
    d = (ff > 0) & (tt >= ff)
    y = (rng.normal(0, 1, n)[uu] + 0.1 * tt + rng.normal(0, 1, G)[county[uu]] * 0.6 * (tt / T)
         + effect * d + rng.normal(0, 1, uu.shape))
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(),
                       "county": county[uu].ravel(), "y": y.ravel()})
    if missing:
        df = df.drop(df.sample(frac=missing, random_state=seed).index).reset_index(drop=True)
    return df


def _wbt_pvalue(df, x_cols, param, B, weights, seed, shift=0.0):
    sm = pytest.importorskip("statsmodels.api")
    wbt = pytest.importorskip("wildboottest.wildboottest")
    X = pd.get_dummies(df[["station_id", "period"]].astype(str)).astype(float)
    X = X.drop(columns=[c for c in X.columns if c.startswith("period_")][:1])
    for i, (name, col) in enumerate(x_cols.items()):
        X.insert(i, name, col)
    model = sm.OLS(df["y"] - shift * x_cols[param], X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = wbt.wildboottest(model, B=B, cluster=df["county"].to_numpy(), param=param, weights_type=weights,
                               seed=seed, show=False)
    return float(res["p-value"].iloc[0])


@pytest.mark.parametrize(("weights", "B", "effect", "endpoints"), [
    ("rademacher", 9999, 0.15, False), ("webb", 399, 0.1, True)])
def test_static_matches_wildboottest(weights, B, effect, endpoints):
    df = county_panel(per=2, T=14, effect=effect, missing=0.03)
    r = wild_bootstrap(df, "y", cluster="county", B=B, weights=weights, seed=11)
    assert r.estimator == "twfe_wild" and r.meta["n_clusters"] == 10
    assert r.meta["full_enumeration"] == (weights == "rademacher" and B >= 2 ** 10)
    # point estimate = TWFE (the shared engine)
    assert r.att == pytest.approx(estimate_twfe(df, "y").att, abs=1e-10)
    tp = (((df.first_treat > 0) & (df.period >= df.first_treat)).astype(float))
    p_ref = _wbt_pvalue(df, {"treated_post": tp}, "treated_post", B, weights, 11)
    # same draws (full enumeration, or same numpy stream for the same seed) -> identical p-values;
    # under full enumeration the draws v = ±1 reproduce |t| exactly: evalkit counts these ties,
    # wildboottest counts them or not depending on rounding noise (difference 2/2^G at most)
    Bu = r.meta["B"]
    tol = 2.0 / Bu + 1e-12 if r.meta["full_enumeration"] else 1e-12
    assert abs(r.overall["p_value"] - p_ref) <= tol
    assert 0.01 < p_ref < 0.99
    # CI endpoints are where the bootstrap test of beta = r crosses alpha (checked with wildboottest)
    for end in (r.overall["ci_low"], r.overall["ci_high"]) if endpoints else ():
        p_end = _wbt_pvalue(df, {"treated_post": tp}, "treated_post", B, weights, 11, shift=end)
        assert abs(p_end - 0.05) <= 3.0 / Bu + 1e-12


def test_event_coefficient_matches_wildboottest():
    df = county_panel(per=2, effect=0.3, T=12)
    r = wild_bootstrap(df, "y", param="event", cluster="county", leads=2, lags=3, B=9999, seed=3)
    ref = estimate_event_twfe(df, "y", leads=2, lags=3).event_study().set_index("term")
    ev = r.event_study().set_index("term")
    np.testing.assert_allclose(ev.loc[ref.index, "estimate"], ref["estimate"], atol=1e-9)
    des = twfe_design(df, "y", ("event", 2, 3, -1))
    cols = {n: pd.Series(_event_col(df, n), index=df.index) for n in des.names}
    for term in ("e=0",):
        p_ref = _wbt_pvalue(df, cols, term, 9999, "rademacher", 3)
        assert abs(ev.loc[term, "p_value"] - p_ref) <= 2.0 / 1024 + 1e-12  # full enumeration, ties
    assert r.overall["term"] == "mean of post coefficients"


def _event_col(df, name):
    """Event dummy on the shared sample's convention: a cohort after the last period is never treated."""
    k = int(name.split("=")[1])
    g = df.first_treat.where(df.first_treat <= df.period.max(), 0)
    e = np.clip(df.period - g, -2, 3)
    return ((g > 0) & (e == k)).astype(float).to_numpy()


def test_formula_in_r_equals_direct_shift_and_crv1():
    df = county_panel()
    des = twfe_design(df, "y", "static", cluster="county")
    V, _ = draw_weights(des.n_clusters, 499, "webb", seed=5)
    w = wcr_test(des, np.array([1.0]), V)
    for r in (-0.2, 0.05, 0.4):
        w2 = wcr_test(des, np.array([1.0]), V, y=des.y - r * des.X[:, 0])
        np.testing.assert_allclose(w.t_boot(r), w2.t_boot(0.0), rtol=1e-9, atol=1e-9)
    # analytic SE = fixest CRV1 (same small-sample factor as pyfixest)
    pf = pytest.importorskip("pyfixest")
    fit = pf.feols("y ~ treated_post | station_id + period", data=df.assign(
        treated_post=((df.first_treat > 0) & (df.period >= df.first_treat)).astype(float)),
        vcov={"CRV1": "county"})
    assert w.se == pytest.approx(float(fit.se().iloc[0]), rel=1e-8)


def test_deterministic_and_enumeration():
    df = county_panel(G=8)
    a = wild_bootstrap(df, "y", cluster="county", B=999, weights="webb", seed=42)
    b = wild_bootstrap(df, "y", cluster="county", B=999, weights="webb", seed=42)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    e = wild_bootstrap(df, "y", cluster="county", B=999, seed=1)  # 2^8 = 256 <= 999
    assert e.meta["full_enumeration"] and e.meta["B"] == 256
    assert e.overall["p_value"] * 256 == pytest.approx(round(e.overall["p_value"] * 256))
    assert e.overall["ci_low"] < e.att < e.overall["ci_high"]


def test_size_few_clusters_monte_carlo():
    """No effect, 12 county clusters with county shocks: WCR rejection rate near 5%."""
    rej = []
    for s in range(60):
        df = county_panel(G=12, per=2, T=12, effect=0.0, seed=100 + s)
        r = wild_bootstrap(df, "y", cluster="county", B=199, weights="webb", seed=s)
        rej.append(r.overall["p_value"] <= 0.05)
    assert np.mean(rej) <= 0.12
