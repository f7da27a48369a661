"""BJS imputation estimator: did2s point estimate (R), dense brute force of the BJS variance
(in-sample and leave-out), event-time estimates vs pyfixest did2s, pre-trend test vs pyfixest feols."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.imputation import estimate_imputation

R_DID2S_ATT = 2.152215  # R did2s, first stage ~0 | state + year, cached in pyfixest's tests
R_DID2S_SE = 0.047607  # its GMM SE clustered by state (not the BJS variance)


@pytest.fixture(scope="module")
def df_het() -> pd.DataFrame:
    """pyfixest's df_het (did/data/df_het.csv, MIT), the columns used; see tests/data/README.md."""
    return pd.read_csv(Path(__file__).parent / "data" / "df_het.csv.gz")


def _dense_bjs(df, y, fe_unit, time, g, cluster):
    """Brute-force BJS: dense Z, v* = -Z0 (Z0'Z0)^-1 Z1'w, tau_bar by cohort x event time."""
    treat = ((df[time] >= df[g]) & (df[g] > 0)).to_numpy()
    Z = np.hstack([pd.get_dummies(df[fe_unit].astype(str)).to_numpy(float),
                   pd.get_dummies(df[time].astype(str)).to_numpy(float)[:, 1:]])
    Z0, Z1 = Z[~treat], Z[treat]
    yv = df[y].to_numpy(float)
    b = np.linalg.lstsq(Z0, yv[~treat], rcond=None)[0]
    tau = yv[treat] - Z1 @ b
    w = np.full(treat.sum(), 1 / treat.sum())
    v = np.zeros(len(df))
    v[treat] = w
    v[~treat] = -Z0 @ np.linalg.lstsq(Z0.T @ Z0, Z1.T @ w, rcond=None)[0]
    eps = np.zeros(len(df))
    eps[~treat] = yv[~treat] - Z0 @ b
    sub = df[treat]
    eps[treat] = tau - pd.Series(tau).groupby([sub[g].to_numpy(), (sub[time] - sub[g]).to_numpy()]).transform("mean").to_numpy()
    s = pd.Series(v * eps).groupby(df[cluster].to_numpy()).sum()
    ev_means = pd.Series(tau).groupby((sub[time] - sub[g]).to_numpy()).mean()
    return float(w @ tau), float(np.sqrt((s**2).sum())), ev_means


def test_df_het_state_fe_matches_r_did2s(df_het):
    r = estimate_imputation(df_het, "dep_var", unit="state", time="year", cohort="g", cluster="state",
                            repeated_cross_section=True, leaveout=False)
    # imputation point estimate == did2s point estimate (R 2.152215 to its 6 printed digits)
    assert r.att == pytest.approx(R_DID2S_ATT, abs=5e-7)
    assert r.att == pytest.approx(2.1522146324054, abs=1e-10)  # exact dense least squares
    att, se, ev_means = _dense_bjs(df_het, "dep_var", "state", "year", "g", "state")
    assert r.att == pytest.approx(att, abs=1e-10)
    ev = r.event_study().set_index("event_time")["estimate"]
    np.testing.assert_allclose(ev.loc[ev_means.index.astype(int)].to_numpy(), ev_means.to_numpy(), atol=1e-10)
    assert r.se == pytest.approx(se, rel=1e-8)
    # BJS conservative SE is smaller than did2s's GMM SE here (documented)
    assert r.se == pytest.approx(0.03931169632731905, rel=1e-6)
    assert r.se < R_DID2S_SE
    assert r.meta["n_obs"] == len(df_het)


@pytest.mark.peers
def test_event_time_vs_pyfixest_did2s(df_het):
    pf = pytest.importorskip("pyfixest")
    # state + year first stage (the R reference specification; unit FE make pyfixest's dense
    # GMM-variance model matrix slow)
    r = estimate_imputation(df_het, "dep_var", unit="state", time="year", cohort="g", cluster="state",
                            repeated_cross_section=True)
    fit = pf.did2s(df_het, yname="dep_var", first_stage="~0|state+year",
                   second_stage="~i(rel_year, ref=-1.0)", treatment="treat", cluster="state")
    coef = fit.coef()
    ev = r.event_study().set_index("event_time")
    n = 0
    for name, val in coef.items():
        k = float(str(name).split("::")[1])
        if np.isfinite(k) and k >= 0:
            # pyfixest solves the first stage by iterative demeaning (its default tolerance leaves
            # errors of ~2e-6 here; ours is exact, see the dense check above)
            assert ev.loc[int(k), "estimate"] == pytest.approx(val, abs=1e-5)
            n += 1
    assert n == 21
    # R did2s reference for the state-FE specification, reproduced by pyfixest
    st = pf.did2s(df_het, yname="dep_var", first_stage="~0|state+year", second_stage="~treat",
                  treatment="treat", cluster="state")
    assert float(st.se().iloc[0]) == pytest.approx(R_DID2S_SE, abs=1e-5)
    assert r.att == pytest.approx(float(st.coef().iloc[0]), abs=1e-6)


@pytest.mark.peers
def test_pretrend_vs_pyfixest(df_het):
    pf = pytest.importorskip("pyfixest")
    r = estimate_imputation(df_het, "dep_var", unit="unit", time="year", cohort="g", pretrend_leads=3)
    d = df_het[~df_het["treat"]].copy()
    d["lead"] = np.where((d["g"] > 0) & (d["rel_year"] >= -3), d["rel_year"], 0).astype(int)
    fit = pf.feols("dep_var ~ i(lead, ref=0) | unit + year", data=d, vcov={"CRV1": "unit"})
    tab = r.tables["pretrend_leads"].set_index("event_time")
    for name, val in fit.coef().items():
        k = float(str(name).split("::")[1])
        assert tab.loc[k, "estimate"] == pytest.approx(val, abs=1e-6)
        assert tab.loc[k, "std_error"] == pytest.approx(fit.se()[name], rel=1e-5)
    assert r.meta["pretrend"]["df"] == 3
    assert 0 <= r.meta["pretrend"]["p_value"] <= 1


def test_horizons_anticipation_and_meta(df_het):
    r = estimate_imputation(df_het, "dep_var", unit="unit", time="year", cohort="g", horizons=5)
    assert r.event_study()["event_time"].tolist() == [0, 1, 2, 3, 4, 5]
    assert r.vcov["event"].shape == (6, 6)
    ra = estimate_imputation(df_het, "dep_var", unit="unit", time="year", cohort="g", anticipation=1,
                             horizons=[-1, 0, 1])
    assert ra.event_study()["event_time"].tolist() == [-1, 0, 1]
    assert ra.meta["n_obs_untreated"] < r.meta["n_obs_untreated"]
    for k in ("control_group", "n_treated", "n_control", "n_obs", "n_periods", "n_clusters", "cluster",
              "se_type", "baseline_mean"):
        assert k in r.meta
    # horizon estimates are the plain means of tau at each event time, overall = their obs-weighted mean
    ev = r.event_study()
    assert np.isfinite(ev["std_error"]).all()


# ---------------------------------------------------------------------------- leave-out variance
def _dense_leaveout(df, y, unit, time, g):
    """Brute-force leave-out BJS variance for every estimand (overall + each event time), unit clusters.

    tau_tilde_it = average of tau over the treated observations of OTHER units in the same
    cohort x event-time cell, each weighted by its unit's number of observations in the pool
    (did_imputation's "smart" average); if no other unit is in the cell: same event time across
    cohorts; if none either: all treated observations.
    """
    treat = ((df[time] >= df[g]) & (df[g] > 0)).to_numpy()
    Z = np.hstack([pd.get_dummies(df[unit].astype(str)).to_numpy(float),
                   pd.get_dummies(df[time].astype(str)).to_numpy(float)[:, 1:]])
    Z0, Z1 = Z[~treat], Z[treat]
    yv = df[y].to_numpy(float)
    b = np.linalg.lstsq(Z0, yv[~treat], rcond=None)[0]
    tau = yv[treat] - Z1 @ b
    sub = df[treat]
    u1, g1 = sub[unit].to_numpy(), sub[g].to_numpy()
    e1 = (sub[time] - sub[g]).to_numpy()
    tt = np.empty(tau.size)
    for i in range(tau.size):
        for pool in ((g1 == g1[i]) & (e1 == e1[i]), e1 == e1[i], np.ones(tau.size, bool)):
            m = pool & (u1 != u1[i])
            if m.any():
                n_u = pd.Series(u1[pool]).value_counts()
                wts = n_u.loc[u1[m]].to_numpy(float)
                tt[i] = wts @ tau[m] / wts.sum()
                break
    eps = np.zeros(len(df))
    eps[~treat] = yv[~treat] - Z0 @ b
    eps[treat] = tau - tt
    ses = {}
    W = {"ATT": np.full(tau.size, 1 / tau.size)}
    for ev in np.unique(e1):
        W[f"e={int(ev)}"] = (e1 == ev) / (e1 == ev).sum()
    for name, w in W.items():
        v = np.zeros(len(df))
        v[treat] = w
        v[~treat] = -Z0 @ np.linalg.lstsq(Z0.T @ Z0, Z1.T @ w, rcond=None)[0]
        s = pd.Series(v * eps).groupby(df[unit].to_numpy()).sum()
        ses[name] = float(np.sqrt((s**2).sum()))
    return ses


@pytest.fixture(scope="module")
def tiny_singletons() -> pd.DataFrame:
    """9 units x 8 periods: cohort 5 has ONE unit (its e=3 cell is also alone at event time 3),
    cohort 6 two units, cohort 7 three units, three never-treated units."""
    rng = np.random.default_rng(7)
    g_of = {0: 5, 1: 6, 2: 6, 3: 7, 4: 7, 5: 7, 6: 0, 7: 0, 8: 0}
    rows = []
    a = rng.normal(0, 1, 9)
    lam = rng.normal(0, 1, 9)
    for u, gg in g_of.items():
        for t in range(1, 9):
            d = gg > 0 and t >= gg
            eff = (1.0 + 0.5 * (t - gg) + 0.3 * u) if d else 0.0
            rows.append({"station_id": u, "period": t, "first_treat": gg,
                         "y": a[u] + lam[t] + eff + rng.normal(0, 1)})
    return pd.DataFrame(rows)


def test_leaveout_brute_force_tiny_panel(tiny_singletons):
    df = tiny_singletons
    r = estimate_imputation(df, "y")
    assert r.meta["leaveout"] is True
    assert "leave-out" in r.meta["se_type"]
    # cohort-5 cells are singletons -> pooled; its e=3 cell is alone at event time 3 too
    assert r.meta["leaveout_pooled"] == {"cohort_event": 12, "event_time": 3, "all_treated": 1,
                                         "not_leaveout": 0}
    ses = _dense_leaveout(df, "y", "station_id", "period", "first_treat")
    got = r.estimates.set_index("term")["std_error"]
    for name, se in ses.items():
        assert got[name] == pytest.approx(se, rel=1e-9), name
    # the in-sample version still equals the original brute force
    r0 = estimate_imputation(df, "y", leaveout=False)
    assert r0.att == pytest.approx(r.att, abs=1e-12)
    _, se0, _ = _dense_bjs(df, "y", "station_id", "period", "first_treat", "station_id")
    assert r0.se == pytest.approx(se0, rel=1e-9)
    assert "not leave-out" in r0.meta["se_type"] and r0.meta["leaveout"] is False
    # leave-out >= in-sample: overall and at every event time
    got0 = r0.estimates.set_index("term")["std_error"]
    assert (got.to_numpy() >= got0.loc[got.index].to_numpy() - 1e-12).all()
    assert r.se > 1.05 * r0.se


def test_leaveout_default_df_het(df_het):
    kw = dict(unit="state", time="year", cohort="g", cluster="state", repeated_cross_section=True)
    r1 = estimate_imputation(df_het, "dep_var", **kw)
    r0 = estimate_imputation(df_het, "dep_var", leaveout=False, **kw)
    assert r1.att == pytest.approx(2.1522146324054, abs=1e-10)  # point estimate unchanged
    assert r0.se == pytest.approx(0.03931169632731905, rel=1e-8)
    assert r1.se >= r0.se
    assert r1.se == pytest.approx(0.0394493833, rel=1e-6)
    assert r1.meta["leaveout_pooled"]["cohort_event"] == r1.meta["n_obs_treated"]
    ru1 = estimate_imputation(df_het, "dep_var", unit="unit", time="year", cohort="g")
    ru0 = estimate_imputation(df_het, "dep_var", unit="unit", time="year", cohort="g", leaveout=False)
    assert ru1.se >= ru0.se
    ev1 = ru1.event_study()["std_error"].to_numpy()
    ev0 = ru0.event_study()["std_error"].to_numpy()
    assert (ev1 >= ev0).all()


def test_leaveout_single_treated_unit_falls_back(tiny_singletons):
    df = tiny_singletons[tiny_singletons["first_treat"].isin([0, 5])]
    with pytest.warns(RuntimeWarning, match="only one treated cluster"):
        r = estimate_imputation(df, "y")
    assert r.meta["leaveout_pooled"]["not_leaveout"] == r.meta["n_obs_treated"]
    r0 = estimate_imputation(df, "y", leaveout=False)
    assert r.se == pytest.approx(r0.se, rel=1e-12)
