"""Poisson pseudo-maximum likelihood (PPML) with unit and time fixed effects.

For counts ``y_it >= 0`` with ``E[y_it] = exp(a_i + g_t + x_it'b)`` the unit effects have the
closed form ``a_i = log(sum_t y_it / sum_t exp(g_t + x_it'b))`` given the rest, so the
log-likelihood concentrates to a multinomial-logit-type objective in ``(b, g)`` only:

    l_c(b, g) = sum_it y_it eta_it - sum_i Y_i log sum_t exp(eta_it),   eta = x'b + g_t.

It is concave; we maximise it by Newton's method with step halving.  Its Hessian is the
``mu``-weighted Schur complement ``Z'MZ - A' diag(1/Y_i) A`` (``A = D'MZ``, ``M = diag(mu)``) — the
same object as the FWL-partialled ``X~'MX~`` of the full model — built with the shared sparse
machinery in :mod:`evalkit.estimators._fe`.  The estimates equal the full two-way FE Poisson
MLE (fixest ``fepois`` / pyfixest ``fepois``) exactly at convergence.

Standard errors: cluster-robust sandwich ``H^-1 (sum_c s_c s_c') H^-1`` with scores
``s_c = sum_{it in c} z~_it (y_it - mu_it)`` and the fixest default small-sample factor
``G/(G-1) (N-1)/(N-K)`` (``K`` = coefficients + non-nested FE levels).

Units whose outcome is zero in every period (and periods that are zero for every unit) have no
finite MLE for their fixed effect and do not contribute to ``b``; they are dropped and counted
in ``meta``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators._sample import bin_event_time, check_event_window
from evalkit.results import EstimationResult, make_estimates


def _logsumexp_by(eta: np.ndarray, grp: np.ndarray, n: int) -> np.ndarray:
    mx = np.full(n, -np.inf)
    np.maximum.at(mx, grp, eta)
    s = np.bincount(grp, weights=np.exp(eta - mx[grp]), minlength=n)
    return mx + np.log(s)


def fit_fepois(y: np.ndarray, unit: np.ndarray, Z: sp.csr_matrix, n_units: int, tol: float = 1e-10,
               maxiter: int = 100, w: np.ndarray | None = None) -> dict:
    """Two-way FE Poisson by Newton on the unit-concentrated likelihood.

    ``Z`` holds the regressors and the (first-level-dropped) time dummies; ``w`` optional positive
    observation weights (fixest ``fepois(weights=)``: every likelihood term multiplied by ``w``).
    Every unit must have a positive (weighted) total.  Returns theta (kept columns), keep mask,
    bread (inverse Hessian), mu (the means), unit_means (``w mu``-weighted unit means of Z),
    iterations, loglik.
    """
    ww = np.ones(y.size) if w is None else np.asarray(w, dtype=float)
    logw = np.log(ww)
    Yi = np.bincount(unit, weights=ww * y, minlength=n_units)
    if np.any(Yi <= 0):
        raise ValueError("every unit needs a positive outcome total (drop all-zero units first)")
    Z = sp.csr_matrix(Z)
    keep = np.ones(Z.shape[1], dtype=bool)
    theta = np.zeros(Z.shape[1])

    def evaluate(th):
        eta = Z @ th
        lse = _logsumexp_by(eta + logw, unit, n_units)
        ll = float((ww * y) @ eta - Yi @ lse)
        mu = Yi[unit] * np.exp(eta - lse[unit])
        return ll, mu

    ll, mu = evaluate(theta)
    it = 0
    converged = False
    for it in range(1, maxiter + 1):  # noqa: B007
        _, A, S = _fe.unit_cross(Z, unit, n_units, ww * mu)
        if it == 1:
            keep = _fe.independent_columns(S)
            if not keep.all():
                Z = Z[:, np.flatnonzero(keep)].tocsr()
                theta = theta[keep]
                S = S[np.ix_(keep, keep)]
        grad = Z.T @ (ww * (y - mu))
        step = np.linalg.solve(S, grad)
        t = 1.0
        while True:
            ll_new, mu_new = evaluate(theta + t * step)
            if ll_new >= ll - 1e-12 * abs(ll) or t < 1e-10:
                break
            t /= 2
        theta = theta + t * step
        dll = ll_new - ll
        ll, mu = ll_new, mu_new
        if np.max(np.abs(t * step)) < tol or abs(dll) < 1e-15 * max(1.0, abs(ll)):
            converged = True
            break
    Dw, A, S = _fe.unit_cross(Z, unit, n_units, ww * mu)
    bread = _fe.sym_inv(S)
    unit_means = (sp.diags(1.0 / Yi) @ A).tocsr()
    return {"theta": theta, "keep": keep, "bread": bread, "mu": mu, "unit_means": unit_means, "Z": Z,
            "iterations": it, "converged": converged, "loglik": ll}


def _drop_zero(uc: np.ndarray, tc: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Mask of observations kept after iteratively dropping all-zero units and periods."""
    keep = np.ones(y.size, dtype=bool)
    n_u = n_t = 0
    while True:
        su = np.bincount(uc[keep], weights=y[keep], minlength=uc.max() + 1)
        st = np.bincount(tc[keep], weights=y[keep], minlength=tc.max() + 1)
        present_u = np.bincount(uc[keep], minlength=uc.max() + 1) > 0
        present_t = np.bincount(tc[keep], minlength=tc.max() + 1) > 0
        bad_u = present_u & (su <= 0)
        bad_t = present_t & (st <= 0)
        if not bad_u.any() and not bad_t.any():
            return keep, n_u, n_t
        n_u += int(bad_u.sum())
        n_t += int(bad_t.sum())
        keep &= ~bad_u[uc] & ~bad_t[tc]


def _pct(b: np.ndarray, se: np.ndarray, alpha: float, df_t: int) -> dict[str, np.ndarray]:
    inf = _fe.t_inference(b, se, df_t, alpha)
    return {
        "estimate": 100 * np.expm1(b),
        "std_error": 100 * np.exp(b) * se,
        "ci_low": 100 * np.expm1(inf["ci_low"]),
        "ci_high": 100 * np.expm1(inf["ci_high"]),
        "p_value": inf["p_value"],
    }


def estimate_poisson(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    weights: str | None = None,
    event_study: bool = False,
    anticipation: int = 0,
    bin_e: tuple[int | None, int | None] | None = None,
    tol: float = 1e-10,
    maxiter: int = 100,
    **options,
) -> EstimationResult:
    """FE-Poisson (PPML) effect of adoption on a count outcome, reported in percent.

    Rows: ``overall`` "ATT (%)" = ``100 (exp(b) - 1)`` for the post-adoption dummy (delta-method
    SE, CI = transformed CI of ``b``); ``coef`` "treated:post" = raw ``b``.  With
    ``event_study=True`` a second fit with event-time dummies (reference ``e = -1 -
    anticipation``, pooled over cohorts, endpoints binned at ``bin_e=(lo, hi)``) adds ``event``
    rows in percent and raw ``coef`` rows ``"e=k"``.  ``weights``: observation weights (fixest
    ``fepois(weights=)``); rows with weight 0 are left out of the fit.  Inference: CRV1 with
    fixest's small-sample factor and ``t(G-1)``.
    """
    _fe.check_options("poisson", options, ("unit", "time", "cohort", "cluster", "alpha", "weights",
                                           "event_study", "anticipation", "bin_e", "tol", "maxiter"))
    min_e, max_e = check_event_window(bin_e, "bin_e") or (None, None)
    cluster = unit if cluster is None else cluster
    smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    df = smp.frame
    y = smp.y
    if np.any(y < 0):
        raise ValueError(f"{outcome!r} has negative values; Poisson needs y >= 0")
    pos_w = np.ones(y.size, dtype=bool) if smp.weights is None else smp.weights > 0
    uc0, _ = _fe.codes(df[unit])
    tc0, _ = _fe.codes(df[time])
    mask, n_zero_units, n_zero_periods = _drop_zero(uc0[pos_w], tc0[pos_w], y[pos_w])
    mask_all = np.zeros(y.size, dtype=bool)
    mask_all[np.flatnonzero(pos_w)[mask]] = True
    mask = mask_all
    df = df[mask].reset_index(drop=True)
    y = y[mask]
    w = None if smp.weights is None else smp.weights[mask]
    g = smp.cohort[mask]
    t = smp.period[mask]
    uc, uvals = _fe.codes(df[unit])
    tc, tvals = _fe.codes(df[time])
    cc, _ = _fe.codes(df[cluster])
    n_units, T, G = uvals.size, tvals.size, int(cc.max()) + 1
    nested = _fe.nested_in(uc, cc)
    Zt = _fe.time_dummies(tc, T)
    treated_unit = np.isfinite(g)
    D = (treated_unit & (t >= g)).astype(float)
    if D.sum() == 0:
        raise ValueError("no treated observations left")

    def run(X: sp.csr_matrix, names: list[str]):
        Z = sp.hstack([X, Zt], format="csr")
        res = fit_fepois(y, uc, Z, n_units, tol=tol, maxiter=maxiter, w=w)
        kx = int(res["keep"][: X.shape[1]].sum())
        score = y - res["mu"] if w is None else w * (y - res["mu"])
        meat = _fe.cluster_meat(res["Z"], score, cc, uc, res["unit_means"], nested=nested)
        factor, K, _ = _fe.small_sample(y.size, kx, "CRV1", fe_levels=[n_units, T],
                                        fe_nested=[nested, _fe.nested_in(tc, cc)], n_clusters=G)
        V = _fe.sandwich(res["bread"], meat, factor)[:kx, :kx]
        kept_names = [n for n, k in zip(names, res["keep"][: X.shape[1]], strict=True) if k]
        return res["theta"][:kx], V, kept_names, factor, K, res

    b, V, _, factor, K, res = run(sp.csr_matrix(D[:, None]), ["treated:post"])
    se = np.sqrt(np.diag(V))
    pct = _pct(b, se, alpha, G - 1)
    raw = _fe.t_inference(b, se, G - 1, alpha)
    rows = [
        {"kind": "overall", "term": "ATT (%)", **{k: v[0] for k, v in pct.items()}},
        {"kind": "coef", "term": "treated:post", "estimate": b[0], "std_error": se[0],
         "ci_low": raw["ci_low"][0], "ci_high": raw["ci_high"][0], "p_value": raw["p_value"][0]},
    ]
    vcov = {"coef": pd.DataFrame(V, index=["treated:post"], columns=["treated:post"])}
    meta_extra = {}
    if event_study:
        ref = -1 - int(anticipation)
        e = np.where(treated_unit, t - np.where(treated_unit, g, 0), np.nan)
        e = bin_event_time(e, (min_e, max_e))
        m = treated_unit & (e != ref)
        evs = np.unique(e[m])
        pos = np.searchsorted(evs, e[m])
        X = sp.csr_matrix((np.ones(m.sum()), (np.flatnonzero(m), pos)), shape=(y.size, evs.size))
        names = [f"e={int(v)}" for v in evs]
        be, Ve, kept, _, _, res_e = run(X, names)
        see = np.sqrt(np.diag(Ve))
        pe = _pct(be, see, alpha, G - 1)
        re = _fe.t_inference(be, see, G - 1, alpha)
        kept_e = np.array([float(n[2:]) for n in kept])
        for j, name in enumerate(kept):
            rows.append({"kind": "event", "term": name, "event_time": kept_e[j],
                         **{k: v[j] for k, v in pe.items()}})
        for j, name in enumerate(kept):
            rows.append({"kind": "coef", "term": name, "event_time": kept_e[j], "estimate": be[j],
                         "std_error": see[j], "ci_low": re["ci_low"][j], "ci_high": re["ci_high"][j],
                         "p_value": re["p_value"][j]})
        J = np.diag(100 * np.exp(be))
        vcov["event_coef"] = pd.DataFrame(Ve, index=kept, columns=kept)
        vcov["event"] = pd.DataFrame(J @ Ve @ J, index=kept, columns=kept)
        pre = kept_e < ref
        pretrend = _fe.wald_test(be[pre], Ve[np.ix_(pre, pre)])
        pretrend["terms"] = [kept[j] for j in np.flatnonzero(pre)]
        meta_extra = {"pretrend": pretrend, "reference_period": ref, "event_iterations": res_e["iterations"]}

    meta = {
        "label": "Poisson PML with unit and time fixed effects",
        "control_group": "never treated + not yet treated (TWFE)",
        "scale": "percent",
        # units left after dropping all-zero units (n_treated / n_control: the shared sample's, finish_result)
        "n_treated_used": int(np.unique(uc[treated_unit]).size),
        "n_control_used": int(np.unique(uc[~treated_unit]).size),
        "n_obs": int(y.size),
        "n_periods": int(T),
        "n_clusters": int(G),
        "cluster": cluster,
        "n_units_dropped_all_zero": int(n_zero_units),
        "n_periods_dropped_all_zero": int(n_zero_periods),
        "se_type": f"{_fe.SSC_LABEL}; factor={factor:.8f}, K={K}, t({G - 1}); percent SE by delta "
                   "method, percent CI = transformed CI of the coefficient",
        "inference": {"se_type": "CRV1", "ssc": factor, "dof_k": K, "df": G - 1, "n_clusters": int(G),
                      "distribution": f"t({G - 1})", "ssc_rule": _fe.SSC_RULES["CRV1"]},
        "sample": smp.info.to_dict(),
        "weights": weights,
        "bin_e": None if bin_e is None else (min_e, max_e),
        "alpha": alpha,
        "baseline_mean": _fe.baseline_mean(y, g, t),
        "iterations": res["iterations"],
        "converged": res["converged"],
        "loglik_concentrated": res["loglik"],
        **meta_extra,
    }
    out = EstimationResult("poisson", outcome, make_estimates(rows), meta=meta, vcov=vcov)
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights, "alpha": alpha,
            "event_study": event_study, "anticipation": anticipation, "bin_e": bin_e, "tol": tol, "maxiter": maxiter}
    se_type = meta["se_type"]  # finish_result sets meta["se_type"] to the short type
    finish_result(out, smp.sample, spec="poisson", options=opts, inference=meta["inference"])
    out.meta["se_type"] = se_type
    return out
