"""Small helpers shared by estimators: sample facts, baseline means, Wald tests, the result contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evalkit.distributions import chi2_sf
from evalkit.estimand import HEADLINE_ESTIMAND
from evalkit.estimators._sample import StaggeredSample
from evalkit.estimators.specs import get_spec
from evalkit.registry import NEVER_TREATED
from evalkit.results import EstimationResult, FitContext


def ever_treated(panel: pd.DataFrame, cohort: str = "first_treat") -> pd.Series:
    """Boolean mask: the row's unit adopts at some point (cohort not 0/NaN)."""
    c = panel[cohort]
    return c.notna() & (c != NEVER_TREATED)


def unit_counts(panel: pd.DataFrame, unit: str, cohort: str) -> tuple[int, int]:
    """(number of ever-treated units, number of never-treated units)."""
    first = panel.groupby(unit, sort=False)[cohort].first()
    treated = int((first.notna() & (first != NEVER_TREATED)).sum())
    return treated, int(len(first) - treated)


def baseline_mean(panel: pd.DataFrame, outcome: str, *, time: str = "period", cohort: str = "first_treat") -> float:
    """Mean outcome of ever-treated units in the periods before their adoption (for percent effects)."""
    mask = ever_treated(panel, cohort) & (panel[time] < panel[cohort])
    v = panel.loc[mask, outcome].mean()
    return float(v) if pd.notna(v) else float("nan")


def wald_test(estimates: np.ndarray, vcov: np.ndarray) -> dict[str, float]:
    """Joint Wald test that all ``estimates`` are zero: chi-square statistic, df and p-value."""
    b = np.asarray(estimates, dtype=float)
    v = np.asarray(vcov, dtype=float)
    ok = np.isfinite(b)
    b, v = b[ok], v[np.ix_(ok, ok)]
    if b.size == 0:
        return {"stat": float("nan"), "df": 0, "p_value": float("nan")}
    stat = float(b @ np.linalg.pinv(v) @ b)
    df = int(np.linalg.matrix_rank(v))
    return {"stat": stat, "df": df, "p_value": float(chi2_sf(stat, df)) if df else float("nan")}


def inference_meta(se_type: str, *, n_clusters: int | None = None, cluster: str | None = None,
                   ssc: str | None = None, df: float | None = None, **extra: Any) -> dict[str, Any]:
    """``meta["inference"]``: SE type, clusters, small-sample correction and t degrees of freedom
    (``df=None`` = normal approximation), plus estimator-specific keys (e.g. ``reps``, ``seed``)."""
    return {"se_type": se_type, "n_clusters": n_clusters, "cluster": cluster, "ssc": ssc, "df": df, **extra}


def finish_result(result: EstimationResult, sample: StaggeredSample, *, spec: str, options: dict[str, Any],
                  inference: dict[str, Any]) -> EstimationResult:
    """Fill the result contract in place and return ``result``.

    Sets ``meta["sample"]`` (the sample's :class:`SampleInfo`), the unit counts from it (so
    ``n_treated + n_control == n_units`` everywhere; estimator-specific counts use other keys),
    ``meta["estimand"]`` from spec ``spec`` (the headline estimand with ``meta["horizon"]`` when
    :func:`headline_horizon` finds one), ``meta["inference"]`` (see :func:`inference_meta`;
    its ``se_type`` also goes to ``meta["se_type"]``) and ``result.context`` so inference methods
    can refit with ``get_estimator(spec)(sample, outcome, **options)``.
    """
    n_overall = int((result.estimates["kind"] == "overall").sum())
    if n_overall != 1:
        raise ValueError(f"{spec}: {n_overall} 'overall' rows; the result contract is exactly one headline row")
    info = sample.info
    result.meta["sample"] = info.to_dict()
    result.meta.update(n_units=info.n_units, n_treated=info.n_treated, n_control=info.n_control)
    result.meta["estimand"] = get_spec(spec).estimand
    h = headline_horizon(spec, options, info.balanced or adopters_complete(sample))
    if h is not None and result.estimates.loc[result.estimates["kind"] == "overall", "term"].iloc[0] == "ATT":
        # (CS's overall row is its "simple" aggregation only when that was computed: term "ATT")
        result.meta["estimand"] = HEADLINE_ESTIMAND
        result.meta["horizon"] = [0, h]
    result.meta["inference"] = dict(inference)
    result.meta["se_type"] = inference.get("se_type")
    result.context = FitContext(estimator=spec, sample=sample, options=dict(options))
    return result


def adopters_complete(sample: StaggeredSample) -> bool:
    """Whether every adopting station is observed in every period of the sample (gaps, if any, are
    at comparison stations only — the usual case of a station that did not export some months)."""
    frame = sample.frame
    treated = sample.treated
    if not treated.any():
        return True
    rows = frame.loc[treated].groupby(sample.unit, sort=False).size()
    return bool((rows == frame[sample.time].nunique()).all())


def headline_horizon(spec: str, options: dict[str, Any], balanced: bool = True) -> int | None:
    """``H`` when estimator ``spec`` run with ``options`` has the headline estimand as its overall
    row (:mod:`evalkit.estimand`: adopter-months ``0..H`` with an observed outcome, equal weights),
    else ``None``.

    The spec's ``horizon_option`` must be set (an int, or a pair whose upper end is used) and the
    fit unweighted (observation weights make a weighted average). CS (``trim_e``) also needs every
    adopting station observed in every period (``balanced``: the sample is balanced, or its gaps are
    at comparison stations only, :func:`adopters_complete`): its "simple" aggregation weights each
    ATT(g, t) cell by the cohort's size, which is the cell's number of adopter-months only then.
    """
    name = get_spec(spec).horizon_option
    if name is None or options.get("weights") is not None:
        return None
    value = options.get(name)
    if isinstance(value, (list, tuple)):
        value = value[1]
    if value is None:
        return None
    if spec == "cs" and not balanced:
        return None
    return int(value)
