"""The verdict on page 1 of a brief: fixed, documented rules.

Inputs: the headline estimate's 95% interval and p-value, and the joint pre-trend test.
Rules, applied in order:

1. ``pretrend_doubtful`` (前期趋势存疑) — the pre-trend test rejects at 5% (p < 0.05).
   Whatever the estimate, the comparison group may not be a valid counterfactual.
2. ``strong`` (证据充分) — the 95% interval excludes zero (p < 0.05).
3. ``limited`` (证据有限) — the effect is significant at 10% only (0.05 ≤ p < 0.10).
4. ``no_effect`` (未见明显效果) — otherwise: the data are compatible with no effect.

When no pre-trend test is available, rule 1 is skipped and the brief says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = {
    "strong": {"zh": "证据充分", "en": "Strong evidence"},
    "limited": {"zh": "证据有限", "en": "Limited evidence"},
    "no_effect": {"zh": "未见明显效果", "en": "No clear effect"},
    "pretrend_doubtful": {"zh": "前期趋势存疑", "en": "Pre-trends doubtful"},
}

EXPLANATIONS = {
    "strong": {"zh": "95% 置信区间不含零，改革前趋势检验未见异常。",
               "en": "The 95% interval excludes zero and the pre-trend test shows no problem."},
    "limited": {"zh": "效果仅在 10% 水平显著，证据偏弱。",
                "en": "The effect is significant only at the 10% level."},
    "no_effect": {"zh": "置信区间包含零，数据与“没有效果”相容。",
                  "en": "The interval includes zero: the data are compatible with no effect."},
    "pretrend_doubtful": {"zh": "改革前实施组与对照组走势已有差异，对照组可能不可比。",
                          "en": "Adopters and comparison stations already diverged before adoption."},
}


@dataclass(frozen=True)
class Verdict:
    code: str
    p_value: float
    pretrend_p: float | None

    def label(self, lang: str = "zh") -> str:
        return VERDICTS[self.code][lang]

    def explanation(self, lang: str = "zh") -> str:
        return EXPLANATIONS[self.code][lang]


def decide(p_value: float, pretrend_p: float | None = None, *, alpha: float = 0.05) -> Verdict:
    """Apply the rules above."""
    pre = None if pretrend_p is None or (isinstance(pretrend_p, float) and math.isnan(pretrend_p)) else pretrend_p
    if pre is not None and pre < alpha:
        return Verdict("pretrend_doubtful", p_value, pre)
    if p_value is not None and not math.isnan(p_value):
        if p_value < alpha:
            return Verdict("strong", p_value, pre)
        if p_value < 2 * alpha:
            return Verdict("limited", p_value, pre)
    return Verdict("no_effect", p_value, pre)
