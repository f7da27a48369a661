"""Headline estimates of CS and imputation for many adoption-date assignments, without refitting.

Permutation inference (randomization inference, Romano–Wolf, placebo dates) refits an estimator
once per draw with the stations' adoption dates reassigned. For the two headline estimators the
point estimate is a small computation on the station x month outcome matrix, done here for blocks
of draws at once:

* Callaway–Sant'Anna, simple aggregation (term ``ATT``, optionally trimmed by ``trim_e``), balanced
  sample without covariates: with the cohorts' (weighted) period means ``ybar_b`` of draw ``b``,
  ``ATT(g,t) = Δybar_g − Σ_c W_c/W_C Δybar_c`` over the comparison cohorts of the cell, and the
  overall row is the ``pg``-weighted mean of the post cells (``_cs_aggte.aggregate``). The (g, t)
  cells depend only on the cohort *levels*, which a permutation keeps: they come from the fit.
* Imputation (BJS): ``y = a_i + l_t`` by weighted least squares on the untreated cells of the draw
  (the unit effects eliminated, a ``(T−1) x (T−1)`` Schur system per draw), ``tau = y − a_i − l_t``
  averaged with the observation weights over the treated cells with ``0 ≤ e ≤ max_e`` (options
  ``anticipation``, ``max_e``, ``weights``; any other option that changes the point estimate →
  no fast path).

:func:`fast_headline` returns ``None`` whenever the fast route does not cover the fit (another
estimator or headline term, covariates, an unbalanced CS sample, unknown options); callers then
refit per draw. Callers also check one draw against a full estimator call (:func:`agrees`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.results import EstimationResult

#: options of estimate_imputation that do not change its overall point estimate (or are handled)
_IMP_OPTIONS = {"alpha", "anticipation", "horizons", "max_e", "pretrend_leads", "leaveout", "cluster",
                "repeated_cross_section", "unit", "time", "cohort", "weights"}
_CELLS = 4_000_000  # draws x cells x cohorts per block (CS)

Stats = Callable[[np.ndarray], np.ndarray]  # (draws x n_units cohorts, 0 = never) -> draws estimates


def fast_headline(estimator: str, fit: EstimationResult, frame: pd.DataFrame, outcome: str, *, unit: str,
                  time: str, weights: str | None, options: Mapping[str, Any], units: pd.Index) -> Stats | None:
    """``stats(G)``: the headline estimate of ``estimator`` on ``frame`` for each row of ``G``
    (cohort per unit of ``units``, 0 = never treated); ``fit`` is the estimator's fit on ``frame``
    (any assignment with the same cohort levels). ``None``: not covered, refit per draw."""
    try:
        if estimator == "cs":
            return _cs(fit, frame, outcome, unit, time, options, units)
        if estimator == "imputation":
            return _imputation(frame, outcome, unit, time, weights, options, units)
    except (KeyError, ValueError):  # a layout the fast route does not know: refit per draw
        return None
    return None


def agrees(fast: float, full: float) -> bool:
    """Whether a fast estimate reproduces the full estimator call (both NaN counts as agreeing)."""
    if not (np.isfinite(fast) and np.isfinite(full)):
        return bool(np.isnan(fast) and np.isnan(full))
    return abs(fast - full) <= 1e-9 * max(1.0, abs(full))


def _grid(frame: pd.DataFrame, outcome: str, unit: str, time: str, units: pd.Index, periods: np.ndarray,
          weights: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``units x periods`` outcome (0 where unobserved), presence mask and weights of ``frame``."""
    ui = units.get_indexer(frame[unit])
    ti = pd.Index(periods).get_indexer(frame[time])
    if (ui < 0).any() or (ti < 0).any():
        raise ValueError("rows outside the unit / period grid")
    Y = np.zeros((units.size, periods.size))
    P = np.zeros((units.size, periods.size), dtype=bool)
    W = np.zeros((units.size, periods.size))
    Y[ui, ti] = frame[outcome].to_numpy(float)
    P[ui, ti] = True
    W[ui, ti] = 1.0 if weights is None else frame[weights].to_numpy(float)
    return Y, P, W


# ---------------------------------------------------------------------------- Callaway–Sant'Anna
def _cs(fit, frame, outcome, unit, time, options, units) -> Stats | None:
    gt = getattr(fit, "_gt", None)
    rows = fit.rows("overall")
    if gt is None or rows.empty or str(rows["term"].iloc[0]) != "ATT":
        return None
    prep, cells = gt.prep, gt.core.cells
    if prep.unbalanced or prep.covs is not None or options.get("covariates"):
        return None
    periods, cohorts = np.asarray(prep.periods, float), np.asarray(prep.cohorts, float)
    Y, P, _ = _grid(frame, outcome, unit, time, units, periods, None)
    if not P.all():
        return None
    wu = np.ones(units.size)
    if prep.w is not None:  # prep.w is in prep.units order
        wu = pd.Series(np.asarray(prep.w, float), index=prep.units).reindex(units).to_numpy()
        if np.isnan(wu).any():
            return None
    n, kc = units.size, cohorts.size
    cidx = {v: i for i, v in enumerate(cohorts)}
    gi = np.array([cidx[c[0]] for c in cells], dtype=np.intp)
    cur = np.array([c[1] for c in cells], dtype=np.intp)
    base = np.array([c[2] for c in cells], dtype=np.intp)
    zero = np.array([c[4] for c in cells], dtype=bool)
    cmask = np.array([np.zeros(kc, bool) if c[4] else c[3] for c in cells], dtype=bool).reshape(len(cells), kc)
    # the simple aggregation's cells (as _cs_aggte.aggregate: recoded periods, max_e trims)
    trim = (fit.context.options.get("trim_e") if fit.context is not None else None) or (None, None)
    max_e = np.inf if trim[1] is None else trim[1]
    gv = cohorts[gi]
    tv = periods[cur]
    recode = np.unique(np.concatenate([periods, cohorts[np.isfinite(cohorts)]]))
    rg, rt = np.searchsorted(recode, gv), np.searchsorted(recode, tv)
    keep = np.flatnonzero((rg <= rt) & (rt <= rg + max_e))
    if keep.size == 0:
        return None
    ngt = len(cells)
    jj = np.arange(ngt)

    def stats(G: np.ndarray) -> np.ndarray:
        G = np.atleast_2d(np.asarray(G, float))
        g = np.where(G > 0, G, np.inf)
        idx = np.searchsorted(cohorts, g)
        idx = np.minimum(idx, kc - 1)
        if not np.array_equal(cohorts[idx], g):
            raise ValueError("a draw has cohort levels the fit does not have")
        out = np.empty(G.shape[0])
        step = max(1, _CELLS // max(ngt * kc, 1))
        for s in range(0, G.shape[0], step):
            ix = idx[s:s + step]
            m = ix.shape[0]
            rows_ = (np.arange(m)[:, None] * kc + ix).ravel()
            M = sp.csr_matrix((np.tile(wu, m), (rows_, np.tile(np.arange(n), m))), shape=(m * kc, n))
            Wc = np.asarray(M.sum(axis=1)).reshape(m, kc)
            with np.errstate(divide="ignore", invalid="ignore"):
                ybar = (M @ Y).reshape(m, kc, -1) / Wc[:, :, None]
                dyb = ybar[:, :, cur] - ybar[:, :, base]  # m x kc x ngt
                WC = Wc @ cmask.T  # m x ngt
                wc = np.where(cmask[None], Wc[:, None, :], 0.0) / WC[:, :, None]  # m x ngt x kc
                m_c = np.einsum("bjc,bcj->bj", np.nan_to_num(wc), np.nan_to_num(dyb))
                att = dyb[:, gi, jj] - m_c
                att = np.where(zero[None], 0.0, np.where(WC > 0, att, np.nan))
                pg = Wc[:, gi[keep]]
                out[s:s + m] = np.sum(pg * att[:, keep], axis=1) / pg.sum(axis=1)
        return out

    return stats


# ---------------------------------------------------------------------------- imputation
def _imputation(frame, outcome, unit, time, weights, options, units) -> Stats | None:
    if set(options) - _IMP_OPTIONS or options.get("repeated_cross_section"):
        return None
    periods = np.sort(pd.unique(frame[time].to_numpy(float)))
    Y, P, W = _grid(frame, outcome, unit, time, units, periods, weights)
    antic = float(options.get("anticipation") or 0)
    max_e = options.get("max_e")
    hi = np.inf if max_e is None else float(max_e)

    def one(g: np.ndarray) -> float:
        gg = np.where(g > 0, g, np.inf)
        treated = P & (periods[None, :] >= gg[:, None] - antic)
        M = np.where(P & ~treated, W, 0.0)
        n_i, m_t = M.sum(axis=1), M.sum(axis=0)
        ok_u, ok_t = n_i > 0, m_t > 0
        e = periods[None, :] - gg[:, None]
        target = treated & ok_u[:, None] & ok_t[None, :] & (e >= 0) & (e <= hi)
        if not target.any():
            return np.nan
        C = M[np.ix_(ok_u, ok_t)]
        n, m = n_i[ok_u], m_t[ok_t]
        r = (M * Y).sum(axis=1)[ok_u]
        s = (M * Y).sum(axis=0)[ok_t]
        Cn = C / n[:, None]
        S = np.diag(m) - C.T @ Cn
        rhs = s - Cn.T @ r
        try:  # the first period's effect normalised to 0 (the fit's own normalisation does not matter)
            L = np.linalg.cholesky(S[1:, 1:])
        except np.linalg.LinAlgError:
            return np.nan  # disconnected design: the estimator refuses it
        d = np.diag(L)
        if d.min() <= 1e-7 * d.max():
            return np.nan
        lam = np.zeros(m.size)
        lam[1:] = np.linalg.solve(L.T, np.linalg.solve(L, rhs[1:]))
        a = np.zeros(P.shape[0])
        a[ok_u] = (r - C @ lam) / n
        lt = np.zeros(periods.size)
        lt[ok_t] = lam
        wt = np.where(target, W, 0.0)
        return float(np.sum(wt * (Y - a[:, None] - lt[None, :])) / wt.sum())

    def stats(G: np.ndarray) -> np.ndarray:
        G = np.atleast_2d(np.asarray(G, float))
        return np.array([one(row) for row in G])

    return stats


__all__ = ["Stats", "agrees", "fast_headline"]
