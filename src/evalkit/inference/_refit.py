"""Re-fitting a fitted result's estimator on its own sample (jackknife, permutation tests).

:class:`Refit` holds what a re-fit needs — the estimator's short name, the validated sample rows
and column names, and the options of the original fit — and :meth:`Refit.fit` runs the estimator
on a modified copy of those rows. :func:`refit_of` reads it from ``result.context``
(STATS-CONTRACT §4: ``FitContext(estimator, sample, options)``); that is the one place that knows
the context's layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evalkit.results import EstimationResult

# options that only change how a fit reports uncertainty or progress, never the estimate:
# a re-fit uses the analytic covariance (a bootstrap inside every re-fit would cost B×)
_DROP = ("bootstrap", "seed", "progress")
# Callaway–Sant'Anna: the aggregation that produces each overall term (a re-fit computes only it)
# the option that switches an estimator's own pre-trend test off (Refit.fit(pretrend=False)); an
# estimator not listed computes its test anyway (CS: only with the dynamic aggregation, which a
# re-fit for the ATT term does not request)
PRETREND_OFF: dict[str, dict[str, Any]] = {"imputation": {"pretrend_leads": 0}}
CS_AGGREGATION = {"ATT": "simple", "ATT_dynamic": "dynamic", "ATT_group": "group", "ATT_calendar": "calendar"}


class NoFitContext(ValueError):
    """The result carries no fit context (e.g. it was read back from JSON)."""


@dataclass(frozen=True)
class Refit:
    """An estimator, the sample it was fitted on, and its options."""

    estimator: str
    frame: pd.DataFrame
    outcome: str
    unit: str = "station_id"
    time: str = "period"
    cohort: str = "first_treat"
    cluster: str | None = None
    weights: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    sample: Any = None  # the fit's StaggeredSample (None: re-fits validate the rows again)

    def permuted(self, cohort_by_row: np.ndarray) -> Any:
        """The sample's rows with each row's adoption date replaced (``cohort_by_row``, aligned with
        ``frame``). On a balanced sample the result is the validated sample itself with the new
        column (same units, rows and cohorts, so it stays valid; the estimator skips re-validation,
        about half a CS re-fit); otherwise a frame the estimator validates again (a unit given an
        adoption date at its first observed month is then dropped, as in any fit)."""
        frame = self.frame.copy()
        frame[self.cohort] = np.asarray(cohort_by_row).astype(frame[self.cohort].dtype, copy=False)
        if self.sample is not None and self.sample.info.balanced:
            return replace(self.sample, frame=frame)
        return frame

    def fit(self, frame: Any = None, *, aggregations: tuple[str, ...] | None = None,
            pretrend: bool = True) -> EstimationResult:
        """Fit the estimator quietly (warnings off: one per re-fit would flood the log) on ``frame``
        (rows of the sample, or a sample from :meth:`permuted`; default: the sample's rows), analytic
        covariance; ``aggregations`` restricts CS's aggregations. ``pretrend=False``: a re-fit that
        only needs the estimate (and its SE) skips the estimator's own pre-trend test where the
        estimator can (imputation: ``pretrend_leads=0``, its BJS test 1 is a second regression;
        :data:`PRETREND_OFF`); the result's ``meta["pretrend"]`` is then empty."""
        from evalkit.estimators import get_estimator

        kw: dict[str, Any] = {"unit": self.unit, "time": self.time, "cohort": self.cohort}
        if self.cluster is not None:
            kw["cluster"] = self.cluster
        if self.weights is not None:
            kw["weights"] = self.weights
        kw.update({k: v for k, v in self.options.items() if k not in _DROP})
        if aggregations is not None and self.estimator == "cs":
            kw["aggregations"] = aggregations
        if not pretrend:
            kw.update(PRETREND_OFF.get(self.estimator, {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return get_estimator(self.estimator)(self.frame if frame is None else frame, self.outcome, **kw)

    def unit_cohorts(self) -> tuple[np.ndarray, pd.Index, np.ndarray]:
        """``(codes, units, cohorts)``: each row's position in ``units`` (sorted), and each unit's
        first treated period (0 = never treated)."""
        first = self.frame.groupby(self.unit, sort=True)[self.cohort].first()
        codes = pd.Index(first.index).get_indexer(self.frame[self.unit])
        return codes, pd.Index(first.index), first.fillna(0).to_numpy()


def revalidates_unchanged(t: np.ndarray, cohort: np.ndarray, rows: np.ndarray | None = None) -> bool:
    """Whether the shared sample's validation (``_sample.build_sample``), run again on validated rows
    (``rows`` of them, default all; ``t``: period, ``cohort``: 0 = never, per row), keeps every row
    as it is: what it reads across units is the first and last period of the rows — a cohort at the
    first period drops its unit, one after the last is recoded, one before the first is an error —
    so every adopter's cohort ``c`` must have ``first < c <= last`` of the rows."""
    if rows is not None:
        t, cohort = t[rows], cohort[rows]
    if t.size == 0:
        return False
    c = cohort[cohort > 0]
    return bool(((c > t.min()) & (c <= t.max())).all())


def is_own_refit(refit: Refit, result: EstimationResult) -> bool:
    """Whether ``refit.fit(pretrend=True)`` on the sample's rows would return ``result`` again: an
    imputation fit (deterministic given its rows and options) without an option a re-fit drops,
    whose rows re-validate to themselves, and whose pre-trend entry is still the estimator's own
    (no small-sample test attached). The caller may then use ``result`` instead of the re-fit."""
    if refit.estimator != "imputation" or any(k in refit.options for k in _DROP) or refit.sample is None:
        return False
    if refit.sample.frame is not refit.frame or getattr(result, "context", None) is None:
        return False
    pt = (result.meta or {}).get("pretrend") or {}
    if "pretrend" in result.inference or "p_chi2" in pt or "status" in pt:
        return False
    f = refit.frame
    return revalidates_unchanged(f[refit.time].to_numpy(), f[refit.cohort].fillna(0).to_numpy())


def refit_of(result: EstimationResult) -> Refit:
    """The :class:`Refit` of a fitted result, from ``result.context`` (the adapter to the result
    contract: sample = ``context.sample``, a ``StaggeredSample``; options = ``context.options``)."""
    ctx = getattr(result, "context", None)
    if ctx is None:
        raise NoFitContext(f"the {result.estimator} result for {result.outcome!r} has no fit context (a result "
                           "read from JSON cannot be re-fitted): fit the estimator again on the panel")
    s = ctx.sample
    return make_refit(ctx.estimator, s.frame, s.outcome, ctx.options, unit=s.unit, time=s.time, cohort=s.cohort,
                      cluster=s.cluster, weights=s.weights, sample=s)


def make_refit(estimator: str, frame: pd.DataFrame, outcome: str, options: Mapping[str, Any] | None = None, *,
               unit: str = "station_id", time: str = "period", cohort: str = "first_treat",
               cluster: str | None = None, weights: str | None = None, sample: Any = None) -> Refit:
    """A :class:`Refit`; column names given in ``options`` (``cluster="county"``) win over the arguments."""
    opts = dict(options or {})
    cols = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights}
    for k in cols:
        if k in opts:
            cols[k] = opts.pop(k)
    return Refit(estimator=estimator, frame=frame, outcome=outcome, options=opts, sample=sample, **cols)


def headline_term(result: EstimationResult) -> str:
    """The term of the headline (first ``overall``) row."""
    return str(result.overall["term"])


def headline_of(fit: EstimationResult, term: str) -> tuple[float, float]:
    """``(estimate, std_error)`` of the overall row ``term`` of a re-fit (NaN when missing)."""
    rows = fit.rows("overall")
    rows = rows[rows["term"] == term]
    if rows.empty:
        return float("nan"), float("nan")
    return float(rows["estimate"].iloc[0]), float(rows["std_error"].iloc[0])


def cs_aggregations(refit: Refit, term: str) -> tuple[str, ...] | None:
    """The one CS aggregation a re-fit needs for the headline ``term`` (None: keep the options')."""
    if refit.estimator != "cs":  # the fit's own aggregations option only says what else it computed
        return None
    agg = CS_AGGREGATION.get(term)
    return (agg,) if agg else None


def clip_text(text: str, limit: int = 200) -> str:
    """The first line of ``text``, at most ``limit`` characters, cut at a word boundary with "…"
    (never mid-word: the brief prints it)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def short_reason(exc: BaseException) -> str:
    """One line: the exception's message (or its class name)."""
    return clip_text(str(exc)) or type(exc).__name__
