"""Aggregations of group-time ATTs (R ``did``'s ``aggte``): simple, group, dynamic (event time) and
calendar, each a weighted combination of ATT(g,t) whose influence function adds R's ``wif`` term for
the estimated weights. Works on the ATT(g,t) and their theta columns only: no data, no refit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from evalkit.estimators._cs_attgt import fmt as _fmt


def _wif(coh_k: np.ndarray, pg_k: np.ndarray, att_k: np.ndarray, kc: int) -> np.ndarray:
    """R ``wif %*% att``: cohort-constant influence of the estimated aggregation weights."""
    s = pg_k.sum()
    dev = -np.tile(pg_k, (kc, 1))
    dev[coh_k, np.arange(len(coh_k))] += 1.0
    if1 = dev / s
    if2 = dev.sum(axis=1)[:, None] * (pg_k / s**2)[None, :]
    return (if1 - if2) @ att_k


class Agg:
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


def aggregate(att, th_gt, cells, periods, cohorts, pg_coh, aggregations, min_e, max_e, balance_e, ind0,
              th_sparse=None) -> dict[str, Agg]:
    """R ``compute.aggte`` for simple/group/dynamic/calendar.

    ``cells``: the (g, t) cells of ``att`` (see ``_cs_attgt.gt_cells``); ``pg_coh``: each cohort's
    share (R's ``pg``); ``min_e``/``max_e``: event times kept (R aggte; trimming, not binning);
    ``ind0``: first cohort-indicator row of theta.
    """
    kc = len(cohorts)
    glist = cohorts[np.isfinite(cohorts)]
    cidx = {v: i for i, v in enumerate(cohorts)}
    gv = np.array([c[0] for c in cells])
    tv = periods[np.array([c[1] for c in cells], dtype=np.intp)] if cells else np.zeros(0)
    coh = np.array([cidx[g] for g in gv], dtype=np.intp)
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

    out: dict[str, Agg] = {}
    overall = Agg(p)
    for j in np.flatnonzero(names == "overall"):
        overall.add(est[j], th[:, j], labels[j][1])

    def collect(name):
        agg = Agg(p)
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
