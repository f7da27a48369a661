"""The canonical 2x2 difference-in-differences: one adoption cohort against never-adopters.

``(mean treated after − mean treated before) − (mean control after − mean control before)``,
computed as the saturated regression ``y ~ treated + after + treated×after`` on
station-months, whose interaction coefficient *is* that difference of four means; the
standard error is clustered (by station unless told otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from linearmodels.iv import IV2SLS

from evalkit.registry import NEVER_TREATED
from evalkit.results import EstimationResult


def estimate_did2x2(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    treated_cohort: int | None = None,
    window: int = 12,
    cluster: str | None = None,
    alpha: float = 0.05,
    **_: object,
) -> EstimationResult:
    """2x2 DiD of one cohort (default: the largest) vs never-treated units.

    Before = the ``window`` months before the cohort's adoption, after = the ``window``
    months from adoption. Estimate in outcome units per station-month.
    """
    first = panel.groupby(unit)[cohort].first()
    cohorts = first[(first != NEVER_TREATED) & first.notna()]
    if cohorts.empty:
        raise ValueError("no adopting stations in the panel: a 2x2 DiD needs a treated group")
    g = int(cohorts.value_counts().idxmax()) if treated_cohort is None else int(treated_cohort)
    never = first.index[(first == NEVER_TREATED) | first.isna()]
    if len(never) == 0:
        raise ValueError("no never-adopting stations in the panel: a 2x2 DiD needs a control group")
    units_t = cohorts.index[cohorts == g]
    df = panel[panel[unit].isin(units_t.union(never)) & panel[time].between(g - window, g + window - 1)]
    df = df[[unit, time, outcome] + ([cluster] if cluster and cluster != unit else [])].dropna(subset=[outcome])
    d_treat = df[unit].isin(units_t).to_numpy(dtype=float)
    d_after = (df[time] >= g).to_numpy(dtype=float)
    exog = pd.DataFrame(
        {"const": 1.0, "treated": d_treat, "after": d_after, "treated_x_after": d_treat * d_after},
        index=df.index,
    )
    clusters = df[cluster or unit]
    fit = IV2SLS(df[outcome].astype(float), exog, None, None).fit(
        cov_type="clustered", clusters=pd.Categorical(clusters).codes, debiased=False
    )
    b = float(fit.params["treated_x_after"])
    se = float(fit.std_errors["treated_x_after"])
    ci = fit.conf_int(level=1 - alpha).loc["treated_x_after"]
    means = df.assign(t=d_treat, a=d_after).groupby(["t", "a"])[outcome].mean()
    rows = [{
        "kind": "overall", "term": "treated x after", "estimate": b, "std_error": se,
        "ci_low": float(ci.iloc[0]), "ci_high": float(ci.iloc[1]), "p_value": float(fit.pvalues["treated_x_after"]),
    }]
    return EstimationResult(
        "did2x2", outcome, pd.DataFrame(rows),
        meta={
            "label": "2x2 DiD (one cohort vs never-treated)",
            "control_group": "never treated",
            "treated_cohort": g,
            "window_months": window,
            "n_treated": int(len(units_t)),
            "n_control": int(len(never)),
            "n_obs": int(len(df)),
            "n_clusters": int(clusters.nunique()),
            "cluster": cluster or unit,
            "se_type": "cluster-robust (linearmodels, G/(G-1) not applied)",
            "means": {
                "treated_before": float(means.get((1.0, 0.0), np.nan)),
                "treated_after": float(means.get((1.0, 1.0), np.nan)),
                "control_before": float(means.get((0.0, 0.0), np.nan)),
                "control_after": float(means.get((0.0, 1.0), np.nan)),
            },
            "baseline_mean": float(means.get((1.0, 0.0), np.nan)),
            "alpha": alpha,
        },
    )
