"""The verdict on page 1 of a brief: fixed, documented rules (``docs/briefs.md`` § Verdict rules).

Inputs: the headline estimate's p-value (its 95% interval excludes zero exactly when p < α,
α = 0.05 by default), the joint pre-trend test (:mod:`evalkit.inference.pretrend`), whether the
Rambachan–Roth sensitivity analysis ran and found the conclusion robust, the headline sample's
adopting / comparison station counts (``meta["sample"]``), whether the outcome carries any
information at all, and whether another estimator's interval misses the headline's.

Rules, applied in order:

0. ``no_data`` (数据不足) — the outcome is all missing or constant (zero variance, e.g. zero
   everywhere): nothing can be estimated, which is not the same as "no effect".
1. ``pretrend_doubtful`` (前期趋势存疑) — the pre-trend test rejects (p < α).
2. ``strong`` (证据充分) — the interval excludes zero (p < α) **and** every requirement holds:
   a pre-trend test was run (and does not reject), the sensitivity analysis was run and finds the
   conclusion robust, the floors hold (≥ :data:`MIN_ADOPTERS` adopters outside the single-station
   design, ≥ :data:`MIN_COMPARISON` comparison stations), and no other estimator's 95% interval is
   disjoint from the headline's. A significant estimate that misses a requirement is *capped* at
   ``limited``; ``Verdict.caps`` lists every requirement missed (in :data:`CAPS` order) and
   ``Verdict.reason`` is the first.
3. ``limited`` (证据有限) — significant (p < α) but capped as above.
4. ``no_effect`` (未见明显效果) — otherwise (p ≥ α, or no p-value): the data are compatible with
   no effect.

Calibration: 证据充分 and 证据有限 both require p < α, so under no effect the two together happen
at most at the headline test's own rate (α when its p-value is valid — hence the jackknife SE and
the permutation pre-trend test in small designs); the pre-trend test can only move a significant
estimate to ``pretrend_doubtful``, never add one. An earlier ``limited`` band for α ≤ p < 2α
doubled the no-effect rate (an independent Monte Carlo found 7–12.5 % instead of 5 %) and is gone.

Keys: every code of :data:`VERDICT_CODES`, every reason of :data:`REASONS` and every cap of
:data:`CAPS` has zh/en words in :mod:`evalkit.i18n` (the brief renders every cap key, with a
fallback for an unknown one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# the five verdicts (codes); their zh/en labels and explanations are in :mod:`evalkit.i18n`
# (``verdict_label``, ``verdict_explanation``, ``verdict_cap``)
VERDICT_CODES = ("strong", "limited", "no_effect", "pretrend_doubtful", "no_data")
# "limited" (the old α ≤ p < 2α band) is kept as a key so results.json files written before the
# calibration still render; decide() no longer returns it
REASONS = ("strong_robust", "limited", "limited_fragile", "no_effect", "pretrend_doubtful", "no_data", "capped")

# Floors (see docs/briefs.md): below them a significant estimate is at most "limited".
# - comparison stations: with fewer than 5 the counterfactual trend is the average of a handful of
#   stations, whose own shocks cannot be told apart from the reform's effect, and cluster-robust /
#   jackknife intervals with so few clusters on one side are far too narrow (Conley–Taber 2011,
#   MacKinnon–Webb 2017);
# - adopters: with one adopting station the staggered estimators' cluster inference has nothing to
#   resample on the treated side (the jackknife cannot delete the only adopter); such an evaluation
#   belongs to the single-station design (synthetic control with placebo-in-space inference).
MIN_COMPARISON = 5
MIN_ADOPTERS = 2

# why a significant estimate is capped at "limited", in the order they are reported
CAPS = ("one_adopter", "few_adopters", "few_comparison", "no_pretrend", "no_sensitivity", "fragile",
        "estimators_disagree")


@dataclass(frozen=True)
class Verdict:
    code: str
    p_value: float | None
    pretrend_p: float | None
    robust: bool | None = None  # sensitivity analysis: robust CI excludes 0 (None = not run)
    reason: str = ""  # one of REASONS or CAPS (defaults to ``code``)
    caps: tuple[str, ...] = ()  # every requirement of "strong" that was missed (when capped)


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def floor_caps(n_treated: int | None, n_control: int | None, design: str = "staggered") -> tuple[str, ...]:
    """Floors missed by a sample of ``n_treated`` adopters and ``n_control`` comparison stations
    (``None`` = unknown, not checked)."""
    caps = []
    if n_treated is not None and design != "single_station":
        if n_treated == 1:
            caps.append("one_adopter")
        elif n_treated < MIN_ADOPTERS:
            caps.append("few_adopters")
    if n_control is not None and n_control < MIN_COMPARISON:
        caps.append("few_comparison")
    return tuple(caps)


def decide(p_value: float | None, pretrend_p: float | None = None, *, alpha: float = 0.05,
           robust: bool | None = None, n_treated: int | None = None, n_control: int | None = None,
           design: str = "staggered", no_data: bool = False, disagree: bool = False) -> Verdict:
    """Apply the rules above. ``robust``: whether the sensitivity analysis's robust interval at the
    reference deviation excludes zero (``None`` when it did not run); ``pretrend_p`` ``None`` or
    NaN: no pre-trend test available; ``no_data``: the outcome is all missing or constant;
    ``disagree``: another estimator's 95% interval does not overlap the headline's."""
    pre = None if _missing(pretrend_p) else float(pretrend_p)
    if no_data:
        return Verdict("no_data", p_value, pre, robust, "no_data")
    if pre is not None and pre < alpha:
        return Verdict("pretrend_doubtful", p_value, pre, robust, "pretrend_doubtful")
    if not _missing(p_value):
        if p_value < alpha:
            caps = list(floor_caps(n_treated, n_control, design))
            if pre is None:
                caps.append("no_pretrend")
            if robust is None:
                caps.append("no_sensitivity")
            elif robust is False:
                caps.append("fragile")
            if disagree:
                caps.append("estimators_disagree")
            if not caps:
                return Verdict("strong", p_value, pre, robust, "strong_robust")
            if caps == ["fragile"]:
                return Verdict("limited", p_value, pre, robust, "limited_fragile", ("fragile",))
            return Verdict("limited", p_value, pre, robust, "capped", tuple(caps))
    return Verdict("no_effect", p_value, pre, robust, "no_effect")


__all__ = ["CAPS", "MIN_ADOPTERS", "MIN_COMPARISON", "REASONS", "VERDICT_CODES", "Verdict", "decide", "floor_caps"]
