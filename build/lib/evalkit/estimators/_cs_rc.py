"""Repeated-cross-section DiD estimators with covariates (ports of R ``DRDID``'s RC estimators).

Used for R ``did``'s ``allow_unbalanced_panel = TRUE`` path with covariates: an unbalanced panel is
treated as repeated cross sections (see :mod:`evalkit.estimators._cs_unbalanced`), each ATT(g,t)
is one of these estimators on the observed rows of cohort g and its comparison units in periods
t and b, and the observation-level influence function is scaled by ``n / n1`` and summed within
unit (:func:`unit_ifs`).

Each cell estimator takes ``y`` (outcome per observation), ``post`` (1 = period t, 0 = base
period b), ``d`` (1 = treated cohort, 0 = comparison) and ``x`` (covariates of the observation, in
its own period, *including* an intercept column) and returns ``(att, inf)`` with ``inf`` the
observation-level influence function scaled like R ``DRDID`` (``se = sqrt(mean(inf**2) / n1)``);
all sampling weights are 1. Formulas: Sant'Anna & Zhao (2020), J. Econometrics 219(1), sec. 3
(repeated cross sections):

* :func:`drdid_rc` — ``DRDID::drdid_rc``, the locally efficient doubly robust estimator
  (``tau_2^{dr,rc}``: logit propensity score on ``x`` over both periods, OLS outcome regressions
  of ``y`` on ``x`` in each of the four (group, period) cells; R ``did`` ``est_method = "dr"``).
* :func:`std_ipw_did_rc` — ``DRDID::std_ipw_did_rc``, Hajek IPW (``"ipw"``).
* :func:`reg_did_rc` — ``DRDID::reg_did_rc``, outcome regression (``"reg"``).

Propensity scores are capped at ``1 - 1e-6`` and comparison observations with a score at or above
the trimming level 0.995 get weight zero, as in DRDID >= 1.0 (and the panel ports in
:mod:`evalkit.estimators._cs_drdid`).
"""

from __future__ import annotations

import numpy as np

from evalkit.estimators._cs_drdid import TRIM_LEVEL, _logit


# --------------------------------------------------------------------------- building blocks
class CellError(ValueError):
    """The 2x2 estimator cannot be computed on this (g, t) cell (R ``did`` reports NA)."""


def _ols(y: np.ndarray, x: np.ndarray, sel: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS of ``y`` on ``x`` over the rows ``sel``: fitted values for every row and the linear
    representation of the coefficients (``w (y - fit) x @ (X'WX / n)^-1``, zero outside ``sel``)."""
    xs = x[sel]
    gram = xs.T @ xs / n
    if len(xs) < x.shape[1] or np.linalg.cond(gram) > 1 / np.finfo(float).eps:
        raise CellError("singular outcome-regression design (too few observations or collinear covariates)")
    coef, *_ = np.linalg.lstsq(xs, y[sel], rcond=None)
    fit = x @ coef
    gram_inv = np.linalg.inv(gram)
    w = sel * (y - fit)
    return fit, (w[:, None] * x) @ gram_inv


def _pscore(x: np.ndarray, d: np.ndarray, overlap_max: float | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logit propensity score (capped at 1 - 1e-6), trimming indicator and the linear
    representation of the logit coefficients (score @ vcov * n, R ``vcov(glm) * n``).

    ``overlap_max``: raise :class:`CellError` when some fitted score reaches it (R ``did``'s
    pre-check ``max(pscore) >= 0.999``, after which it reports NA for the cell)."""
    n = len(d)
    try:
        ps, vcov = _logit(x, d)
    except np.linalg.LinAlgError as e:
        raise CellError(f"propensity score model failed: {e}") from e
    if not np.isfinite(ps).all() or (overlap_max is not None and ps.max() >= overlap_max):
        raise CellError("overlap condition violated (propensity score too close to 1)")
    ps = np.minimum(ps, 1 - 1e-6)
    trim = np.where(d == 1, 1.0, (ps < TRIM_LEVEL).astype(float))
    lin_rep = ((d - ps)[:, None] * x) @ (vcov * n)
    return ps, trim, lin_rep


def _hajek(w: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Normalised mean ``att = mean(w v) / mean(w)`` and its leading IF term ``w (v - att) / mean(w)``."""
    mw = w.mean()
    att = float((w * v).mean() / mw)
    return att, w * (v - att) / mw, mw


def _wmean_x(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``colMeans(w * x)``."""
    return w @ x / len(w)


# --------------------------------------------------------------------------- cell estimators
def drdid_rc(y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray,
             overlap_max: float | None = None) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD for repeated cross sections (``DRDID::drdid_rc``)."""
    n = len(y)
    y, post, d = (np.asarray(a, dtype=float) for a in (y, post, d))
    pre = 1.0 - post
    ps, trim, lin_ps = _pscore(x, d, overlap_max)
    c_pre, c_post, t_pre, t_post = (d == 0) & (pre == 1), (d == 0) & (post == 1), (d == 1) & (pre == 1), \
        (d == 1) & (post == 1)
    f_c_pre, l_c_pre = _ols(y, x, c_pre, n)
    f_c_post, l_c_post = _ols(y, x, c_post, n)
    f_t_pre, l_t_pre = _ols(y, x, t_pre, n)
    f_t_post, l_t_post = _ols(y, x, t_post, n)
    f_c = post * f_c_post + pre * f_c_pre
    resid = y - f_c

    odds = ps / (1.0 - ps)
    w_t_pre, w_t_post = trim * d * pre, trim * d * post
    w_c_pre, w_c_post = trim * odds * (1 - d) * pre, trim * odds * (1 - d) * post
    w_d, w_dt1, w_dt0 = trim * d, w_t_post, w_t_pre

    a_t_pre, i_t_pre, m_t_pre = _hajek(w_t_pre, resid)
    a_t_post, i_t_post, m_t_post = _hajek(w_t_post, resid)
    a_c_pre, i_c_pre, m_c_pre = _hajek(w_c_pre, resid)
    a_c_post, i_c_post, m_c_post = _hajek(w_c_post, resid)
    gap_post, gap_pre = f_t_post - f_c_post, f_t_pre - f_c_pre
    a_d_post, i_d_post, m_d = _hajek(w_d, gap_post)
    a_dt1_post, i_dt1_post, m_dt1 = _hajek(w_dt1, gap_post)
    a_d_pre, i_d_pre, _ = _hajek(w_d, gap_pre)
    a_dt0_pre, i_dt0_pre, m_dt0 = _hajek(w_dt0, gap_pre)
    att = (a_t_post - a_t_pre) - (a_c_post - a_c_pre) + (a_d_post - a_dt1_post) - (a_d_pre - a_dt0_pre)

    # treated component: leading term + estimation effect of the comparison-group OLS
    inf_treat = (i_t_post - i_t_pre
                 - l_c_post @ (_wmean_x(w_t_post * post, x) / m_t_post)
                 - l_c_pre @ (_wmean_x(w_t_pre * pre, x) / m_t_pre))
    # comparison component: leading term + propensity-score and OLS estimation effects
    mom_ps = (_wmean_x(w_c_post * (resid - a_c_post), x) / m_c_post
              - _wmean_x(w_c_pre * (resid - a_c_pre), x) / m_c_pre)
    inf_cont = (i_c_post - i_c_pre + lin_ps @ mom_ps
                - l_c_post @ (_wmean_x(w_c_post * post, x) / m_c_post)
                - l_c_pre @ (_wmean_x(w_c_pre * pre, x) / m_c_pre))
    # local-efficiency adjustment terms and the estimation effect of the four OLS fits in them
    inf_eff = (i_d_post - i_dt1_post) - (i_d_pre - i_dt0_pre)
    mom_post = _wmean_x(w_d / m_d - w_dt1 / m_dt1, x)
    mom_pre = _wmean_x(w_d / m_d - w_dt0 / m_dt0, x)
    inf_or = (l_t_post - l_c_post) @ mom_post - (l_t_pre - l_c_pre) @ mom_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or


def std_ipw_did_rc(y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray,
                   overlap_max: float | None = None) -> tuple[float, np.ndarray]:
    """Standardised (Hajek) IPW DiD for repeated cross sections (``DRDID::std_ipw_did_rc``)."""
    y, post, d = (np.asarray(a, dtype=float) for a in (y, post, d))
    pre = 1.0 - post
    ps, trim, lin_ps = _pscore(x, d, overlap_max)
    odds = ps / (1.0 - ps)
    a_t_pre, i_t_pre, _ = _hajek(trim * d * pre, y)
    a_t_post, i_t_post, _ = _hajek(trim * d * post, y)
    w_c_pre, w_c_post = trim * odds * (1 - d) * pre, trim * odds * (1 - d) * post
    a_c_pre, i_c_pre, m_c_pre = _hajek(w_c_pre, y)
    a_c_post, i_c_post, m_c_post = _hajek(w_c_post, y)
    att = (a_t_post - a_t_pre) - (a_c_post - a_c_pre)
    mom_ps = _wmean_x(w_c_post * (y - a_c_post), x) / m_c_post - _wmean_x(w_c_pre * (y - a_c_pre), x) / m_c_pre
    inf_cont = i_c_post - i_c_pre + lin_ps @ mom_ps
    return float(att), (i_t_post - i_t_pre) - inf_cont


def reg_did_rc(y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray,
               overlap_max: float | None = None) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross sections (``DRDID::reg_did_rc``; no propensity
    score, ``overlap_max`` is ignored)."""
    n = len(y)
    y, post, d = (np.asarray(a, dtype=float) for a in (y, post, d))
    pre = 1.0 - post
    f_pre, l_pre = _ols(y, x, (d == 0) & (pre == 1), n)
    f_post, l_post = _ols(y, x, (d == 0) & (post == 1), n)
    a_t_pre, i_t_pre, _ = _hajek(d * pre, y)
    a_t_post, i_t_post, _ = _hajek(d * post, y)
    a_c, i_c, m_d = _hajek(d, f_post - f_pre)
    att = (a_t_post - a_t_pre) - a_c
    inf_control = i_c + (l_post - l_pre) @ (_wmean_x(d, x) / m_d)
    return float(att), (i_t_post - i_t_pre) - inf_control


RC_ESTIMATORS = {"dr": drdid_rc, "ipw": std_ipw_did_rc, "reg": reg_did_rc}


NO_OBSERVATIONS = "no treated or comparison observations in period t or the base period"

#: R ``did``'s overlap pre-check for "dr" / "ipw": a fitted propensity score >= this gives NA
OVERLAP_MAX = 0.999


def unit_ifs(y: np.ndarray, covs: np.ndarray, coh_of_unit: np.ndarray, cohorts: np.ndarray, cells: list,
             n: int, est_method: str):
    """ATT(g,t) and unit-level influence functions on an unbalanced panel (R ``did`` RC path).

    ``y``: n x T outcomes, NaN where the (unit, period) row is unobserved; ``covs``: n x T x k
    covariates (the row's own period is used); ``coh_of_unit``: cohort index per unit;
    ``cells``: :func:`evalkit.estimators.cs._gt_cells` tuples ``(g, cur, base, cmask, zero)``.

    For each cell the estimator runs on the observed rows of cohort g (d = 1) and of the
    comparison cohorts (d = 0) in periods ``cur`` (post = 1) and ``base`` (post = 0), ``n1`` rows
    in all; the observation-level influence function is scaled by ``n / n1`` and summed within
    unit (R ``aggregate(att.inf.func, list(rightids), sum)``). Returns ``att`` (NaN for cells that
    cannot be estimated), ``inf`` (n x n_gt, R ``did`` scaling: ``se = sqrt(sum inf**2) / n``),
    ``reason`` (None, or why the cell was not estimable) and ``used`` (n x T: rows entering at
    least one ATT(g,t)).
    """
    est = RC_ESTIMATORS[est_method]
    obs = ~np.isnan(y)
    cidx = {v: i for i, v in enumerate(cohorts)}
    ngt = len(cells)
    att = np.zeros(ngt)
    inf = np.zeros((n, ngt))
    reason: list[str | None] = [None] * ngt
    used = np.zeros(y.shape, dtype=bool)
    overlap = OVERLAP_MAX if est_method in ("dr", "ipw") else None
    for j, (g, cur, base, cmask, zero) in enumerate(cells):
        if zero:
            continue
        treat = coh_of_unit == cidx[g]
        sub = treat | cmask[coh_of_unit]
        r1 = np.flatnonzero(sub & obs[:, cur])
        r0 = np.flatnonzero(sub & obs[:, base])
        t1, t0 = treat[r1], treat[r0]
        if not (t1.any() and t0.any() and (~t1).any() and (~t0).any()):
            att[j] = np.nan
            reason[j] = NO_OBSERVATIONS
            continue
        rows = np.concatenate([r1, r0])
        yy = np.concatenate([y[r1, cur], y[r0, base]])
        post = np.concatenate([np.ones(len(r1)), np.zeros(len(r0))])
        dd = np.concatenate([t1, t0]).astype(float)
        xx = np.concatenate([covs[r1, cur], covs[r0, base]])
        xx = np.hstack([np.ones((len(rows), 1)), xx])
        try:
            a, infl = est(yy, post, dd, xx, overlap_max=overlap)
        except CellError as e:
            att[j] = np.nan
            reason[j] = str(e)
            continue
        att[j] = a
        inf[:, j] = np.bincount(rows, weights=infl * (n / len(rows)), minlength=n)
        used[r1, cur] = True
        used[r0, base] = True
    return att, inf, reason, used
