"""The naive year-on-year comparison that local reports quote ("同比下降 23.7%").

For every adopting station it compares the 12 months from adoption with the same 12
calendar months one year earlier, and pools the stations. It is *not* causal: it mixes the
reform with secular trends, seasonality-free shocks and everything else that changed in
that year. evalkit shows it beside the causal estimates so readers see why they differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators._common import finish_result, inference_meta
from evalkit.estimators._sample import StaggeredSample, build_sample
from evalkit.results import EstimationResult, normal_inference


def estimate_naive_yoy(
    panel: pd.DataFrame | StaggeredSample,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    window: int = 12,
    alpha: float = 0.05,
) -> EstimationResult:
    """Before/after change for adopters: mean of event months ``0..window-1`` minus ``-window..-1``.

    ``estimate`` is in outcome units per station-month; ``meta['pct_change']`` is the
    percent change of the pooled after-mean over the before-mean (the figure a local report
    would quote). The standard error treats stations as independent (station-level
    differences), which is the most generous reading of such a figure. The sample follows the
    shared conventions (:func:`~evalkit.estimators._sample.build_sample`); ``meta['n_treated_used']``
    counts the adopters with a full before and after year inside the panel.
    """
    options = {"unit": unit, "time": time, "cohort": cohort, "window": window, "alpha": alpha}
    sample = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort)
    frame = sample.frame
    df = frame.loc[sample.treated, [unit, time, cohort, outcome]].copy()
    e = df[time] - df[cohort]
    keep_rows = (e >= -window) & (e < window)
    df = df[keep_rows].assign(after=(e[keep_rows] >= 0).to_numpy())
    # stations need both a before and an after year inside the panel
    cover = df.groupby(unit)["after"].agg(["min", "max"])
    keep = cover.index[(cover["min"] == 0) & (cover["max"] == 1)]
    df = df[df[unit].isin(keep)]
    if df.empty:
        raise ValueError(f"no adopting station has {window} months before and after adoption inside the panel")
    before = df.loc[~df["after"], outcome].mean()
    after = df.loc[df["after"], outcome].mean()
    per_station = df.groupby([unit, "after"])[outcome].mean().unstack("after")
    diffs = (per_station[True] - per_station[False]).dropna()
    est = float(after - before)
    se = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    inf = normal_inference(np.array([est]), np.array([se]), alpha)
    pct = 100.0 * est / before if before else float("nan")
    rows = [{
        "kind": "overall", "term": "after - before", "estimate": est, "std_error": se,
        "ci_low": inf["ci_low"][0], "ci_high": inf["ci_high"][0], "p_value": inf["p_value"][0],
    }]
    result = EstimationResult(
        "naive_yoy", outcome, pd.DataFrame(rows),
        meta={
            "label": "Naive year-on-year (before/after)",
            "control_group": "none",
            "n_treated_used": int(len(keep)),
            "n_obs": int(len(df)),
            "window_months": window,
            "mean_before": float(before),
            "mean_after": float(after),
            "pct_change": float(pct),
            "baseline_mean": float(before),
            "alpha": alpha,
        },
    )
    inference = inference_meta("station-level differences (naive)", n_clusters=int(len(diffs)), cluster=unit)
    return finish_result(result, sample, spec="naive_yoy", options=options, inference=inference)
