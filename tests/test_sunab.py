"""Sun & Abraham estimator: pyfixest/fixest saturated event study, brute-force OLS, options."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.sunab import estimate_sunab
from moderndid_refs import load_mpdta


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    m = load_mpdta()
    m["first_treat"] = m["first.treat"]
    return m


@pytest.fixture(scope="module")
def df_het() -> pd.DataFrame:
    """pyfixest's df_het (did/data/df_het.csv, MIT), columns used here; see tests/data/README.md."""
    return pd.read_csv(Path(__file__).parent / "data" / "df_het.csv.gz")


def _brute_force(df, y, unit, time, cohort, ref=-1, min_e=None, max_e=None):
    """Dense saturated regression: unit + time dummies + cohort x rel-period dummies."""
    g = df[cohort].to_numpy(float)
    t = df[time].to_numpy(float)
    tr = g > 0
    e = np.where(tr, t - g, np.nan)
    if min_e is not None:
        e = np.where(e < min_e, min_e, e)
    if max_e is not None:
        e = np.where(e > max_e, max_e, e)
    lab = pd.Series(np.where(tr & (e != ref), [f"{a:g}|{b:g}" for a, b in zip(g, e, strict=True)], ""))
    inter = pd.get_dummies(lab).drop(columns="", errors="ignore").astype(float)
    Tm = pd.get_dummies(df[time].astype(str)).astype(float).iloc[:, 1:]
    X = np.hstack([inter.to_numpy(), Tm.to_numpy()])
    yy = df[y].to_numpy(float)
    # exact within-unit transformation (one-way FE), then dense least squares
    uid = pd.factorize(df[unit])[0]
    cnt = np.bincount(uid)
    X = X - np.stack([np.bincount(uid, weights=X[:, j]) for j in range(X.shape[1])], 1)[uid] / cnt[uid, None]
    yy = yy - (np.bincount(uid, weights=yy) / cnt)[uid]
    b = np.linalg.lstsq(X, yy, rcond=None)[0]
    keys = [tuple(float(v) for v in c.split("|")) for c in inter.columns]
    return dict(zip(keys, b[: inter.shape[1]], strict=True))


def _cells(res):
    c = res.tables["cells"]
    return {(float(a), float(b)): v for a, b, v in zip(c["cohort"], c["event_time"], c["estimate"], strict=True)}


def test_mpdta_cached_reference(mpdta):
    r = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year")
    # equals R did's simple ATT (-0.039951) for a balanced panel with never-treated controls
    assert r.att == pytest.approx(-0.03995127515517465, abs=1e-10)
    assert r.se == pytest.approx(0.011796277441754313, rel=1e-8)
    ev = r.event_study().set_index("event_time")
    assert ev.loc[0, "estimate"] == pytest.approx(-0.01993181678926607, abs=1e-10)
    assert r.meta["n_treated"] == 191 and r.meta["n_control"] == 309 and r.meta["n_clusters"] == 500
    assert set(r.meta["pretrend"]) >= {"stat", "df", "p_value"} and r.meta["pretrend"]["df"] == 3
    assert list(r.vcov["event"].index) == list(r.rows("event")["term"])


def test_mpdta_brute_force(mpdta):
    r = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year")
    bf = _brute_force(mpdta, "lemp", "countyreal", "year", "first_treat")
    mine = _cells(r)
    assert set(mine) == set(bf)
    for k, v in bf.items():
        assert mine[k] == pytest.approx(v, abs=1e-10)


@pytest.mark.peers
@pytest.mark.parametrize("which", ["mpdta", "df_het", "mpdta_coarser_cluster"])
def test_vs_pyfixest_saturated(which, mpdta, df_het):
    pf = pytest.importorskip("pyfixest")
    if which.startswith("mpdta"):
        data, y, unit, time, g = mpdta.copy(), "lemp", "countyreal", "year", "first_treat"
    else:
        data, y, unit, time, g = df_het, "dep_var", "unit", "year", "g"
    cl = unit
    if which.endswith("coarser_cluster"):  # 60 random groups of units (clusters varying within a unit
        # are an input error of the shared sample, STATS-CONTRACT section 1)
        units = data[unit].unique()
        grp = pd.Series(np.random.default_rng(21).choice(60, size=units.size), index=units)
        data["cl"] = grp.reindex(data[unit]).to_numpy()
        cl = "cl"
    r = estimate_sunab(data, y, unit=unit, time=time, cohort=g, cluster=cl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = pf.event_study(data=data, yname=y, idname=unit, tname=time, gname=g,
                            estimator="saturated", cluster=cl)
        agg = es.aggregate()
    tid = es.tidy()
    np.testing.assert_allclose(np.sort(r.tables["cells"]["estimate"]), np.sort(tid["Estimate"]), atol=1e-8)
    np.testing.assert_allclose(np.sort(r.tables["cells"]["std_error"]), np.sort(tid["Std. Error"]), rtol=1e-6)
    ev = r.event_study().set_index("event_time")
    idx = agg.index.astype(float).astype(int)
    np.testing.assert_allclose(ev.loc[idx, "estimate"], agg["Estimate"].astype(float), atol=1e-8)
    np.testing.assert_allclose(ev.loc[idx, "std_error"], agg["Std. Error"].astype(float), rtol=1e-6)


def test_df_het_cached(df_het):
    r = estimate_sunab(df_het, "dep_var", unit="unit", time="year", cohort="g")
    assert r.att == pytest.approx(2.2430052936267875, abs=1e-8)
    assert r.se == pytest.approx(0.04838693156845919, rel=1e-6)


def test_lastcohort_and_binning(mpdta):
    r = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year", control="lastcohort")
    sub = mpdta[(mpdta["first_treat"] > 0) & (mpdta["year"] < 2007)].copy()
    sub.loc[sub["first_treat"] == 2007, "first_treat"] = 0
    bf = _brute_force(sub, "lemp", "countyreal", "year", "first_treat")
    mine = _cells(r)
    assert set(mine) == set(bf)
    for k, v in bf.items():
        assert mine[k] == pytest.approx(v, abs=1e-10)
    assert r.meta["n_control_used"] == 131 and r.meta["n_treated"] + r.meta["n_control"] == r.meta["n_units"]

    rb = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year", bin_e=(-2, 1))
    bfb = _brute_force(mpdta, "lemp", "countyreal", "year", "first_treat", min_e=-2, max_e=1)
    mine = _cells(rb)
    assert set(mine) == set(bfb)
    for k, v in bfb.items():
        assert mine[k] == pytest.approx(v, abs=1e-10)
    assert rb.event_study()["event_time"].tolist() == [-2, 0, 1]


def test_anticipation_reference(mpdta):
    r = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year", anticipation=1)
    assert r.meta["reference_period"] == -2
    assert -2 not in r.event_study()["event_time"].tolist()
    assert r.meta["cohorts_dropped_no_reference"] == [2004.0]
    sub = mpdta[mpdta["first_treat"] != 2004]
    bf = _brute_force(sub, "lemp", "countyreal", "year", "first_treat", ref=-2)
    for k, v in bf.items():
        assert _cells(r)[k] == pytest.approx(v, abs=1e-10)


def test_roundtrip_and_errors(mpdta):
    from evalkit.results import EstimationResult

    r = estimate_sunab(mpdta, "lemp", unit="countyreal", time="year")
    back = EstimationResult.from_dict(r.to_dict())
    assert back.att == pytest.approx(r.att)
    with pytest.raises(ValueError):
        estimate_sunab(mpdta[mpdta["first_treat"] > 0], "lemp", unit="countyreal", time="year")
    with pytest.raises(TypeError):
        estimate_sunab(mpdta, "lemp", unit="countyreal", time="year", bogus=1)
