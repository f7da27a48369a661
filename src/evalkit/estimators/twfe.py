"""Two-way fixed effects (static and dynamic) on the shared fit engine (:func:`evalkit.estimators._fe.feols`).

Kept as the comparison: with staggered adoption and effects that grow or differ by cohort, the
static TWFE coefficient is a weighted average of 2x2 comparisons, some with negative weights (see
:mod:`evalkit.estimators.bacon`).  Unit and period effects are absorbed exactly; standard errors
are clustered (by station by default) with fixest's default small-sample correction
``G/(G-1) · (n-1)/(n-K)`` (``K`` = coefficients + fixed-effect levels not nested in the cluster)
and ``t(G-1)`` p-values and CIs — the same numbers as R ``fixest::feols`` / pyfixest.  Optional
observation weights (``weights="population"``) as fixest's ``weights``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result, wald_test
from evalkit.estimators._fe_sample import FESample, fe_sample
from evalkit.results import EstimationResult

_COMMON = ("unit", "time", "cohort", "cluster", "alpha", "weights", "vcov")


def _se_type(fit: _fe.FEFit) -> str:
    label = _fe.SSC_LABEL if fit.vcov_type == "CRV1" else f"{fit.vcov_type} ({_fe.SSC_RULES[fit.vcov_type]})"
    return f"{label}; factor={fit.ssc:.8f}, K={fit.dof_k}, t({fit.df_t})"


def _vcov(vcov: str) -> str:
    if vcov not in _fe.VCOV_TYPES:
        raise ValueError(f"vcov={vcov!r}: one of {_fe.VCOV_TYPES} (CRV1 = clustered by `cluster`, default)")
    return vcov


def _meta(s: FESample, fit: _fe.FEFit, unit: str, cluster: str | None, weights: str | None,
          alpha: float) -> dict:
    info = s.info
    return {
        "control_group": "never and not-yet treated (implicit)",
        "n_treated": info.n_treated, "n_control": info.n_control, "n_obs": int(s.y.size), "n_periods": s.n_times,
        "n_clusters": None if fit.n_clusters is None else int(fit.n_clusters),
        "cluster": (cluster or unit) if fit.vcov_type == "CRV1" else None, "se_type": _se_type(fit),
        "ssc_factor": fit.ssc, "inference": fit.meta(), "sample": info.to_dict(), "weights": weights,
        "dropped_missing_outcome": info.dropped_cells.get("missing_outcome", 0),
        "dropped_zero_weight": s.n_zero_weight,
        "baseline_mean": s.baseline_mean(), "alpha": alpha,
    }


def _finish(res: EstimationResult, s: FESample, fit: _fe.FEFit, spec: str, options: dict) -> EstimationResult:
    """The result contract (``_common.finish_result``: sample, estimand, inference, context);
    ``meta["se_type"]`` keeps the printed description of the correction applied."""
    finish_result(res, s.sample, spec=spec, options=options, inference=fit.meta())
    res.meta["se_type"] = _se_type(fit)
    return res


def estimate_twfe(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    weights: str | None = None,
    vcov: str = "CRV1",
    **options: object,
) -> EstimationResult:
    """Static TWFE: ``y_it = α_i + γ_t + β·D_it + ε``, with ``D_it = 1`` from adoption on.

    ``weights``: name of a column of non-negative observation weights (e.g. station population);
    weighted least squares as fixest ``feols(..., weights=)``.  ``vcov``: ``"CRV1"`` (clustered by
    ``cluster``, default), ``"iid"`` or ``"hetero"`` (HC1), each with fixest's small-sample factor.  The sample follows
    :func:`evalkit.estimators._sample.build_sample` (``meta["sample"]``).
    """
    _fe.check_options("twfe", options, _COMMON)
    s = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    D = (s.period >= s.cohort).astype(float)  # never treated: cohort = inf, never >= it
    fit = _fe.feols(s.y, D, [s.unit, s.time], weights=s.weights, cluster=s.cluster if _vcov(vcov) == "CRV1" else None,
                    vcov=vcov, names=["treated_post"], grid=s.grid)
    if not fit.keep[0]:
        raise ValueError("the treatment dummy is collinear with the unit and period effects (no timing variation)")
    lo, hi = fit.conf_int(alpha)
    rows = [{
        "kind": "overall", "term": "treated_post", "estimate": float(fit.coef[0]), "std_error": float(fit.se[0]),
        "ci_low": float(lo[0]), "ci_high": float(hi[0]), "p_value": float(fit.p_value()[0]),
    }]
    meta = {"label": "Two-way fixed effects (static)",
            **_meta(s, fit, unit, cluster, weights, alpha)}
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights, "alpha": alpha,
            "vcov": vcov}
    return _finish(EstimationResult("twfe", outcome, pd.DataFrame(rows), meta=meta), s, fit, "twfe", opts)


def event_dummies(cohort: np.ndarray, period: np.ndarray, leads: int, lags: int, reference: int
                  ) -> tuple[sp.csr_matrix, list[int]]:
    """Sparse event-time dummies ``-leads..lags`` without ``reference``; event times beyond the ends
    are binned into the end dummies.  ``cohort`` is ``inf`` for never-treated rows."""
    treated = np.isfinite(cohort)
    e = np.clip(period - np.where(treated, cohort, 0), -leads, lags).astype(np.int64)
    ks = [k for k in range(-leads, lags + 1) if k != reference]
    col = np.full(lags + leads + 1, -1, dtype=np.int64)
    col[np.array(ks, dtype=np.int64) + leads] = np.arange(len(ks))
    j = col[e + leads]
    rows = np.flatnonzero(treated & (j >= 0))
    X = sp.csr_matrix((np.ones(rows.size), (rows, j[rows])), shape=(period.size, len(ks)))
    return X, ks


def estimate_event_twfe(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    weights: str | None = None,
    vcov: str = "CRV1",
    leads: int = 12,
    lags: int = 24,
    bin_e: tuple[int, int] | None = None,
    reference: int = -1,
    **options: object,
) -> EstimationResult:
    """Dynamic TWFE (leads and lags): event-time dummies ``-leads..lags``, endpoints binned.

    ``bin_e=(lo, hi)`` is the same as ``leads=-lo, lags=hi`` (event times below ``lo`` / above ``hi``
    pooled into the end bins).  The reference period (default ``-1``) is omitted.  Leads test
    parallel pre-trends (``meta['pretrend']``: joint Wald test).  The overall row averages the
    post-adoption coefficients ``0..lags`` with equal weights (a summary, not an estimand of its own).
    """
    _fe.check_options("event_twfe", options, _COMMON + ("leads", "lags", "bin_e", "reference"))
    if bin_e is not None:
        lo_e, hi_e = bin_e
        if lo_e is None or hi_e is None or lo_e > reference or hi_e < 0:
            raise ValueError(f"bin_e={bin_e!r}: need (lo, hi) with lo <= reference ({reference}) and hi >= 0")
        leads, lags = -int(lo_e), int(hi_e)
    s = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    X, ks = event_dummies(s.cohort, s.period, leads, lags, reference)
    cols = [f"e{k:+d}" for k in ks]
    fit = _fe.feols(s.y, X, [s.unit, s.time], weights=s.weights, cluster=s.cluster if _vcov(vcov) == "CRV1" else None,
                    vcov=vcov, names=cols, grid=s.grid)
    kept = [k for k, kk in zip(ks, fit.keep, strict=True) if kk]
    se = fit.se
    lo, hi = fit.conf_int(alpha)
    pv = fit.p_value()
    rows = [{"kind": "event", "term": f"e={k}", "event_time": k, "estimate": float(fit.coef[j]),
             "std_error": float(se[j]), "ci_low": float(lo[j]), "ci_high": float(hi[j]), "p_value": float(pv[j])}
            for j, k in enumerate(kept)]
    rows.append({"kind": "event", "term": f"e={reference}", "event_time": reference, "estimate": 0.0,
                 "std_error": 0.0})
    post = np.array([k >= 0 for k in kept])
    if not post.any():
        raise ValueError("no post-adoption event-time coefficient is estimable")
    w = post / post.sum()
    b = float(w @ fit.coef)
    se_b = float(np.sqrt(w @ fit.vcov @ w))
    inf = fit.inference(np.array([b]), np.array([se_b]), alpha)
    rows.append({"kind": "overall", "term": "mean of post coefficients", "estimate": b, "std_error": se_b,
                 "ci_low": float(inf["ci_low"][0]), "ci_high": float(inf["ci_high"][0]),
                 "p_value": float(inf["p_value"][0])})
    pre = np.array([k < reference for k in kept])
    pretrend = wald_test(fit.coef[pre], fit.vcov[np.ix_(pre, pre)]) if pre.any() else None
    terms = [f"e={k}" for k in kept]
    vc = pd.DataFrame(fit.vcov, index=terms, columns=terms)
    meta = {"label": "Dynamic TWFE (leads and lags)", "reference_period": reference, "leads": leads,
            "lags": lags, "binned_endpoints": True, "bin_e": (-leads, lags), "pretrend": pretrend,
            **_meta(s, fit, unit, cluster, weights, alpha)}
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights, "alpha": alpha,
            "vcov": vcov, "leads": leads, "lags": lags, "reference": reference}
    res = EstimationResult("event_twfe", outcome, pd.DataFrame(rows), meta=meta, vcov={"event": vc})
    return _finish(res, s, fit, "event_twfe", opts)
