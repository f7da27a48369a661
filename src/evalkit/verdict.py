"""The verdict on page 1 of a brief: fixed, documented rules.

Inputs: the headline estimate's p-value (its 95% interval excludes zero exactly when p < α,
α = 0.05 by default), the joint pre-trend test (its small-sample p-value: a permutation test when
fewer than 100 stations adopt, Hotelling's F above; :mod:`evalkit.inference.pretrend`), and — when the sensitivity analysis ran — whether
the Rambachan–Roth robust interval still excludes zero on the same side as the estimate.

Rules, applied in order:

1. ``pretrend_doubtful`` (前期趋势存疑) — the pre-trend test rejects (p < α).
   Whatever the estimate, the comparison group may not be a valid counterfactual.
2. ``strong`` (证据充分) — the interval excludes zero (p < α), the pre-trend test does not
   reject, **and** the sensitivity analysis either did not run or finds the conclusion robust:
   the robust interval at the reference deviation (relative magnitudes M̄ = 0.5; if relative
   magnitudes are not available, smoothness at the smallest positive M of the grid) excludes
   zero on the same side as the estimate.
3. ``limited`` (证据有限) — either the interval excludes zero but the sensitivity analysis finds
   the conclusion not robust (rule 2 fails only on robustness), or the effect is significant at
   2α only (α ≤ p < 2α, i.e. 0.05 ≤ p < 0.10).
4. ``no_effect`` (未见明显效果) — otherwise: the data are compatible with no effect.

When no pre-trend test is available, rule 1 is skipped and the brief says so. When the
sensitivity analysis did not run (switched off, or not available), ``robust`` is ``None`` and
rule 2 is decided on the interval and the pre-trend test alone; the brief says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# the four verdicts (codes) and the reasons behind them; their zh/en labels and explanations are
# in :mod:`evalkit.i18n` (``verdict_label``, ``verdict_explanation``)
VERDICT_CODES = ("strong", "limited", "no_effect", "pretrend_doubtful")
REASONS = ("strong", "strong_robust", "limited", "limited_fragile", "no_effect", "pretrend_doubtful")


@dataclass(frozen=True)
class Verdict:
    code: str
    p_value: float
    pretrend_p: float | None
    robust: bool | None = None  # sensitivity analysis: robust CI excludes 0 (None = not run)
    reason: str = ""  # one of REASONS (defaults to ``code``)


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def decide(p_value: float, pretrend_p: float | None = None, *, alpha: float = 0.05,
           robust: bool | None = None) -> Verdict:
    """Apply the rules above. ``robust``: whether the sensitivity analysis's robust interval at the
    reference deviation excludes zero (``None`` when the analysis did not run)."""
    pre = None if _missing(pretrend_p) else float(pretrend_p)
    if pre is not None and pre < alpha:
        return Verdict("pretrend_doubtful", p_value, pre, robust)
    if not _missing(p_value):
        if p_value < alpha:
            if robust is False:
                return Verdict("limited", p_value, pre, robust, "limited_fragile")
            return Verdict("strong", p_value, pre, robust, "strong_robust" if robust else "strong")
        if p_value < 2 * alpha:
            return Verdict("limited", p_value, pre, robust)
    return Verdict("no_effect", p_value, pre, robust)


__all__ = ["REASONS", "VERDICT_CODES", "Verdict", "decide"]
