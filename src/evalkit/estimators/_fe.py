"""The fixed-effects fit engine of every regression-based estimator (docs/estimators-other.md).

* :func:`feols` -> :class:`FEFit` — (weighted) least squares with one or two fixed effects absorbed
  exactly, CRV1 / iid / HC1 covariances with ONE small-sample correction, :func:`small_sample`
  (fixest's defaults: CR1 ``G/(G-1)*(n-1)/(n-K)``, ``K`` = coefficients + FE levels not nested in the
  cluster, ``t(G-1)``).  Used by TWFE, event TWFE, 2x2, Bacon, imputation's pre-trend test.
* :func:`absorb_fit` + :func:`cluster_meat` — the sparse route behind ``feols`` (unit effects
  absorbed through the block-diagonal Schur complement, period effects and regressors as sparse
  columns); Sun-Abraham's thousands of cells and each Poisson Newton step use them directly with
  the same :func:`small_sample`.
* :class:`Within` (``_fe_within``) — the within-transformation set up once for many columns
  (wild bootstrap, randomization inference); ``_fe_batch.PermutedTWFE`` — TWFE refits for many
  permuted adoption dates.
* ``_fe_sample.fe_sample`` — the one adapter from the shared sample (``_sample.build_sample``) to
  codes; :func:`check_options` — misspelled options raise.
* :func:`demean` (plain alternating projections, for cross-checks) and :func:`wald_test`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.distributions import chi2_sf, t_ppf, t_sf
from evalkit.estimators._cs_blas import blas_threads
from evalkit.estimators._fe_grid import GRID_SPARSE_MIN_ROWS, grid_route
from evalkit.estimators._fe_within import MAX_SCHUR, Within, compact_codes, independent_columns, sym_inv

__all__ = ["FEFit", "Within", "compact_codes", "feols", "fixest_ssc", "independent_columns", "small_sample",
           "sym_inv"]

COLLIN_TOL = 1e-10

SSC_LABEL = "CR1 (fixest default: G/(G-1)*(N-1)/(N-K), K = coefs + non-nested FE levels)"


# ---------------------------------------------------------------------------- codes/dummies
def codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..n-1 (sorted uniques) and the uniques."""
    v = np.asarray(values)
    if v.dtype.kind in "iu" and v.size:  # integer labels: a bincount map is ~10x faster than factorize
        lo, hi = int(v.min()), int(v.max())
        if hi - lo <= 4 * v.size + 1000:
            present = np.bincount(v - lo, minlength=hi - lo + 1) > 0
            pos = np.cumsum(present) - 1
            return pos[v - lo].astype(np.int64), np.flatnonzero(present) + lo
    c, u = pd.factorize(pd.Series(values), sort=True)
    if (c < 0).any():
        raise ValueError("missing values in a fixed-effect / cluster variable")
    return c.astype(np.int64), np.asarray(u)


def indicator(codes_: np.ndarray, n: int | None = None, data: np.ndarray | None = None) -> sp.csr_matrix:
    """Sparse ``N x n`` indicator matrix of integer codes (optionally with values ``data``)."""
    codes_ = np.asarray(codes_, dtype=np.int64)
    n = int(codes_.max()) + 1 if n is None else n
    N = codes_.size
    vals = np.ones(N) if data is None else np.asarray(data, dtype=float)
    return sp.csr_matrix((vals, (np.arange(N), codes_)), shape=(N, n))


def time_dummies(time_codes: np.ndarray, n_times: int) -> sp.csr_matrix:
    """Sparse time dummies dropping the first level (collinear with the unit effects)."""
    t = np.asarray(time_codes, dtype=np.int64)
    keep = t > 0
    # built as CSR directly (one entry per row with t > 0: already canonical), not through a COO sort
    indptr = np.zeros(t.size + 1, dtype=np.int64)
    np.cumsum(keep, out=indptr[1:])
    idx = t[keep] - 1
    return sp.csr_matrix((np.ones(idx.size), idx, indptr), shape=(t.size, max(n_times - 1, 0)))


# ---------------------------------------------------------------------------- linear algebra
# independent_columns and sym_inv live in _fe_within (one implementation, re-exported here)


# ---------------------------------------------------------------------------- absorbed fit
@dataclass
class AbsorbFit:
    """Result of :func:`absorb_fit` (all arrays are over the kept columns of ``Z``)."""

    theta: np.ndarray  # coefficients on kept columns
    keep: np.ndarray  # mask of kept columns of Z
    bread: np.ndarray  # (Z~' W Z~)^{-1} over kept columns
    resid: np.ndarray  # y - Z theta - alpha_unit
    alpha: np.ndarray  # unit effects
    unit_means: sp.csr_matrix  # n_units x k: weighted unit means of Z (kept columns)
    Z: sp.csr_matrix  # kept columns of Z
    w_unit: np.ndarray  # sum of weights per unit


def unit_cross(Z: sp.spmatrix, unit: np.ndarray, n_units: int, w: np.ndarray | None = None
               ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Weighted Schur complement ``Z' W Z - A' diag(1/w_i) A`` with ``A = D' W Z``.

    Returns (Dw, A, S) with ``Dw = D' W`` (n_units x N sparse) and ``S`` dense.
    """
    N = Z.shape[0]
    ww = np.ones(N) if w is None else np.asarray(w, dtype=float)
    Dw = sp.csr_matrix((ww, (unit, np.arange(N))), shape=(n_units, N))
    w_unit = np.asarray(Dw.sum(axis=1)).ravel()
    A = (Dw @ Z).tocsr()
    ZW = Z.multiply(ww[:, None]).tocsr() if w is not None else Z
    inv_wu = np.divide(1.0, w_unit, out=np.zeros_like(w_unit), where=w_unit > 0)
    S = (Z.T @ ZW).toarray() - _scaled_gram(A, inv_wu)
    S = (S + S.T) / 2
    return Dw, A, S


DENSE_GRAM_CELLS = 20_000_000  # largest n_units x k for which A'diag(d)A goes through a dense BLAS product
DENSE_GRAM_FILL = 0.02  # ... when at least this share of A is non-zero (sparse products cost nnz per row squared)


DEDUPE_MIN_FLOPS = 5e8  # n * k^2 of the dense product above which identical rows are merged first
DEDUPE_COST_PER_NNZ = 2000  # ... and above this many flops per non-zero (grouping 40,000 x 119 counts: 1.8 s, GEMM 0.1 s)


def _scaled_gram(A: sp.spmatrix, d: np.ndarray | None = None, *, dedupe: bool = True) -> np.ndarray:
    """``A' diag(d) A`` as a dense array (``d`` = 1 when ``None``).

    Each unit's row of ``A`` holds its T period columns, so a sparse product costs ~n_units * T^2
    scattered operations.  Units with identical rows (same cohort and periods in a balanced panel)
    are summed once (``dedupe``: rows grouped by a checksum, then verified equal exactly); otherwise a
    dense GEMM when ``A`` is filled enough, else the sparse product."""
    A = sp.csr_matrix(A)
    n, k = A.shape
    d = np.ones(n) if d is None else np.asarray(d, dtype=float)
    # grouping costs ~DEDUPE_COST_PER_NNZ flops per non-zero: below that (or DEDUPE_MIN_FLOPS) the GEMM is cheaper
    if dedupe and n > 1 and A.nnz and n * k * k > max(DEDUPE_MIN_FLOPS, DEDUPE_COST_PER_NNZ * A.nnz):
        rep, grp = _identical_rows(A)
        if rep is not None:
            Ar = A[rep].toarray()
            return Ar.T @ (Ar * np.bincount(grp, weights=d, minlength=rep.size)[:, None])
    if n * k and n * k <= DENSE_GRAM_CELLS and A.nnz >= DENSE_GRAM_FILL * n * k:
        Ad = A.toarray()
        return Ad.T @ (Ad * d[:, None])
    return (A.T @ sp.diags(d) @ A).toarray()


def _identical_rows(A: sp.csr_matrix) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Groups of identical rows of ``A``: (first row of each group, group of each row), or (None,
    None) when fewer than half the rows repeat another.  Exact: the checksum grouping is verified."""
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()  # also sorts the indices
    n = A.shape[0]
    nnz_row = np.diff(A.indptr)
    row = np.repeat(np.arange(n), nnz_row)
    j = A.indices.astype(float) + 1.0
    sig = np.column_stack([nnz_row, np.bincount(row, weights=A.data * j, minlength=n),
                           np.bincount(row, weights=A.data * np.sqrt(j) * 0.6180339887, minlength=n),
                           np.bincount(row, weights=A.data**2 * j, minlength=n)])
    order = np.lexsort(sig.T[::-1])
    ss = sig[order]
    new = np.r_[True, (ss[1:] != ss[:-1]).any(axis=1)]
    rep = order[new]
    grp = np.empty(n, dtype=np.int64)
    grp[order] = np.cumsum(new) - 1
    if rep.size > n // 2:
        return None, None
    # verify: every row equals its group's first row entry by entry (canonical rows: same order)
    start = A.indptr[:-1]
    pos_rep = np.repeat(start[rep[grp]], nnz_row) + (np.arange(A.nnz) - np.repeat(start, nnz_row))
    if not (np.array_equal(nnz_row, nnz_row[rep[grp]]) and np.array_equal(A.indices, A.indices[pos_rep])
            and np.array_equal(A.data, A.data[pos_rep])):  # a checksum collision: plain product instead
        return None, None
    return rep, grp


def absorb_fit(y: np.ndarray, unit: np.ndarray, Z: sp.spmatrix, w: np.ndarray | None = None,
               n_units: int | None = None, tol: float = COLLIN_TOL) -> AbsorbFit:
    """(Weighted) OLS of ``y`` on ``Z`` with unit fixed effects absorbed exactly.

    Collinear columns of ``Z`` (given the unit effects) are dropped left to right; see ``keep``.
    """
    y = np.asarray(y, dtype=float)
    unit = np.asarray(unit, dtype=np.int64)
    n_units = int(unit.max()) + 1 if n_units is None else n_units
    Z = sp.csr_matrix(Z)
    Dw, A, S = unit_cross(Z, unit, n_units, w)
    w_unit = np.asarray(Dw.sum(axis=1)).ravel()
    inv_wu = np.divide(1.0, w_unit, out=np.zeros_like(w_unit), where=w_unit > 0)
    keep = independent_columns(S, tol)
    if not keep.all():
        Z = Z[:, np.flatnonzero(keep)].tocsr()
        A = A[:, np.flatnonzero(keep)].tocsr()
        S = S[np.ix_(keep, keep)]
    wy = y if w is None else y * w
    ybar = (Dw @ y) * inv_wu
    b = Z.T @ wy - A.T @ ybar
    bread = sym_inv(S)
    theta = bread @ b
    r = y - Z @ theta
    alpha = (Dw @ r) * inv_wu
    resid = r - alpha[unit]
    unit_means = (sp.diags(inv_wu) @ A).tocsr()
    return AbsorbFit(theta=theta, keep=keep, bread=bread, resid=resid, alpha=alpha,
                     unit_means=unit_means, Z=Z, w_unit=w_unit)


# ---------------------------------------------------------------------------- clustering
def nested_in(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """True if every level of ``fe_codes`` lies within a single cluster."""
    if fe_codes is cluster_codes:
        return True
    fe_codes = np.asarray(fe_codes)
    cluster_codes = np.asarray(cluster_codes)
    any_cluster = np.zeros(int(fe_codes.max()) + 1, dtype=cluster_codes.dtype)
    any_cluster[fe_codes] = cluster_codes  # one cluster of each level (whichever write lands)
    return bool(np.array_equal(any_cluster[fe_codes], cluster_codes))


def cluster_meat(Z: sp.csr_matrix, u: np.ndarray, cluster: np.ndarray, unit: np.ndarray | None = None,
                 unit_means: sp.csr_matrix | None = None, nested: bool = True) -> np.ndarray:
    """``sum_c s_c s_c'`` with ``s_c = sum_{i in c} z~_i u_i`` and ``z~ = z - unit mean of z``.

    ``u`` is the score multiplier (``w * resid`` for WLS, ``y - mu`` for Poisson).  When the
    absorbed units are nested in the clusters and ``u`` sums to zero within units (true at the
    optimum) the unit-mean part cancels and is skipped.
    """
    N = Z.shape[0]
    G = int(cluster.max()) + 1
    Cu = sp.csr_matrix((np.asarray(u, dtype=float), (cluster, np.arange(N))), shape=(G, N))
    s = Cu @ Z
    if not nested and unit is not None and unit_means is not None:
        n_units = unit_means.shape[0]
        CuD = sp.csr_matrix((np.asarray(u, dtype=float), (cluster, unit)), shape=(G, n_units))
        s = s - CuD @ unit_means
    return _scaled_gram(s, dedupe=False)  # cluster scores differ: no identical rows to merge


def small_sample(n_obs: int, k: int, vcov_type: str, *, fe_levels: tuple[int, ...] | list[int] = (),
                 fe_nested: tuple[bool, ...] | list[bool] = (), n_clusters: int | None = None
                 ) -> tuple[float, int, int]:
    """THE small-sample correction of every regression in evalkit: fixest's defaults
    (``ssc(adj=TRUE, fixef.K="nested", cluster.adj=TRUE, t.df="min")``, as pyfixest).

    ``K = k + sum(FE levels) - (n_FE - 1)``, and for clustered SEs every FE nested in the cluster
    variable counts as one parameter instead of its levels.  Returns ``(factor, K, df_t)``:

    * ``"CRV1"``: ``G/(G-1) * (n-1)/(n-K)``, ``df_t = G - 1``;
    * ``"iid"``: ``(n-1)/(n-K)`` (applied to ``sigma^2 = sum w u^2 / (n-1)``), ``df_t = n - K``;
    * ``"hetero"`` (HC1): ``n/(n-K)``, ``df_t = n - K``.
    """
    n_fe = len(fe_levels)
    k_fe = int(sum(fe_levels)) - (n_fe - 1 if n_fe > 1 else 0)
    if vcov_type == "CRV1":
        nested_levels = sum(n for n, f in zip(fe_levels, fe_nested, strict=True) if f)
        K = k + k_fe - nested_levels + int(sum(fe_nested))
        G = int(n_clusters or 0)
        factor = (G / (G - 1)) * ((n_obs - 1) / (n_obs - K)) if G > 1 else float("nan")
        return float(factor), int(K), G - 1
    K = k + k_fe
    if vcov_type == "iid":
        return float((n_obs - 1) / (n_obs - K)), int(K), int(n_obs - K)
    if vcov_type == "hetero":
        return float(n_obs / (n_obs - K)), int(K), int(n_obs - K)
    raise ValueError(f"unknown vcov type {vcov_type!r}: 'CRV1', 'iid' or 'hetero'")


def fixest_ssc(n_obs: int, k: int, n_clusters: int, fe: list[tuple[np.ndarray, int]],
               cluster: np.ndarray) -> tuple[float, int]:
    """CR1 factor and ``K`` of :func:`small_sample` for fixed effects given as (codes, levels)."""
    factor, K, _ = small_sample(n_obs, k, "CRV1", fe_levels=[n for _, n in fe],
                                fe_nested=[nested_in(c, cluster) for c, _ in fe], n_clusters=n_clusters)
    return factor, K


def sandwich(bread: np.ndarray, meat: np.ndarray, factor: float = 1.0) -> np.ndarray:
    V = factor * bread @ meat @ bread
    return (V + V.T) / 2


# ---------------------------------------------------------------------------- the engine
VCOV_TYPES = ("CRV1", "iid", "hetero")
SSC_RULES = {
    "CRV1": "G/(G-1)*(n-1)/(n-K), K = coefficients + FE levels not nested in the cluster (+1 per nested FE); t(G-1)",
    "iid": "sum(w u^2)/(n-K), K = coefficients + FE levels - (n_FE-1); t(n-K)",
    "hetero": "HC1 n/(n-K), K = coefficients + FE levels - (n_FE-1); t(n-K)",
}


@dataclass
class FEFit:
    """A fitted (weighted) least-squares regression with absorbed fixed effects (:func:`feols`).

    ``coef``/``vcov`` are over the kept (non-collinear) columns of ``X``; ``names``/``keep`` map
    them back.  ``absorbed`` is the exact fit behind it (larger FE absorbed, smaller FE as sparse
    dummies in front of ``X``); ``n_dummies`` of its columns are FE dummies.  Few dense regressors
    take the dense route instead (``X_within``, ``bread``): same numbers, fewer passes over the rows.
    """

    coef: np.ndarray
    vcov: np.ndarray
    names: list[str]
    keep: np.ndarray
    resid: np.ndarray  # N: y - X b - fixed effects
    fe: list[np.ndarray]  # compact FE codes (absorbed FE first)
    weights: np.ndarray | None
    cluster: np.ndarray | None
    vcov_type: str
    ssc: float
    dof_k: int
    df_t: int
    n_obs: int
    n_clusters: int | None
    absorbed: AbsorbFit | None  # sparse route: the exact fit (FE dummies first)
    n_dummies: int  # sparse route: leading FE-dummy columns of ``absorbed``
    X_within: np.ndarray | None = None  # dense route: within-transformed kept regressors
    bread: np.ndarray | None = None  # dense route: (X~'WX~)^-1
    fe_method: str = "exact"
    _within: Within | None = None

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.vcov), 0, None))

    def t_stat(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.coef / self.se

    def p_value(self) -> np.ndarray:
        return 2 * t_sf(np.abs(self.t_stat()), self.df_t)

    def conf_int(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        q = t_ppf(1 - alpha / 2, self.df_t)
        return self.coef - q * self.se, self.coef + q * self.se

    def inference(self, estimate: np.ndarray, std_error: np.ndarray, alpha: float = 0.05
                  ) -> dict[str, np.ndarray]:
        """CI and two-sided p-value with this fit's ``t(df_t)`` (for linear combinations of ``coef``)."""
        return t_inference(estimate, std_error, self.df_t, alpha)

    def meta(self) -> dict:
        """``meta["inference"]``: what was applied, JSON-able."""
        return {"se_type": self.vcov_type, "ssc": self.ssc, "dof_k": self.dof_k, "df": self.df_t,
                "n_clusters": self.n_clusters, "distribution": f"t({self.df_t})",
                "ssc_rule": SSC_RULES[self.vcov_type], "fe_method": self.fe_method,
                "weighted": self.weights is not None}

    def coef_many(self, Y: np.ndarray) -> np.ndarray:
        """Coefficients (k x m) of the same regressors for many outcomes ``Y`` (N x m), reusing the
        factorised design (jackknife-free batched refits): no refit per outcome."""
        Y = np.asarray(Y, dtype=float)
        Y = Y[:, None] if Y.ndim == 1 else Y
        wY = Y if self.weights is None else Y * self.weights[:, None]
        f = self.absorbed
        if f is None:
            return self.bread @ (self.X_within.T @ wY)  # X~'W Y = X~'W M Y (M is W-symmetric)
        ybar = _unit_sums(self.fe[0], wY, f.w_unit.size) / np.where(f.w_unit > 0, f.w_unit, 1.0)[:, None]
        rhs = f.Z.T @ wY - (f.unit_means.T @ (ybar * f.w_unit[:, None]))
        return (f.bread @ rhs)[self.n_dummies:]

    def within(self) -> Within:
        """The dense within-transformation for these fixed effects and weights (built on demand)."""
        if self._within is None:
            self._within = Within(self.fe or [np.zeros(self.n_obs, dtype=np.int64)], self.weights)
        return self._within


def _unit_sums(codes_: np.ndarray, V: np.ndarray, n: int) -> np.ndarray:
    return np.column_stack([np.bincount(codes_, weights=V[:, j], minlength=n) for j in range(V.shape[1])])


def feols(y: np.ndarray, X: np.ndarray | sp.spmatrix, fe: list[np.ndarray] | tuple[np.ndarray, ...] = (), *,
          weights: np.ndarray | None = None, cluster: np.ndarray | None = None, vcov: str | None = None,
          names: list[str] | None = None, grid: tuple[int, int] | None = None) -> FEFit:
    """(Weighted) OLS of ``y`` on ``X`` (dense or sparse) with the fixed effects ``fe`` absorbed.

    ``fe``: one or two integer code arrays (e.g. unit and period), absorbed exactly — the FE with
    more levels through group means, the other as sparse dummies (first level dropped) in a small
    Schur-complement solve; without ``fe`` an intercept is absorbed.  ``weights``: observation
    weights (fixest ``weights``: WLS, scores ``w x u``).  ``cluster``: cluster codes; ``vcov``
    defaults to ``"CRV1"`` with a cluster and ``"iid"`` without (also ``"hetero"``).  Standard errors
    use :func:`small_sample` (fixest's defaults).  Collinear columns of ``X`` (given the fixed
    effects) are dropped left to right (``keep``).  More than two FE: use :class:`Within` + OLS.

    ``grid=(n0, n1)``: the caller guarantees that ``fe = [c0, c1]`` are compact codes with ``n0`` and
    ``n1`` levels and the rows are every (c0, c1) cell once, sorted by c0 then c1, unweighted
    (``FESample.grid``: a balanced panel in the shared sample's order).  Then the within-transformation
    is the double-demeaning of an ``n0 x n1`` table and the codes are not re-checked (same numbers,
    fewer passes over the rows); ignored with weights or more than ``DENSE_MAX_COLS`` regressors.
    """
    with blas_threads(1):  # small products: multi-threaded OpenBLAS only spins on a busy machine
        return _feols(y, X, fe, weights=weights, cluster=cluster, vcov=vcov, names=names, grid=grid)


def _feols(y, X, fe, *, weights, cluster, vcov, names, grid=None) -> FEFit:
    y = np.asarray(y, dtype=float)
    N = y.size
    if sp.issparse(X):
        Xs, Xd = sp.csr_matrix(X, dtype=float), None
    else:
        Xd = np.asarray(X, dtype=float)
        Xd = Xd[:, None] if Xd.ndim == 1 else Xd
        Xs = None
    k_all = (Xs if Xd is None else Xd).shape[1]
    names = [f"x{j}" for j in range(k_all)] if names is None else list(names)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (w.shape != (N,) or not np.all(np.isfinite(w)) or np.any(w < 0)):
        raise ValueError("weights must be a finite, non-negative vector with one value per observation")
    vcov = ("CRV1" if cluster is not None else "iid") if vcov is None else vcov
    if vcov not in VCOV_TYPES:
        raise ValueError(f"unknown vcov {vcov!r}: one of {VCOV_TYPES}")
    if vcov == "CRV1" and cluster is None:
        raise ValueError("vcov='CRV1' needs cluster codes")
    if len(fe) > 2:
        raise ValueError("feols absorbs at most two fixed effects; transform with Within for more")
    if (grid is not None and w is None and len(fe) == 2 and k_all > DENSE_MAX_COLS and N >= GRID_SPARSE_MIN_ROWS
            and vcov in ("CRV1", "iid")):  # many sparse regressors on a large complete grid (_fe_grid)
        fit = grid_route(y, Xs if Xd is None else sp.csr_matrix(Xd), fe, grid, cluster, vcov, names)
        if fit is not None:
            return fit
    if grid is not None and (w is not None or len(fe) != 2 or k_all > DENSE_MAX_COLS):
        grid = None
    if grid is not None:  # compact codes by the caller's guarantee (Within checks the ends)
        cf = [(np.asarray(fe[0], dtype=np.int64), int(grid[0])), (np.asarray(fe[1], dtype=np.int64), int(grid[1]))]
    else:
        cf = [compact_codes(c) for c in fe] or [(np.zeros(N, dtype=np.int64), 1)]
    cf_in = list(cf)  # the caller's order (the grid's sort order)
    cf.sort(key=lambda c: -c[1])  # absorb the FE with more levels, dummies for the other
    levels = [n for _, n in cf] if fe else [1]
    codes_fe = [c for c, _ in cf]
    dense = k_all <= DENSE_MAX_COLS and (grid is not None or not (len(cf) == 2 and cf[1][1] > MAX_SCHUR))
    if dense:
        if grid is not None:
            coef, bread, u, keep, XW = _dense_route(y, Xs.toarray() if Xd is None else Xd, [c for c, _ in cf_in], w,
                                                    levels=list(grid), grid=True)
        else:
            coef, bread, u, keep, XW = _dense_route(y, Xs.toarray() if Xd is None else Xd, codes_fe, w,
                                                    levels=[n for _, n in cf])
        tb, fit, Xw = 0, None, XW if w is None else XW / np.where(w > 0, w, 1.0)[:, None]
    else:
        (a, na), rest = cf[0], cf[1:]
        Zb = time_dummies(rest[0][0], rest[0][1]) if rest else sp.csr_matrix((N, 0))
        nb = Zb.shape[1]
        Xs = sp.csr_matrix(Xd) if Xs is None else Xs
        fit = absorb_fit(y, a, sp.hstack([Zb, Xs], format="csr"), w, n_units=na)
        keep = fit.keep[nb:].copy()
        tb = int(fit.keep[:nb].sum())
        coef, bread, u, Xw = fit.theta, fit.bread, fit.resid, None
    k = int(keep.sum())
    wu = u if w is None else w * u
    grid_cluster = grid is not None and cluster is not None and cluster is fe[0]  # clusters = rows of the grid
    if vcov == "CRV1" and grid_cluster:
        cc, G = cf_in[0]
        # on a complete grid every level of the other FE meets every cluster: nested only with one cluster
        nested = [c is cc or G == 1 for c in codes_fe]
        factor, K, df_t = small_sample(N, k, "CRV1", fe_levels=levels, fe_nested=nested, n_clusters=G)
    elif vcov == "CRV1":
        cc, G = compact_codes(cluster)
        nested = [nested_in(c, cc) for c in codes_fe] if fe else [True]
        factor, K, df_t = small_sample(N, k, "CRV1", fe_levels=levels, fe_nested=nested, n_clusters=G)
    else:
        cc, G = None, None
        factor, K, df_t = small_sample(N, k, vcov, fe_levels=levels)
    if vcov == "iid":
        V = factor * float(u @ wu) / (N - 1) * bread
    elif dense:
        if vcov == "CRV1" and grid_cluster:  # cluster sums = row sums of the n0 x n1 tables
            scores = (XW.T * u).reshape(k, G, -1).sum(axis=2).T
        else:
            scores = XW * u[:, None]
        if vcov == "CRV1" and not grid_cluster:
            scores = np.column_stack([np.bincount(cc, weights=scores[:, j], minlength=G) for j in range(k)])
        V = sandwich(bread, scores.T @ scores, factor)
    else:
        a = codes_fe[0]
        cl, nest = (cc, nested_in(a, cc)) if vcov == "CRV1" else (np.arange(N), False)
        V = sandwich(bread, cluster_meat(fit.Z, wu, cl, a, fit.unit_means, nested=nest), factor)
    return FEFit(coef=coef[tb:], vcov=V[tb:, tb:], names=[n for n, kk in zip(names, keep, strict=True) if kk],
                 keep=keep, resid=u, fe=codes_fe if fe else [], weights=w, cluster=cc, vcov_type=vcov,
                 ssc=factor, dof_k=K, df_t=df_t, n_obs=N, n_clusters=G, absorbed=fit, n_dummies=tb,
                 X_within=Xw, bread=bread if dense else None,
                 fe_method=("exact two-way (Schur)" if len(cf) == 2 else "exact one-way")
                 + (", dense within route" if dense else ", sparse route"))


DENSE_MAX_COLS = 8  # up to this many regressors: dense within-transformation (bincount passes)


def _dense_route(y: np.ndarray, X: np.ndarray, codes_fe: list[np.ndarray], w: np.ndarray | None,
                 levels: list[int] | None = None, grid: bool = False):
    """Within-transform ``y`` and each column of ``X`` once (1-D, contiguous), then OLS:
    (coef, bread, resid, keep, W X~ over kept as an ``N x k`` view of a ``k x N`` array)."""
    W = Within(codes_fe, w, levels=levels, grid=grid)
    yw = W.transform(y)
    Xt = np.empty((X.shape[1], y.size))  # rows = within-transformed regressors (contiguous)
    for j in range(X.shape[1]):
        Xt[j] = W.transform(np.ascontiguousarray(X[:, j]))
    XWt = Xt if w is None else Xt * w
    XtX = XWt @ Xt.T
    # a column the fixed effects absorb leaves round-off only: judge it against its own raw size
    raw = np.array([x @ (x if w is None else x * w) for x in X.T])
    ok = np.diag(XtX) > ABSORBED_TOL * raw
    keep = np.zeros(X.shape[1], dtype=bool)
    idx = np.flatnonzero(ok)
    keep[idx] = independent_columns((XtX[np.ix_(idx, idx)] + XtX[np.ix_(idx, idx)].T) / 2)
    if not keep.all():  # (fancy indexing copies k x N: only when a column is dropped)
        XtX, XWt, Xt = XtX[np.ix_(keep, keep)], XWt[keep], Xt[keep]
    bread = sym_inv((XtX + XtX.T) / 2)
    b = bread @ (XWt @ yw)
    yw -= b @ Xt  # the residuals, in place (yw is a fresh array)
    return b, bread, yw, keep, XWt.T


ABSORBED_TOL = 1e-10  # within / raw sum of squares below which a regressor counts as absorbed


# ---------------------------------------------------------------------------- tests
def wald_test(b: np.ndarray, V: np.ndarray) -> dict[str, float]:
    """Chi-square Wald test of ``b = 0`` (pseudo-inverse if ``V`` is singular)."""
    b = np.asarray(b, dtype=float)
    if b.size == 0:
        return {"stat": float("nan"), "df": 0, "p_value": float("nan")}
    Vi = np.linalg.pinv(np.asarray(V, dtype=float))
    stat = float(b @ Vi @ b)
    df = int(np.linalg.matrix_rank(V))
    return {"stat": stat, "df": df, "p_value": float(chi2_sf(stat, df))}


# ---------------------------------------------------------------------------- alternating projections
def demean(X: np.ndarray, fes: list[np.ndarray], w: np.ndarray | None = None, tol: float = 1e-12,
           maxiter: int = 10_000) -> np.ndarray:
    """Weighted within-transformation of the columns of ``X`` w.r.t. several fixed effects by
    alternating projections (sweeping each FE's weighted group means until the largest change
    falls below ``tol`` times the column scale).  Exact in one sweep for a single FE."""
    X = np.array(X, dtype=float, copy=True)
    one_d = X.ndim == 1
    if one_d:
        X = X[:, None]
    N = X.shape[0]
    ww = np.ones(N) if w is None else np.asarray(w, dtype=float)
    sums_w = [np.bincount(f, weights=ww) for f in fes]
    scale = np.maximum(np.abs(X).max(axis=0), 1.0)
    for _ in range(maxiter):
        delta = 0.0
        for f, sw in zip(fes, sums_w, strict=True):
            means = np.zeros((sw.size, X.shape[1]))
            for j in range(X.shape[1]):
                means[:, j] = np.bincount(f, weights=ww * X[:, j], minlength=sw.size)
            means /= np.where(sw > 0, sw, 1.0)[:, None]
            X -= means[f]
            delta = max(delta, float(np.max(np.abs(means) / scale)))
        if len(fes) == 1 or delta < tol:
            break
    return X[:, 0] if one_d else X


# ---------------------------------------------------------------------------- panel helpers
def cohort_values(panel: pd.DataFrame, cohort: str) -> np.ndarray:
    """Cohort as float with never-treated (0 / NaN / inf) coded as ``inf``."""
    g = pd.to_numeric(panel[cohort], errors="coerce").to_numpy(dtype=float)
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    return g


def baseline_mean(y: np.ndarray, g: np.ndarray, t: np.ndarray) -> float:
    """Mean outcome of treated units before their treatment."""
    m = np.isfinite(g) & (t < g)
    return float(np.mean(y[m])) if m.any() else float("nan")


def t_inference(estimate: np.ndarray, std_error: np.ndarray, df_t: int, alpha: float = 0.05
                ) -> dict[str, np.ndarray]:
    """CIs and two-sided p-values from ``t(df_t)`` (fixest: ``df_t = G - 1`` for clustered SEs)."""
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    q = t_ppf(1 - alpha / 2, df_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * t_sf(np.abs(est / se), df_t)
    return {"ci_low": est - q * se, "ci_high": est + q * se, "p_value": np.where(se > 0, p, np.nan)}


# ---------------------------------------------------------------------------- options and sample
def check_options(estimator: str, options: dict, accepted: tuple[str, ...] | list[str]) -> None:
    """TypeError naming a misspelled / unsupported option and the accepted ones (never ignored)."""
    if options:
        bad = ", ".join(repr(k) for k in sorted(options))
        raise TypeError(f"{estimator}: unknown option(s) {bad}; accepted options: {', '.join(sorted(accepted))}")
