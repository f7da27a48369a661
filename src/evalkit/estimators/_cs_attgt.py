"""Group-time ATTs of the Callaway–Sant'Anna estimator (R ``did``'s ``att_gt``): the (g, t) cells,
ATT(g,t) and their influence functions in design form (:mod:`evalkit.estimators._cs_design`).

Statistics only: the one place that can use a helper thread (building the compact design's scatter
matrices) takes an ``executor`` and runs serially without one.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from evalkit.estimators import _cs_rc, _cs_unbalanced
from evalkit.estimators._cs_design import CompactDesign, DenseDesign
from evalkit.estimators._cs_drdid import ESTIMATORS
from evalkit.estimators._cs_prepare import Prepared


def gt_cells(periods, glist, cohorts, base_period, control, anticipation):
    """R did's (g, t) loop: returns lists of (g, cur, base, control-cohort mask, is_zero_row)."""
    nt = len(periods)
    tfac = 0 if base_period == "universal" else 1
    never = np.isinf(cohorts)
    never.flags.writeable = False  # shared by every cell with never-treated controls
    any_never = bool(never.any())
    cells = []
    for g in glist:
        pre = np.flatnonzero(periods + anticipation < g)
        last_pre = pre[-1]
        for ti in range(nt - tfac):
            cur = ti + tfac
            if base_period == "universal" or g <= periods[cur]:
                base = last_pre
            else:
                base = ti
            if base_period == "universal" and base == cur:
                cells.append((g, cur, base, None, True))
                continue
            if control == "never":
                if not any_never:
                    continue
                cmask = never
            else:
                tmax = periods[max(cur, base)]
                cmask = never | ((cohorts > tmax + anticipation) & (cohorts != g))
                if not cmask.any():  # no comparison units left (not-yet-treated without never-treated)
                    continue
            cells.append((g, cur, base, cmask, False))
    return cells


def cohort_means(prep: Prepared) -> np.ndarray:
    return np.vstack([prep.y[prep.bounds[c]:prep.bounds[c + 1]].mean(axis=0) for c in range(len(prep.cohorts))])


def _theta_compact(prep: Prepared, cells, n, ybar):
    """ATT(g,t) and their theta columns (p x n_gt) in the compact design (vectorised over cells)."""
    kc = len(prep.cohorts)
    nt = prep.y.shape[1]
    p = kc * nt + kc
    ngt = len(cells)
    n_c = np.diff(prep.bounds).astype(float)
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    gi = np.array([cidx[c[0]] for c in cells], dtype=np.intp)
    cur = np.array([c[1] for c in cells], dtype=np.intp)
    base = np.array([c[2] for c in cells], dtype=np.intp)
    zero = np.array([c[4] for c in cells], dtype=bool)
    cmask = np.array([np.zeros(kc, bool) if c[4] else c[3] for c in cells], dtype=bool).reshape(ngt, kc)
    j = np.arange(ngt)
    dyb = (ybar[:, cur] - ybar[:, base]).T  # n_gt x kc
    nC = cmask.astype(float) @ n_c
    with np.errstate(divide="ignore", invalid="ignore"):
        wc = np.where(cmask, n_c[None, :] / nC[:, None], 0.0)
        m_c = (wc * dyb).sum(axis=1)
        att = np.where(zero, 0.0, np.where(nC > 0, dyb[j, gi] - m_c, np.nan))
    th = np.zeros((p, ngt))
    ok = ~zero & (nC > 0)
    jj = j[ok]
    th[gi[ok] * nt + cur[ok], jj] = n / n_c[gi[ok]]
    th[gi[ok] * nt + base[ok], jj] = -n / n_c[gi[ok]]
    cj, cc = np.nonzero(cmask & ok[:, None])
    w = n / nC[cj]
    th[cc * nt + cur[cj], cj] = -w
    th[cc * nt + base[cj], cj] = w
    th[kc * nt + cc, cj] = -w * (dyb[cj, cc] - m_c[cj])
    # the same matrix in sparse form (values read back from the dense one)
    r = np.concatenate([gi[ok] * nt + cur[ok], gi[ok] * nt + base[ok], cc * nt + cur[cj], cc * nt + base[cj],
                        kc * nt + cc])
    c = np.concatenate([jj, jj, cj, cj, cj])
    lin = np.unique(r.astype(np.int64) * ngt + c)
    r, c = np.divmod(lin, ngt)
    th_sp = sparse.csr_matrix((th[r, c], (r, c)), shape=th.shape)
    return att, th, th_sp


def _if_dense(prep: Prepared, cells, n, est_method):
    """ATT(g,t) and dense unit-level influence functions with covariates (R DRDID estimators)."""
    est = ESTIMATORS[est_method]
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    coh_of_unit = np.repeat(np.arange(len(prep.cohorts)), np.diff(prep.bounds))
    att = np.zeros(len(cells))
    inf = np.zeros((n, len(cells)))
    ccount = np.zeros(len(cells))
    ones = np.ones((n, 1))
    for j, (g, cur, base, cmask, zero) in enumerate(cells):
        if zero:
            continue
        treat = coh_of_unit == cidx[g]
        ctrl = cmask[coh_of_unit]
        sub = treat | ctrl
        n1 = int(sub.sum())
        ccount[j] = ctrl.sum()
        d = treat[sub].astype(float)
        dy = prep.y[sub, cur] - prep.y[sub, base]
        x = np.hstack([ones[sub], prep.covs[sub, min(cur, base), :]])
        a, infl = est(dy, d, x)
        att[j] = a
        inf[sub, j] = infl * (n / n1)
    return att, inf, coh_of_unit


def gt_terms(cells, periods) -> list[str]:
    """``g=<group>,t=<period>`` labels of the ATT(g,t) cells."""
    plab = [fmt(p) for p in periods.tolist()]
    glab = {g: fmt(g) for g in {c[0] for c in cells}}
    return [f"g={glab[c[0]]},t={plab[c[1]]}" for c in cells]


@functools.lru_cache(maxsize=4096)
def fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"



def _if_weighted(prep: Prepared, cells, n):
    """ATT(g,t) and dense unit-level influence functions with sampling weights, no covariates.

    R ``did`` with ``weightsname`` runs ``DRDID::drdid_panel`` with ``i.weights``; with an intercept
    only that is the difference of weighted means of ``Y_t - Y_base``, with influence function (R
    ``did`` scaling) ``n w_i (dY_i - m_T) / W_T`` for the cohort's units and
    ``-n w_i (dY_i - m_C) / W_C`` for the comparison units (``W`` = sum of weights).
    """
    w = prep.w
    kc = len(prep.cohorts)
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    coh_of_unit = np.repeat(np.arange(kc), np.diff(prep.bounds))
    w_c = np.add.reduceat(w, prep.bounds[:-1]) if n else np.zeros(kc)
    att = np.zeros(len(cells))
    inf = np.zeros((n, len(cells)))
    for j, (g, cur, base, cmask, zero) in enumerate(cells):
        if zero:
            continue
        c = cidx[g]
        t = slice(prep.bounds[c], prep.bounds[c + 1])
        ctrl = cmask[coh_of_unit]
        wt, wc = w_c[c], float(w_c[cmask].sum())
        if wt <= 0 or wc <= 0:  # no weight on one side: not estimable (R: NA)
            att[j] = np.nan
            continue
        dyt = prep.y[t, cur] - prep.y[t, base]
        dyc = prep.y[ctrl, cur] - prep.y[ctrl, base]
        mt, mc = w[t] @ dyt / wt, w[ctrl] @ dyc / wc
        att[j] = mt - mc
        inf[t, j] = n * w[t] * (dyt - mt) / wt
        inf[ctrl, j] = -n * w[ctrl] * (dyc - mc) / wc
    return att, inf, coh_of_unit


@dataclass
class GTCore:
    """ATT(g,t) of the cells in design form: ``IF_i(k) = X_i @ theta[:, k]`` (see ``_cs_design``)."""

    cells: list
    att: np.ndarray
    th_gt: np.ndarray  # p x n_gt
    th_sp: Any  # the same in CSR form (compact design) or None
    design: Any  # CompactDesign | DenseDesign, or a future of one (built on the executor)
    ind0: int  # first cohort-indicator row of theta
    pg_coh: np.ndarray  # share of each cohort (R aggte's pg: mean of weight x cohort indicator)
    baseline_mean: float | None  # mean outcome of the treated cohorts before treatment (unweighted)
    n_obs: int
    zc: np.ndarray | None = None  # the [z, O] design matrix of the unbalanced path (bootstrap products)


def compute(prep: Prepared, cells, est_method: str, covariates, ybar: np.ndarray | None,
            executor: Any = None) -> GTCore:
    """ATT(g,t) and their influence functions for ``cells`` on the sample ``prep``.

    ``ybar``: cohort x period means when the caller already centred ``prep.y`` within cohort (the
    bootstrap's products started early), else None. ``executor``: builds the compact design's scatter
    matrices beside the caller's aggregation (the returned ``design`` is then a future).
    """
    n, nt = prep.y.shape
    kc = len(prep.cohorts)
    n_c = np.diff(prep.bounds)
    centred = ybar is not None
    if prep.unbalanced:
        ysum, ycnt, _ = _cs_unbalanced.cohort_period_sums(prep.y, prep.bounds)
    else:
        if not centred:
            ybar = cohort_means(prep)
        ysum, ycnt = ybar * n_c[:, None], np.broadcast_to(n_c[:, None], ybar.shape)
    pre_sum, pre_cnt = 0.0, 0
    for c in range(kc):
        if np.isfinite(prep.cohorts[c]):
            cols = prep.periods < prep.cohorts[c]
            pre_sum += float(ysum[c, cols].sum())
            pre_cnt += int(ycnt[c, cols].sum())
    n_obs = int(ycnt.sum())
    pg_coh = n_c / n if prep.w is None else np.add.reduceat(prep.w, prep.bounds[:-1]) / n

    th_sp = zc = None
    if prep.unbalanced and covariates:
        # R DRDID repeated-cross-section estimators per (g,t), row IFs summed by unit (dense design)
        coh_of_unit = np.repeat(np.arange(kc), np.diff(prep.bounds))
        att, inf, reason, used = _cs_rc.unit_ifs(prep.y, prep.covs, coh_of_unit, prep.cohorts, cells, n, est_method)
        bad = np.array([r is not None for r in reason], dtype=bool)
        if bad.any():
            label = gt_terms(cells, prep.periods)
            skipped = [lb for lb, b in zip(label, bad, strict=True) if b]
            why = sorted({r for r in reason if r is not None})
            warnings.warn(f"Skipped {len(skipped)} ATT(g,t) that cannot be estimated ({'; '.join(why)}): "
                          f"{', '.join(skipped)} (R did reports NA)", stacklevel=4)
            no_obs = [lb for lb, r in zip(label, reason, strict=True) if r == _cs_rc.NO_OBSERVATIONS]
            if no_obs:
                prep.info["gt_skipped_no_observations"] = no_obs
            failed = {lb: r for lb, r in zip(label, reason, strict=True) if r not in (None, _cs_rc.NO_OBSERVATIONS)}
            if failed:
                prep.info["gt_skipped_not_estimable"] = failed
            keepc = np.flatnonzero(~bad)
            cells = [cells[i] for i in keepc]
            att, inf = att[keepc], inf[:, keepc]
        prep.info["n_obs_used"] = int(used.sum())
        prep.info["unbalanced_handling"] += (
            f"; covariates: DRDID {_cs_rc.RC_ESTIMATORS[est_method].__name__} per (g,t), each row's own covariates")
        design: Any = DenseDesign(inf, coh_of_unit, kc, prep.cluster)
        ngt = len(cells)
        th_gt = np.vstack([np.eye(ngt), np.zeros((kc, ngt))])
        ind0 = ngt
    elif prep.unbalanced:
        att, th_gt, ok, zc, cnt = _cs_unbalanced.theta_rc(prep.y, prep.bounds, prep.cohorts, cells, n)
        bad = ~ok & ~np.array([c[4] for c in cells], dtype=bool)
        if bad.any():
            skipped = [lb for lb, b in zip(gt_terms(cells, prep.periods), bad, strict=True) if b]
            warnings.warn(f"Skipped {len(skipped)} ATT(g,t) without treated or comparison observations in "
                          f"period t or the base period: {', '.join(skipped)} (R did reports NA)", stacklevel=4)
            prep.info["gt_skipped_no_observations"] = skipped
            keepc = np.flatnonzero(~bad)
            cells = [cells[i] for i in keepc]
            att, th_gt = att[keepc], th_gt[:, keepc]
        prep.info["n_obs_used"] = _cs_unbalanced.obs_used(th_gt, cnt)
        design = CompactDesign(zc, prep.bounds, prep.cluster, centred=False)
        ind0 = kc * 2 * nt
    elif covariates or prep.w is not None:
        if covariates:
            att, inf, coh_of_unit = _if_dense(prep, cells, n, est_method)
            ind_values = None
        else:
            att, inf, coh_of_unit = _if_weighted(prep, cells, n)
            ind_values = prep.w  # R aggte's weight influence: w_i 1{G_i = g} - pg
        design = DenseDesign(inf, coh_of_unit, kc, prep.cluster, ind_values=ind_values)
        ngt = len(cells)
        th_gt = np.vstack([np.eye(ngt), np.zeros((kc, ngt))])
        ind0 = ngt
    else:
        att, th_gt, th_sp = _theta_compact(prep, cells, n, ybar)
        zc = prep.y  # owned by us: centre within cohort in place
        if not centred:
            for c in range(kc):
                zc[prep.bounds[c]:prep.bounds[c + 1]] -= ybar[c]
        # the per-cohort scatter matrices are built on the executor while the caller aggregates
        design = executor.submit(CompactDesign, zc, prep.bounds, prep.cluster) if executor is not None \
            else CompactDesign(zc, prep.bounds, prep.cluster)
        zc = None
        ind0 = kc * nt
    return GTCore(cells, att, th_gt, th_sp, design, ind0, pg_coh, pre_sum / pre_cnt if pre_cnt else None, n_obs, zc)
