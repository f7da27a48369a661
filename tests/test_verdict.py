"""Verdict rules (src/evalkit/verdict.py): every branch; labels and explanations in both languages (i18n)."""

from __future__ import annotations

import math

import pytest

from evalkit.i18n import VERDICT_EXPLANATIONS, VERDICT_LABELS, verdict_explanation, verdict_label
from evalkit.verdict import CAPS, REASONS, VERDICT_CODES, decide

FULL = {"n_treated": 20, "n_control": 40}  # above every floor


@pytest.mark.parametrize(
    "p, pre, robust, code, reason, caps",
    [
        # rule 1: the pre-trend test rejects, whatever the estimate and the sensitivity analysis
        (0.001, 0.01, True, "pretrend_doubtful", "pretrend_doubtful", ()),
        (0.50, 0.049, None, "pretrend_doubtful", "pretrend_doubtful", ()),
        # rule 2: significant, pre-trend test run and fine, sensitivity run and robust
        (0.01, 0.40, True, "strong", "strong_robust", ()),
        # capped: a requirement of "strong" was not met (every one listed, in CAPS order)
        (0.01, 0.40, None, "limited", "capped", ("no_sensitivity",)),
        (0.01, None, None, "limited", "capped", ("no_pretrend", "no_sensitivity")),
        (0.01, math.nan, True, "limited", "capped", ("no_pretrend",)),
        (0.01, None, False, "limited", "capped", ("no_pretrend", "fragile")),
        # rule 3a: significant but not robust to moderate trend deviations (the only requirement missed)
        (0.01, 0.40, False, "limited", "limited_fragile", ("fragile",)),
        # calibrated: significant at 10% only is no evidence (the old α ≤ p < 2α "limited" band doubled
        # the no-effect rate), whatever the sensitivity analysis says
        (0.07, 0.40, None, "no_effect", "no_effect", ()),
        (0.07, 0.40, True, "no_effect", "no_effect", ()),
        (0.07, 0.40, False, "no_effect", "no_effect", ()),
        (0.05, 0.40, True, "no_effect", "no_effect", ()),  # p == α is not significant
        (0.0499, 0.40, True, "strong", "strong_robust", ()),
        # rule 4: no effect
        (0.30, 0.40, None, "no_effect", "no_effect", ()),
        (0.30, 0.40, False, "no_effect", "no_effect", ()),
        (0.10, None, True, "no_effect", "no_effect", ()),
        (math.nan, 0.40, None, "no_effect", "no_effect", ()),
        (None, None, None, "no_effect", "no_effect", ()),
    ],
)
def test_rules(p, pre, robust, code, reason, caps):
    v = decide(p, pre, robust=robust, **FULL)
    assert (v.code, v.reason, v.caps) == (code, reason, caps)
    assert v.robust is robust
    for lang in ("zh", "en"):
        assert verdict_label(v.code, lang) == VERDICT_LABELS[code][lang]
        text = verdict_explanation(v.reason, lang, v.caps, **FULL)
        if reason != "capped":
            assert text == VERDICT_EXPLANATIONS[reason][lang]


def test_alpha_is_respected():
    assert decide(0.015, 0.5, alpha=0.01, robust=True, **FULL).code == "no_effect"  # 0.01 <= p < 0.02
    assert decide(0.02, 0.5, alpha=0.01, robust=True, **FULL).code == "no_effect"
    assert decide(0.005, 0.5, alpha=0.01, **FULL).code == "limited"  # significant, no sensitivity: capped
    assert decide(0.005, 0.5, alpha=0.01, robust=True, **FULL).code == "strong"
    assert decide(0.5, 0.02, alpha=0.01).code == "no_effect"  # pre-trend p above alpha = 0.01
    assert decide(0.5, 0.005, alpha=0.01).code == "pretrend_doubtful"


def test_without_sensitivity_never_strong():
    # batch/portfolio.py calls decide(p, pre, alpha=...) for non-headline rows: no sensitivity analysis
    v = decide(0.001, 0.9, alpha=0.05)
    assert (v.code, v.reason, v.caps) == ("limited", "capped", ("no_sensitivity",))
    assert v.robust is None and v.pretrend_p == 0.9


def test_five_labels():
    assert set(VERDICT_CODES) == set(VERDICT_LABELS) == {"strong", "limited", "no_effect", "pretrend_doubtful",
                                                         "no_data"}
    assert set(REASONS) == set(VERDICT_EXPLANATIONS)
    assert [VERDICT_LABELS[k]["zh"] for k in VERDICT_CODES] == \
        ["证据充分", "证据有限", "未见明显效果", "前期趋势存疑", "数据不足"]
    assert [VERDICT_LABELS[k]["en"] for k in VERDICT_CODES] == \
        ["Strong evidence", "Limited evidence", "No clear effect", "Pre-trends doubtful", "No usable data"]


def test_every_cap_has_words():
    for lang in ("zh", "en"):
        for c in CAPS:
            text = verdict_explanation("capped", lang, (c,), n_treated=0, n_control=1)
            assert text and "{" not in text


def test_no_effect_rate_is_the_tests_own_rate():
    """Under no effect the p-value is uniform: 证据充分 + 证据有限 together happen exactly when p < α,
    whatever the other inputs (the calibration of docs/briefs.md § Verdict rules)."""
    grid = [i / 1000 for i in range(1, 1000)]
    for alpha in (0.01, 0.05, 0.10):
        for robust in (True, False, None):
            for pre in (0.5, None):
                for n_t, n_c in ((20, 40), (1, 40), (20, 2)):
                    evidence = [p for p in grid if decide(p, pre, alpha=alpha, robust=robust, n_treated=n_t,
                                                          n_control=n_c).code in ("strong", "limited")]
                    assert evidence == [p for p in grid if p < alpha]
