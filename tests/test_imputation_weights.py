"""Issue 13: observation weights in the BJS imputation estimator (R didimputation ``wname``, did2s /
pyfixest ``did2s(..., weights=)``).

Point estimate reference: pyfixest 0.60.0 ``did2s(df_het, first_stage="~0|state+year",
second_stage="~treat", treatment="treat", cluster="state", weights="w")`` with ``w = 1 + unit % 5``.
pyfixest recovers the first-stage fixed effects by LSQR with atol = btol = 1e-6, which moves its
estimate by ~6e-7; with 1e-14 (see ``test_weighted_att_vs_pyfixest_did2s_live``) it is the exact WLS
value cached below. SEs: did2s reports the Gardner GMM SE, not the BJS variance (unweighted on df_het
0.047607 vs BJS 0.039312, tests/test_imputation.py), so its weighted SE is cached for the record only
and evalkit's SEs are checked against a brute-force weighted BJS variance (dense matrices) instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.imputation import estimate_imputation
from fe_refs import short_panel

PF_VERSION = "0.60.0"
PF_W_ATT = 2.1459663244332767  # did2s weighted point estimate (LSQR tolerances 1e-14)
PF_W_SE = 0.0544229413125262  # did2s weighted GMM SE clustered by state (a different variance; not compared)


@pytest.fixture(scope="module")
def df_het() -> pd.DataFrame:
    """pyfixest's df_het (MIT, tests/data/README.md) with a deterministic positive weight column."""
    d = pd.read_csv(Path(__file__).parent / "data" / "df_het.csv.gz")
    return d.assign(w=1.0 + (d["unit"] % 5))


def _panel() -> pd.DataFrame:
    """short_panel with time-varying positive weights (every cohort x event-time cell has >= 2 units)."""
    d = short_panel()
    return d.assign(w=d["pop"] / 1e4 * (1 + 0.1 * d["period"]), k=1 + d["station_id"] % 3)


def _dense_wbjs(df, y, fe_unit, time, g, cluster, w, leaveout):
    """Brute-force weighted BJS (Theorem 3 with observation weights), dense matrices.

    WLS of y on unit + time dummies over Omega_0; v_1 = w / sum w over each estimand's target set;
    v_0 = -W_0 Z_0 (Z_0'W_0Z_0)^{-1} Z_1'v_1; residuals: WLS residuals on Omega_0 and
    tau - (w^2-weighted cohort x event-time mean of tau) on Omega_1; with ``leaveout`` that mean
    excludes the own cluster (one observation per cluster and cell here).
    Returns {term: (estimate, se)} for "ATT" and each event time.
    """
    treat = ((df[time] >= df[g]) & (df[g] > 0)).to_numpy()
    Z = np.hstack([pd.get_dummies(df[fe_unit].astype(str)).to_numpy(float),
                   pd.get_dummies(df[time].astype(str)).to_numpy(float)[:, 1:]])
    ww = df[w].to_numpy(float)
    Z0, Z1, w0, w1 = Z[~treat], Z[treat], ww[~treat], ww[treat]
    yv = df[y].to_numpy(float)
    sq = np.sqrt(w0)
    b = np.linalg.lstsq(Z0 * sq[:, None], yv[~treat] * sq, rcond=None)[0]
    tau = yv[treat] - Z1 @ b
    eps0 = yv[~treat] - Z0 @ b
    sub = df[treat]
    gg, ee, cl = sub[g].to_numpy(), (sub[time] - sub[g]).to_numpy(), sub[cluster].to_numpy()
    tau_bar = np.empty(tau.size)
    for i in range(tau.size):
        m = (gg == gg[i]) & (ee == ee[i]) & ((cl != cl[i]) if leaveout else True)
        tau_bar[i] = np.sum(w1[m] ** 2 * tau[m]) / np.sum(w1[m] ** 2)
    eps1 = tau - tau_bar
    M = Z0.T @ (Z0 * w0[:, None])
    clusters = df[cluster].to_numpy()
    out = {}
    targets = {"ATT": np.ones(tau.size, bool)} | {f"e={int(e)}": ee == e for e in np.unique(ee)}
    for term, m in targets.items():
        v1 = np.where(m, w1, 0.0) / w1[m].sum()
        v0 = -w0 * (Z0 @ np.linalg.solve(M, Z1.T @ v1))
        v = np.zeros(len(df))
        eps = np.zeros(len(df))
        v[treat], v[~treat], eps[treat], eps[~treat] = v1, v0, eps1, eps0
        s = pd.Series(v * eps).groupby(clusters).sum()
        out[term] = (float(v1 @ tau), float(np.sqrt((s**2).sum())))
    return out


def _table(r):
    return r.estimates.set_index("term")[["estimate", "std_error"]]


@pytest.mark.parametrize("leaveout", [True, False])
def test_constant_weights_equal_unweighted(leaveout):
    d = _panel().assign(c=3.7)
    a = estimate_imputation(d, "y", leaveout=leaveout)
    b = estimate_imputation(d, "y", leaveout=leaveout, weights="c")
    np.testing.assert_allclose(_table(b).to_numpy(), _table(a).to_numpy(), atol=1e-12, rtol=0)
    assert b.meta["pretrend"]["stat"] == pytest.approx(a.meta["pretrend"]["stat"], rel=1e-10)
    assert b.meta["weights"] == "c" and b.meta["inference"]["weighted"]
    assert a.meta["weights"] is None and not a.meta["inference"]["weighted"]


def test_constant_weights_equal_unweighted_df_het(df_het):
    d = df_het.assign(c=0.25)
    kw = dict(unit="state", time="year", cohort="g", cluster="state", repeated_cross_section=True)
    a = estimate_imputation(d, "dep_var", **kw)
    b = estimate_imputation(d, "dep_var", weights="c", **kw)
    np.testing.assert_allclose(_table(b).to_numpy(), _table(a).to_numpy(), atol=1e-12, rtol=0)


def test_weighted_att_matches_did2s_and_brute_force_bjs(df_het):
    r = estimate_imputation(df_het, "dep_var", unit="state", time="year", cohort="g", cluster="state",
                            repeated_cross_section=True, leaveout=False, weights="w")
    assert r.att == pytest.approx(PF_W_ATT, abs=1e-8)
    unweighted = estimate_imputation(df_het, "dep_var", unit="state", time="year", cohort="g", cluster="state",
                                     repeated_cross_section=True, leaveout=False)
    assert abs(r.att - unweighted.att) > 1e-3  # the weights matter here
    ref = _dense_wbjs(df_het, "dep_var", "state", "year", "g", "state", "w", leaveout=False)
    tab = _table(r)
    assert set(ref) == set(tab.index)
    for term, (est, se) in ref.items():
        assert tab.loc[term, "estimate"] == pytest.approx(est, abs=1e-10)
        assert tab.loc[term, "std_error"] == pytest.approx(se, rel=1e-8)


@pytest.mark.parametrize("leaveout", [True, False])
def test_weighted_panel_matches_brute_force_bjs(leaveout):
    d = _panel()
    r = estimate_imputation(d, "y", weights="w", leaveout=leaveout)
    assert r.meta["leaveout_pooled"] is None or r.meta["leaveout_pooled"]["cohort_event"] == r.meta["n_obs_treated"]
    ref = _dense_wbjs(d, "y", "station_id", "period", "first_treat", "station_id", "w", leaveout=leaveout)
    tab = _table(r)
    for term, (est, se) in ref.items():
        assert tab.loc[term, "estimate"] == pytest.approx(est, abs=1e-10)
        assert tab.loc[term, "std_error"] == pytest.approx(se, rel=1e-8)


def test_integer_weights_equal_duplicated_rows():
    """Frequency-weight check: weight k == the row repeated k times (point estimates; and the
    leave-out SE, whose cell averages weight each cluster by its weight sum as by its row count)."""
    d = _panel()
    r = estimate_imputation(d, "y", weights="k")
    dup = d.loc[d.index.repeat(d["k"])].reset_index(drop=True)
    r2 = estimate_imputation(dup, "y", unit="station_id", repeated_cross_section=True)
    np.testing.assert_allclose(_table(r)["estimate"], _table(r2)["estimate"], atol=1e-10, rtol=0)
    np.testing.assert_allclose(_table(r)["std_error"], _table(r2)["std_error"], rtol=1e-8)
    assert abs(r.att - estimate_imputation(d, "y").att) > 1e-4


def test_bad_and_zero_weights():
    d = _panel()
    d.loc[7, "w"] = -1.0
    with pytest.raises(ValueError, match="'w'.*negative weight"):
        estimate_imputation(d, "y", weights="w")
    with pytest.raises(ValueError, match="'w'.*negative weight"):
        estimate_imputation(d, "y", weights="w", repeated_cross_section=True)
    d.loc[7, "w"] = 0.0  # a weight-0 row is left out (as fixest / fe_sample)
    r = estimate_imputation(d, "y", weights="w", repeated_cross_section=True)
    r2 = estimate_imputation(d.drop(index=7), "y", weights="w", repeated_cross_section=True)
    np.testing.assert_allclose(_table(r).to_numpy(), _table(r2).to_numpy(), atol=1e-12)
    assert r.meta["dropped_zero_weight"] == 1 and r2.meta["dropped_zero_weight"] == 0
    assert estimate_imputation(d, "y", weights="w").meta["dropped_zero_weight"] == 1


@pytest.mark.peers
def test_weighted_att_vs_pyfixest_did2s_live(df_het, monkeypatch):
    pf = pytest.importorskip("pyfixest")
    if pf.__version__ != PF_VERSION:
        pytest.skip(f"cached numbers are from pyfixest {PF_VERSION}")
    from pyfixest.estimation.models.feols_ import Feols

    # tighten the LSQR recovery of the first-stage fixed effects (default atol = btol = 1e-6)
    fixef, predict = Feols.fixef, Feols.predict
    monkeypatch.setattr(Feols, "fixef", lambda self, atol=1e-14, btol=1e-14: fixef(self, atol=1e-14, btol=1e-14))
    monkeypatch.setattr(Feols, "predict", lambda self, newdata=None, **k: predict(
        self, newdata=newdata, **{**k, "atol": 1e-14, "btol": 1e-14}))
    fit = pf.did2s(df_het, yname="dep_var", first_stage="~0|state+year", second_stage="~treat",
                   treatment="treat", cluster="state", weights="w")
    assert float(fit.coef().iloc[0]) == pytest.approx(PF_W_ATT, abs=1e-10)
    assert float(fit.se().iloc[0]) == pytest.approx(PF_W_SE, rel=1e-8)
    r = estimate_imputation(df_het, "dep_var", unit="state", time="year", cohort="g", cluster="state",
                            repeated_cross_section=True, weights="w")
    assert r.att == pytest.approx(float(fit.coef().iloc[0]), abs=1e-8)


def test_cli_estimate_weights_reaches_imputation(tmp_path):
    """``evalkit estimate --method imputation --weights COLUMN`` runs the weighted estimator."""
    import json
    import subprocess
    import sys

    from evalkit.results import EstimationResult

    d = _panel()
    f, out = tmp_path / "panel.csv", tmp_path / "imp.json"
    d.to_csv(f, index=False)
    proc = subprocess.run([sys.executable, "-m", "evalkit", "estimate", str(f), "--outcome", "y", "--method",
                           "imputation", "--weights", "w", "--json", str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    res = EstimationResult.from_dict(json.loads(out.read_text(encoding="utf-8")))
    assert res.meta["weights"] == "w"
    assert res.att == pytest.approx(estimate_imputation(d, "y", weights="w").att, abs=1e-12)
