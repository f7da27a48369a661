"""Callaway–Sant'Anna headline on an UNBALANCED sample for many adoption-date assignments, no refit.

The balanced route is :mod:`evalkit.inference._fast`; this module covers R ``did``'s
``allow_unbalanced_panel = TRUE`` path without covariates and weights
(:mod:`evalkit.estimators._cs_unbalanced`), the one a sample with missing station-months takes
(rates whose denominator is zero in some months). For a block of draws (cohort per unit each):

* cohort x period sums ``s`` and counts ``N`` of the observed outcomes (one sparse product with
  ``[O∘Y, O]``), means ``Ybar = s / N``;
* ``ATT(g,t) = (Ybar_{g,t} − Ybar_{g,b}) − (S_{C,t}/N_{C,t} − S_{C,b}/N_{C,b})`` on every (g, t) cell
  of the fit's layout (``_cs_attgt.gt_cells``), NaN (left out, as the estimator skips it) where the
  cohort or the comparison group has no observation in t or b;
* the simple aggregation ``Σ pg_j ATT_j / Σ pg_j`` over the post cells (``trim_e`` upper bound);
* its analytic SE from the unit influence functions ``IF_i = z_i·θ_z[c] + O_i·θ_O[c] + wif[c]``
  (``_cs_unbalanced.theta_rc`` and ``_cs_aggte._combos``, R's ``wif`` for the estimated weights):
  with ``z_i = O_i (Y_i − Ybar_c)`` this is ``[O∘Y, O]_i · B[c] + wif[c]``, so all draws and cohorts
  take one matrix product; ``se = sqrt(Σ_clusters (Σ IF)²) / n`` (NaN when degenerate).

:func:`cs_unbalanced_headline` returns ``None`` when the fit is not of that kind, or when an
assignment could change the estimator's sample (units dropped as treated in the first period, no
never-treated units): the caller re-fits per draw then. Callers check the unpermuted assignment
against the full fit (``_fast.agrees``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators._cs_blas import blas_threads
from evalkit.inference._fast import cell_arrays

_BLOCK = 4_000_000  # draws x cohorts x units per block (the influence-function product)


def cs_unbalanced_headline(fit: Any, frame: pd.DataFrame, *, unit: str, cohort: str,
                           units: pd.Index) -> Callable[..., Any] | None:
    """``stats(G, se=False)``: the simple-aggregation ATT of the CS fit ``fit`` (unbalanced path)
    for each row of ``G`` (raw adoption date per unit of ``units``, 0 = never treated), with
    ``se=True`` also its analytic SE; ``None`` when not covered (see the module docstring)."""
    from evalkit.estimators._cs_attgt import gt_cells

    gt = getattr(fit, "_gt", None)
    rows = fit.rows("overall")
    if gt is None or rows.empty or str(rows["term"].iloc[0]) != "ATT":
        return None
    prep, opt = gt.prep, gt.options
    if not prep.unbalanced or prep.covs is not None or opt.get("covariates") or prep.w is not None:
        return None
    cohorts, periods = np.asarray(prep.cohorts, float), np.asarray(prep.periods)
    anticipation = opt.get("anticipation", 0) or 0
    if not np.isinf(cohorts).any() or "last_cohort_as_control" in prep.info:
        return None  # no never-treated units: the estimator drops periods by the latest cohort
    pos = pd.Index(prep.units).get_indexer(units)
    if len(prep.units) != units.size or (pos < 0).any():
        return None  # the estimator dropped units (no observed outcome, treated in the first period)
    raw = frame.groupby(unit, sort=True)[cohort].first().reindex(units).to_numpy(float)
    if not set(_convention(raw, periods)) <= set(cohorts):
        return None
    finite = cohorts[np.isfinite(cohorts)]
    if (finite <= periods[0] + anticipation).any():
        return None  # a draw could give such an adoption date to a unit the fit kept
    Y = np.asarray(prep.y, float)[pos]  # units x periods, NaN where unobserved
    obs = ~np.isnan(Y)
    X0 = np.hstack([np.where(obs, Y, 0.0), obs.astype(float)])  # [O∘Y, O]
    cells = gt_cells(periods, finite, cohorts, opt["base_period"], opt["control"], anticipation)
    if not cells:
        return None
    trim = (fit.context.options.get("trim_e") if fit.context is not None else None) or (None, None)
    clus = None if prep.cluster is None else np.asarray(prep.cluster)[pos]
    stats = _Draws(X0, periods, cohorts, cells, trim[1], clus).stats

    def run(G: np.ndarray, se: bool = False):
        with blas_threads(1):  # mid-size products: OpenBLAS threads only spin on a shared machine
            return stats(G, se)
    return run


def _convention(g: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Raw adoption dates → the estimator's cohorts (never, 0 or after the last period → inf)."""
    return np.where(np.isnan(g) | (g == 0) | (g > periods[-1]), np.inf, g)


class _Draws:
    def __init__(self, X0: np.ndarray, periods: np.ndarray, cohorts: np.ndarray, cells: list,
                 max_e: float | None, clus: np.ndarray | None):
        self.X0, self.periods, self.cohorts = X0, periods, cohorts
        self.n, self.t2 = X0.shape
        self.nt, self.kc = self.t2 // 2, cohorts.size
        self.gi, self.cur, self.base, self.zero, self.cmask = cell_arrays(cells, cohorts)
        # the simple aggregation's cells (as _cs_aggte.aggregate: recoded periods, max_e trims)
        gv, tv = cohorts[self.gi], periods[self.cur].astype(float)
        recode = np.unique(np.concatenate([periods.astype(float), cohorts[np.isfinite(cohorts)]]))
        rg, rt = np.searchsorted(recode, gv), np.searchsorted(recode, tv)
        hi = np.inf if max_e is None else max_e
        self.post = np.flatnonzero((rg <= rt) & (rt <= rg + hi))
        self.clus = None if clus is None else sp.csr_matrix(
            (np.ones(self.n), (np.arange(self.n), pd.factorize(clus)[0])))

    def codes(self, G: np.ndarray) -> np.ndarray:
        g = _convention(G, self.periods)
        idx = np.minimum(np.searchsorted(self.cohorts, g), self.kc - 1)
        if not np.array_equal(self.cohorts[idx], g):
            raise ValueError("a draw has cohort levels the fit does not have")
        return idx

    def stats(self, G: np.ndarray, se: bool = False):
        ix = self.codes(np.atleast_2d(np.asarray(G, float)))
        est = np.empty(ix.shape[0])
        out_se = np.full(ix.shape[0], np.nan)
        step = max(1, _BLOCK // max(self.n * self.kc, 1))
        for s in range(0, ix.shape[0], step):
            e, v = self._block(ix[s:s + step], se)
            est[s:s + e.size], out_se[s:s + e.size] = e, v
        return (est, out_se) if se else est

    def _block(self, ix: np.ndarray, want_se: bool) -> tuple[np.ndarray, np.ndarray]:
        from evalkit.estimators._cs_boot import DEGENERATE

        m, kc, n, nt = ix.shape[0], self.kc, self.n, self.nt
        gi, cur, base, post = self.gi, self.cur, self.base, self.post
        rows_ = (np.arange(m)[:, None] * kc + ix).ravel()
        M = sp.csr_matrix((np.ones(m * n), (rows_, np.tile(np.arange(n), m))), shape=(m * kc, n))
        sums = (M @ self.X0).reshape(m, kc, self.t2)
        s, cnt = sums[:, :, :nt], sums[:, :, nt:]
        n_c = np.asarray(M.sum(axis=1)).reshape(m, kc)
        cm = self.cmask.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(cnt > 0, s / cnt, np.nan)
            ng_cur, ng_base = cnt[:, gi, cur], cnt[:, gi, base]  # m x cells
            nc_cur = np.einsum("jc,bcj->bj", cm, cnt[:, :, cur])
            nc_base = np.einsum("jc,bcj->bj", cm, cnt[:, :, base])
            yc_cur = np.einsum("jc,bcj->bj", cm, s[:, :, cur]) / nc_cur
            yc_base = np.einsum("jc,bcj->bj", cm, s[:, :, base]) / nc_base
            ok = ~self.zero[None] & (ng_cur > 0) & (ng_base > 0) & (nc_cur > 0) & (nc_base > 0)
            att = (mean[:, gi, cur] - mean[:, gi, base]) - (yc_cur - yc_base)
            att = np.where(self.zero[None], 0.0, np.where(ok, att, np.nan))
            # the simple aggregation over the post cells the estimator keeps (skipped: not ok)
            keep = np.zeros_like(ok)
            keep[:, post] = ok[:, post] | self.zero[post][None]
            pg = np.where(keep, n_c[:, gi] / n, 0.0)  # R aggte's pg: the cohort's share of the units
            S = pg.sum(axis=1)
            est = np.where(S > 0, (pg * np.where(keep, att, 0.0)).sum(axis=1) / S, np.nan)
        if not want_se:
            return est, np.full(m, np.nan)
        w = np.where(S[:, None] > 0, pg / np.where(S > 0, S, 1.0)[:, None], 0.0)
        live = keep & ~self.zero[None]  # the cells with a theta column
        bb, jj = np.nonzero(live)
        gk, ck, bk, wk = gi[jj], cur[jj], base[jj], w[bb, jj]
        t2 = self.t2
        # theta of the aggregate (units of n): the cohort's own z columns ...
        idx = [((bb * kc + gk) * t2 + ck), ((bb * kc + gk) * t2 + bk)]
        val = [wk * n / ng_cur[bb, jj], -wk * n / ng_base[bb, jj]]
        # ... and the comparison cohorts' z and O columns
        q, cc = np.nonzero(self.cmask[jj])
        bq, jq = bb[q], jj[q]
        wt, wb = wk[q] * n / nc_cur[bq, jq], wk[q] * n / nc_base[bq, jq]
        dt = np.nan_to_num(mean[bq, cc, cur[jq]] - yc_cur[bq, jq])  # 0 where cohort cc is unobserved at t
        db = np.nan_to_num(mean[bq, cc, base[jq]] - yc_base[bq, jq])
        blk = (bq * kc + cc) * t2
        idx += [blk + cur[jq], blk + nt + cur[jq], blk + base[jq], blk + nt + base[jq]]
        val += [-wt, -wt * dt, wb, wb * db]
        K = np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=m * kc * t2).reshape(m, kc, t2)
        # z = O (Y − Ybar_c): fold the centring into the O columns, B = [K_z, K_O − Ybar∘K_z]
        K[:, :, nt:] -= np.nan_to_num(mean) * K[:, :, :nt]
        # R's wif (estimated weights), constant within cohort: (A − P)/S − (N − S) P / S²
        bi = np.broadcast_to(np.arange(m)[:, None], keep.shape)[keep]
        ci = np.broadcast_to(gi[None], keep.shape)[keep]
        A = np.bincount(bi * kc + ci, weights=att[keep], minlength=m * kc).reshape(m, kc)
        N = np.bincount(bi * kc + ci, minlength=m * kc).reshape(m, kc).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            P = (S * est)[:, None]
            wif = (A - P) / S[:, None] - (N - S[:, None]) * (P / S[:, None] ** 2)
        prod = self.X0 @ K.reshape(m * kc, t2).T  # units x (draw, cohort)
        units = np.arange(n)
        inf = prod[units[None, :], np.arange(m)[:, None] * kc + ix] + np.take_along_axis(wif, ix, axis=1)  # m x n
        if self.clus is not None:
            inf = np.asarray(self.clus.T @ inf.T).T
        v = np.sqrt(np.maximum(np.einsum("bi,bi->b", inf, inf) / n**2, 0.0))
        return est, np.where((v <= DEGENERATE) | ~np.isfinite(est), np.nan, v)
