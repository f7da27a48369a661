"""Least squares on a complete two-way grid with many sparse regressors (event-time dummies, Sun–Abraham
cohort × event-time cells): the unit and period effects are absorbed by double-demeaning and every
cross-product is assembled from the regressors' non-zeros and a few ``n_units``/``n_periods`` tables —
no ``N x k`` array, no sparse period dummies, no ``N``-row sparse products.

On a balanced panel sorted by unit then period (``FESample.grid``: ``n0`` units × ``n1`` periods,
unweighted) the within projection is ``M = I - P_u - P_t + P_g`` (unit, period and grand means), so

* ``X'MX = X'X - U'U/n1 - T'T/n0 + s s'/N`` with ``U`` / ``T`` the unit / period sums of ``X`` and ``s``
  its column sums (``U`` stays sparse: only the units with a non-zero regressor have a row);
* ``X'My = X'ỹ`` with ``ỹ = My``; residuals ``û = ỹ - M(Xb)``;
* cluster scores ``s_c = Σ_{i∈c} (MX)_i û_i = a_c - H_c B`` for clusters that nest the units:
  ``a_c = Σ_{i∈c} X_i û_i - Σ_{u∈c} (U_u/n1) Σ_t û_ut`` (sparse), ``H_c`` = the cluster's period sums of
  ``û`` and its total, ``B = [T/n0; -s/N]``; the meat ``Σ s_c s_c'`` is expanded into ``A'A``, ``A'H``
  and ``H'H`` (never a dense ``G x k`` score matrix).

Exact algebra: the same coefficients and CRV1 covariance as the sparse route (``absorb_fit`` +
``cluster_meat``) up to floating-point rounding (≈1e-12 relative; tests/test_fe_grid.py). Used above
:data:`GRID_SPARSE_MIN_ROWS` rows only, so smaller panels keep the sparse route's exact bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from evalkit.estimators._fe_within import independent_columns, sym_inv

GRID_SPARSE_MIN_ROWS = 1_000_000  # rows from which feols / Sun–Abraham take this route (national scale)
ABSORBED_TOL = 1e-10  # as _fe.ABSORBED_TOL: within / raw sum of squares below which a column is absorbed


@dataclass
class GridFit:
    """Coefficients over the kept columns, their ``(X'MX)^-1``, residuals and the cluster meat."""

    coef: np.ndarray
    bread: np.ndarray
    resid: np.ndarray
    keep: np.ndarray
    meat: np.ndarray | None  # Σ_c s_c s_c' over kept columns (None without clusters)


def double_demean(v: np.ndarray, n0: int, n1: int) -> np.ndarray:
    """``M v`` for a complete ``n0 x n1`` grid in row-major order (a fresh array)."""
    X = v.reshape(n0, n1)
    rm = X.mean(axis=1, keepdims=True)
    cm = X.mean(axis=0, keepdims=True)
    cm -= rm.mean(axis=0, keepdims=True)
    out = X - rm
    out -= cm
    return out.reshape(-1)


def nested_grid_clusters(cluster: np.ndarray, n0: int, n1: int) -> bool:
    """True when every unit (row block of ``n1`` rows) lies in one cluster."""
    c = np.asarray(cluster).reshape(n0, n1)
    return bool((c == c[:, :1]).all())


def grid_fit(y: np.ndarray, X: sp.spmatrix, n0: int, n1: int, cluster: np.ndarray | None = None,
             n_clusters: int | None = None, tol: float = 1e-10) -> GridFit:
    """OLS of ``y`` on sparse ``X`` (N x k) with unit and period effects on a complete grid.

    ``cluster``: codes ``0..G-1`` per row, constant within each unit (:func:`nested_grid_clusters`);
    then ``meat`` is the CRV1 meat (no small-sample factor). Columns the effects absorb or that are
    collinear are dropped left to right (``keep``), as the dense route of ``_fe.feols``.
    """
    N = n0 * n1
    y = np.asarray(y, dtype=float)
    X = sp.csr_matrix(X, dtype=float)
    X.sum_duplicates()
    k = X.shape[1]
    r = np.repeat(np.arange(N, dtype=np.int64), np.diff(X.indptr))
    col, d = X.indices.astype(np.int64), X.data
    u = r // n1
    t = r - u * n1
    U = sp.csr_matrix((d, (u, col)), shape=(n0, k))
    Tsum = np.bincount(t * k + col, weights=d, minlength=n1 * k).reshape(n1, k)
    s = Tsum.sum(axis=0)
    XtX = (X.T @ X).toarray()
    S = XtX - (U.T @ U).toarray() / n1 - (Tsum.T @ Tsum) / n0 + np.outer(s, s) / N
    S = (S + S.T) / 2
    ok = np.diag(S) > ABSORBED_TOL * np.diag(XtX)
    keep = np.zeros(k, dtype=bool)
    idx = np.flatnonzero(ok)
    keep[idx] = independent_columns(S[np.ix_(idx, idx)], tol)
    kk = np.flatnonzero(keep)
    yt = double_demean(y, n0, n1)
    Xty = np.bincount(col, weights=d * yt[r], minlength=k)
    bread = sym_inv(S[np.ix_(kk, kk)])
    coef = bread @ Xty[kk]
    bfull = np.zeros(k)
    bfull[kk] = coef
    resid = yt
    resid -= double_demean(X @ bfull, n0, n1)
    if cluster is None:
        return GridFit(coef=coef, bread=bread, resid=resid, keep=keep, meat=None)
    cc = np.asarray(cluster, dtype=np.int64)
    G = int(cc.max()) + 1 if n_clusters is None else int(n_clusters)
    # a_c: the regressors' own non-zeros, minus the unit-mean part (Σ_t û_ut is 0 up to rounding; kept: exact)
    A = sp.csr_matrix((d * resid[r], (cc[r], col)), shape=(G, k))
    usum = resid.reshape(n0, n1).sum(axis=1)
    unit_cluster = cc[::n1]
    Pu = sp.csr_matrix((usum / n1, (unit_cluster, np.arange(n0))), shape=(G, n0))
    A = (A - Pu @ U).tocsr()[:, kk]
    tt = np.tile(np.arange(n1, dtype=np.int64), n0)
    CT = np.bincount(cc * n1 + tt, weights=resid, minlength=G * n1).reshape(G, n1)
    H = np.column_stack([CT, CT.sum(axis=1)])  # G x (n1 + 1)
    B = np.vstack([Tsum[:, kk] / n0, -s[kk][None, :] / N])  # (n1 + 1) x k
    AH = np.asarray(A.T @ H)  # k x (n1 + 1)
    cross = AH @ B
    meat = (A.T @ A).toarray() - cross - cross.T + B.T @ (H.T @ H) @ B
    return GridFit(coef=coef, bread=bread, resid=resid, keep=keep, meat=(meat + meat.T) / 2)


def grid_route(y, X, fe, grid, cluster, vcov, names):
    """``_fe.feols`` on a complete grid with many sparse regressors (an ``FEFit``, fixest small-sample factor);
    ``None`` (the caller takes the sparse route) when the clusters do not nest the grid's rows."""
    from evalkit.estimators._fe import FEFit, compact_codes, sandwich, small_sample

    n0, n1 = int(grid[0]), int(grid[1])
    N = y.size
    c0, c1 = np.asarray(fe[0], dtype=np.int64), np.asarray(fe[1], dtype=np.int64)
    if vcov == "CRV1":
        cc, G = (c0, n0) if cluster is fe[0] else compact_codes(cluster)
        if not nested_grid_clusters(cc, n0, n1):
            return None
    else:
        cc, G = None, None
    gf = grid_fit(y, X, n0, n1, cc, G)
    k = int(gf.keep.sum())
    levels = [n0, n1] if n0 >= n1 else [n1, n0]
    codes_fe = [c0, c1] if n0 >= n1 else [c1, c0]
    if vcov == "CRV1":
        nested = [True if c is c0 else G == 1 for c in codes_fe]  # units nested; periods cross every cluster
        factor, K, df_t = small_sample(N, k, "CRV1", fe_levels=levels, fe_nested=nested, n_clusters=G)
        V = sandwich(gf.bread, gf.meat, factor)
    else:
        factor, K, df_t = small_sample(N, k, "iid", fe_levels=levels)
        V = factor * float(gf.resid @ gf.resid) / (N - 1) * gf.bread
    return FEFit(coef=gf.coef, vcov=V, names=[n for n, kk in zip(names, gf.keep, strict=True) if kk], keep=gf.keep,
                 resid=gf.resid, fe=codes_fe, weights=None, cluster=cc, vcov_type=vcov, ssc=factor, dof_k=K,
                 df_t=df_t, n_obs=N, n_clusters=G, absorbed=None, n_dummies=0, bread=gf.bread,
                 fe_method="exact two-way (complete grid, double-demeaned), sparse regressors")
