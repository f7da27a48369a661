"""Two-way fixed effects (static and dynamic), via linearmodels ``PanelOLS``.

Kept as the comparison: with staggered adoption and effects that grow or differ by
cohort, the static TWFE coefficient is a weighted average of 2x2 comparisons, some with
negative weights (see :mod:`evalkit.estimators.bacon`). Standard errors are clustered
(by station by default) with linearmodels' ``group_debias`` adjustment
``G/(G-1) · (n-1)/n``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

from evalkit.estimators._common import baseline_mean, ever_treated, unit_counts, wald_test
from evalkit.results import EstimationResult, normal_inference

SE_TYPE = "cluster-robust, G/(G-1)·(n-1)/n (linearmodels group_debias)"


def _fit(df: pd.DataFrame, outcome: str, regressors: list[str], unit: str, time: str, cluster: str | None):
    data = df.set_index([unit, time])
    model = PanelOLS(data[outcome].astype(float), data[regressors].astype(float),
                     entity_effects=True, time_effects=True, drop_absorbed=True, check_rank=False)
    if cluster is None or cluster == unit:
        return model.fit(cov_type="clustered", cluster_entity=True, group_debias=True)
    codes = pd.Series(pd.Categorical(data[cluster]).codes, index=data.index, name=cluster)
    return model.fit(cov_type="clustered", clusters=codes.to_frame(), group_debias=True)


def _prepare(panel: pd.DataFrame, outcome: str, unit: str, time: str, cohort: str, cluster: str | None):
    cols = list(dict.fromkeys([unit, time, cohort, outcome] + ([cluster] if cluster else [])))
    df = panel[cols]
    n_missing = int(df[outcome].isna().sum())
    return df.dropna(subset=[outcome]), n_missing


def estimate_twfe(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    **_: object,
) -> EstimationResult:
    """Static TWFE: ``y_it = α_i + γ_t + β·D_it + ε``, with ``D_it = 1`` from adoption on."""
    df, n_missing = _prepare(panel, outcome, unit, time, cohort, cluster)
    df = df.assign(treated_post=(ever_treated(df, cohort) & (df[time] >= df[cohort])).astype(float))
    fit = _fit(df, outcome, ["treated_post"], unit, time, cluster)
    ci = fit.conf_int(level=1 - alpha).loc["treated_post"]
    n_t, n_c = unit_counts(df, unit, cohort)
    rows = [{
        "kind": "overall", "term": "treated_post", "estimate": float(fit.params["treated_post"]),
        "std_error": float(fit.std_errors["treated_post"]), "ci_low": float(ci.iloc[0]),
        "ci_high": float(ci.iloc[1]), "p_value": float(fit.pvalues["treated_post"]),
    }]
    return EstimationResult(
        "twfe", outcome, pd.DataFrame(rows),
        meta={
            "label": "Two-way fixed effects (static)",
            "control_group": "never and not-yet treated (implicit)",
            "n_treated": n_t, "n_control": n_c, "n_obs": int(fit.nobs),
            "n_periods": int(df[time].nunique()), "n_clusters": int(df[cluster or unit].nunique()),
            "cluster": cluster or unit, "se_type": SE_TYPE, "dropped_missing_outcome": n_missing,
            "baseline_mean": baseline_mean(df, outcome, time=time, cohort=cohort), "alpha": alpha,
        },
    )


def estimate_event_twfe(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    leads: int = 12,
    lags: int = 24,
    reference: int = -1,
    **_: object,
) -> EstimationResult:
    """Dynamic TWFE (leads and lags): event-time dummies ``-leads..lags``, endpoints binned.

    The reference period (default ``-1``) is omitted. Leads test parallel pre-trends
    (``meta['pretrend']``: joint Wald test). The overall row averages the post-adoption
    coefficients ``0..lags`` with equal weights (a summary, not an estimand of its own).
    """
    df, n_missing = _prepare(panel, outcome, unit, time, cohort, cluster)
    treated = ever_treated(df, cohort).to_numpy()
    e = (df[time] - df[cohort]).to_numpy()
    e_binned = np.clip(e, -leads, lags)
    names, cols = [], {}
    for k in range(-leads, lags + 1):
        if k == reference:
            continue
        col = f"e{k:+d}"
        names.append((k, col))
        cols[col] = (treated & (e_binned == k)).astype(float)
    df = df.assign(**cols)
    fit = _fit(df, outcome, [c for _, c in names], unit, time, cluster)
    cov = fit.cov
    ci = fit.conf_int(level=1 - alpha)
    rows = []
    kept = [(k, c) for k, c in names if c in fit.params.index]
    for k, c in kept:
        rows.append({
            "kind": "event", "term": f"e={k}", "event_time": k, "estimate": float(fit.params[c]),
            "std_error": float(fit.std_errors[c]), "ci_low": float(ci.loc[c].iloc[0]),
            "ci_high": float(ci.loc[c].iloc[1]), "p_value": float(fit.pvalues[c]),
        })
    rows.append({"kind": "event", "term": f"e={reference}", "event_time": reference, "estimate": 0.0,
                 "std_error": 0.0})
    post = [c for k, c in kept if k >= 0]
    w = np.full(len(post), 1.0 / len(post))
    b = float(w @ fit.params[post].to_numpy())
    se = float(np.sqrt(w @ cov.loc[post, post].to_numpy() @ w))
    inf = normal_inference(np.array([b]), np.array([se]), alpha)
    rows.append({"kind": "overall", "term": "mean of post coefficients", "estimate": b, "std_error": se,
                 "ci_low": inf["ci_low"][0], "ci_high": inf["ci_high"][0], "p_value": inf["p_value"][0]})
    pre = [c for k, c in kept if k < reference]
    pretrend = wald_test(fit.params[pre].to_numpy(), cov.loc[pre, pre].to_numpy()) if pre else None
    terms = [f"e={k}" for k, _ in kept]
    vc = pd.DataFrame(cov.loc[[c for _, c in kept], [c for _, c in kept]].to_numpy(), index=terms, columns=terms)
    n_t, n_c = unit_counts(df, unit, cohort)
    return EstimationResult(
        "event_twfe", outcome, pd.DataFrame(rows),
        meta={
            "label": "Dynamic TWFE (leads and lags)",
            "control_group": "never and not-yet treated (implicit)",
            "reference_period": reference, "leads": leads, "lags": lags, "binned_endpoints": True,
            "n_treated": n_t, "n_control": n_c, "n_obs": int(fit.nobs),
            "n_periods": int(df[time].nunique()), "n_clusters": int(df[cluster or unit].nunique()),
            "cluster": cluster or unit, "se_type": SE_TYPE, "dropped_missing_outcome": n_missing,
            "pretrend": pretrend,
            "baseline_mean": baseline_mean(df, outcome, time=time, cohort=cohort), "alpha": alpha,
        },
        vcov={"event": vc},
    )
