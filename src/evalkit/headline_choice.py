"""Which estimator is the headline: chosen for the design by fixed rules (``params.headline: auto``).

The two candidates answer the same question (the headline estimand, :mod:`evalkit.estimand`) under
different assumptions:

* **Imputation** (Borusyak–Jaravel–Spiess 2024) fits station and month effects on every untreated
  station-month and imputes the adopters' untreated outcomes. It assumes parallel trends over *all*
  periods and is the efficient estimator under that assumption with spherical errors: every
  pre-adoption month informs the counterfactual.
* **Callaway–Sant'Anna** (never-treated or not-yet-treated comparisons, one base period per cohort)
  needs parallel trends only from each cohort's last pre-adoption month on, but every cohort's
  effect rests on that one base month: month-to-month noise does not average out, and with few
  stations per cohort its interval is wide (and its analytic SE too small, hence the jackknife).

Rules, applied in order (rule keys are what ``results.json`` and the brief show):

``user``          ``params.headline`` names an estimator: it is used as given.
``small_design``  fewer than :data:`LARGE_MIN_ADOPTERS` adopting stations or fewer than
                  :data:`LARGE_MIN_COMPARISON` comparison stations (never treated inside the
                  window) in the primary outcome's estimation sample: the headline is imputation. In the single-station design (one adopter) the design's own
                  estimator (synthetic DiD) is the headline under this rule.
``large_design``  otherwise: Callaway–Sant'Anna, whose weaker assumption the data can afford.

When the preferred estimator is not among ``params.estimators`` the rule keeps its key and the
headline is the best-ranked estimator that is (``default_headline``), so the choice never runs an
estimator that was not asked for.

Why these thresholds (a quick check, ``benchmarks/mc_headline_choice.py``; table in ``docs/briefs.md`` § Headline choice): on simulated station
panels (negative-binomial counts around 30 a month, station levels, seasonality, a 2020-like
shock, AR(1) deviations, 72 months, adoption in months 30–55; 100 panels per cell) a −10 %
effect was detected (p < 0.05, analytic SEs) by CS / imputation in 11 % / 35 % of the panels with
15 stations (6 adopters), 11 % / 71 % with 30 (10), 13 % / 92 % with 60 (20), 26 % / 100 % with
120 (40) and 65 % / 100 % with 240 (80); with no effect both stayed near or under the nominal
rate except CS's analytic SE in designs under 60 stations (7–11 %). When the 2020-like shock hit
the adopters 30 % harder (a parallel-trends violation in the far pre-period only, no effect),
imputation's rejections grew with the design (4 %, 12 %, 13 %, 26 %, 48 % for 6–80 adopters;
15 % with 40 adopters and 40 comparison stations) while CS stayed at 3–15 % (its no-violation
rate; Monte Carlo error about ±3–5 points). Below about 40 adopters or 40 comparison stations CS has too little power to
be the headline; above it the violation-robust estimator is affordable and preferred.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from evalkit.estimators.specs import default_headline
from evalkit.registry import NEVER_TREATED

RULES = ("user", "small_design", "large_design")
#: below any of these the design is small (imputation headline); see the module docstring
LARGE_MIN_ADOPTERS = 40
LARGE_MIN_COMPARISON = 40
#: the estimator each rule prefers in the staggered design
PREFERRED = {"small_design": "imputation", "large_design": "cs"}


@dataclass(frozen=True)
class HeadlineChoice:
    """The headline estimator, the rule that chose it (one of :data:`RULES`) and the sample facts
    it was chosen on (stations; JSON-able)."""

    estimator: str
    rule: str
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": self.estimator, "rule": self.rule, "facts": dict(self.facts)}


def design_facts(panel: pd.DataFrame, outcome: str, *, control: str = "never") -> dict[str, Any]:
    """Adopting / comparison stations and cohort sizes of ``outcome``'s estimation sample.

    Counted on :func:`evalkit.estimators._sample.build_sample` (the estimators' own sample: late
    adopters are comparison stations, stations treated from the first month or without any
    observed outcome are dropped), so the counts match the estimators' ``meta["sample"]``. When the
    sample cannot be built (e.g. the outcome is missing everywhere) the panel's stations are counted
    and ``counted_on`` says so.
    """
    from evalkit.estimators._sample import build_sample

    try:
        s = build_sample(panel, outcome, control=control)
        units, counted_on = s.units(), "sample"
        cohort = units[s.cohort]
        n_treated, n_control = int(s.info.n_treated), int(s.info.n_control)
    except (ValueError, TypeError, KeyError):
        cohort = panel.groupby("station_id")["first_treat"].first()
        counted_on = "panel"
        n_treated = int((cohort != NEVER_TREATED).sum())
        n_control = int(len(cohort) - n_treated)
    sizes = cohort[cohort != NEVER_TREATED].value_counts()
    return {"outcome": outcome, "counted_on": counted_on, "n_treated": n_treated, "n_control": n_control,
            "n_cohorts": int(len(sizes)), "smallest_cohort": int(sizes.min()) if len(sizes) else 0,
            "median_cohort": float(sizes.median()) if len(sizes) else 0.0}


def is_small(facts: dict[str, Any]) -> bool:
    """Whether the design is small (module docstring, rule ``small_design``)."""
    return facts["n_treated"] < LARGE_MIN_ADOPTERS or facts["n_control"] < LARGE_MIN_COMPARISON


def choose_headline(panel: pd.DataFrame, params: Any) -> HeadlineChoice:
    """The headline estimator for ``params`` on ``panel`` (rules in the module docstring).

    ``params``: :class:`~evalkit.params.EvaluationParams` (``headline``, ``estimators``,
    ``outcomes``, ``control``, ``design``). Facts are counted on the primary outcome's sample.
    """
    facts = design_facts(panel, params.outcomes[0], control=params.control)
    facts |= {"design": params.design or "staggered",
              "thresholds": {"adopters": LARGE_MIN_ADOPTERS, "comparison": LARGE_MIN_COMPARISON}}
    if params.headline not in (None, "auto"):
        return HeadlineChoice(params.headline, "user", facts)
    estimators = list(params.estimators)
    if facts["design"] == "single_station":
        return HeadlineChoice(default_headline(estimators), "small_design", facts)
    rule = "small_design" if is_small(facts) else "large_design"
    want = PREFERRED[rule]
    return HeadlineChoice(want if want in estimators else default_headline(estimators), rule, facts)


__all__ = ["LARGE_MIN_ADOPTERS", "LARGE_MIN_COMPARISON", "PREFERRED", "RULES",
           "HeadlineChoice", "choose_headline", "design_facts", "is_small"]
