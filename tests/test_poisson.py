"""FE Poisson (PPML): pyfixest fepois reference, known multiplicative effect, zero handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.poisson import estimate_poisson


def _panel(n=400, T=12, effect=1.25, seed=1, n_zero=5):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(24228, 24228 + T), n)
    g = rng.choice([0, 24232, 24234, 24237], size=n)[u]
    D = (t >= g) & (g > 0)
    mu = np.exp(rng.normal(0, 1, n)[u] + 0.05 * (t - 24228) + np.log(effect) * D - 0.5)
    y = rng.poisson(mu).astype(float)
    y[u < n_zero] = 0  # all-zero units
    return pd.DataFrame({"station_id": u, "period": t, "first_treat": g, "y": y,
                         "D": D.astype(float), "district": u % 37})


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _panel()


@pytest.mark.peers
@pytest.mark.parametrize("cluster", [None, "district"])
def test_vs_pyfixest_fepois(panel, cluster):
    pf = pytest.importorskip("pyfixest")
    r = estimate_poisson(panel, "y", cluster=cluster)
    fit = pf.fepois("y ~ D | station_id + period", data=panel, vcov={"CRV1": cluster or "station_id"},
                    iwls_tol=1e-12, fixef_tol=1e-12)
    coef = r.rows("coef").set_index("term").loc["treated:post"]
    assert coef["estimate"] == pytest.approx(float(fit.coef().iloc[0]), abs=1e-6)
    assert coef["std_error"] == pytest.approx(float(fit.se().iloc[0]), rel=1e-5)
    assert r.meta["n_obs"] == fit._N


@pytest.mark.peers
def test_event_study_vs_pyfixest(panel):
    pf = pytest.importorskip("pyfixest")
    r = estimate_poisson(panel, "y", event_study=True)
    d = panel.copy()
    d["rel"] = np.where(d["first_treat"] > 0, d["period"] - d["first_treat"], -1).astype(int)
    fit = pf.fepois("y ~ i(rel, ref=-1) | station_id + period", data=d, vcov={"CRV1": "station_id"},
                    iwls_tol=1e-12, fixef_tol=1e-12)
    coefs = r.rows("coef").set_index("term")
    for name, val in fit.coef().items():
        k = int(float(str(name).split("::")[1]))
        assert coefs.loc[f"e={k}", "estimate"] == pytest.approx(val, abs=1e-6)
        assert coefs.loc[f"e={k}", "std_error"] == pytest.approx(fit.se()[name], rel=1e-5)
    ev = r.event_study().set_index("event_time")
    assert ev.loc[0, "estimate"] == pytest.approx(100 * np.expm1(coefs.loc["e=0", "estimate"]))
    assert "pretrend" in r.meta and r.meta["pretrend"]["df"] > 0


def test_known_effect_recovered():
    df = _panel(n=3000, T=10, effect=1.20, seed=11, n_zero=0)
    r = estimate_poisson(df, "y")
    row = r.overall
    assert row["term"] == "ATT (%)"
    assert row["ci_low"] < 20.0 < row["ci_high"]
    assert r.meta["scale"] == "percent" and r.percent() == pytest.approx(row["estimate"])
    b = r.rows("coef")["estimate"].iloc[0]
    assert row["estimate"] == pytest.approx(100 * np.expm1(b))
    lo, hi = r.rows("coef")[["ci_low", "ci_high"]].iloc[0]
    assert row["ci_low"] == pytest.approx(100 * np.expm1(lo)) and row["ci_high"] == pytest.approx(100 * np.expm1(hi))


def test_zero_units_dropped_and_reported(panel):
    r = estimate_poisson(panel, "y")
    n_all_zero = int((panel.groupby("station_id")["y"].sum() == 0).sum())
    assert r.meta["n_units_dropped_all_zero"] == n_all_zero >= 5
    assert r.meta["n_obs"] == len(panel) - 12 * n_all_zero
    for k in ("control_group", "n_treated", "n_control", "n_periods", "n_clusters", "cluster", "se_type",
              "baseline_mean"):
        assert k in r.meta
    with pytest.raises(ValueError):
        estimate_poisson(panel.assign(y=-panel["y"] - 1), "y")
