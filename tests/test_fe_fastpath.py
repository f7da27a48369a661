"""The fit engine's fast path for balanced panels (``feols(grid=)``, ``Within(grid=True)``,
``FESample.grid``) gives the same numbers as the general route, and the peers agree (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _fe
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators._fe_within import Within
from evalkit.estimators.imputation import estimate_imputation
from evalkit.estimators.twfe import estimate_twfe


def _panel(n: int, T: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    first = rng.choice([0, T // 3, T // 2, 2 * T // 3], n)[u]
    y = rng.normal(size=n)[u] + 0.01 * t + ((first > 0) & (t >= first)) * 0.3 + rng.normal(size=u.size)
    return pd.DataFrame({"station_id": u, "period": t, "first_treat": first, "y": y, "county": u % 5,
                         "pop": rng.uniform(1, 5, n)[u]})


def _sample(d: pd.DataFrame, **kw):
    return fe_sample(d, "y", unit="station_id", time="period", cohort="first_treat", **{"cluster": None, **kw})


@pytest.mark.parametrize("n,T", [(120, 15), (6, 40)])  # more units than periods, and fewer
@pytest.mark.parametrize("vcov,cluster", [("CRV1", "unit"), ("CRV1", "county"), ("iid", None), ("hetero", None)])
def test_grid_route_equals_general_route(n, T, vcov, cluster):
    d = _panel(n, T, seed=n)
    s = _sample(d, cluster=None if cluster in (None, "unit") else cluster)
    assert s.grid == (n, T)
    D = (np.isfinite(s.cohort) & (s.period >= s.cohort)).astype(float)
    x2 = np.random.default_rng(1).normal(size=D.size)
    X = np.column_stack([D, x2, 2 * D - x2, s.unit.astype(float)])  # a collinear and an absorbed column
    cl = s.cluster if vcov == "CRV1" else None
    a = _fe.feols(s.y, X, [s.unit, s.time], cluster=cl, vcov=vcov, grid=s.grid)
    b = _fe.feols(s.y, X, [s.unit.copy(), s.time.copy()], cluster=None if cl is None else cl.copy(), vcov=vcov)
    np.testing.assert_array_equal(a.keep, [True, True, False, False])
    np.testing.assert_array_equal(a.keep, b.keep)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.vcov, b.vcov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(a.resid, b.resid, atol=1e-12)
    assert (a.ssc, a.dof_k, a.df_t, a.n_clusters) == (b.ssc, b.dof_k, b.df_t, b.n_clusters)


def test_grid_only_for_balanced_unweighted_samples():
    d = _panel(30, 10)
    assert _sample(d).grid == (30, 10)
    assert _sample(d.drop(index=[5, 17])).grid is None  # unbalanced
    assert _sample(d, weights="pop").grid is None  # weighted: the general weighted route
    shuffled = d.sample(frac=1.0, random_state=0)  # the shared sample sorts the rows: still a grid
    s = _sample(shuffled)
    assert s.grid == (30, 10)
    r1, r2 = estimate_twfe(d, "y"), estimate_twfe(shuffled, "y")
    assert r1.att == pytest.approx(r2.att, rel=1e-12) and r1.se == pytest.approx(r2.se, rel=1e-12)


def test_within_grid_hint_equals_verified_route_and_rejects_bad_codes():
    d = _panel(50, 12)
    s = _sample(d)
    V = np.random.default_rng(2).normal(size=(s.y.size, 3))
    a = Within([s.unit, s.time], levels=[50, 12], grid=True).transform(V)
    b = Within([s.unit, s.time]).transform(V)
    np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="grid"):
        Within([s.unit[::-1].copy(), s.time], levels=[50, 12], grid=True)
    with pytest.raises(ValueError, match="grid"):
        Within([s.unit[:-1], s.time[:-1]], levels=[50, 12], grid=True)


def test_twfe_fast_path_equals_unbalanced_route():
    """Static TWFE on a balanced panel (grid route) equals the engine's general route on the same rows."""
    d = _panel(200, 24, seed=3)
    r = estimate_twfe(d, "y")
    s = _sample(d)
    D = (np.isfinite(s.cohort) & (s.period >= s.cohort)).astype(float)
    f = _fe.feols(s.y, D, [s.unit.copy(), s.time.copy()], cluster=s.cluster.copy())
    assert r.att == pytest.approx(f.coef[0], rel=1e-12)
    assert r.se == pytest.approx(f.se[0], rel=1e-10)


@pytest.mark.peers
@pytest.mark.parametrize("cluster", ["station_id", "county"])
def test_live_pyfixest_static_twfe_balanced(cluster):
    pf = pytest.importorskip("pyfixest")
    d = _panel(300, 20, seed=4)
    r = estimate_twfe(d, "y", cluster=cluster)
    g = d["first_treat"].replace(0, np.inf).to_numpy(float)
    f = pf.feols("y ~ D | station_id + period", data=d.assign(D=(d["period"].to_numpy() >= g).astype(float)),
                 vcov={"CRV1": cluster}, fixef_tol=1e-14)
    assert r.att == pytest.approx(f.coef().iloc[0], rel=1e-8)
    assert r.se == pytest.approx(f.se().iloc[0], rel=1e-8)


@pytest.mark.peers
def test_live_did_imputation_overall_att_non_leaveout():
    """did-imputation (PyPI, MIT; Borusyak–Jaravel–Spiess's Stata command ported) has no leave-out
    variance: ours with ``leaveout=False`` is the same estimator and variance. Its fixed effects come
    from iterative demeaning and weight updates to tolerance 1e-6, so equality is to ~1e-6."""
    di = pytest.importorskip("did_imputation")
    d = _panel(400, 16, seed=5)
    r = estimate_imputation(d, "y", leaveout=False, pretrend_leads=0)
    o = di.did_imputation(d.assign(Ei=d["first_treat"].replace(0, np.nan).astype(float)), "y", "station_id",
                          "period", "Ei", minn=0)
    assert r.att == pytest.approx(o.estimates["tau_ate"], rel=1e-5)
    assert r.se == pytest.approx(o.std_errors["tau_ate"], rel=1e-5)
