"""The complete-grid route for many sparse regressors (evalkit.estimators._fe_grid): event-study TWFE and
Sun–Abraham at national scale take it; it must give the sparse route's numbers (tests force it on small
balanced panels by lowering the row threshold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _fe, _fe_grid, sunab
from evalkit.estimators.sunab import estimate_sunab
from evalkit.estimators.twfe import estimate_event_twfe, event_dummies
from moderndid_refs import load_mpdta


def _panel(n0: int = 240, n1: int = 30, seed: int = 3) -> pd.DataFrame:
    """Balanced staggered panel sorted by unit then period; 'county' nests the units (4 per county)."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n0), n1)
    t = np.tile(np.arange(1, n1 + 1), n0)
    g_unit = np.where(rng.random(n0) < 0.6, rng.choice([8, 12, 17, 22], n0), 0)
    g = g_unit[u]
    y = rng.normal(size=u.size) + 0.02 * u + 0.1 * t + 0.7 * ((g > 0) & (t >= g)) * (1 + 0.1 * (t - g))
    return pd.DataFrame({"station_id": [f"s{i:04d}" for i in u], "period": t, "first_treat": g, "y": y,
                         "county": [f"c{i // 4:03d}" for i in u]})


def _force(monkeypatch) -> None:
    monkeypatch.setattr(_fe, "GRID_SPARSE_MIN_ROWS", 0)
    monkeypatch.setattr(sunab, "GRID_SPARSE_MIN_ROWS", 0)


def _close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    assert list(a["term"]) == list(b["term"])
    np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cluster", [None, "county"])
def test_event_twfe_grid_route_equals_sparse_route(monkeypatch, cluster):
    df = _panel()
    before = estimate_event_twfe(df, "y", cluster=cluster, leads=6, lags=10)
    assert "sparse route" in before.meta["inference"]["fe_method"]
    _force(monkeypatch)
    after = estimate_event_twfe(df, "y", cluster=cluster, leads=6, lags=10)
    assert "complete grid" in after.meta["inference"]["fe_method"]
    _close(before.estimates, after.estimates)
    np.testing.assert_allclose(before.vcov["event"].to_numpy(), after.vcov["event"].to_numpy(), rtol=1e-9,
                               atol=1e-15)
    assert before.meta["pretrend"]["p_value"] == pytest.approx(after.meta["pretrend"]["p_value"], rel=1e-9)
    assert before.meta["inference"]["ssc"] == after.meta["inference"]["ssc"]


def test_event_twfe_grid_route_iid(monkeypatch):
    before = estimate_event_twfe(_panel(), "y", vcov="iid", leads=5, lags=8)
    _force(monkeypatch)
    after = estimate_event_twfe(_panel(), "y", vcov="iid", leads=5, lags=8)
    assert "complete grid" in after.meta["inference"]["fe_method"]
    _close(before.estimates, after.estimates)


def test_sunab_grid_route_on_mpdta(monkeypatch):
    m = load_mpdta()
    m["first_treat"] = m["first.treat"]
    before = estimate_sunab(m, "lemp", unit="countyreal", time="year")
    _force(monkeypatch)
    _close(before.estimates, estimate_sunab(m, "lemp", unit="countyreal", time="year").estimates)


@pytest.mark.parametrize("cluster", [None, "county"])
def test_sunab_grid_route_equals_sparse_route(monkeypatch, cluster):
    df = _panel()
    before = estimate_sunab(df, "y", cluster=cluster)
    _force(monkeypatch)
    after = estimate_sunab(df, "y", cluster=cluster)
    _close(before.estimates, after.estimates)
    np.testing.assert_allclose(before.vcov["gt"].to_numpy(), after.vcov["gt"].to_numpy(), rtol=1e-9, atol=1e-15)
    assert before.meta["ssc_factor"] == after.meta["ssc_factor"]
    assert before.meta["n_cells"] == after.meta["n_cells"]


def test_clusters_that_cut_across_units_keep_the_sparse_route(monkeypatch):
    """(The shared sample rejects such clusters; feols itself falls back to the sparse route.)"""
    df = _panel()
    n0, n1 = 240, 30
    g = df["first_treat"].replace(0, np.inf).to_numpy(float)
    X, _ = event_dummies(g, df["period"].to_numpy(float), 6, 14, -1)  # 20 columns: not the dense route
    u, t = np.repeat(np.arange(n0), n1), np.tile(np.arange(n1), n0)
    cl = (t >= 15) * 7 + u % 7
    before = _fe.feols(df["y"].to_numpy(float), X, [u, t], cluster=cl)
    _force(monkeypatch)
    after = _fe.feols(df["y"].to_numpy(float), X, [u, t], cluster=cl, grid=(n0, n1))
    assert "sparse route" in after.fe_method
    np.testing.assert_array_equal(before.vcov, after.vcov)


def test_grid_fit_drops_absorbed_and_collinear_columns():
    df = _panel(60, 12)
    n0, n1 = 60, 12
    g = df["first_treat"].replace(0, np.inf).to_numpy(float)
    X, _ = event_dummies(g, df["period"].to_numpy(float), 3, 4, -1)
    import scipy.sparse as sp

    period_dummy = sp.csr_matrix((df["period"].to_numpy() == 5).astype(float)[:, None])  # absorbed by the periods
    Xa = sp.hstack([X, period_dummy, X[:, :1]], format="csr")  # ... and a duplicate of the first column
    fit = _fe_grid.grid_fit(df["y"].to_numpy(float), Xa, n0, n1, np.repeat(np.arange(n0), n1))
    assert fit.keep.tolist() == [True] * X.shape[1] + [False, False]
