"""Re-fitting an estimator many times (permutation tests, jackknife): the shared set-up."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from evalkit.results import EstimationResult


def refit_setup(panel: pd.DataFrame, outcome: str, estimator: str, options: dict[str, Any] | None,
                result: EstimationResult | None, cs_aggregations: tuple[str, ...]
                ) -> tuple[Callable[..., EstimationResult], EstimationResult, dict[str, Any]]:
    """``(refit, result, options)``: ``refit(panel)`` fits ``estimator`` quietly (warnings off: one
    per re-fit would flood the log) with the analytic covariance (no bootstrap) and, for
    Callaway–Sant'Anna, only the aggregations ``cs_aggregations`` the statistic needs; ``result``
    is the fit on ``panel`` itself (the one given, or a new one)."""
    from evalkit.estimators import get_estimator

    fn = get_estimator(estimator)
    options = {k: v for k, v in (options or {}).items() if k != "bootstrap"}
    if result is None:
        result = fn(panel, outcome, **options)
    fit_options = {**options, "aggregations": cs_aggregations} if estimator == "cs" else options

    def refit(data: pd.DataFrame) -> EstimationResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(data, outcome, **fit_options)

    return refit, result, options
