"""Callaway & Sant'Anna (2021) group-time ATTs and their aggregations.

Follows R ``did`` (``att_gt`` + ``aggte``) for balanced panels: never-treated or not-yet-treated
comparison units, varying or universal base period, anticipation, covariates via DR / IPW / OR
(ports of R ``DRDID``), analytic influence-function standard errors (optionally clustered) or the
Mammen multiplier bootstrap with uniform bands. See ``docs/estimators-cs.md``.
``allow_unbalanced=True`` follows R's ``allow_unbalanced_panel = TRUE`` (repeated-cross-section
estimators per (g,t), influence functions summed by unit): :mod:`evalkit.estimators._cs_unbalanced`
without covariates, :mod:`evalkit.estimators._cs_rc` with covariates.

Without covariates everything is computed from cohort x period sufficient statistics (see
:mod:`evalkit.estimators._cs_design`), so the cost is about one pass over the units x periods
outcome matrix plus, for the bootstrap, one BLAS product ``V @ (Y - Ybar)``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time as _time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse, special, stats

from evalkit.estimators import _cs_rc, _cs_unbalanced
from evalkit.estimators._cs_blas import blas_threads
from evalkit.estimators._cs_design import (
    BitsAhead,
    CompactDesign,
    DenseDesign,
    IndicatorProducts,
    MammenStream,
    indicator_blocks_ok,
)
from evalkit.estimators._cs_drdid import ESTIMATORS
from evalkit.results import EstimationResult, make_estimates, normal_inference

_DEGENERATE = np.sqrt(np.finfo(float).eps) * 10
_IQR_NORM = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


@dataclass
class CSInfluence:
    """Influence functions of a CS fit, kept in compact form (materialise on demand).

    ``matrix(kind)`` returns the unit-level influence functions (n_units x k, R ``did`` scaling:
    ``se = sqrt(sum IF**2) / n``) of the estimates of ``kind`` (``gt``, ``event``, ``group``,
    ``calendar``, ``overall``) with rows ordered as ``units``.
    """

    design: Any
    theta: dict[str, np.ndarray]
    terms: dict[str, list[str]]
    units: np.ndarray
    n: int

    def matrix(self, kind: str) -> pd.DataFrame:
        return pd.DataFrame(self.design.materialize(self.theta[kind]), index=self.units, columns=self.terms[kind])


@dataclass
class _Prepared:
    y: np.ndarray  # n x T, units sorted by cohort
    periods: np.ndarray
    units: np.ndarray
    gu: np.ndarray  # cohort per unit (np.inf = never)
    cohorts: np.ndarray  # cohort value per cohort index (treated ascending, then inf)
    bounds: np.ndarray
    cluster: np.ndarray | None
    n_clusters: int
    covs: np.ndarray | None  # n x T x k
    info: dict[str, Any] = field(default_factory=dict)
    unbalanced: bool = False  # y has NaN for unobserved (unit, period): repeated-cross-section path


# --------------------------------------------------------------------------- data preparation
def _num(series: pd.Series) -> np.ndarray:
    """Numeric numpy view of a column (no copy when it already is numeric)."""
    a = series.to_numpy()
    if a.dtype.kind in "iuf":
        return a
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _distinct(a: np.ndarray) -> bool:
    """No repeated values in ``a`` (cheap when ``a`` is strictly increasing)."""
    if a.dtype.kind in "iuf" and len(a) > 1 and bool((a[1:] > a[:-1]).all()):
        return True
    return len(pd.unique(a)) == len(a)


def _rows_equal(m: np.ndarray, ref: np.ndarray, block: int = 1 << 16) -> bool:
    """``(m == ref).all()`` for a 2-D ``m`` and a broadcastable ``ref`` (one row, or one column
    with a row per row of ``m``), in blocks of rows: the boolean temporaries stay small and
    cache-resident instead of a fresh ``m``-sized array (page faults) per check."""
    rows = max(1, block // max(m.shape[1], 1))
    per_row = ref.ndim == 2 and ref.shape[0] == m.shape[0]
    for s in range(0, m.shape[0], rows):
        r = ref[s:s + rows] if per_row else ref
        if not (m[s:s + rows] == r).all():
            return False
    return True


def _prepare(panel, outcome, unit, time, cohort, covariates, cluster, anticipation, control,
             allow_unbalanced=False) -> _Prepared:
    info: dict[str, Any] = {}
    u = panel[unit].to_numpy()
    t = panel[time].to_numpy()
    g = _num(panel[cohort])
    y = _num(panel[outcome])
    if y.dtype.kind != "f":
        y = y.astype(float)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"time column {time!r} must be numeric (integer periods)")
    periods = None
    sorted_ut = False  # rows verified sorted by unit, then time, every unit in every period
    if len(t) > 1:
        # the common layout: one row per (unit, period), sorted by unit then time; then the
        # periods are the first run of increasing times and one comparison verifies the layout
        head = t[:4097]
        brk = np.flatnonzero(head[1:] <= head[:-1])
        k = int(brk[0]) + 1 if len(brk) else len(head)
        if k > 1 and len(t) % k == 0 and (len(brk) or len(t) == k) and _rows_equal(t.reshape(-1, k), t[:k]):
            periods, sorted_ut = t[:k].copy(), True
    if periods is None:
        tmin, tmax = (t.min(), t.max()) if len(t) else (0, 0)
        if t.dtype.kind in "iu" and tmax - tmin < 4 * len(t) + 1000:
            present = np.bincount((t - tmin).astype(np.intp), minlength=int(tmax - tmin) + 1) > 0
            periods = (np.flatnonzero(present) + tmin).astype(t.dtype)
        else:
            periods = np.sort(pd.unique(t))
    nt = len(periods)
    if nt < 2:
        raise ValueError("need at least two time periods")
    extra = [] if covariates is None else list(covariates)
    xcols = [_num(panel[c]).astype(float, copy=False) for c in extra]
    cl_raw = None if cluster is None else panel[cluster].to_numpy()

    def same_in_row(m: np.ndarray) -> bool:
        if _rows_equal(m, m[:, :1]):
            return True
        eq = m == m[:, :1]
        if m.dtype.kind == "f":  # NaN == NaN counts as constant
            return bool((eq | (np.isnan(m) & np.isnan(m[:, :1]))).all())
        return False

    n_rows = len(y)
    fast = False
    if n_rows % nt == 0 and n_rows > 0:
        uu = u.reshape(-1, nt)
        # rows sorted by unit, then time, one row per (unit, period): reshape without scatter
        if (sorted_ut or _rows_equal(t.reshape(-1, nt), periods)) and _rows_equal(uu, uu[:, :1]):
            units = uu[:, 0]
            fast = _distinct(units)
        elif t[0] == periods[0] and t[-1] == periods[-1]:
            # rows sorted by time, then the same unit order in every period: transpose
            ut = u.reshape(nt, -1)
            if (t.reshape(nt, -1) == periods[:, None]).all() and (ut == ut[:1]).all():
                units = ut[0]
                if _distinct(units):
                    fast = True

                    def _tr(a):
                        return None if a is None else np.ascontiguousarray(a.reshape(nt, -1).T).ravel()

                    y, g, cl_raw = _tr(y), _tr(g), _tr(cl_raw)
                    xcols = [_tr(x) for x in xcols]
    if fast:
        n = len(units)
        Y = y.reshape(n, nt)  # view of the caller's data; copied below
        gm = g.reshape(n, nt)
        if not same_in_row(gm):
            raise ValueError(f"cohort column {cohort!r} varies within unit")
        gu = gm[:, 0].astype(float)
        X = [x.reshape(n, nt) for x in xcols]
        clu = None
        if cl_raw is not None:
            cm = cl_raw.reshape(n, nt)
            if not (cm == cm[:, :1]).all():
                raise ValueError(f"cluster variable {cluster!r} varies within unit")
            clu = cm[:, 0]
    else:
        if periods.dtype.kind in "iu" and periods[-1] - periods[0] == nt - 1:
            tc = (t - periods[0]).astype(np.intp)
        else:
            tc = np.searchsorted(periods, t)
        ucodes, units = pd.factorize(u, sort=True)
        units = np.asarray(units)
        n = len(units)
        key = ucodes.astype(np.int64) * nt + tc
        cnt = np.bincount(key, minlength=n * nt)
        if (cnt > 1).any():
            raise ValueError(f"duplicate ({unit}, {time}) rows in panel")
        Y = np.full(n * nt, np.nan)
        Y[key] = y
        Y = Y.reshape(n, nt)
        gf = g.astype(float)
        gu = np.full(n, np.nan)
        gu[ucodes] = gf
        if not (np.isclose(gf, gu[ucodes]) | (np.isnan(gf) & np.isnan(gu[ucodes]))).all():
            raise ValueError(f"cohort column {cohort!r} varies within unit")
        X = []
        for x in xcols:
            a = np.full(n * nt, np.nan)
            a[key] = x
            X.append(a.reshape(n, nt))
        clu = None
        if cl_raw is not None:
            first = np.full(n, -1, dtype=np.int64)
            first[ucodes[::-1]] = np.arange(n_rows)[::-1]
            clu = cl_raw[first]
            if not (cl_raw == clu[ucodes]).all():
                raise ValueError(f"cluster variable {cluster!r} varies within unit")
    if allow_unbalanced:
        # R did allow_unbalanced_panel: rows with a missing outcome or covariate are dropped
        # (complete.cases), units keep whatever periods they are observed in
        obs_cell = ~np.isnan(Y)
        for x in X:
            obs_cell &= ~np.isnan(x)
        if X:
            Y = np.where(obs_cell, Y, np.nan)  # a new array (Y may be a view of the caller's data)
        keep = obs_cell.any(axis=1)
        info["n_obs_missing_dropped"] = int(n_rows - np.count_nonzero(obs_cell))
        info["n_units_no_observed_outcome"] = int((~keep).sum())
        info["n_units_dropped_unbalanced"] = 0
    else:
        rs = Y.sum(axis=1)  # NaN-free rows have a non-NaN sum (+-inf rows are checked exactly)
        observed = np.ones(len(rs), dtype=bool) if np.isfinite(rs).all() else ~np.isnan(Y).any(axis=1)
        for x in X:
            observed &= ~np.isnan(x).any(axis=1)

        # balance: R did (allow_unbalanced_panel = FALSE) keeps only units observed in every period
        keep = observed
        n_unbal = int((~keep).sum())
        info["n_units_dropped_unbalanced"] = n_unbal
        info["unbalanced_handling"] = (
            "balanced panel" if n_unbal == 0 else f"dropped {n_unbal} units not observed in every period (as R did)"
        )
        if n_unbal:
            warnings.warn(f"Dropped {n_unbal} units not observed (non-missing) in every period", stacklevel=3)

    # cohort conventions
    gu = np.where(np.isnan(gu) | (gu == 0) | (gu > periods[-1]), np.inf, gu)
    early = np.isfinite(gu) & (gu <= periods[0] + anticipation)
    info["n_units_dropped_early"] = int((early & keep).sum())
    if info["n_units_dropped_early"]:
        warnings.warn(
            f"Dropped {info['n_units_dropped_early']} units already treated in the first period", stacklevel=3
        )
    keep &= ~early

    tkeep = None
    if not np.isinf(gu[keep]).any():
        if not keep.any():
            raise ValueError("no units left")
        latest = gu[keep].max()
        tkeep = periods < latest - anticipation
        if control == "never":
            warnings.warn("No never-treated units: the last cohort is used as comparison group "
                          "and periods from its treatment on are dropped (as R did)", stacklevel=3)
            gu = np.where(gu == latest, np.inf, gu)
            info["last_cohort_as_control"] = float(latest)
        else:
            warnings.warn("No never-treated units: periods from the last cohort's treatment on are "
                          "dropped (as R did)", stacklevel=3)
        info["periods_dropped_no_never_treated"] = int((~tkeep).sum())

    unbalanced = False
    if allow_unbalanced:
        if tkeep is not None:  # units observed only in dropped periods leave the sample
            keep &= obs_cell[:, tkeep].any(axis=1)
            obs_cell = obs_cell[:, tkeep]
        n_inc = int((keep & ~obs_cell.all(axis=1)).sum())
        info["n_units_unbalanced"] = n_inc
        unbalanced = n_inc > 0 or _cs_unbalanced.FORCE_RC
        if unbalanced:
            info["unbalanced_handling"] = "repeated cross sections (R did allow_unbalanced_panel)"
        else:
            info["unbalanced_handling"] = ("balanced panel (allow_unbalanced=True: panel estimator, as R did >= 2.2 "
                                           "does for a balanced panel; identical to the RC path without covariates)")

    # one gather: kept units, sorted by cohort (never-treated last)
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(gu[idx], kind="stable")]
    Y = Y[idx]  # always a fresh array (safe to centre in place later)
    X = [x[idx] for x in X]
    if tkeep is not None:
        Y = np.ascontiguousarray(Y[:, tkeep])
        X = [x[:, tkeep] for x in X]
        periods = periods[tkeep]
    units = units[idx]
    gu = gu[idx]
    covs = np.stack(X, axis=2) if X else None
    cohorts, starts = np.unique(gu, return_index=True)
    bounds = np.r_[starts, len(gu)]
    cl_codes, n_cl = None, len(units)
    if clu is not None:
        cl_codes, uniq = pd.factorize(clu[idx])
        n_cl = len(uniq)
    return _Prepared(Y, periods, units, gu, cohorts, bounds, cl_codes, n_cl, covs, info, unbalanced)


# --------------------------------------------------------------------------- group-time cells
def _gt_cells(periods, glist, cohorts, base_period, control, anticipation):
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


def _cohort_means(prep: _Prepared) -> np.ndarray:
    return np.vstack([prep.y[prep.bounds[c]:prep.bounds[c + 1]].mean(axis=0) for c in range(len(prep.cohorts))])


def _theta_compact(prep: _Prepared, cells, n, ybar):
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


def _if_dense(prep: _Prepared, cells, n, est_method):
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


# --------------------------------------------------------------------------- aggregation (R aggte)
def _wif(coh_k: np.ndarray, pg_k: np.ndarray, att_k: np.ndarray, kc: int) -> np.ndarray:
    """R ``wif %*% att``: cohort-constant influence of the estimated aggregation weights."""
    s = pg_k.sum()
    dev = -np.tile(pg_k, (kc, 1))
    dev[coh_k, np.arange(len(coh_k))] += 1.0
    if1 = dev / s
    if2 = dev.sum(axis=1)[:, None] * (pg_k / s**2)[None, :]
    return (if1 - if2) @ att_k


class _Agg:
    """Collects aggregated estimates as (estimate, theta column) with labels."""

    def __init__(self, p):
        self.p = p
        self.est: list[float] = []
        self.th: list[np.ndarray] = []
        self.rows: list[dict[str, Any]] = []

    def add(self, est, th, row):
        self.est.append(float(est))
        self.th.append(th)
        self.rows.append(row)

    mat: np.ndarray | None = None  # the columns of ``th`` as one matrix, when built that way

    def theta(self):
        if self.mat is not None and self.mat.shape[1] == len(self.th):
            return self.mat
        return np.column_stack(self.th) if self.th else np.zeros((self.p, 0))


def _combos(att, th_gt, coh, pg, specs, kc, ind0, th_sparse=None):
    """Weighted combinations of ATT(g,t) in one batch: for each spec ``(keep, w, with_wif)`` the
    estimate ``att[keep] @ w`` and theta ``th_gt[:, keep] @ w`` (+ R's ``wif`` term on the cohort
    indicator rows when ``with_wif``; see :func:`_wif`, vectorised here over specs)."""
    k = len(specs)
    ngt = len(att)
    if k == 0:
        return np.zeros(0), np.zeros((th_gt.shape[0], 0))
    lens = [len(sp[0]) for sp in specs]
    rows = np.concatenate([sp[0] for sp in specs]).astype(np.intp)
    cols = np.repeat(np.arange(k), lens)
    wv = np.concatenate([sp[1] for sp in specs])
    W = sparse.csc_matrix((wv, (rows, cols)), shape=(ngt, k))
    est = W.T @ att
    ths = sparse.csr_matrix(th_gt) if th_sparse is None else th_sparse
    th = np.asarray((ths @ W).todense())
    wif_cols = np.flatnonzero([sp[2] for sp in specs])
    if len(wif_cols):
        sel = np.isin(cols, wif_cols)
        r, c = rows[sel], cols[sel]
        cnt = np.bincount(c, minlength=k)[wif_cols] > 0
        S = np.bincount(c, weights=pg[r], minlength=k)
        P = np.bincount(c, weights=pg[r] * att[r], minlength=k)
        A = np.zeros((kc, k))
        N = np.zeros((kc, k))
        np.add.at(A, (coh[r], c), att[r])
        np.add.at(N, (coh[r], c), 1.0)
        wc = wif_cols[cnt]
        Sw, Pw = S[wc], P[wc]
        # R: (dev / s - rowsum(dev) * pg / s^2) @ att, dev[c, i] = 1[coh_i = c] - pg_i
        th[ind0:ind0 + kc, wc] += (A[:, wc] - Pw) / Sw - (N[:, wc] - Sw) * (Pw / Sw**2)
    return est, th


def _aggregate(att, th_gt, cells, prep, n, aggregations, min_e, max_e, balance_e, kc, ind0, th_sparse=None):
    """R ``compute.aggte`` for simple/group/dynamic/calendar. ``ind0``: first cohort-indicator row."""
    periods = prep.periods
    glist = prep.cohorts[np.isfinite(prep.cohorts)]
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    gv = np.array([c[0] for c in cells])
    tv = periods[np.array([c[1] for c in cells], dtype=np.intp)] if cells else np.zeros(0)
    coh = np.array([cidx[g] for g in gv], dtype=np.intp)
    n_c = np.diff(prep.bounds).astype(float)
    pg_coh = n_c / n
    pg = pg_coh[coh]
    recode = np.unique(np.concatenate([periods, glist]))
    rg = np.searchsorted(recode, gv)
    rt = np.searchsorted(recode, tv)
    max_e_ = np.inf if max_e is None else max_e
    min_e_ = -np.inf if min_e is None else min_e
    p = th_gt.shape[0]

    # first level: every aggregated estimate is a weighted combination of ATT(g,t)
    specs: list[tuple[np.ndarray, np.ndarray, bool]] = []
    labels: list[tuple[str, dict[str, Any]]] = []

    def spec(keep, with_wif, name, row):
        w = pg[keep] / pg[keep].sum()
        specs.append((keep, w, with_wif))
        labels.append((name, row))

    def groups(mask, key):
        """(key value, cells with that value among ``mask``, ascending) for each value, in
        increasing order (one stable sort instead of one scan of all cells per value)."""
        sel = np.flatnonzero(mask)
        order = sel[np.argsort(key[sel], kind="stable")]
        ks = key[order]
        if len(ks) == 0:
            return []
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        return list(zip(ks[starts].tolist(), np.split(order, starts[1:]), strict=True))

    post = (rg <= rt) & (rt <= rg + max_e_)
    if "simple" in aggregations and post.any():
        spec(np.flatnonzero(post), True, "overall", {"term": "ATT", "aggregation": "simple"})
    if "group" in aggregations:
        for g, keep in groups(post, gv):
            spec(keep, False, "group", {"term": f"g={_fmt(g)}", "group": g, "weight": pg_coh[cidx[g]]})
    if "dynamic" in aggregations:
        ev = tv - gv
        incl = np.ones(len(cells), dtype=bool)
        lo, hi = min_e_, max_e_
        if balance_e is not None:
            incl = (periods[-1] - gv) >= balance_e
            lo, hi = max(lo, balance_e - periods[-1] + periods[0]), min(hi, balance_e)
        for e, keep in groups(incl & (ev >= lo) & (ev <= hi), ev):
            spec(keep, True, "event", {"term": f"e={_fmt(e)}", "event_time": e})
    if "calendar" in aggregations:
        ming = gv.min() if len(gv) else np.inf
        for t1, keep in groups((gv <= tv) & (tv >= ming), tv):
            spec(keep, True, "calendar", {"term": f"t={_fmt(t1)}", "time": t1})
    est, th = _combos(att, th_gt, coh, pg, specs, kc, ind0, th_sparse)
    names = np.array([nm for nm, _ in labels])

    out: dict[str, _Agg] = {}
    overall = _Agg(p)
    for j in np.flatnonzero(names == "overall"):
        overall.add(est[j], th[:, j], labels[j][1])

    def collect(name):
        agg = _Agg(p)
        idx = np.flatnonzero(names == name)
        agg.mat = th[:, idx]
        for i, j in enumerate(idx):
            agg.add(est[j], agg.mat[:, i], labels[j][1])
        return agg

    if "group" in aggregations:
        agg = collect("group")
        if agg.est:
            gatt = np.array(agg.est)
            gpg_a = np.array([r["weight"] for r in agg.rows])
            gco = np.array([cidx[r["group"]] for r in agg.rows])
            w = gpg_a / gpg_a.sum()
            for r, wi in zip(agg.rows, w, strict=True):
                r["weight"] = wi
            t = agg.theta() @ w
            t[ind0:ind0 + kc] += _wif(gco, gpg_a, gatt, kc)
            overall.add(float(gatt @ w), t, {"term": "ATT_group", "aggregation": "group"})
        out["group"] = agg

    if "dynamic" in aggregations:
        agg = collect("event")
        eseq = np.array([r["event_time"] for r in agg.rows])
        epos = np.flatnonzero(eseq >= 0)
        if len(epos):
            w = np.full(len(epos), 1.0 / len(epos))
            for i in epos:
                agg.rows[i]["weight"] = 1.0 / len(epos)
            t = agg.theta()[:, epos] @ w
            overall.add(float(np.array(agg.est)[epos] @ w), t, {"term": "ATT_dynamic", "aggregation": "dynamic"})
        out["event"] = agg

    if "calendar" in aggregations:
        agg = collect("calendar")
        if agg.est:
            k = len(agg.est)
            for r in agg.rows:
                r["weight"] = 1.0 / k
            t = agg.theta() @ np.full(k, 1.0 / k)
            overall.add(float(np.mean(agg.est)), t, {"term": "ATT_calendar", "aggregation": "calendar"})
        out["calendar"] = agg
    out["overall"] = overall
    return out


def _gt_terms(cells, periods) -> list[str]:
    """``g=<group>,t=<period>`` labels of the ATT(g,t) cells."""
    plab = [_fmt(p) for p in periods.tolist()]
    glab = {g: _fmt(g) for g in {c[0] for c in cells}}
    return [f"g={glab[c[0]]},t={plab[c[1]]}" for c in cells]


@functools.lru_cache(maxsize=4096)
def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"


# --------------------------------------------------------------------------- main entry point
def _blas_pinned(fn):
    """Run ``fn`` with BLAS threads pinned (``EVALKIT_BLAS_THREADS``: a number, or ``keep``; default 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        env = os.environ.get("EVALKIT_BLAS_THREADS", "1")
        with blas_threads(None if env == "keep" else int(env)):
            return fn(*args, **kwargs)

    return wrapper


@_blas_pinned
def estimate_cs(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    control: str = "never",
    covariates: list[str] | None = None,
    est_method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    cluster: str | None = None,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int | None = None,
    aggregations: tuple[str, ...] = ("simple", "dynamic", "group", "calendar"),
    min_e: int | None = None,
    max_e: int | None = None,
    balance_e: int | None = None,
    allow_unbalanced: bool = False,
    progress: bool = False,
) -> EstimationResult:
    """Callaway–Sant'Anna ATT(g,t) with simple / dynamic / group / calendar aggregations.

    ``cohort`` holds the first treated period (0 or NaN = never treated). Returns an
    :class:`~evalkit.results.EstimationResult` with ``gt``, ``overall`` (term ``ATT`` = simple
    aggregation first, then ``ATT_group``, ``ATT_dynamic``, ``ATT_calendar``), ``event``,
    ``group`` and ``calendar`` rows. The compact influence functions are kept in
    ``result._influence`` (:class:`CSInfluence`).

    ``allow_unbalanced=True``: R ``did``'s ``allow_unbalanced_panel = TRUE`` — rows with a missing
    outcome (or covariate) are unobserved and, unless the panel is then balanced (panel
    estimator, as R >= 2.2), each ATT(g,t) is a repeated-cross-section estimator on the observed
    rows of cohort g and its comparison units in t and the base period, with influence functions
    scaled by n / n1 and summed by unit. Without covariates that is the difference of means (see
    :mod:`evalkit.estimators._cs_unbalanced`); with covariates R ``DRDID``'s ``drdid_rc`` /
    ``std_ipw_did_rc`` / ``reg_did_rc`` (``est_method`` dr / ipw / reg), each row with its own
    covariate values (see :mod:`evalkit.estimators._cs_rc`).

    BLAS runs single-threaded inside (robust when the machine is shared); set the environment
    variable ``EVALKIT_BLAS_THREADS=<n>`` to change that, or ``keep`` to leave it alone.
    """
    control = {"nevertreated": "never", "notyettreated": "notyet"}.get(control, control)
    if control not in ("never", "notyet"):
        raise ValueError("control must be 'never' or 'notyet'")
    if base_period not in ("varying", "universal"):
        raise ValueError("base_period must be 'varying' or 'universal'")
    if est_method not in ESTIMATORS:
        raise ValueError("est_method must be 'dr', 'ipw' or 'reg'")
    timing: dict[str, float] = {}
    t0 = _time.perf_counter()

    def lap(name):
        nonlocal t0
        t1 = _time.perf_counter()
        timing[name] = timing.get(name, 0.0) + t1 - t0
        t0 = t1
        if progress:
            print(f"[cs] {name}: {timing[name]:.3f}s", flush=True)

    cl_col = None if cluster in (None, unit) else cluster
    prep = _prepare(panel, outcome, unit, time, cohort, covariates or None, cl_col, anticipation, control,
                    allow_unbalanced=allow_unbalanced)
    lap("prepare")
    n, nt = prep.y.shape
    kc = len(prep.cohorts)
    glist = prep.cohorts[np.isfinite(prep.cohorts)]
    if len(glist) == 0:
        raise ValueError("no treated cohorts")
    ahead = None
    products = boot_fut = ybar = None
    unit_products = False
    helper = _helper_pool()  # decided once per call (None on a busy machine)
    if bootstrap and bootstrap > 0:
        # with a free core the bootstrap starts now, beside the estimates: the products route
        # (IndicatorProducts) or, with clusters or covariates, the multipliers drawn ahead
        # (BitsAhead); the draws are those of the seed's stream either way
        m_boot = prep.n_clusters if prep.cluster is not None else n
        chunk = max(1, min(bootstrap, int(2**19 // max(m_boot, 1))))  # ~2 MB of multipliers per chunk
        sizes = [min(chunk, bootstrap - s) for s in range(0, bootstrap, chunk)]
        # unconditional with unit-level draws: (V X)' from 0/1 draws and float32 products
        # (IndicatorProducts); otherwise from the multipliers (design.vx)
        unit_products = not covariates and prep.cluster is None and indicator_blocks_ok(prep.bounds)
        if unit_products and not prep.unbalanced:
            # the common case (balanced): (V X)' needs only the centred outcome, so the helper
            # computes it — draws and products — from here on, while this thread computes the
            # estimates (same numbers either way)
            ybar = _cohort_means(prep)
            for c in range(kc):  # prep.y is ours: centre within cohort in place
                prep.y[prep.bounds[c]:prep.bounds[c + 1]] -= ybar[c]
            products = IndicatorProducts(MammenStream(np.random.default_rng(seed)), IndicatorProducts.sizes(bootstrap, n),
                                         prep.y, prep.bounds)
            if helper is not None:
                boot_fut = helper.submit(products.run)
        elif not unit_products and helper is not None:
            boot_dtype = DenseDesign.boot_dtype if covariates else CompactDesign.boot_dtype
            ahead = BitsAhead(MammenStream(np.random.default_rng(seed)), sizes, m_boot,
                              max_ahead=max(2, int(2**26 // (8 * chunk * max(m_boot, 1)))), dtype=boot_dtype)
    cells = _gt_cells(prep.periods, glist, prep.cohorts, base_period, control, anticipation)
    n_c = np.diff(prep.bounds)
    if prep.unbalanced:
        ysum, ycnt, _ = _cs_unbalanced.cohort_period_sums(prep.y, prep.bounds)
    else:
        centred = ybar is not None  # already (for the bootstrap's products, above)
        if not centred:
            ybar = _cohort_means(prep)
        ysum, ycnt = ybar * n_c[:, None], np.broadcast_to(n_c[:, None], ybar.shape)
    pre_sum, pre_cnt = 0.0, 0
    for c in range(kc):
        if np.isfinite(prep.cohorts[c]):
            cols = prep.periods < prep.cohorts[c]
            pre_sum += float(ysum[c, cols].sum())
            pre_cnt += int(ycnt[c, cols].sum())
    n_obs = int(ycnt.sum())

    th_sp = None
    if prep.unbalanced and covariates:
        # R DRDID repeated-cross-section estimators per (g,t), row IFs summed by unit (dense design)
        coh_of_unit = np.repeat(np.arange(kc), np.diff(prep.bounds))
        att, inf, reason, used = _cs_rc.unit_ifs(prep.y, prep.covs, coh_of_unit, prep.cohorts, cells, n, est_method)
        bad = np.array([r is not None for r in reason], dtype=bool)
        if bad.any():
            label = _gt_terms(cells, prep.periods)
            skipped = [lb for lb, b in zip(label, bad, strict=True) if b]
            why = sorted({r for r in reason if r is not None})
            warnings.warn(f"Skipped {len(skipped)} ATT(g,t) that cannot be estimated ({'; '.join(why)}): "
                          f"{', '.join(skipped)} (R did reports NA)", stacklevel=3)
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
        design = DenseDesign(inf, coh_of_unit, kc, prep.cluster)
        ngt = len(cells)
        th_gt = np.vstack([np.eye(ngt), np.zeros((kc, ngt))])
        ind0 = ngt
    elif prep.unbalanced:
        att, th_gt, ok, zc, cnt = _cs_unbalanced.theta_rc(prep.y, prep.bounds, prep.cohorts, cells, n)
        bad = ~ok & ~np.array([c[4] for c in cells], dtype=bool)
        if bad.any():
            skipped = [lb for lb, b in zip(_gt_terms(cells, prep.periods), bad, strict=True) if b]
            warnings.warn(f"Skipped {len(skipped)} ATT(g,t) without treated or comparison observations in "
                          f"period t or the base period: {', '.join(skipped)} (R did reports NA)", stacklevel=3)
            prep.info["gt_skipped_no_observations"] = skipped
            keepc = np.flatnonzero(~bad)
            cells = [cells[i] for i in keepc]
            att, th_gt = att[keepc], th_gt[:, keepc]
        prep.info["n_obs_used"] = _cs_unbalanced.obs_used(th_gt, cnt)
        design: Any = CompactDesign(zc, prep.bounds, prep.cluster, centred=False)
        ind0 = kc * 2 * nt
        if bootstrap and bootstrap > 0 and unit_products:
            # (V X)' of the [z, O] design on the helper while the aggregations and variances run
            products = IndicatorProducts(MammenStream(np.random.default_rng(seed)), IndicatorProducts.sizes(bootstrap, n),
                                         zc, prep.bounds, centred=False)
            if helper is not None:
                boot_fut = helper.submit(products.run)
    elif covariates:
        att, inf, coh_of_unit = _if_dense(prep, cells, n, est_method)
        design = DenseDesign(inf, coh_of_unit, kc, prep.cluster)
        ngt = len(cells)
        th_gt = np.vstack([np.eye(ngt), np.zeros((kc, ngt))])
        ind0 = ngt
    else:
        att, th_gt, th_sp = _theta_compact(prep, cells, n, ybar)
        zc = prep.y  # owned by us: centre within cohort in place
        if not centred:
            for c in range(kc):
                zc[prep.bounds[c]:prep.bounds[c + 1]] -= ybar[c]
        # the per-cohort scatter matrices are built by the helper thread while the aggregations run
        # (not when the bootstrap already occupies a second core)
        design = helper.submit(CompactDesign, zc, prep.bounds, prep.cluster) \
            if (helper and ahead is None and products is None) else CompactDesign(zc, prep.bounds, prep.cluster)
        ind0 = kc * nt
    lap("gt")

    aggs = _aggregate(att, th_gt, cells, prep, n, aggregations, min_e, max_e, balance_e, kc, ind0, th_sp)
    if not isinstance(design, (CompactDesign, DenseDesign)):
        design = design.result()
    lap("aggregate")

    # ------------------------------------------------------------ analytic inference
    def se_from(v):
        se = np.sqrt(np.maximum(v / n**2, 0.0))
        return np.where(se <= _DEGENERATE, np.nan, se)

    blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {"gt": (att, th_gt)}
    for k, a in aggs.items():
        blocks[k] = (np.array(a.est), a.theta())
    vcov: dict[str, pd.DataFrame] = {}
    terms = {
        "gt": _gt_terms(cells, prep.periods),
        **{k: [r["term"] for r in a.rows] for k, a in aggs.items()},
    }
    qdiag: dict[str, np.ndarray] = {}  # theta' G theta on the diagonal (n^2 x variance)
    qfull: dict[str, np.ndarray] = {}
    pre_gt = np.array([c[0] > prep.periods[c[1]] for c in cells], dtype=bool)
    fut_wald_gt = None
    for k, (_, th) in blocks.items():
        if k in ("event", "group", "calendar") and th.shape[1]:
            qfull[k] = design.quad(th)
            qdiag[k] = np.diagonal(qfull[k]).copy()
            labels = pd.Index(terms[k])  # one Index for rows and columns
            vcov[k] = pd.DataFrame(qfull[k] / n**2, index=labels, columns=labels, copy=False)
        else:
            qdiag[k] = design.quad_diag(th) if th.shape[1] else np.zeros(0)
        if k == "gt" and helper and not (bootstrap and bootstrap > 0):
            # R's pre-treatment Wald test on the helper thread, overlapping the other variances
            # and the tidy frame (with a bootstrap it runs later: the helper is busy until then)
            fut_wald_gt = helper.submit(_wald_gt, att, th_gt, pre_gt, design, n, qdiag["gt"])
    ses = {k: se_from(v) for k, v in qdiag.items()}
    lap("analytic_se")

    # ------------------------------------------------------------ multiplier bootstrap
    bands: dict[str, np.ndarray] = {}
    crit: dict[str, float] = {}
    wald_gt_args = (att, th_gt, pre_gt, design, n, qdiag["gt"])
    pretrend_gt = tht = None
    if bootstrap and bootstrap > 0 and products is not None:
        # work that does not need the draws is done here, while the helper computes products
        # (then both threads finish the products and share the bootstrap's last steps)
        if boot_fut is not None:
            pretrend_gt = _wald_gt(*wald_gt_args)
            tht = _boot_rows(blocks, th_sp)
        try:
            products.run()  # the chunks the helper has not taken yet
        finally:
            products.stop()
            if boot_fut is not None:
                boot_fut.result()
        vxt = products.result()
        lap("bootstrap_draws")
    elif bootstrap and bootstrap > 0:
        m = design.n_boot
        if ahead is not None and (ahead.m != m or ahead.dtype != design.boot_dtype):
            # unexpected: draw from a fresh stream instead
            ahead.close()
            ahead = None
        if ahead is None:
            chunk = max(1, min(bootstrap, int(2**19 // max(m, 1))))
            sizes = [min(chunk, bootstrap - s) for s in range(0, bootstrap, chunk)]
            stream = MammenStream(np.random.default_rng(seed))
        vbuf = None if ahead is not None else np.empty((sizes[0], m), dtype=design.boot_dtype)
        vxt = np.empty((design.p, bootstrap))  # (V @ X)' : draws along the contiguous axis
        offsets = np.cumsum([0] + sizes[:-1]).tolist()
        try:
            if ahead is not None:
                # chunks are taken in stream order (under a lock) by this thread and the helper,
                # each writing its own columns of vxt: the result does not depend on who does which
                design.warm()
                lock = threading.Lock()
                todo = iter(zip(offsets, sizes, strict=True))

                def consume():
                    while True:
                        with lock:
                            nxt = next(todo, None)
                            if nxt is None:
                                return
                            v = ahead.get()
                        vxt[:, nxt[0]:nxt[0] + nxt[1]] = design.vx(v).T

                fut = helper.submit(consume) if len(sizes) > 1 else None
                consume()
                if fut is not None:
                    fut.result()
            else:
                for s, b in zip(offsets, sizes, strict=True):
                    v = MammenStream.affine(MammenStream.indicators(stream.bits(b, m), out=vbuf, dtype=design.boot_dtype))
                    vxt[:, s:s + b] = design.vx(v).T
        finally:
            if ahead is not None:
                ahead.close()
        lap("bootstrap_draws")
    if bootstrap and bootstrap > 0:
        keys = [k for k, (_est, th) in blocks.items() if th.shape[1]]
        if keys:
            # (V X theta)' : one row per estimate, one column per draw (theta' is sparse)
            tht = _boot_rows(blocks, th_sp) if tht is None else tht
            if vxt.dtype != tht.dtype:  # single precision (V X)' (IndicatorProducts): half the memory traffic
                tht = tht.astype(vxt.dtype)
            h = tht.shape[0] // 2
            if helper and h > 16:  # two halves of the rows, one in the helper thread
                fut = helper.submit(lambda: np.asarray(tht[:h] @ vxt))
                lo = np.asarray(tht[h:] @ vxt)
                bres_t = np.vstack([fut.result(), lo])
            else:
                bres_t = np.asarray(tht @ vxt)
            bres_t /= n
            h = bres_t.shape[0] // 2
            if helper and h > 16:  # two halves of the rows, one in the helper thread
                fut = helper.submit(_row_quantiles, bres_t[:h], (75, 25))
                lo = _row_quantiles(bres_t[h:], (75, 25))
                q75, q25 = (np.concatenate([a, b]) for a, b in zip(fut.result(), lo, strict=True))
            else:
                q75, q25 = _row_quantiles(bres_t, (75, 25))
            offs = np.cumsum([0] + [blocks[k][1].shape[1] for k in keys])
            for i, k in enumerate(keys):
                sl = slice(offs[i], offs[i + 1])
                se_b = (q75[sl] - q25[sl]) / _IQR_NORM
                ok = ~np.isnan(ses[k]) & (se_b > _DEGENERATE)
                se_b = np.where(ok, se_b, np.nan)
                ses[k] = se_b
                if ok.any() and k != "overall":
                    bt = _max_abs_t(bres_t[sl], se_b, ok)
                    bt = bt[np.isfinite(bt)]
                    crit[k] = float(np.quantile(bt, 1 - alpha, method="inverted_cdf"))
                    bands[k] = crit[k] * se_b
        lap("bootstrap")
        if helper and pretrend_gt is None:
            fut_wald_gt = helper.submit(_wald_gt, *wald_gt_args)

    # ------------------------------------------------------------ tidy rows
    pg_coh = np.diff(prep.bounds) / n
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    parts = []
    for key in ("overall", "event", "group", "calendar", "gt"):
        if key not in blocks:
            continue
        est = blocks[key][0]
        cols: dict[str, Any] = {"estimate": est, "std_error": ses[key]}
        if key == "gt":
            gv = np.array([c[0] for c in cells], dtype=float)
            tv = prep.periods[[c[1] for c in cells]].astype(float)
            post = gv <= tv
            w = np.where(post, pg_coh[[cidx[g] for g in gv]], np.nan)
            cols.update(group=gv, time=tv, event_time=tv - gv, weight=w / np.nansum(w))
        else:
            rows = aggs[key].rows
            for c in ("group", "time", "event_time", "weight"):
                if any(c in r for r in rows):
                    cols[c] = np.array([r.get(c, np.nan) for r in rows], dtype=float)
        if key in bands:
            cols["band_low"] = est - bands[key]
            cols["band_high"] = est + bands[key]
        parts.append((key, terms[key], cols))
    estimates = _tidy_frame(parts, alpha)
    lap("tidy")

    # ------------------------------------------------------------ meta
    pretrend = _wald(blocks, ses, design, n, "event", anticipation, aggs, qfull.get("event"))
    if pretrend_gt is None:
        pretrend_gt = fut_wald_gt.result() if fut_wald_gt else _wald_gt(*wald_gt_args)
    lap("wald")
    treated = np.isfinite(prep.gu)
    meta: dict[str, Any] = {
        "label": "Callaway & Sant'Anna (2021)",
        "control_group": {"never": "never treated", "notyet": "not yet treated"}[control],
        "base_period": base_period,
        "est_method": est_method if covariates else f"{est_method} (unconditional: difference in means)",
        "covariates": list(covariates or []),
        "anticipation": anticipation,
        "n_treated": int(treated.sum()),
        "n_control": int((~treated).sum()),
        "n_units": int(n),
        "n_obs": n_obs,
        "n_periods": int(nt),
        "n_cohorts": int(len(glist)),
        "n_gt": len(cells),
        "cluster": cluster if cl_col else unit,
        "n_clusters": int(prep.n_clusters),
        "se_type": "multiplier bootstrap" if bootstrap else "influence function",
        "se_small_sample_factor": "none (R did: se = sqrt(sum_c (sum_{i in c} IF_i)^2) / n)",
        "bootstrap": int(bootstrap or 0),
        "bootstrap_weights": "Mammen" if bootstrap else None,
        "seed": seed,
        "alpha": alpha,
        "crit_val": crit,
        "baseline_mean": pre_sum / pre_cnt if pre_cnt else None,
        "pretrend": pretrend,
        "pretrend_gt": pretrend_gt,
        "timing": timing,
        **prep.info,
    }
    res = _result(estimates, outcome, meta, vcov)
    lap("result")
    res._influence = CSInfluence(design=design, theta={k: th for k, (_, th) in blocks.items()},
                                 terms=terms, units=prep.units, n=n)
    return res


_FLOAT_COLS = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "band_low", "band_high", "weight")
_INT_COLS = ("group", "time", "event_time")
_CANONICAL: list[pd.DataFrame] = []


def _tidy_frame(parts, alpha) -> pd.DataFrame:
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


_KNOWN_FIELDS = ("estimator", "outcome", "estimates", "meta", "vcov", "tables")
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


def _result(estimates: pd.DataFrame, outcome, meta, vcov) -> EstimationResult:
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
        meta.setdefault("estimator", "cs")
        meta.setdefault("outcome", outcome)
        meta.setdefault("alpha", 0.05)
        return res
    return EstimationResult(estimator="cs", outcome=outcome, estimates=estimates, meta=meta, vcov=vcov)


_POOL: list[Any] = []


def _helper_pool():
    """One helper thread for the bootstrap, or None.

    ``EVALKIT_CS_THREADS``: ``1`` = never, ``2`` = always, default ``auto`` = only when a second
    core looks free right now (Linux: at most ``cpus - 2`` other runnable tasks in
    ``/proc/loadavg``, fewest of 3 samples; elsewhere: 1-minute load average below ``cpus - 0.5``): on a busy machine
    the helper would only compete with the main thread.
    """
    mode = os.environ.get("EVALKIT_CS_THREADS", "auto")
    ncpu = os.cpu_count() or 1
    if mode == "1" or ncpu < 2:
        return None
    if mode != "2":
        try:
            running = []
            for _ in range(3):  # a few samples: kernel threads are briefly runnable now and then
                with open("/proc/loadavg") as f:
                    running.append(int(f.read().split()[3].split("/")[0]))  # includes this thread
            busy = min(running) - 1 > ncpu - 2
        except (OSError, ValueError, IndexError):
            try:
                busy = os.getloadavg()[0] > ncpu - 0.5
            except OSError:
                busy = True
        if busy:
            return None
    if not _POOL or _POOL[0][0] != os.getpid():  # (re)create after a fork: threads do not survive it
        from concurrent.futures import ThreadPoolExecutor

        _POOL[:] = [(os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-cs"))]
    return _POOL[0][1]


def _row_quantiles(a: np.ndarray, pcts: tuple[float, ...], block: int = 128) -> list[np.ndarray]:
    """``np.percentile(a, pcts, axis=1, method="inverted_cdf")``, exactly, but faster.

    inverted_cdf percentiles are order statistics; their ranks are read off ``np.percentile`` on
    ``0..B-1``. The order statistics are selected on a float32 copy (rounding is monotone, so the
    r-th float32 value is the rounded r-th value), by one (SIMD) sort of the float32 rows for two
    or more ranks, else one partition; the exact value is then the row's only element
    that rounds to it (rows with ties at that value are redone exactly in float64). Rows are
    processed in blocks so that the temporaries stay small (cache-resident, no fresh pages).
    Falls back to ``np.percentile`` when ``a`` has NaN.
    """
    nr, nb = a.shape
    if nb == 0 or nr == 0 or np.isnan(a).any():
        return list(np.percentile(a, pcts, axis=1, method="inverted_cdf"))
    ranks = np.percentile(np.arange(nb, dtype=float), pcts, method="inverted_cdf").astype(np.intp)
    order = np.argsort(-ranks, kind="stable")
    out = [np.empty(nr) for _ in pcts]
    for s in range(0, nr, block):
        ab = a[s:s + block]
        rows = np.arange(ab.shape[0])
        with np.errstate(over="ignore"):  # overflow to +-inf keeps the order (ties are handled below)
            y = ab if ab.dtype == np.float32 else ab.astype(np.float32)  # (sorted / partitioned in a copy)
        # one (SIMD) sort of the float32 rows gives every rank at once; faster than a partition
        # per rank for two or more ranks
        work = np.sort(y, axis=1) if len(order) > 1 else None
        for i in order:
            r = int(ranks[i])
            if work is None:
                work = y.copy()
                work.partition(r, axis=1)
            if ab.dtype == np.float32:  # the float32 order statistic is the exact value
                out[i][s:s + block] = work[:, r]
                continue
            eq = y == work[:, r:r + 1]
            res = ab[rows, np.argmax(eq, axis=1)]
            tied = np.flatnonzero(np.count_nonzero(eq, axis=1) != 1)
            if len(tied):
                res[tied] = np.partition(ab[tied], r, axis=1)[:, r]
            out[i][s:s + block] = res
    return out


def _max_abs_t(b: np.ndarray, se: np.ndarray, ok: np.ndarray, block: int = 128) -> np.ndarray:
    """``np.max(np.abs(b[ok] / se[ok, None]), axis=0)`` over blocks of rows (small temporaries)."""
    idx = np.flatnonzero(ok)
    out = None
    for s in range(0, len(idx), block):
        i = idx[s:s + block]
        r = b[i]
        r /= se[i][:, None]
        m = np.abs(r, out=r).max(axis=0)
        out = m if out is None else np.maximum(out, m, out=out)
    return out


def _boot_rows(blocks, th_sp) -> sparse.csr_matrix | None:
    """theta' of every estimate with a bootstrap distribution (CSR, one row per estimate, in the
    order of ``blocks``), or None when there is none."""
    keys = [k for k, (_est, th) in blocks.items() if th.shape[1]]
    if not keys:
        return None
    return sparse.vstack([th_sp.T if (k == "gt" and th_sp is not None) else _sparse_rows(blocks[k][1].T)
                          for k in keys], format="csr")


def _sparse_rows(a: np.ndarray) -> sparse.csr_matrix:
    """CSR form of a dense matrix (explicit zeros dropped)."""
    rows, cols = np.nonzero(a)
    return sparse.csr_matrix((a[rows, cols], (rows, cols)), shape=a.shape)


def _wald(blocks, ses, design, n, key, anticipation, aggs, q=None):
    if key not in blocks:
        return None
    est, th = blocks[key]
    ev = np.array([r.get("event_time", np.nan) for r in aggs[key].rows], dtype=float)
    sel = (ev < -anticipation) & ~np.isnan(ses[key])
    return _wald_stat(est[sel], th[:, sel], design, n, None if q is None else q[np.ix_(sel, sel)])


def _wald_gt(att, th, pre, design, n, qdiag=None):
    if not pre.any():
        return None
    v = design.quad_diag(th[:, pre]) if qdiag is None else qdiag[pre]
    sel = np.flatnonzero(pre)[v > _DEGENERATE**2 * n**2]
    return _wald_stat(att[sel], th, design, n, cols=sel)  # the columns sel of th (no p x k copy)


def _wald_stat(est, th, design, n, q=None, cols=None):
    if len(est) == 0:
        return None
    if q is None:
        v = design.quad(th, cols=cols)
        v /= n**2  # a fresh array: scaled in place
    else:
        v = q / n**2
    if not np.all(np.isfinite(v)) or not np.all(np.isfinite(est)):
        return None
    try:
        try:  # a covariance matrix: Cholesky (half the work of LU) unless not positive definite
            stat = float(est @ linalg.cho_solve(linalg.cho_factor(v, check_finite=False), est, check_finite=False))
        except np.linalg.LinAlgError:
            stat = float(est @ np.linalg.solve(v, est))
        df = len(est)
    except np.linalg.LinAlgError:
        # singular (more restrictions than clusters): Moore–Penrose inverse from the symmetric
        # eigendecomposition (LAPACK's SVD can fail to converge on such matrices)
        w, U = np.linalg.eigh((v + v.T) / 2)
        keep = w > max(float(w.max()), 0.0) * len(w) * np.finfo(float).eps
        if not keep.any():
            return None
        z = U[:, keep].T @ est
        stat = float(np.sum(z * z / w[keep]))
        df = int(keep.sum())
    return {"stat": stat, "df": df, "p_value": float(special.chdtrc(df, stat))}  # chi2 survival
