"""Joint pre-trend tests that keep their size when few stations adopt.

The textbook test is a Wald statistic ``W = β̂'V̂⁻¹β̂`` over the event-study leads, referred to
χ²(k). With a cluster-robust ``V̂`` its size depends on how many *treated* stations identify the
leads, not on the total number of clusters: ``V̂`` is estimated from about ``n_treated`` station
contributions, ``E[V̂⁻¹]`` exceeds ``V⁻¹`` (Hotelling), and a Callaway–Sant'Anna cohort of a
single station contributes no treated-side variance at all. Measured under pure noise (iid
station-month errors, 12 leads, ``benchmarks/mc_pretrend.py``): the χ² test rejects 93 % of the
time with 9 treated stations in cohorts of 1, 1, 4, 3, and still 30 % with 40 treated stations in
cohorts of 10.

:func:`pretrend_test` therefore reports three p-values for the same statistic and picks one:

``chi2``         the asymptotic χ²(k) p-value (what R ``did``/``fixest`` print);
``f``            Hotelling's small-sample correction with the treated stations as the sample:
                 ``F = W·(g−k)/(k·(g−1)) ~ F(k, g−k)``, ``g`` = number of treated stations
                 (undefined when ``g ≤ k + 1``);
``permutation``  the exact randomization distribution of ``W``: the stations' adoption dates
                 (one per station, never = 0) are permuted across stations ``draws`` times and
                 the estimator is re-run; ``p = (1 + #{W_b ≥ W}) / (valid draws + 1)``. Valid
                 under the sharp null that adoption is unrelated to the untreated outcome path,
                 which is what a pre-trend test asks, whatever the number of stations.

``method="auto"`` (the default in evaluations) uses the permutation test when fewer than
``max_permutation_treated`` stations adopt (the estimator is fast there) and the F test above it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evalkit.inference._refit import refit_setup
from evalkit.results import EstimationResult

METHODS = ("auto", "chi2", "f", "permutation")


def hotelling_f_pvalue(stat: float, k: int, g: int) -> float:
    """p-value of a Wald statistic ``stat`` with ``k`` restrictions from ``g`` treated stations."""
    if not (k and g > k + 1 and math.isfinite(stat)):
        return float("nan")
    f = stat * (g - k) / (k * (g - 1))
    return float(stats.f.sf(f, k, g - k))


def pretrend_test(
    panel: pd.DataFrame,
    outcome: str,
    estimator: str = "cs",
    options: dict[str, Any] | None = None,
    *,
    result: EstimationResult | None = None,
    method: str = "auto",
    draws: int = 199,
    seed: int = 0,
    unit: str = "station_id",
    cohort: str = "first_treat",
    max_permutation_treated: int = 100,
) -> dict[str, Any] | None:
    """Joint test that every event-study lead is zero, with a small-sample-valid p-value.

    ``estimator``/``options``: any registered estimator whose result carries
    ``meta["pretrend"] = {"stat", "df", "p_value"}`` (``cs``, ``sa``, ``imputation``,
    ``event_twfe``). ``result``: the already fitted result on ``panel`` (saves one fit).
    Returns ``None`` when the estimator has no pre-trend test on this panel; otherwise a dict
    with ``stat``, ``df``, ``p_value`` (of the chosen ``method``), ``method``, ``p_chi2``,
    ``p_f``, ``p_permutation``, ``draws`` (valid permutation draws), ``n_treated``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown pre-trend test method {method!r}; choose from {METHODS}")
    # the statistic uses the analytic covariance; only the event-time block enters it
    refit, result, _ = refit_setup(panel, outcome, estimator, options, result, ("dynamic",))
    pt = (result.meta or {}).get("pretrend")
    if not pt or not pt.get("df") or pt.get("stat") is None:
        return None
    stat, k = float(pt["stat"]), int(pt["df"])
    first = panel.groupby(unit, sort=True)[cohort].first()
    cohorts = first.fillna(0).to_numpy()
    n_treated = int((cohorts > 0).sum())
    out: dict[str, Any] = {
        "stat": stat, "df": k, "p_chi2": float(pt["p_value"]),
        "p_f": None, "p_permutation": None, "draws": 0,
        "n_treated": n_treated, "estimator": estimator,
    }
    if math.isfinite(p_f := hotelling_f_pvalue(stat, k, n_treated)):  # undefined when n_treated <= k + 1
        out["p_f"] = p_f
    chosen = method
    if method == "auto":
        chosen = "permutation" if n_treated < max_permutation_treated else "f"
    if chosen == "f" and out["p_f"] is None:
        chosen = "permutation"
    if chosen == "permutation":
        rng = np.random.default_rng(seed)
        codes = pd.Index(first.index).get_indexer(panel[unit])
        work = panel.copy()
        null: list[float] = []
        for _ in range(int(draws)):
            work[cohort] = rng.permutation(cohorts)[codes]
            try:
                b = (refit(work).meta or {}).get("pretrend") or {}
            except Exception:  # noqa: BLE001 - a draw without identified leads is skipped
                continue
            if b.get("stat") is not None and math.isfinite(float(b["stat"])):
                null.append(float(b["stat"]))
        if null:
            arr = np.asarray(null)
            out["p_permutation"] = float((1 + np.sum(arr >= stat - 1e-12 * abs(stat))) / (len(arr) + 1))
            out["draws"] = len(arr)
        else:
            chosen = "chi2"
    out["method"] = chosen
    out["p_value"] = {"chi2": out["p_chi2"], "f": out["p_f"], "permutation": out["p_permutation"]}[chosen]
    return out


__all__ = ["METHODS", "hotelling_f_pvalue", "pretrend_test"]
