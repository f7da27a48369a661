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

The delete-one-cluster jackknife uses the same blocks (:mod:`evalkit.inference._leave_out`).

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
from scipy.linalg import cho_factor, cho_solve, get_lapack_funcs

from evalkit.estimators._cs_blas import blas_threads
from evalkit.estimators._fe_within import rank_codes
from evalkit.inference._shared import _shared_designs
from evalkit.results import EstimationResult

#: options of estimate_imputation that do not change its overall point estimate (or are handled)
_IMP_OPTIONS = {"alpha", "anticipation", "horizons", "max_e", "pretrend_leads", "leaveout", "cluster",
                "repeated_cross_section", "unit", "time", "cohort", "weights"}
_CELLS = 4_000_000  # draws x cells x cohorts per block (CS)

Stats = Callable[[np.ndarray], np.ndarray]  # (draws x n_units cohorts, 0 = never) -> draws estimates


# LAPACK's Cholesky factor and solve for float64, called directly: per draw the scipy wrappers'
# argument checks cost more than the factorisation itself (same routines, same numbers)
_POTRF, _POTRS = get_lapack_funcs(("potrf", "potrs"), (np.zeros((1, 1)),))


def _chol(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """``scipy.linalg.cho_factor(a, lower=True, check_finite=False)`` (same LAPACK call and errors)."""
    if a.size == 0 or a.dtype != np.float64:
        return cho_factor(a, lower=True, check_finite=False)
    c, info = _POTRF(a, lower=True, overwrite_a=False, clean=False)
    if info > 0:
        raise np.linalg.LinAlgError(f"{info}-th leading minor of the array is not positive definite")
    if info < 0:
        raise ValueError(f'LAPACK reported an illegal value in {-info}-th argument on entry to "POTRF".')
    return c, True


def _chol_solve(factor: tuple[np.ndarray, bool], b: np.ndarray) -> np.ndarray:
    """``scipy.linalg.cho_solve(factor, b, check_finite=False)`` for a factor of :func:`_chol`."""
    c, lower = factor
    if c.size == 0 or b.size == 0 or b.dtype != np.float64 or b.shape[0] != c.shape[0]:
        return cho_solve(factor, b, check_finite=False)
    x, info = _POTRS(c, b, lower=lower, overwrite_b=False)
    if info != 0:
        raise ValueError(f"illegal value in {-info}th argument of internal potrs")
    return x


def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread: many small solves; threads only spin on a shared machine."""
    def run(*args, **kwargs):
        with blas_threads(1):
            return fn(*args, **kwargs)
    return run


def fast_headline(estimator: str, fit: EstimationResult, frame: pd.DataFrame, outcome: str, *, unit: str,
                  time: str, weights: str | None, cluster: str | None, options: Mapping[str, Any],
                  units: pd.Index) -> Stats | None:
    """``stats(G, se=False)``: the headline estimate of ``estimator`` on ``frame`` for each row of ``G``
    (cohort per unit of ``units``, 0 = never treated), with ``se=True`` also its analytic SE (NaN
    where the fast route has none: CS with weights); ``fit`` is the estimator's fit on ``frame``
    (any assignment with the same cohort levels). ``None``: not covered, refit per draw."""
    try:
        if estimator == "cs":
            return _cs(fit, frame, outcome, unit, time, options, units)
        if estimator == "imputation":
            return _imputation(frame, outcome, unit, time, weights, cluster, options, units)
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
def cell_arrays(cells, cohorts: np.ndarray) -> tuple[np.ndarray, ...]:
    """The ATT(g,t) cells of a CS fit as arrays: cohort index, current and base period, whether the
    cell is zero by construction, and its comparison-cohort mask (cells × cohorts)."""
    cidx = {v: i for i, v in enumerate(cohorts)}
    kc = len(cohorts)
    gi = np.array([cidx[c[0]] for c in cells], dtype=np.intp)
    cur = np.array([c[1] for c in cells], dtype=np.intp)
    base = np.array([c[2] for c in cells], dtype=np.intp)
    zero = np.array([c[4] for c in cells], dtype=bool)
    cmask = np.array([np.zeros(kc, bool) if c[4] else c[3] for c in cells], dtype=bool).reshape(len(cells), kc)
    return gi, cur, base, zero, cmask


class _CSDraws:
    """A balanced, covariate-free CS fit's (g, t) cells, re-estimated for reassigned cohorts."""

    def __init__(self, gt: Any, frame: pd.DataFrame, outcome: str, unit: str, time: str, units: pd.Index):
        prep, cells = gt.prep, gt.core.cells
        if prep.unbalanced or prep.covs is not None or gt.options.get("covariates"):
            raise ValueError("not covered")
        self.periods, self.cohorts = np.asarray(prep.periods, float), np.asarray(prep.cohorts, float)
        self.Y, P, _ = _grid(frame, outcome, unit, time, units, self.periods, None)
        pos = pd.Index(prep.units).get_indexer(units)
        if not P.all() or (pos < 0).any():
            raise ValueError("not covered")
        self.weighted = prep.w is not None
        self.wu = np.asarray(prep.w, float)[pos] if self.weighted else np.ones(units.size)
        self.clus = None if prep.cluster is None else pd.factorize(np.asarray(prep.cluster)[pos])[0]
        self.n_clusters = int(prep.n_clusters)
        self.n, self.kc = units.size, self.cohorts.size
        self.gi, self.cur, self.base, self.zero, self.cmask = cell_arrays(cells, self.cohorts)
        self.gv, self.tv = self.cohorts[self.gi], self.periods[self.cur]
        self.ngt = len(cells)

    def simple_cells(self, max_e: float | None) -> np.ndarray:
        """The simple aggregation's cells (as ``_cs_aggte.aggregate``: recoded periods, ``max_e`` trims)."""
        recode = np.unique(np.concatenate([self.periods, self.cohorts[np.isfinite(self.cohorts)]]))
        rg, rt = np.searchsorted(recode, self.gv), np.searchsorted(recode, self.tv)
        hi = np.inf if max_e is None else max_e
        return np.flatnonzero((rg <= rt) & (rt <= rg + hi))

    def event_cells(self, min_e, max_e, balance_e) -> list[tuple[float, np.ndarray]]:
        """``(e, cells)`` of the dynamic aggregation (as ``_cs_aggte.aggregate``)."""
        ev = self.tv - self.gv
        incl = np.ones(self.ngt, dtype=bool)
        lo = -np.inf if min_e is None else min_e
        hi = np.inf if max_e is None else max_e
        if balance_e is not None:
            incl = (self.periods[-1] - self.gv) >= balance_e
            lo, hi = max(lo, balance_e - self.periods[-1] + self.periods[0]), min(hi, balance_e)
        sel = incl & (ev >= lo) & (ev <= hi)
        return [(float(e), np.flatnonzero(sel & (ev == e))) for e in np.unique(ev[sel])]

    def codes(self, G: np.ndarray) -> np.ndarray:
        g = np.where(G > 0, G, np.inf)
        idx = np.minimum(np.searchsorted(self.cohorts, g), self.kc - 1)
        if not np.array_equal(self.cohorts[idx], g):
            raise ValueError("a draw has cohort levels the fit does not have")
        return idx

    def att(self, ix: np.ndarray) -> tuple:
        """For cohort codes ``ix`` (m x n): cohort weight sums, comparison weight sums, comparison
        means of the change, cohort-mean changes and ATT(g,t) (``_cs_attgt._theta_compact``)."""
        m, kc, n = ix.shape[0], self.kc, self.n
        rows_ = (np.arange(m)[:, None] * kc + ix).ravel()
        M = sp.csr_matrix((np.tile(self.wu, m), (rows_, np.tile(np.arange(n), m))), shape=(m * kc, n))
        Wc = np.asarray(M.sum(axis=1)).reshape(m, kc)
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = (M @ self.Y).reshape(m, kc, -1) / Wc[:, :, None]
            dyb = ybar[:, :, self.cur] - ybar[:, :, self.base]  # m x kc x ngt
            WC = Wc @ self.cmask.T  # m x ngt
            wc = np.where(self.cmask[None], Wc[:, None, :], 0.0) / WC[:, :, None]  # m x ngt x kc
            m_c = np.einsum("bjc,bcj->bj", np.nan_to_num(wc), np.nan_to_num(dyb))
            att = dyb[:, self.gi, np.arange(self.ngt)] - m_c
        att = np.where(self.zero[None], 0.0, np.where(WC > 0, att, np.nan))
        return Wc, WC, m_c, dyb, att

    def combos(self, Wc, att, keeps: list[np.ndarray]) -> np.ndarray:
        """Estimates ``Σ w_j ATT_j``, ``w = pg / Σ pg`` over each cell set (m x len(keeps))."""
        sj, kk = self._flat(keeps)
        pg = Wc[:, self.gi[kk]]  # m x cells
        spec = sp.csr_matrix((np.ones(sj.size), (np.arange(sj.size), sj)), shape=(sj.size, len(keeps)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(spec.T @ (pg * att[:, kk]).T).T / np.asarray(spec.T @ pg.T).T

    @staticmethod
    def _flat(keeps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Each spec's cells concatenated: (spec id, cell) per entry."""
        sj = np.repeat(np.arange(len(keeps)), [k.size for k in keeps])
        return sj, (np.concatenate(keeps) if keeps else np.zeros(0, dtype=np.intp))

    def gram(self, b: int, ix, Wc, WC, m_c, dyb, att, est, keeps: list[np.ndarray]) -> np.ndarray:
        """``Q = Σ_clusters s s'`` of the unit influence functions of the combinations ``keeps`` in draw
        ``b`` (unweighted; ``V = Q / n²``): ``IF_i = Σ_j w_j IF_ij + wif[cohort of i]`` (R did; see
        ``_cs_attgt._theta_compact`` and ``_cs_aggte._combos``), for all combinations at once."""
        n, kc, nt, ns = self.n, self.kc, self.Y.shape[1], len(keeps)
        c_i = ix[b]
        sj, kk = self._flat(keeps)
        pg = Wc[b, self.gi[kk]]
        S = np.bincount(sj, weights=pg, minlength=ns)
        w = pg / S[sj]
        nz = ~self.zero[kk]
        s_, k_, w_ = sj[nz], kk[nz], w[nz]
        gk, ck, bk = self.gi[k_], self.cur[k_], self.base[k_]
        size = ns * kc * nt
        a_t = w_ * n / Wc[b, gk]  # the cell's own cohort
        cj, cc = np.nonzero(self.cmask[k_])  # its comparison cohorts
        a_c = -w_[cj] * n / WC[b, k_[cj]]
        s_c = s_[cj]
        idx = np.concatenate([(s_ * kc + gk) * nt + ck, (s_ * kc + gk) * nt + bk,
                              (s_c * kc + cc) * nt + ck[cj], (s_c * kc + cc) * nt + bk[cj]])
        val = np.concatenate([a_t, -a_t, a_c, -a_c])
        K = np.bincount(idx, weights=val, minlength=size).reshape(ns, kc, nt)
        const = np.bincount(np.concatenate([s_ * kc + gk, s_c * kc + cc]),
                            weights=np.concatenate([a_t * dyb[b, gk, k_], a_c * m_c[b, k_[cj]]]),
                            minlength=ns * kc).reshape(ns, kc)
        # R's wif for the estimated weights (pg = the cohort's share of the units)
        A = np.bincount(sj * kc + self.gi[kk], weights=att[b, kk], minlength=ns * kc).reshape(ns, kc)
        N = np.bincount(sj * kc + self.gi[kk], minlength=ns * kc).reshape(ns, kc).astype(float)
        Sn = (S / n)[:, None]
        P = Sn * np.asarray(est, float)[:, None]
        wif = (A - P) / Sn - (N - Sn) * (P / Sn**2)  # ns x kc
        inf = np.empty((n, ns))
        for c in range(kc):  # the units of each cohort share the coefficients K[:, c]
            m = c_i == c
            if m.any():
                inf[m] = self.Y[m] @ K[:, c, :].T + (wif[:, c] - const[:, c])[None, :]
        if self.clus is None:
            return inf.T @ inf
        tot = sp.csr_matrix((np.ones(n), (self.clus, np.arange(n)))) @ inf
        return tot.T @ tot


def _cs(fit, frame, outcome, unit, time, options, units) -> Stats | None:
    gt = getattr(fit, "_gt", None)
    rows = fit.rows("overall")
    if gt is None or rows.empty or str(rows["term"].iloc[0]) != "ATT":
        return None
    d = _CSDraws(gt, frame, outcome, unit, time, units)
    trim = (fit.context.options.get("trim_e") if fit.context is not None else None) or (None, None)
    keep = d.simple_cells(trim[1])
    if keep.size == 0:
        return None
    from evalkit.estimators._cs_boot import DEGENERATE

    def stats(G: np.ndarray, se: bool = False):
        idx = d.codes(np.atleast_2d(np.asarray(G, float)))
        out = np.empty(idx.shape[0])
        out_se = np.full(idx.shape[0], np.nan)
        step = max(1, _CELLS // max(d.ngt * d.kc, 1))
        for s in range(0, idx.shape[0], step):
            ix = idx[s:s + step]
            Wc, WC, m_c, dyb, att = d.att(ix)
            est = d.combos(Wc, att, [keep])[:, 0]
            out[s:s + ix.shape[0]] = est
            if se and not d.weighted:
                for b in range(ix.shape[0]):
                    q = d.gram(b, ix, Wc, WC, m_c, dyb, att, est[b:b + 1], [keep])[0, 0]
                    v = np.sqrt(max(q / d.n**2, 0.0))
                    out_se[s + b] = v if v > DEGENERATE else np.nan
        return (out, out_se) if se else out

    return _one_blas_thread(stats)


def cs_pretrend(fit: EstimationResult, frame: pd.DataFrame, outcome: str, *, unit: str, time: str,
                units: pd.Index, kind: str) -> Callable[[np.ndarray], float] | None:
    """``stat(cohort per unit of units) -> float``: the CS event-study pre-trend statistic of a
    re-fit with the dynamic aggregation — the Wald statistic of the leads ``e < −anticipation``
    (``_cs_infer.wald_event``, ``kind="wald"``) or ``Σ t_e²`` over them (``"t2sum"``); ``None`` when
    not covered (weights, covariates, an unbalanced sample, no stored fit)."""
    from evalkit.estimators._cs_infer import se_from, wald_stat

    gt = getattr(fit, "_gt", None)
    if gt is None:
        return None
    try:
        d = _CSDraws(gt, frame, outcome, unit, time, units)
    except ValueError:
        return None
    if d.weighted:
        return None
    opts = fit.context.options if fit.context is not None else {}
    trim = opts.get("trim_e") or (None, None)
    antic = int(gt.options.get("anticipation", 0) or 0)
    leads = [(e, k) for e, k in d.event_cells(trim[0], trim[1], opts.get("balance_e")) if e < -antic]
    keeps = [k for _, k in leads]

    def stat(cohorts: np.ndarray) -> float:
        if not keeps:
            return np.nan
        ix = d.codes(np.atleast_2d(np.asarray(cohorts, float)))
        Wc, WC, m_c, dyb, att = d.att(ix)
        est = d.combos(Wc, att, keeps)[0]
        q = d.gram(0, ix, Wc, WC, m_c, dyb, att, est, keeps)
        se = se_from(np.diagonal(q).copy(), d.n)
        if kind == "wald":
            sel = ~np.isnan(se)
            res = wald_stat(est[sel], None, None, d.n, d.n_clusters, q[np.ix_(sel, sel)])
            return float(res["stat"]) if res and res.get("stat") is not None else np.nan
        ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
        return float(np.sum((est[ok] / se[ok]) ** 2)) if ok.any() else np.nan

    return _one_blas_thread(stat)


# ---------------------------------------------------------------------------- imputation
def _imp_setup(frame, outcome, unit, time, weights, options, units):
    """``(periods, Y, P, W, anticipation, last event time of the overall ATT)`` of an imputation fit's
    options, or ``None`` when an option changes the point estimate in a way not covered here."""
    if set(options) - _IMP_OPTIONS or options.get("repeated_cross_section"):
        return None
    periods = np.sort(pd.unique(frame[time].to_numpy(float)))
    Y, P, W = _grid(frame, outcome, unit, time, units, periods, weights)
    antic = float(options.get("anticipation") or 0)
    max_e = options.get("max_e")
    return periods, Y, P, W, antic, (np.inf if max_e is None else float(max_e))


def _schur_chol(S: np.ndarray):
    """Cholesky factor of the time-effect system ``S`` without its first period (normalised to 0),
    or ``None`` when the untreated cells do not identify the time effects (as the estimator refuses)."""
    try:
        L = _chol(S[1:, 1:])
    except np.linalg.LinAlgError:
        return None
    d = np.abs(np.diag(L[0]))
    if d.min() <= 1e-7 * d.max():
        return None
    return L


def _imputation(frame, outcome, unit, time, weights, cluster, options, units) -> Stats | None:
    setup = _imp_setup(frame, outcome, unit, time, weights, options, units)
    if setup is None:
        return None
    periods, Y, P, W, antic, hi = setup
    leaveout = bool(options.get("leaveout", True))
    cl_col = cluster or options.get("cluster") or unit
    CL = np.full(P.shape, -1, dtype=np.int64)
    ui = units.get_indexer(frame[unit])
    ti = pd.Index(periods).get_indexer(frame[time])
    CL[ui, ti] = pd.factorize(frame[cl_col])[0]
    nu, nt = P.shape
    pr, pc = np.nonzero(P)  # the observed cells and their clusters (fixed across draws)
    cl_p = CL[pr, pc]
    # a grid's observed cells in that (row-major) order by a 1-d take, or the grid itself when all are
    flat = pr * nt + pc
    observed = (lambda X: X.ravel()) if flat.size == nu * nt else (lambda X: X.ravel()[flat])

    designs = _shared_designs(("imputation", P, W, CL, periods, antic, hi, leaveout))

    def design(g: np.ndarray) -> dict[str, Any] | None:
        """The draw's outcome-free pieces: untreated cells, the two-way system's Cholesky factor, the
        target weights, the treated cells with their cells for the leave-out means of ``tau``, and the
        SE's imputation weights on Omega_0 (``None``: no target cell or a disconnected design)."""
        gg = np.where(g > 0, g, np.inf)
        treated = P & (periods[None, :] >= gg[:, None] - antic)
        M = np.where(P & ~treated, W, 0.0)
        n_i, m_t = M.sum(axis=1), M.sum(axis=0)
        ok_u, ok_t = n_i > 0, m_t > 0
        e = periods[None, :] - gg[:, None]
        omega1 = treated & ok_u[:, None] & ok_t[None, :]  # imputable treated cells
        target = omega1 & (e >= 0) & (e <= hi)
        if not target.any():
            return None
        C = M[np.ix_(ok_u, ok_t)]
        n, m = n_i[ok_u], m_t[ok_t]
        Cn = C / n[:, None]
        S = np.diag(m) - C.T @ Cn
        # the first period's effect normalised to 0 (the fit's own normalisation does not matter)
        L = _schur_chol(S)
        if L is None:
            return None  # disconnected design: the estimator refuses it
        v1 = np.where(target, W, 0.0)
        v1 /= v1.sum()
        return {"M": M, "ok_u": ok_u, "ok_t": ok_t, "C": C, "n": n, "m": m, "Cn": Cn, "L": L, "v1": v1,
                "v1_u": v1.sum(axis=1), "v1_t": v1.sum(axis=0), "omega1": omega1, "gg": gg, "se": None}

    def se_design(d: dict[str, Any]) -> tuple:
        """The SE's outcome-free pieces of a draw (computed on its first SE request, then kept with the
        design): the treated cells and their cells for the leave-out means of ``tau``."""
        if d["se"] is not None:
            return d["se"]
        i1 = np.nonzero(d["omega1"])
        g1, w1 = d["gg"][i1[0]], W[i1]
        se = (i1, w1, _tau_bar_cells(g1, periods[i1[1]] - g1, CL[i1], w1, leaveout))
        if designs is None or designs.reserve(se):  # kept with the design while the budget allows
            d["se"] = se
        return se

    def one(g: np.ndarray, want_se: bool) -> tuple[float, float]:
        d = designs.get(g, design) if designs is not None else design(g)
        if d is None:
            return np.nan, np.nan
        M, ok_u, ok_t, C, n, m, Cn, L, v1 = (d[x] for x in ("M", "ok_u", "ok_t", "C", "n", "m", "Cn", "L", "v1"))
        MY = M * Y
        # two right-hand sides: y (the fixed effects) and, for the SE, BJS's Z1'v1 (the imputation
        # weights on Omega_0 are v0 = -w (alpha_v[i] + lam_v[t]), (alpha_v, lam_v) = (Z0'W0Z0)^-1 Z1'v1)
        ra = np.column_stack([MY.sum(axis=1), d["v1_u"]])[ok_u]
        rl = np.column_stack([MY.sum(axis=0), d["v1_t"]])[ok_t]
        lam = np.zeros((m.size, 2))
        lam[1:] = _chol_solve(L, (rl - Cn.T @ ra)[1:])
        a = np.zeros((nu, 2))
        a[ok_u] = (ra - C @ lam) / n[:, None]
        lt = np.zeros((nt, 2))
        lt[ok_t] = lam
        resid = Y - a[:, :1] - lt[:, 0][None, :]  # tau on Omega_1, first-stage residual on Omega_0
        est = float(np.sum(v1 * resid))
        if not want_se:
            return est, np.nan
        av, lv = a[:, 1], lt[:, 1]
        i1, w1, cells = se_design(d)
        tau = resid[i1]
        eps1 = np.zeros(P.shape)
        eps1[i1] = tau - _tau_bar(tau, w1, cells)
        # each observed cell's score: v1 eps1 on Omega_1, -w resid (alpha_v + lam_v) on Omega_0
        contrib = v1 * eps1 - M * resid * (av[:, None] + lv[None, :])
        sc = np.bincount(cl_p, weights=observed(contrib))
        return est, float(np.sqrt(max(float(sc @ sc), 0.0)))

    def stats(G: np.ndarray, se: bool = False):
        G = np.atleast_2d(np.asarray(G, float))
        res = np.array([one(row, se) for row in G]).reshape(-1, 2)
        return (res[:, 0], res[:, 1]) if se else res[:, 0]

    return _one_blas_thread(stats)


def _tau_bar_cells(g1, e1, c1, w1, leaveout: bool) -> tuple:
    """The outcome-free part of :func:`_tau_bar` for treated cells of cohort ``g1``, event time ``e1``,
    cluster ``c1`` and weight ``w1`` (kept in a draw's design): for each pooling level of
    ``imputation._leaveout_means`` (cohort x event time, event time, all treated) the cells it
    resolves and :func:`evalkit.estimators.imputation.leave_own_cluster_out`'s sums that do not
    involve ``tau`` (weight per cell x cluster, the denominators), then the in-sample cohort x
    event-time cells of the rest."""
    span = 4.0 * (float(np.max(np.abs(e1))) + 1.0) if e1.size else 1.0
    lev = rank_codes(g1).astype(float)

    def cells(a, b):  # cell ids of the pairs (a = integer code, b = event time)
        return rank_codes(a * span + b)

    ins = cells(lev, e1)
    n1 = e1.size
    pending = np.ones(n1, dtype=bool)
    levels = []
    if leaveout:
        zeros = np.zeros(n1)
        c_span = float(np.max(c1)) + 1.0 if c1.size else 1.0
        for a, b in ((lev, e1), (zeros, e1), (zeros, zeros)):
            if not pending.any():
                break
            k = cells(a, b)
            kc = rank_codes(k * c_span + c1)
            # leave_own_cluster_out, its tau-free sums: n per cell x cluster, S2 per cell, ok
            n_kc = np.bincount(kc, weights=w1)
            k_of = np.zeros(n_kc.size, dtype=np.int64)
            k_of[kc] = k
            s2 = np.bincount(k_of, weights=n_kc**2)
            ok = (np.bincount(k_of)[k] > 1) & pending
            idx = np.flatnonzero(ok)
            pending &= ~ok
            if idx.size:
                n_i = n_kc[kc[idx]]
                levels.append((idx, kc, k_of, n_kc, k[idx], kc[idx], n_i, s2[k[idx]] - n_i**2))
    rest = np.flatnonzero(pending)
    return ins, np.bincount(ins, weights=w1**2), levels, rest


def _tau_bar(tau, w1, cells) -> np.ndarray:
    """The cell averages of ``tau`` in the BJS residuals: ``imputation._leaveout_means`` (leave own
    cluster out; cohort x event time, then event time, then all treated; in-sample cohort x event
    time when one cluster is treated), or the in-sample w²-weighted cohort x event-time means
    (``cells``: :func:`_tau_bar_cells`; the arithmetic of ``leave_own_cluster_out``, its tau-free
    sums computed once)."""
    ins, ins_w, levels, rest = cells
    out = np.full(tau.size, np.nan)
    wt = w1 * tau
    for idx, kc, k_of, n_kc, k_i, kc_i, n_i, den in levels:
        t_kc = np.bincount(kc, weights=wt)
        s1 = np.bincount(k_of, weights=n_kc * t_kc)
        out[idx] = (s1[k_i] - n_i * t_kc[kc_i]) / den
    if rest.size:
        out[rest] = (np.bincount(ins, weights=w1**2 * tau) / ins_w)[ins][rest]
    return out


def bjs_pretrend(*args: Any, **kwargs: Any) -> Callable[[np.ndarray], float]:
    """:func:`evalkit.inference._bjs.bjs_pretrend` (BJS test 1 per draw; its own module, named here
    by the permutation test's note)."""
    from evalkit.inference._bjs import bjs_pretrend as run

    return run(*args, **kwargs)


__all__ = ["Stats", "agrees", "bjs_pretrend", "cs_pretrend", "fast_headline"]
