"""Unbalanced panels for Callaway & Sant'Anna: R ``did``'s ``allow_unbalanced_panel = TRUE``.

R ``did`` (``pre_process_did``): with ``allow_unbalanced_panel = TRUE`` and a panel that is *not*
balanced (after dropping rows with missing values), it sets ``panel = FALSE`` and
``true_repeated_cross_sections = FALSE``: ``.rowid`` is the unit id and ``n`` the number of
distinct units. Each ATT(g,t) is then the repeated-cross-section DRDID estimator on the
observations of cohort-g and comparison units in periods t and b (``n1`` = number of such
observations); the observation-level influence function is scaled by ``n / n1`` and summed
within unit ids (``aggregate(att.inf.func, list(rightids), sum)`` in ``compute.att_gt``). Since
``did`` 2.2.0 a panel that turns out balanced is run through the panel estimator instead.

Without covariates every DRDID RC estimator (dr / ipw / reg with an intercept only) is
``(Ybar_{G,t} - Ybar_{G,b}) - (Ybar_{C,t} - Ybar_{C,b})`` over the observed rows, and its
influence function (all estimation-effect terms included) is, per observation,
``+-(Y - Ybar_cell) / share_cell``. Summed by unit and scaled as R does, unit i gets
``n * sum_s sign_s * [1{i in G, obs s} (Y_is - Ybar_{G,s}) / N_{G,s}
                    - 1{i in C, obs s} (Y_is - Ybar_{C,s}) / N_{C,s}]``.

Compact form: for unit i in cohort c the design row holds, per period s, the within-cohort
centred outcome ``z_is = O_is (Y_is - Ybar_{c,s})`` (0 if unobserved) and the observation
indicator ``O_is``; ``Y_is - Ybar_{C,s} = z_is + O_is (Ybar_{c,s} - Ybar_{C,s})`` for observed
rows. So the influence functions are linear in ``[z, O]`` (2T columns per cohort block) plus the
cohort indicators used by the aggregation-weight terms, and :class:`CompactDesign` is reused
unchanged with a 2T-wide matrix. On a balanced panel ``N_{c,t} = N_{c,b}`` and the O-terms cancel
within unit, so the unit-summed RC influence function *equals* the panel one: estimates and SEs
coincide with the balanced estimator (tested).

With covariates this closed form does not apply: each cell runs R ``DRDID``'s RC estimator
(``drdid_rc`` / ``std_ipw_did_rc`` / ``reg_did_rc``, :mod:`evalkit.estimators._cs_rc`) and the
unit-summed influence functions go into a dense design (``DenseDesign``), as on the balanced
covariate path; rows with a missing covariate are unobserved too.
"""

from __future__ import annotations

import numpy as np

#: Testing hook: run the repeated-cross-section path even when the panel is balanced (R did >= 2.2
#: switches to the panel estimator then; both give identical results without covariates, not in
#: general with covariates).
FORCE_RC = False


def cohort_period_sums(y: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cohort (rows ``bounds[c]:bounds[c+1]``) and period: sum of observed Y, count, mean."""
    obs = ~np.isnan(y)
    yz = np.where(obs, y, 0.0)
    starts = bounds[:-1]
    s = np.add.reduceat(yz, starts, axis=0)
    cnt = np.add.reduceat(obs.astype(np.float64), starts, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(cnt > 0, s / cnt, np.nan)
    return s, cnt, mean


def design_matrix(y: np.ndarray, bounds: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``[z, O]`` (n x 2T): within-cohort centred observed outcomes (0 if missing), indicators."""
    obs = ~np.isnan(y)
    mrow = np.repeat(np.nan_to_num(mean), np.diff(bounds), axis=0)
    z = np.where(obs, y - mrow, 0.0)
    return np.hstack([z, obs.astype(np.float64)])


def theta_rc(y: np.ndarray, bounds: np.ndarray, cohorts: np.ndarray, cells: list, n: int):
    """ATT(g,t) and theta columns for the repeated-cross-section design (vectorised over cells).

    Returns ``att``, ``theta`` (p x n_gt, ``p = kc * 2T + kc``), ``ok`` (cells estimable: the
    cohort and the comparison group each have observations in both periods; R returns NA
    otherwise), the ``[z, O]`` design matrix and the (cohort x period) observation counts.
    """
    kc = len(bounds) - 1
    nt = y.shape[1]
    t2 = 2 * nt
    p = kc * t2 + kc
    s, cnt, mean = cohort_period_sums(y, bounds)
    ngt = len(cells)
    cidx = {v: i for i, v in enumerate(cohorts)}
    gi = np.array([cidx[c[0]] for c in cells], dtype=np.intp)
    cur = np.array([c[1] for c in cells], dtype=np.intp)
    base = np.array([c[2] for c in cells], dtype=np.intp)
    zero = np.array([c[4] for c in cells], dtype=bool)
    cmask = np.array([np.zeros(kc, bool) if c[4] else c[3] for c in cells], dtype=bool).reshape(ngt, kc)
    cm = cmask.astype(np.float64)
    j = np.arange(ngt)
    nc_cur = (cm * cnt[:, cur].T).sum(axis=1)
    nc_base = (cm * cnt[:, base].T).sum(axis=1)
    sc_cur = (cm * s[:, cur].T).sum(axis=1)
    sc_base = (cm * s[:, base].T).sum(axis=1)
    ng_cur, ng_base = cnt[gi, cur], cnt[gi, base]
    ok = ~zero & (ng_cur > 0) & (ng_base > 0) & (nc_cur > 0) & (nc_base > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        yc_cur, yc_base = sc_cur / nc_cur, sc_base / nc_base
        att = (mean[gi, cur] - mean[gi, base]) - (yc_cur - yc_base)
    att = np.where(zero, 0.0, np.where(ok, att, np.nan))

    th = np.zeros((p, ngt))
    jj = j[ok]
    th[gi[ok] * t2 + cur[ok], jj] = n / ng_cur[ok]
    th[gi[ok] * t2 + base[ok], jj] = -n / ng_base[ok]
    cj, cc = np.nonzero(cmask & ok[:, None])
    wt, wb = n / nc_cur[cj], n / nc_base[cj]
    dt = np.nan_to_num(mean[cc, cur[cj]] - yc_cur[cj])  # 0 where cohort cc is unobserved at t
    db = np.nan_to_num(mean[cc, base[cj]] - yc_base[cj])
    th[cc * t2 + cur[cj], cj] = -wt
    th[cc * t2 + nt + cur[cj], cj] = -wt * dt
    th[cc * t2 + base[cj], cj] = wb
    th[cc * t2 + nt + base[cj], cj] = wb * db
    return att, th, ok, design_matrix(y, bounds, mean), cnt


def obs_used(th: np.ndarray, cnt: np.ndarray) -> int:
    """Observations that enter at least one ATT(g,t): cohort x period cells with a nonzero theta."""
    kc, nt = cnt.shape
    used = th[: kc * 2 * nt].any(axis=1).reshape(kc, 2, nt)[:, 0, :]
    return int(cnt[used].sum())
