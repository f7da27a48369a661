"""Verdict rules (src/evalkit/verdict.py): every branch; labels and explanations in both languages (i18n)."""

from __future__ import annotations

import math

import pytest

from evalkit.i18n import VERDICT_EXPLANATIONS, VERDICT_LABELS, verdict_explanation, verdict_label
from evalkit.verdict import REASONS, VERDICT_CODES, decide


@pytest.mark.parametrize(
    "p, pre, robust, code, reason",
    [
        # rule 1: the pre-trend test rejects, whatever the estimate and the sensitivity analysis
        (0.001, 0.01, True, "pretrend_doubtful", "pretrend_doubtful"),
        (0.50, 0.049, None, "pretrend_doubtful", "pretrend_doubtful"),
        # rule 2: significant, pre-trends fine, robust (or sensitivity not run / no pre-trend test)
        (0.01, 0.40, True, "strong", "strong_robust"),
        (0.01, 0.40, None, "strong", "strong"),
        (0.01, None, None, "strong", "strong"),
        (0.01, math.nan, True, "strong", "strong_robust"),
        # rule 3a: significant but not robust to moderate trend deviations
        (0.01, 0.40, False, "limited", "limited_fragile"),
        (0.01, None, False, "limited", "limited_fragile"),
        # rule 3b: significant at 10% only (sensitivity does not matter)
        (0.07, 0.40, None, "limited", "limited"),
        (0.07, 0.40, True, "limited", "limited"),
        (0.07, 0.40, False, "limited", "limited"),
        # rule 4: no effect
        (0.30, 0.40, None, "no_effect", "no_effect"),
        (0.30, 0.40, False, "no_effect", "no_effect"),
        (0.10, None, True, "no_effect", "no_effect"),
        (math.nan, 0.40, None, "no_effect", "no_effect"),
        (None, None, None, "no_effect", "no_effect"),
    ],
)
def test_rules(p, pre, robust, code, reason):
    v = decide(p, pre, robust=robust)
    assert v.code == code
    assert v.reason in ("", reason) and (v.reason or v.code) == reason
    assert v.robust is robust
    for lang in ("zh", "en"):
        assert verdict_label(v.code, lang) == VERDICT_LABELS[code][lang]
        assert verdict_explanation(v.reason or v.code, lang) == VERDICT_EXPLANATIONS[reason][lang]


def test_alpha_is_respected():
    assert decide(0.015, 0.5, alpha=0.01).code == "limited"  # 0.01 <= p < 0.02
    assert decide(0.02, 0.5, alpha=0.01).code == "no_effect"
    assert decide(0.005, 0.5, alpha=0.01).code == "strong"
    assert decide(0.5, 0.02, alpha=0.01).code == "no_effect"  # pre-trend p above alpha = 0.01
    assert decide(0.5, 0.005, alpha=0.01).code == "pretrend_doubtful"


def test_backward_compatible_signature():
    # batch/portfolio.py calls decide(p, pre, alpha=...) without the sensitivity input
    v = decide(0.001, 0.9, alpha=0.05)
    assert v.code == "strong" and v.robust is None and v.pretrend_p == 0.9


def test_four_labels_only():
    assert set(VERDICT_CODES) == set(VERDICT_LABELS) == {"strong", "limited", "no_effect", "pretrend_doubtful"}
    assert set(REASONS) == set(VERDICT_EXPLANATIONS)
    assert [VERDICT_LABELS[k]["zh"] for k in ("strong", "limited", "no_effect", "pretrend_doubtful")] == \
        ["证据充分", "证据有限", "未见明显效果", "前期趋势存疑"]
    assert [VERDICT_LABELS[k]["en"] for k in ("strong", "limited", "no_effect", "pretrend_doubtful")] == \
        ["Strong evidence", "Limited evidence", "No clear effect", "Pre-trends doubtful"]
