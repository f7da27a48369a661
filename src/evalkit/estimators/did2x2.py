"""The canonical 2x2 difference-in-differences: one adoption cohort against never-adopters.

``(mean treated after − mean treated before) − (mean control after − mean control before)``,
computed as the saturated regression ``y ~ treated + after + treated×after`` on
station-months, whose interaction coefficient *is* that difference of four means; the
standard error is clustered (by station unless told otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result
from evalkit.estimators._fe_sample import fe_sample
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
    weights: str | None = None,
    **options: object,
) -> EstimationResult:
    """2x2 DiD of one cohort (default: the largest) vs never-treated units.

    Before = the ``window`` months before the cohort's adoption, after = the ``window`` months
    from adoption. Estimate in outcome units per station-month.  Standard error: the shared engine's
    CRV1 (fixest ``feols(y ~ treated * after, cluster=)``: ``G/(G-1)·(n-1)/(n-4)``, ``t(G-1)``);
    ``weights``: observation weights (weighted means, WLS).
    """
    _fe.check_options("did2x2", options, ("unit", "time", "cohort", "treated_cohort", "window", "cluster",
                                          "alpha", "weights"))
    smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    frame = smp.frame
    # per unit (codes in sorted label order, as a groupby on the labels): its cohort
    per_unit = np.zeros(smp.n_units, dtype=np.int64)
    g_row = frame[cohort].to_numpy()
    per_unit[smp.unit] = g_row
    first = pd.Series(per_unit)
    cohorts = first[first != 0]
    if cohorts.empty:
        raise ValueError("no adopting stations in the panel: a 2x2 DiD needs a treated group")
    g = int(cohorts.value_counts().idxmax()) if treated_cohort is None else int(treated_cohort)
    n_never = int((per_unit == 0).sum())
    if n_never == 0:
        raise ValueError("no never-adopting stations in the panel: a 2x2 DiD needs a control group")
    n_t = int((cohorts == g).sum())
    if n_t == 0:
        raise ValueError(f"treated_cohort={g}: no station adopts in that period; cohorts are {sorted(set(cohorts))}")
    t_row = frame[time].to_numpy()
    rows = (((g_row == g) | (g_row == 0)) & (t_row >= g - window) & (t_row <= g + window - 1))
    y = smp.y[rows]
    d_treat = (g_row[rows] == g).astype(float)
    d_after = (t_row[rows] >= g).astype(float)
    w = None if smp.weights is None else smp.weights[rows]
    fit = _fe.feols(y, np.column_stack([d_treat, d_after, d_treat * d_after]),
                    weights=w, cluster=_fe.codes(smp.cluster[rows])[0], names=["treated", "after", "treated_x_after"])
    if fit.names[-1] != "treated_x_after":
        raise ValueError("the 2x2 cells are not all observed (treated/control x before/after)")
    b, se = float(fit.coef[-1]), float(fit.se[-1])
    lo, hi = fit.conf_int(alpha)
    ww = np.ones(len(y)) if w is None else w
    cell = pd.DataFrame({"t": d_treat, "a": d_after, "wy": ww * y, "w": ww})
    sums = cell.groupby(["t", "a"])[["wy", "w"]].sum()
    means = sums["wy"] / sums["w"]
    rows_out = [{
        "kind": "overall", "term": "treated x after", "estimate": b, "std_error": se,
        "ci_low": float(lo[-1]), "ci_high": float(hi[-1]), "p_value": float(fit.p_value()[-1]),
    }]
    res = EstimationResult(
        "did2x2", outcome, pd.DataFrame(rows_out),
        meta={
            "label": "2x2 DiD (one cohort vs never-treated)",
            "control_group": "never treated",
            "treated_cohort": g,
            "window_months": window,
            "n_treated_used": n_t,  # the cohort's stations (n_treated: the whole sample's)
            "n_control_used": n_never,
            "n_obs": int(len(y)),
            "n_clusters": int(fit.n_clusters),
            "cluster": cluster or unit,
            "se_type": f"{_fe.SSC_LABEL}; factor={fit.ssc:.8f}, K={fit.dof_k}, t({fit.df_t})",
            "inference": fit.meta(),
            "sample": smp.info.to_dict(),
            "weights": weights,
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
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights, "alpha": alpha,
            "treated_cohort": g, "window": window}
    finish_result(res, smp.sample, spec="did2x2", options=opts, inference=fit.meta())
    res.meta["se_type"] = f"{_fe.SSC_LABEL}; factor={fit.ssc:.8f}, K={fit.dof_k}, t({fit.df_t})"
    return res
