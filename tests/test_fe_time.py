"""absorb_time_fit (national-scale first stage of the imputation estimator) equals absorb_fit with period
dummies, and the imputation estimator gives the same numbers through it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators import _fe, imputation
from evalkit.estimators._fe_time import absorb_time_fit
from evalkit.estimators.imputation import estimate_imputation


def _unbalanced(n: int = 300, T: int = 25, seed: int = 2):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(T), n)
    keep = rng.random(u.size) > 0.2
    keep[::T] = True  # every unit observed in period 0
    return u[keep], t[keep], rng.normal(size=keep.sum()) + 0.1 * t[keep] + 0.01 * u[keep]


def test_absorb_time_fit_equals_absorb_fit():
    u, t, y = _unbalanced()
    ref = _fe.absorb_fit(y, u, _fe.time_dummies(t, 25), n_units=300)
    got = absorb_time_fit(y, u, t, 300, 25)
    for name in ("theta", "bread", "resid", "alpha", "w_unit"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.unit_means.toarray(), ref.unit_means.toarray(), rtol=1e-12, atol=1e-15)
    assert (got.Z != ref.Z).nnz == 0 and got.keep.all()


def test_a_period_without_observations_falls_back():
    u, t, y = _unbalanced()
    assert absorb_time_fit(y, u, np.where(t == 3, 4, t), 300, 25) is None  # period 3 empty: not identified


def test_imputation_through_the_count_table(monkeypatch):
    rng = np.random.default_rng(4)
    n, T = 200, 30
    first = np.where(rng.random(n) < 0.5, rng.choice([10, 15, 20], n), 0)
    uu, tt = np.meshgrid(np.arange(n), np.arange(1, T + 1), indexing="ij")
    ff = first[uu]
    y = rng.normal(size=uu.shape) + 0.1 * tt + 0.5 * ((ff > 0) & (tt >= ff))
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(), "y": y.ravel()})
    before = estimate_imputation(df, "y", horizons=5, pretrend_leads=12)
    monkeypatch.setattr(imputation, "TIME_ONLY_MIN_ROWS", 0)
    monkeypatch.setattr(_fe, "GRID_SPARSE_MIN_ROWS", 0)  # the 12-lead pre-trend regression: dense route
    after = estimate_imputation(df, "y", horizons=5, pretrend_leads=12)
    cols = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    np.testing.assert_allclose(after.estimates[cols].to_numpy(float), before.estimates[cols].to_numpy(float),
                               rtol=1e-9, atol=1e-12)
    for key in ("stat", "p_value"):
        np.testing.assert_allclose(after.meta["pretrend"][key], before.meta["pretrend"][key], rtol=1e-9)
    pd.testing.assert_frame_equal(after.tables["pretrend_leads"], before.tables["pretrend_leads"], rtol=1e-9)


def test_feols_sparse_columns_dense_route_at_scale(monkeypatch):
    """From GRID_SPARSE_MIN_ROWS rows, 9-16 sparse regressors take the dense within route (one column at a
    time): same fit as the sparse route, unbalanced and on a grid."""
    import scipy.sparse as sp

    u, t, y = _unbalanced()
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((u.size, 12)) < 0.05).astype(float))
    cl = u // 3
    before = _fe.feols(y, X, [u, t], cluster=cl)
    monkeypatch.setattr(_fe, "GRID_SPARSE_MIN_ROWS", 0)
    after = _fe.feols(y, X, [u, t], cluster=cl)
    assert "dense within route" in after.fe_method and "sparse route" in before.fe_method
    np.testing.assert_allclose(after.coef, before.coef, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(after.vcov, before.vcov, rtol=1e-9, atol=1e-15)
    assert after.ssc == before.ssc and after.df_t == before.df_t
