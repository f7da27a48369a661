"""Small word-builders of the brief (zh / en): effects whose signs never mix, the estimand in plain
words, the headline rule, and recorded failure reasons turned into localized sentences.

:mod:`evalkit.brief_text` assembles the brief's sentences from these; numbers come from
:class:`~evalkit.evaluation.Evaluation` only.
"""

from __future__ import annotations

import math
import re
from typing import Any

from evalkit.i18n import estimator_label, fmt_num, fmt_pct, t
from evalkit.registry import OUTCOMES

#: outcome kinds whose page-1 effect is stated in their own unit first (minutes, days): a duration
#: reads better as "4.1 minutes shorter" than as a percent of a mean arrival time
DURATION_KINDS = ("minutes", "days")


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def effect_form(outcome: str) -> str:
    """How page 1 states ``outcome``'s effect: ``pct`` (counts, rates: percent first), ``level``
    (durations: own unit first) or ``share`` (shares: percentage points only)."""
    kind = OUTCOMES[outcome].kind
    return "share" if kind == "share" else "level" if kind in DURATION_KINDS else "pct"


def _dir(sign: float, form: str, lang: str, *, noun: bool) -> str:
    """Direction word: "下降"/"上升" (or "缩短"/"延长" for durations); English nouns for ranges."""
    up = sign > 0
    if lang == "zh":
        return ("延长" if up else "缩短") if form == "level" else ("上升" if up else "下降")
    if noun:
        return "an increase of" if up else "a decrease of"
    return t("up" if up else "down", lang)


def direction_word(sign: float, form: str, lang: str) -> str:
    """Verb of a change: "下降"/"上升" ("缩短"/"延长" for durations) / "fell by"/"rose by"."""
    return _dir(sign, form, lang, noun=False)


def magnitude(x: float, form: str, unit: str, lang: str) -> str:
    """|x| with its unit: percent (``pct``, ``x`` in percent), percentage points (``share``, ``x`` a
    proportion) or the outcome's own unit (``level``, e.g. "4.1 分钟")."""
    if form == "share":
        return f"{fmt_num(100 * abs(x), lang, 1)} {unit}"
    if form == "level":
        return f"{fmt_num(abs(x), lang, 1)} {unit}".rstrip()
    return fmt_pct(abs(x), lang)


def change_range(lo: float, hi: float, lang: str, *, share: bool = False, unit: str = "",
                 form: str | None = None) -> str:
    """An interval in words whose signs never mix: "下降 47.1%–69.7%" / "a decrease of 47.1%–69.7%",
    or "介于下降 5.0% 与上升 3.0% 之间" / "between a decrease of 5.0% and an increase of 3.0%" when it
    spans zero. Inputs in percent (``pct``), proportions (``share``) or the outcome's unit (``level``)."""
    form = form or ("share" if share else "pct")
    if _nan(lo) or _nan(hi):
        return "—"
    lo, hi = sorted((float(lo), float(hi)))
    if lo < 0 < hi:
        return t("range_mixed", lang, down=_dir(-1, form, lang, noun=True), up=_dir(1, form, lang, noun=True),
                 a=magnitude(lo, form, unit, lang), b=magnitude(hi, form, unit, lang))
    sign = -1 if hi <= 0 else 1
    a, b = sorted((abs(lo), abs(hi)))
    if form == "pct":
        first, second = fmt_pct(a, lang), fmt_pct(b, lang)
    else:  # the unit once, after the range ("下降 1.0–3.6 百分点", "缩短 0.5–1.9 分钟")
        first = fmt_num((100 if form == "share" else 1) * a, lang, 1)
        second = magnitude(b, form, unit, lang)
    return t("range", lang, dir=_dir(sign, form, lang, noun=True), a=first, b=second)


def change_words(x: float, lo: float, hi: float, lang: str, *, share: bool = False, unit: str = "",
                 form: str | None = None, noun: bool = False) -> str:
    """A point estimate in words: "下降 58.4%" ("fell by 58.4%", or with ``noun`` "a decrease of
    58.4%"), or "未见明显变化" when the interval [lo, hi] spans zero."""
    form = form or ("share" if share else "pct")
    if _nan(x) or _nan(lo) or _nan(hi) or lo <= 0 <= hi:
        return t("no_change", lang)
    return f"{_dir(x, form, lang, noun=noun)} {magnitude(x, form, unit, lang)}"


def horizon_of(h: dict[str, Any], event_window: Any) -> tuple[int, int]:
    """(first, last) month after adoption the headline averages: ``h["horizon"]`` when the
    evaluation states it, else ``(0, event_window[1])`` (the headline estimand's definition)."""
    hz = h.get("horizon")
    if hz is not None and len(hz) == 2:
        return int(hz[0]), int(hz[1])
    return 0, int(event_window[1])


def estimand_sentence(h: dict[str, Any], event_window: Any, design: str, lang: str) -> str:
    """The estimand in plain words: "估计对象：改革后第0–24个月的平均效果。"."""
    if design == "single_station" and h.get("horizon") is None:
        return t("estimand_all_post", lang)
    a, b = horizon_of(h, event_window)
    return t("estimand", lang, a=a, b=b)


# ----------------------------------------------------------------------------- headline rule
def _facts_words(facts: dict[str, Any], lang: str) -> dict[str, Any]:
    th = facts.get("thresholds") or {}
    return {"n_treated": facts.get("n_treated", "—"), "n_control": facts.get("n_control", "—"),
            "min_adopters": th.get("adopters", "—"), "min_comparison": th.get("comparison", "—")}


def headline_choice_sentence(choice: Any, estimator: str, lang: str) -> str:
    """Which estimator the headline uses and why (rule keys ``user``, ``small_design``,
    ``large_design`` of ``evalkit.headline_choice``; an unknown rule gets the plain fallback).
    ``choice``: the ``HeadlineChoice`` dataclass or its ``results.json`` dict, or ``None``."""
    if choice is None:
        return ""
    get = choice.get if isinstance(choice, dict) else (lambda k, d=None: getattr(choice, k, d))
    rule, facts = get("rule"), get("facts") or {}
    name = get("estimator") or estimator
    kw = {"estimator": estimator_label(name, lang), "name": name, **_facts_words(facts, lang)}
    if rule == "small_design" and facts.get("design") == "single_station":
        rule = "single_station"
    key = f"choice_{rule}"
    return t(key, lang, **kw) if key in _CHOICE_KEYS else t("choice_other", lang, **kw)


_CHOICE_KEYS = ("choice_user", "choice_small_design", "choice_large_design", "choice_single_station")


# ----------------------------------------------------------------------------- failure reasons
#: recorded failure reasons (English, from the estimators and inference steps) → a localized
#: phrase; first match wins. Anything else gets the generic ``reason_other`` (the technical
#: English reason stays in results.json and the English brief's technical appendix).
REASON_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"multiplier bootstrap needs at least", "reason_mboot_few"),
    (r"balanced panel", "reason_balanced"),
    (r"only (one|1)\b.*adopt|one treated (unit|cluster|station)|only one treated|leaves no adopting",
     "reason_one_adopter"),
    (r"no treated cohorts|no adopting stations|no station adopts", "reason_no_adopters"),
    (r"no never-adopting|no comparison|no control", "reason_no_controls"),
    (r"permutation draws? failed|every permutation", "reason_permutation_failed"),
    (r"singular|ill-conditioned|not finite and non-negative|not a finite non-negative", "reason_singular"),
    (r"at least \d+ clusters|too few clusters|fewer than \d+ clusters|\bclusters?\b.*\bfew", "reason_few_clusters"),
    (r"Hotelling's F needs more treated", "reason_f_undefined"),
    (r"no event-study leads|no finite statistic", "reason_no_leads"),
    (r"collinear with the fixed effects|no timing variation", "reason_no_timing"),
    (r"disconnected design", "reason_disconnected"),
    (r"count outcomes only", "reason_counts_only"),
    (r"not requested", "reason_not_requested"),
)


#: reasons for a step left out by design (not a failure): "… not used: …" instead of "… failed: …"
SKIP_REASONS = ("reason_mboot_few",)


def reason_key(reason: Any) -> str:
    """The i18n key of a recorded failure reason (:data:`REASON_PATTERNS`, else ``reason_other``)."""
    text = str(reason or "")
    for pattern, key in REASON_PATTERNS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return key
    return "reason_other"


def reason_words(reason: Any, lang: str) -> str:
    """A recorded failure reason as a localized phrase (never the raw English exception in the
    Chinese brief; in the English brief only the known phrasing or the generic fallback)."""
    return t(reason_key(reason), lang)


def failed_step_sentence(step: str, reason: Any, lang: str) -> str:
    """"X 未能完成：<reason>" / "X did not complete: <reason>", or "X 未采用：…" / "X not used: …" for a
    step the design leaves out on purpose (e.g. the multiplier bootstrap with fewer than 12 clusters)."""
    key = reason_key(reason)
    return t("skipped_estimator" if key in SKIP_REASONS else "failed_estimator", lang, estimator=step,
             error=t(key, lang))


def technical_reasons(ev: Any) -> list[tuple[str, str]]:
    """(where, raw English reason) of every recorded failure of ``ev``: failed estimators and
    variants, the sensitivity analysis and its parts, multiple testing, the jackknife SE and the
    pre-trend tests. Shown only in the English brief's technical appendix (and in results.json),
    without the exception's class name (a reason, not a traceback)."""
    out: list[tuple[str, str]] = []
    for o, by in (ev.failures or {}).items():
        out += [(f"{o} / {k}", str(v)) for k, v in by.items()]
    for o, by in (ev.robustness_failures or {}).items():
        out += [(f"{o} / {k}", str(v)) for k, v in by.items()]
    if ev.sensitivity_error:
        out.append(("sensitivity", str(ev.sensitivity_error)))
    s = ev.sensitivity
    if s is not None:
        out += [(f"sensitivity / {k}", str(v)) for k, v in (getattr(s, "source_errors", None) or {}).items()]
        out += [(f"sensitivity / {k}", str(v)) for k, v in (getattr(s, "failed", None) or {}).items()]
    if ev.multiple_error:
        out.append(("multiple testing", str(ev.multiple_error)))
    for o, by in (ev.results or {}).items():
        for k, r in by.items():
            hs = r.meta.get("headline_se") or {}
            if hs.get("jackknife_error"):
                out.append((f"{o} / {k} / jackknife", str(hs["jackknife_error"])))
            pt = r.meta.get("pretrend") or {}
            if pt.get("reason") and pt.get("status") in ("failed", "not_available"):
                out.append((f"{o} / {k} / pre-trend test", str(pt["reason"])))
    return [(where, _EXC_PREFIX.sub("", why)) for where, why in out]


def sensitivity_steps(bin_months: int | None, lang: str) -> dict[str, str]:
    """Words for the sensitivity analysis's time step: ``step`` (how often the smoothness bound may
    bend: 每月 / per month, or per ``b``-month bin) and ``base`` (the event study's base period: the
    month before adoption, or the ``b`` months before it) — the bins of ``Sensitivity.bin_months``."""
    b = int(bin_months or 1)
    if lang == "zh":
        return {"step": "每月" if b == 1 else f"每 {b} 个月",
                "base": "改革前一个月" if b == 1 else f"改革前 {b} 个月的平均"}
    return {"step": "per month" if b == 1 else f"per {b}-month bin",
            "base": "the month before adoption" if b == 1 else f"the {b} months before adoption (their mean)"}


#: words of the evaluation's notes (``Evaluation.notes``: key → facts, :func:`evalkit.analyses_run.evaluation_notes`)
NOTE_WORDS: dict[str, dict[str, str]] = {
    "itt_stopped": {
        "zh": "{n_stopped} 个派出所在评估期内停止了该改革；总体效果按“意向处理”估计：停止后的月份仍计为实施，"
              "反映的是启动改革的效果，而非持续实施的效果。",
        "en": "{n_stopped} station(s) stopped the reform within the evaluation window; the headline effect is "
              "intent-to-treat: months after a stop still count as treated, so it is the effect of starting the "
              "reform, not of running it throughout.",
    },
}


def note_sentence(key: str, lang: str, **facts: Any) -> str:
    """One note of ``Evaluation.notes`` in ``lang`` (``NOTE_WORDS[key]`` formatted with its facts)."""
    return NOTE_WORDS[key][lang].format(**facts)


_EXC_PREFIX = re.compile(r"^\w*(Error|Exception|Warning|Interrupt)\s*:\s*")


__all__ = ["DURATION_KINDS", "REASON_PATTERNS", "SKIP_REASONS", "change_range", "failed_step_sentence", "reason_key", "change_words", "direction_word", "effect_form", "estimand_sentence",
           "headline_choice_sentence", "horizon_of", "magnitude", "NOTE_WORDS", "note_sentence", "reason_words", "sensitivity_steps", "technical_reasons"]
