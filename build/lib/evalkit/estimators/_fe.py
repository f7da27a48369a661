"""Shared fixed-effects machinery for the regression-based estimators.

Everything here works on observation-level arrays (no Python loops over units):

* :func:`absorb_fit` — weighted least squares of ``y`` on a *sparse* regressor matrix ``Z``
  plus one-way (unit) fixed effects that are absorbed **exactly** through the block-diagonal
  Schur complement.  Time fixed effects are passed as sparse dummies inside ``Z`` (see
  :func:`time_dummies`), so a two-way FE regression with ``K`` extra regressors costs one
  sparse product and one dense ``(T-1+K)`` solve: no iterations, no tolerance, exact to
  machine precision.  This is what Sun-Abraham (thousands of interaction dummies), the
  imputation first stage, the Bacon TWFE coefficient and each Poisson Newton step use.
* :func:`cluster_meat` — the cluster-robust "meat" ``sum_c s_c s_c'`` built from sparse
  cluster-score products (handles clusters that do or do not nest the absorbed units).
* :func:`fixest_ssc` — the small-sample factor of fixest/pyfixest's defaults
  (``ssc(adj=TRUE, fixef.K="nested", cluster.adj=TRUE)``):
  ``G/(G-1) * (N-1)/(N-K)`` where ``K`` counts the coefficients plus the fixed-effect
  parameters that are **not** nested in the cluster variable (each fully nested fixed effect
  counts as one), i.e. ``K = k + T`` for unit+time FE clustered by unit (or by anything
  coarser than the unit).
* :func:`demean` — weighted alternating projections (method of alternating projections,
  Gaure 2013) for dense columns and any number of fixed effects; used where a dense
  within-transformation is handier than the Schur route (e.g. cross-checks).
* :func:`wald_test` — chi-square Wald test of ``b = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

COLLIN_TOL = 1e-10

SSC_LABEL = "CR1 (fixest default: G/(G-1)*(N-1)/(N-K), K = coefs + non-nested FE levels)"


# ---------------------------------------------------------------------------- codes/dummies
def codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..n-1 (sorted uniques) and the uniques."""
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
    rows = np.flatnonzero(keep)
    return sp.csr_matrix((np.ones(rows.size), (rows, t[keep] - 1)), shape=(t.size, max(n_times - 1, 0)))


# ---------------------------------------------------------------------------- linear algebra
def independent_columns(S: np.ndarray, tol: float = COLLIN_TOL) -> np.ndarray:
    """Boolean mask of columns of a PSD cross-product matrix kept in a greedy left-to-right
    collinearity check (like fixest: a column is dropped when it is (numerically) spanned by the
    columns before it).  Fast path: a plain Cholesky of the scaled matrix."""
    k = S.shape[0]
    if k == 0:
        return np.zeros(0, dtype=bool)
    d = np.sqrt(np.clip(np.diag(S), 0, None))
    keep = d > 0
    if not keep.any():
        return keep
    Ss = S[np.ix_(keep, keep)] / np.outer(d[keep], d[keep])
    try:
        L = np.linalg.cholesky(Ss)
        if np.min(np.diag(L)) ** 2 > tol:
            return keep
    except np.linalg.LinAlgError:
        pass
    # slow path: sequential (left-looking) Cholesky with skipping
    idx = np.flatnonzero(keep)
    m = idx.size
    L = np.zeros((m, m))
    ok = np.zeros(m, dtype=bool)
    for j in range(m):
        v = Ss[j:, j] - L[j:, :j] @ L[j, :j]
        if v[0] > tol:
            L[j:, j] = v / np.sqrt(v[0])
            ok[j] = True
    out = np.zeros(k, dtype=bool)
    out[idx[ok]] = True
    return out


def sym_inv(S: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix (Cholesky)."""
    if S.shape[0] == 0:
        return S.copy()
    c = sla.cho_factor(S, lower=True)
    return sla.cho_solve(c, np.eye(S.shape[0]))


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
    S = (Z.T @ ZW).toarray() - (A.T @ sp.diags(inv_wu) @ A).toarray()
    S = (S + S.T) / 2
    return Dw, A, S


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
    fe_codes = np.asarray(fe_codes)
    cluster_codes = np.asarray(cluster_codes)
    n = int(fe_codes.max()) + 1
    lo = np.full(n, np.iinfo(np.int64).max)
    hi = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(lo, fe_codes, cluster_codes)
    np.maximum.at(hi, fe_codes, cluster_codes)
    return bool(np.all(lo == hi))


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
    s = sp.csr_matrix(s)
    return (s.T @ s).toarray()


def fixest_ssc(n_obs: int, k: int, n_clusters: int, fe: list[tuple[np.ndarray, int]],
               cluster: np.ndarray) -> tuple[float, int]:
    """fixest/pyfixest default small-sample factor for CR1 standard errors.

    ``fe`` is a list of (codes, n_levels) of the fixed effects.  Returns (factor, K).
    """
    n_fe = len(fe)
    k_fe = sum(n for _, n in fe)
    k_fe_adj = k_fe - (n_fe - 1) if n_fe > 1 else k_fe
    nested = [nested_in(c, cluster) for c, _ in fe]
    k_nested = sum(n for (c, n), f in zip(fe, nested, strict=True) if f)
    n_nested = sum(nested)
    K = k + k_fe_adj - k_nested + n_nested if n_fe else k
    factor = (n_clusters / (n_clusters - 1)) * ((n_obs - 1) / (n_obs - K))
    return float(factor), int(K)


def sandwich(bread: np.ndarray, meat: np.ndarray, factor: float = 1.0) -> np.ndarray:
    V = factor * bread @ meat @ bread
    return (V + V.T) / 2


# ---------------------------------------------------------------------------- tests
def wald_test(b: np.ndarray, V: np.ndarray) -> dict[str, float]:
    """Chi-square Wald test of ``b = 0`` (pseudo-inverse if ``V`` is singular)."""
    b = np.asarray(b, dtype=float)
    if b.size == 0:
        return {"stat": float("nan"), "df": 0, "p_value": float("nan")}
    Vi = np.linalg.pinv(np.asarray(V, dtype=float))
    stat = float(b @ Vi @ b)
    df = int(np.linalg.matrix_rank(V))
    return {"stat": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))}


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
