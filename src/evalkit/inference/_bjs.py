"""BJS test 1 (the imputation estimator's pre-trend test) for many adoption-date assignments.

The permutation pre-trend test (:mod:`evalkit.inference.pretrend`) of an imputation fit refits the
lead regression on each draw's untreated rows. :func:`bjs_pretrend` does it on the station x month
grid without the estimator: per draw an outcome-free design (:func:`_bjs_design`: the untreated
cells, the two-way system's Cholesky factor, the leads' two-way part, ``(X~'WX~)⁻¹``, the CR1
factor — kept for the other outcomes of an evaluation by :func:`evalkit.inference._shared.shared_designs`)
and per outcome one solve for ``y`` and the cluster scores. Split from :mod:`evalkit.inference._fast`
(whose grid and LAPACK helpers it uses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.inference._fast import _chol, _chol_solve, _grid, _one_blas_thread
from evalkit.inference._shared import _shared_designs


def bjs_pretrend(frame: pd.DataFrame, outcome: str, *, unit: str, time: str, cohort_units: pd.Index,
                 weights: str | None, cluster: str | None, anticipation: int, leads: int | None,
                 kind: str) -> Callable[[np.ndarray], float]:
    """``stat(cohort per unit of cohort_units) -> float``: BJS test 1 of the imputation estimator
    (``imputation._pretrend``: lead dummies ``1{t − G_i = e}``, ``e = ref, ref−1, …``, on the draw's
    untreated rows with unit and period effects, fixest CR1 by ``cluster``) — the Wald statistic
    (``kind="wald"``) or the sum of squared lead t statistics (``"t2sum"``). The two-way effects are
    partialled out by a Cholesky solve on the station x month grid. Everything that does not depend
    on the outcome — the untreated cells, the two-way system's factor, the lead dummies with their
    two-way part partialled out, ``(X~'WX~)⁻¹`` and the small-sample factor — is the draw's design
    (:func:`_bjs_design`, shared by the outcomes of an evaluation); per outcome a draw costs one
    solve for ``y`` and the CR1 scores (``X~'WX~ = X'WX~``: sums over the lead cells; cluster scores
    from the residual sums per cluster x unit and cluster x period)."""
    units = cohort_units
    periods = np.sort(pd.unique(frame[time].to_numpy(float)))
    Y, P, W = _grid(frame, outcome, unit, time, units, periods, weights)
    CL = np.full(P.shape, -1, dtype=np.int64)
    CL[units.get_indexer(frame[unit]), pd.Index(periods).get_indexer(frame[time])] = \
        pd.factorize(frame[cluster or unit])[0]
    nu, nt = P.shape
    pr, pc = np.nonzero(P)  # the grid's observed cells and their clusters (fixed across draws)
    cl_p = CL[pr, pc]
    n_cl = int(cl_p.max()) + 1 if cl_p.size else 0
    # each unit's cells in one cluster (stations, or counties that contain them): the cluster x unit
    # residual sums U1 have one entry per unit, so U1 @ a_lead is a sum of unit rows per cluster — a
    # dense n_clusters x n_units U1 would be 1,500 x 1,500 per draw on the medium world (small grids: dense)
    lo_cl = np.full(nu, np.iinfo(np.int64).max)
    np.minimum.at(lo_cl, pr, cl_p)
    hi_cl = np.full(nu, -1)
    np.maximum.at(hi_cl, pr, cl_p)
    has_u = hi_cl >= 0
    unit_cl = None
    if n_cl * nu > 100_000 and np.array_equal(lo_cl[has_u], hi_cl[has_u]):  # below: the dense product is cheaper
        hu = np.flatnonzero(has_u)
        unit_cl = sp.csr_matrix((np.ones(hu.size), (hi_cl[hu], hu)), shape=(n_cl, nu))
    grid = (periods, P, W, CL, pr, pc, cl_p, n_cl, int(anticipation), leads)
    # per draw, the observed cells of a grid in np.nonzero's (row-major) order: a 1-d take by flat
    # index (the grid itself when every cell is observed) instead of 2-d fancy indexing — same values
    flat = pr * nt + pc
    observed = (lambda X: X.ravel()) if flat.size == nu * nt else (lambda X: X.ravel()[flat])
    w_p, bin_u, bin_t = W[pr, pc], cl_p * nu + pr, cl_p * nt + pc
    designs = _shared_designs(("bjs", P, W, CL, periods, int(anticipation), leads, kind))

    def stat(cohorts: np.ndarray) -> float:
        d = designs.get(cohorts, lambda c: _bjs_design(grid, c)) if designs is not None else _bjs_design(grid, cohorts)
        if d is None or d["bread"] is None:
            return np.nan
        om0, M, ok_u, ok_t, C, n, Cn, L, k = (d[x] for x in ("om0", "M", "ok_u", "ok_t", "C", "n", "Cn", "L", "k"))
        ci, ct, cj, cw, kk, bread, al, ll = (d[x] for x in ("ci", "ct", "cj", "cw", "kk", "bread", "a_lead",
                                                             "l_lead"))
        # y's two-way effects on Omega_0 (the leads' are in the design)
        MY = M * Y
        ra, rl = MY.sum(axis=1), MY.sum(axis=0)
        if d["all_u"]:  # every unit and period in Omega_0: C is M itself
            C = M
            lam = np.zeros(nt)
            lam[1:] = _chol_solve(L, (rl - Cn.T @ ra)[1:])
            a = (ra - C @ lam) / n
            lt = lam
        else:
            ra, rl = ra[ok_u], rl[ok_t]
            lam = np.zeros(rl.size)
            lam[1:] = _chol_solve(L, (rl - Cn.T @ ra)[1:])
            a = np.zeros(nu)
            a[ok_u] = (ra - C @ lam) / n
            lt = np.zeros(nt)
            lt[ok_t] = lam
        yw = np.where(om0, Y - a[:, None] - lt[None, :], 0.0)  # within-transformed y on Omega_0
        # X~'Wy~ = X'Wy~: sums over the lead cells
        b = bread @ np.bincount(cj, weights=cw * yw[ci, ct], minlength=k)[kk]
        bb = np.zeros(k)
        bb[kk] = b
        # residuals u = y~ − X~ b on Omega_0, X~ = X − a − l
        u = yw + (al @ bb)[:, None] + (ll @ bb)[None, :]
        u[ci, ct] -= bb[cj]
        u = np.where(om0, u, 0.0)
        wu = w_p * observed(u)  # on the observed cells (0 outside Omega_0)
        # CR1 scores per cluster: Σ w u x~_j = Σ_{lead cells} w u − Σ_i a_j[i] U1[c, i] − Σ_t l_j[t] U2[c, t]
        # (clusters without an Omega_0 cell have zero scores: no row of the sum below changes)
        if unit_cl is not None:  # U1 @ al with U1 = unit_cl * (residual sum per unit)
            U1al = unit_cl @ (np.bincount(pr, weights=wu, minlength=nu)[:, None] * al)
        else:
            U1al = np.bincount(bin_u, weights=wu, minlength=n_cl * nu).reshape(n_cl, nu) @ al
        U2 = np.bincount(bin_t, weights=wu, minlength=n_cl * nt).reshape(n_cl, nt)
        direct = np.bincount(d["cl_lead"] * k + cj, weights=cw * u[ci, ct], minlength=n_cl * k).reshape(n_cl, k)
        sc = (direct - U1al - U2 @ ll)[:, kk]
        V = d["factor"] * bread @ (sc.T @ sc) @ bread
        V = (V + V.T) / 2
        if kind == "wald":  # wald_test's statistic and rank, without its p-value (unused per draw)
            stat_, df = _wald_stat(b, V)
            return stat_ if df == b.size else np.nan  # singular: as pretrend._rank_deficient
        se = np.sqrt(np.diag(V))
        okb = np.isfinite(b) & np.isfinite(se) & (se > 0)
        return float(np.sum((b[okb] / se[okb]) ** 2)) if okb.any() else np.nan

    return _one_blas_thread(stat)


def _bjs_design(grid: tuple, cohorts: np.ndarray) -> dict[str, Any] | None:
    """One draw's outcome-free part of BJS test 1 (:func:`bjs_pretrend`): the untreated cells
    Omega_0, the two-way system and its Cholesky factor, the lead cells, the leads' two-way part
    (``a_lead``, ``l_lead``: unit and period effects of each lead dummy on Omega_0), the kept leads
    ``kk`` with ``bread = (X~'WX~)⁻¹`` (``None``: no lead left) and the CR1 small-sample factor;
    ``None``: no lead to test."""
    from evalkit.estimators._fe import independent_columns, small_sample, sym_inv

    periods, P, W, CL, pr, pc, cl_p, n_cl, anticipation, leads = grid
    nu, nt = P.shape
    ref = -1 - anticipation
    cohorts = np.asarray(cohorts, float)
    gg = np.where(cohorts > 0, cohorts, np.inf)
    integer = bool(np.array_equal(cohorts, np.round(cohorts)) and np.array_equal(periods, np.round(periods)))
    om0 = P & ~(periods[None, :] >= gg[:, None] - anticipation)
    e = periods[None, :] - np.where(np.isfinite(gg), gg, 0.0)[:, None]
    tu = np.isfinite(gg)[:, None]
    lead_cells = om0 & tu & (e <= ref)
    ev = e[lead_cells]
    if integer and ev.size:  # the event times present, as np.unique(ev), by a presence count (no sort)
        lo = ev.min()
        avail = (np.flatnonzero(np.bincount((ev - lo).astype(np.int64))) + lo)[::-1]
    else:
        avail = np.unique(ev)[::-1]
    has_never = bool((om0 & ~tu).any())
    n_leads = (avail.size if has_never else max(avail.size - 1, 0)) if leads is None else int(leads)
    lead_vals = avail[:n_leads]
    if lead_vals.size == 0:
        return None
    k = lead_vals.size
    M = np.where(om0, W, 0.0)
    n_i, m_t = M.sum(axis=1), M.sum(axis=0)
    ok_u, ok_t = n_i > 0, m_t > 0
    all_u = bool(ok_u.all() and ok_t.all())
    C = M if all_u else M[np.ix_(ok_u, ok_t)]
    n, m = (n_i, m_t) if all_u else (n_i[ok_u], m_t[ok_t])
    Cn = C / n[:, None]
    L = _chol((np.diag(m) - C.T @ Cn)[1:, 1:])
    # the lead dummies are sparse: their cells (unit ci, period ct, lead cj, weight cw); leads are
    # the event times lead_vals[0] > lead_vals[1] > … (all present in the cells by construction)
    ci, ct = np.nonzero(lead_cells & (e >= lead_vals[-1]))
    asc = lead_vals[::-1]
    ev = e[ci, ct]
    pos = np.minimum(np.searchsorted(asc, ev), k - 1)
    sel = asc[pos] == ev
    ci, ct, cj = ci[sel], ct[sel], (k - 1 - pos)[sel]
    cw = W[ci, ct]
    # the leads' two-way effects on Omega_0 (right-hand sides: each lead dummy's sums by unit and period)
    ra = np.bincount(ci * k + cj, weights=cw, minlength=nu * k).reshape(nu, k)
    rl = np.bincount(ct * k + cj, weights=cw, minlength=nt * k).reshape(nt, k)
    if not all_u:
        ra, rl = ra[ok_u], rl[ok_t]
    lam = np.zeros((m.size, k))
    lam[1:] = _chol_solve(L, (rl - Cn.T @ ra)[1:])
    a_lead = np.zeros((nu, k))
    a_lead[ok_u] = (ra - C @ lam) / n[:, None]
    l_lead = np.zeros((nt, k))
    l_lead[ok_t] = lam
    # X~'WX~ = X'WX~: sums over the lead cells of the partialled-out dummies
    fx = a_lead[ci] + l_lead[ct]
    wsum = np.bincount(cj, weights=cw, minlength=k)
    # Σ_{cells of lead j1} w fx[:, j2], every (j1, j2) in one bincount (each bin summed in cell order)
    XtX = np.diag(wsum) - np.bincount((cj[:, None] * k + np.arange(k)[None, :]).ravel(),
                                      weights=(cw[:, None] * fx).ravel(), minlength=k * k).reshape(k, k)
    XtX = (XtX + XtX.T) / 2
    keep = np.zeros(k, dtype=bool)
    okc = np.flatnonzero(np.diag(XtX) > 1e-10 * wsum)
    keep[okc] = independent_columns(XtX[np.ix_(okc, okc)])
    kk = np.flatnonzero(keep)
    bread = sym_inv(XtX[np.ix_(kk, kk)]) if kk.size else None
    # CR1 small-sample factor: clusters with an Omega_0 cell; the unit and period effects' levels on
    # Omega_0 and whether each is nested in the clusters
    om0_p = om0[pr, pc]
    G = int(np.count_nonzero(np.bincount(cl_p[om0_p], minlength=n_cl)))
    lv = sorted([_levels_nested(om0, CL, 1), _levels_nested(om0, CL, 0)], key=lambda x: -x[0])
    factor = small_sample(int(om0_p.sum()), int(kk.size), "CRV1", fe_levels=[x[0] for x in lv],
                          fe_nested=[x[1] for x in lv], n_clusters=G)[0] if kk.size else np.nan
    return {"om0": om0, "M": M, "ok_u": ok_u, "ok_t": ok_t, "all_u": all_u, "C": None if all_u else C, "n": n,
            "Cn": Cn, "L": L,
            "k": k, "ci": ci, "ct": ct, "cj": cj, "cw": cw, "cl_lead": CL[ci, ct], "a_lead": a_lead,
            "l_lead": l_lead, "kk": kk, "bread": bread, "factor": factor}


def _levels_nested(om0: np.ndarray, cl: np.ndarray, axis: int) -> tuple[int, bool]:
    """``(levels, nested)`` of the unit (``axis=1``: rows) or period (``axis=0``: columns) effect on the
    cells ``om0`` of the grid: how many rows / columns hold a cell, and whether each one's cells lie in
    a single cluster of ``cl`` — ``(np.unique(rows).size, nested_in(rows, cl))`` without the sort."""
    has = om0.any(axis=axis)
    lo = np.where(om0, cl, np.iinfo(cl.dtype).max).min(axis=axis)
    hi = np.where(om0, cl, -1).max(axis=axis)
    return int(has.sum()), bool(np.array_equal(lo[has], hi[has]))


def _wald_stat(b: np.ndarray, V: np.ndarray) -> tuple[float, int]:
    """``(stat, df)`` of :func:`evalkit.estimators._fe.wald_test` (same operations), without the p-value."""
    if b.size == 0:
        return float("nan"), 0
    Vi = np.linalg.pinv(np.asarray(V, dtype=float))
    return float(b @ Vi @ b), int(np.linalg.matrix_rank(V))


__all__ = ["bjs_pretrend"]
