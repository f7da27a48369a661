"""Analytic inference and the result frame of the Callaway–Sant'Anna estimator: influence-function
standard errors, R ``did``'s pre-treatment Wald tests, and the tidy :class:`EstimationResult`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, special

from evalkit.estimators._cs_boot import DEGENERATE
from evalkit.results import EstimationResult, make_estimates, normal_inference

#: Wald statistics are "not available" when the reciprocal condition number of the covariance of the
#: tested estimates is below this: solving with it would amplify rounding to the size of the statistic
#: (issue 14: -110.52 and -3.8e18 from a singular covariance on a 12-station county).
WALD_RCOND_MIN = 1e-10


def se_from(q: np.ndarray, n: int) -> np.ndarray:
    """SEs from ``theta' G theta`` (n^2 x variance); NaN where degenerate (R: NA)."""
    se = np.sqrt(np.maximum(q / n**2, 0.0))
    return np.where(se <= DEGENERATE, np.nan, se)


def wald_event(est: np.ndarray, th: np.ndarray, rows: list[dict], se: np.ndarray, design: Any, n: int,
               anticipation: int, n_clusters: int, q: np.ndarray | None = None) -> dict | None:
    """Joint Wald test that the pre-treatment event-time estimates (``e < -anticipation``) are zero."""
    ev = np.array([r.get("event_time", np.nan) for r in rows], dtype=float)
    sel = (ev < -anticipation) & ~np.isnan(se)
    return wald_stat(est[sel], th[:, sel], design, n, n_clusters, None if q is None else q[np.ix_(sel, sel)])


def wald_gt(att, th, pre, design, n, n_clusters, qdiag=None) -> dict | None:
    """R ``att_gt``'s pre-test: every pre-treatment ATT(g,t) with a non-degenerate variance is zero."""
    if not pre.any():
        return None
    v = design.quad_diag(th[:, pre]) if qdiag is None else qdiag[pre]
    sel = np.flatnonzero(pre)[v > DEGENERATE**2 * n**2]
    return wald_stat(att[sel], th, design, n, n_clusters, cols=sel)  # the columns sel of th (no p x k copy)


def _not_available(df: int, reason: str) -> dict:
    return {"stat": float("nan"), "df": int(df), "p_value": float("nan"), "status": "not available", "reason": reason}


def wald_stat(est, th, design, n, n_clusters: int, q=None, cols=None) -> dict | None:
    """``est' V^-1 est`` with its chi2 p-value, or "not available" (NaN statistic, a reason) when the
    covariance ``V`` is not finite, singular or ill-conditioned: never a negative or absurd statistic."""
    k = len(est)
    if k == 0:
        return None
    if n_clusters <= k:  # IFs sum to zero over clusters: rank <= clusters - 1 < restrictions
        return _not_available(k, f"{k} restrictions but only {n_clusters} clusters: the covariance of the "
                                 "pre-treatment estimates is singular")
    if q is None:
        v = design.quad(th, cols=cols)
        v /= n**2  # a fresh array: scaled in place
    else:
        v = q / n**2
    if not np.all(np.isfinite(v)) or not np.all(np.isfinite(est)):
        return _not_available(k, "the pre-treatment estimates or their covariance are not finite")
    try:  # a covariance matrix: Cholesky (half the work of LU); fails when not positive definite
        c = linalg.cho_factor(v, check_finite=False)
    except np.linalg.LinAlgError:
        return _not_available(k, f"the covariance of the {k} pre-treatment estimates is singular (not positive "
                                 "definite)")
    rcond = _rcond(c[0], c[1], v)
    if not rcond >= WALD_RCOND_MIN:
        return _not_available(k, f"the covariance of the {k} pre-treatment estimates is singular or ill-conditioned "
                                 f"(reciprocal condition number {rcond:.1e} < {WALD_RCOND_MIN:g})")
    stat = float(est @ linalg.cho_solve(c, est, check_finite=False))
    if not (np.isfinite(stat) and stat >= 0):
        return _not_available(k, "the Wald statistic is not finite and non-negative (numerically singular covariance)")
    return {"stat": stat, "df": k, "p_value": float(special.chdtrc(k, stat)), "status": "ok"}  # chi2 survival


def _rcond(factor: np.ndarray, lower: bool, v: np.ndarray) -> float:
    """LAPACK's estimate of the reciprocal 1-norm condition number of ``v`` from its Cholesky factor (O(k^2))."""
    pocon = linalg.get_lapack_funcs("pocon", (factor,))
    rc, info = pocon(factor, float(np.abs(v).sum(axis=0).max()), uplo="L" if lower else "U")
    return float(rc) if info == 0 else 0.0


_FLOAT_COLS = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "band_low", "band_high", "weight")
_INT_COLS = ("group", "time", "event_time")
_CANONICAL: list[pd.DataFrame] = []


def tidy_frame(parts, alpha) -> pd.DataFrame:
    """The tidy estimates frame, built once in the canonical layout of ``results.make_estimates``."""
    sizes = [len(t) for _, t, _ in parts]
    nrow = sum(sizes)
    data: dict[str, Any] = {
        "kind": pd.array([k for (k, _, _), m in zip(parts, sizes, strict=True) for _ in range(m)] if nrow else [],
                         dtype="str"),
        "term": pd.array([t for _, terms, _ in parts for t in terms], dtype="str"),
    }
    num = {c: np.full(nrow, np.nan) for c in _INT_COLS + _FLOAT_COLS}
    o = 0
    for (_k, _t, cols), m in zip(parts, sizes, strict=True):
        for c, v in cols.items():
            num[c][o:o + m] = v
        o += m
    num.update(normal_inference(num["estimate"], num["std_error"], alpha))
    for c in _INT_COLS:
        data[c] = _int64_array(num[c])
    for c in _FLOAT_COLS:
        data[c] = num[c]
    return pd.DataFrame(data)


_KNOWN_FIELDS = ("estimator", "outcome", "estimates", "meta", "vcov", "tables", "inference", "context")
_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(EstimationResult))


def _int64_array(x: np.ndarray):
    """``pd.array(pd.to_numeric(pd.Series(x), errors="coerce"), dtype="Int64")`` for a float array
    (NaN = missing), built directly when every value is integral (~15x faster)."""
    mask = np.isnan(x)
    vals = np.where(mask, 0.0, x)
    iv = vals.astype(np.int64)
    if np.array_equal(iv, vals):
        return pd.arrays.IntegerArray(iv, mask)
    return pd.array(pd.to_numeric(pd.Series(x), errors="coerce"), dtype="Int64")


def make_result(estimates: pd.DataFrame, outcome, meta, vcov) -> EstimationResult:
    """``EstimationResult`` without re-normalising a frame that already has the canonical layout."""
    if not _CANONICAL:
        _CANONICAL.append(make_estimates(estimates.iloc[:0]))
    canon = _CANONICAL[0]
    if list(estimates.columns) == list(canon.columns) and estimates.dtypes.tolist() == canon.dtypes.tolist() \
            and isinstance(estimates.index, pd.RangeIndex) and _RESULT_FIELDS == _KNOWN_FIELDS:
        # already canonical: skip ``__post_init__``'s ``make_estimates`` (~1.7 ms of pandas work even
        # on an empty frame) and apply its metadata defaults here
        res = object.__new__(EstimationResult)
        res.estimator, res.outcome, res.estimates, res.meta, res.vcov, res.tables = \
            "cs", outcome, estimates, meta, vcov, {}
        res.inference, res.context = {}, None
        meta.setdefault("estimator", "cs")
        meta.setdefault("outcome", outcome)
        meta.setdefault("alpha", 0.05)
        return res
    return EstimationResult(estimator="cs", outcome=outcome, estimates=estimates, meta=meta, vcov=vcov)
