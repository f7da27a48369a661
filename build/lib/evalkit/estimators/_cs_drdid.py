"""Two-period panel DiD estimators with covariates (ports of R ``DRDID``).

Each function takes one (g, t) subsample: ``dy`` (post minus pre outcome), ``d`` (1 = treated
cohort, 0 = comparison units) and ``x`` (covariates *including* an intercept column) and returns
``(att, inf)`` where ``inf`` is the influence function on the subsample scaled like R ``DRDID``
(``se = sqrt(mean(inf**2) / n1)``).

* :func:`drdid_panel` — ``DRDID::drdid_panel`` (locally efficient doubly robust, logit pscore,
  OLS outcome regression on the comparison units; R ``did`` ``est_method = "dr"``).
* :func:`std_ipw_did_panel` — ``DRDID::std_ipw_did_panel`` (Hajek IPW, ``"ipw"``).
* :func:`reg_did_panel` — ``DRDID::reg_did_panel`` (outcome regression, ``"reg"``).

Propensity scores are capped at ``1 - 1e-6`` and comparison units with a score above the trimming
level 0.995 get weight zero, as in DRDID >= 1.0.
"""

from __future__ import annotations

import numpy as np

TRIM_LEVEL = 0.995


def _logit(x: np.ndarray, d: np.ndarray, tol: float = 1e-12, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Logit MLE by Newton–Raphson. Returns fitted probabilities and (X'WX)^-1 (= R vcov(glm))."""
    beta = np.zeros(x.shape[1])
    # R glm starts from mustart = (y + 0.5)/2; Newton from zero converges to the same optimum.
    for _ in range(max_iter):
        eta = x @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        grad = x.T @ (d - p)
        hess = (x * w[:, None]).T @ x
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    eta = x @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    w = p * (1.0 - p)
    vcov = np.linalg.inv((x * w[:, None]).T @ x)
    return p, vcov


def _ols_control(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS of dy on x among d == 0; returns fitted values for everyone and the OLS linear rep."""
    n = len(dy)
    c = d == 0
    xc = x[c]
    coef, *_ = np.linalg.lstsq(xc, dy[c], rcond=None)
    fitted = x @ coef
    w_ols = (1.0 - d)
    xpx_inv = np.linalg.inv((x * w_ols[:, None]).T @ x / n)
    lin_rep = (w_ols * (dy - fitted))[:, None] * x @ xpx_inv
    return fitted, lin_rep


def _pscore(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(d)
    ps, vcov = _logit(x, d)
    ps = np.minimum(ps, 1 - 1e-6)
    trim = np.where(d == 1, ps < 1.01, ps < TRIM_LEVEL).astype(float)
    score = (d - ps)[:, None] * x
    lin_rep_ps = score @ (vcov * n)
    return ps, trim, lin_rep_ps


def drdid_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    ps, trim, lin_rep_ps = _pscore(x, d)
    out_delta, lin_rep_ols = _ols_control(dy, d, x)
    w_treat = trim * d
    w_cont = trim * ps * (1 - d) / (1 - ps)
    resid = dy - out_delta
    att_treat = w_treat * resid
    att_cont = w_cont * resid
    eta_treat = att_treat.mean() / w_treat.mean()
    eta_cont = att_cont.mean() / w_cont.mean()
    att = eta_treat - eta_cont
    inf_treat_1 = att_treat - w_treat * eta_treat
    m1 = (w_treat[:, None] * x).mean(axis=0)
    inf_treat = (inf_treat_1 - lin_rep_ols @ m1) / w_treat.mean()
    inf_cont_1 = att_cont - w_cont * eta_cont
    m2 = ((w_cont * (resid - eta_cont))[:, None] * x).mean(axis=0)
    m3 = (w_cont[:, None] * x).mean(axis=0)
    inf_control = (inf_cont_1 + lin_rep_ps @ m2 - lin_rep_ols @ m3) / w_cont.mean()
    return float(att), inf_treat - inf_control


def std_ipw_did_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    ps, trim, lin_rep_ps = _pscore(x, d)
    w_treat = trim * d
    w_cont = trim * ps * (1 - d) / (1 - ps)
    att_treat = w_treat * dy
    att_cont = w_cont * dy
    eta_treat = att_treat.mean() / w_treat.mean()
    eta_cont = att_cont.mean() / w_cont.mean()
    att = eta_treat - eta_cont
    inf_treat = (att_treat - w_treat * eta_treat) / w_treat.mean()
    inf_cont_1 = att_cont - w_cont * eta_cont
    m2 = ((w_cont * (dy - eta_cont))[:, None] * x).mean(axis=0)
    inf_control = (inf_cont_1 + lin_rep_ps @ m2) / w_cont.mean()
    return float(att), inf_treat - inf_control


def reg_did_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    out_delta, lin_rep_ols = _ols_control(dy, d, x)
    w_treat = d.astype(float)
    w_cont = d.astype(float)
    att_treat = w_treat * dy
    att_cont = w_cont * out_delta
    eta_treat = att_treat.mean() / w_treat.mean()
    eta_cont = att_cont.mean() / w_cont.mean()
    att = eta_treat - eta_cont
    inf_treat = (att_treat - w_treat * eta_treat) / w_treat.mean()
    inf_cont_1 = att_cont - w_cont * eta_cont
    m1 = (w_cont[:, None] * x).mean(axis=0)
    inf_control = (inf_cont_1 + lin_rep_ols @ m1) / w_cont.mean()
    return float(att), inf_treat - inf_control


ESTIMATORS = {"dr": drdid_panel, "ipw": std_ipw_did_panel, "reg": reg_did_panel}
