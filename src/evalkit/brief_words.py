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
    (r"wild cluster bootstrap is not run", "reason_wild_many"),
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
SKIP_REASONS = ("reason_mboot_few", "reason_wild_many")


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
    for kind, by in (getattr(ev, "analyses", None) or {}).items():  # issue-17 analyses that could not run
        out += [(f"{o} / {kind}", str(sec.error)) for o, sec in by.items() if getattr(sec, "error", None)]
    return [(where, _EXC_PREFIX.sub("", why)) for where, why in out]


# ----------------------------------------------------------------------------- further analyses (issue 17)
#: the words of the dose, switching, spillover and heterogeneity sections (:mod:`evalkit.brief_analyses`)
ANALYSIS_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "h_dose": "实施强度与效果", "h_switching": "开始与停止实施", "h_spillover": "对邻近派出所的影响",
        "h_heterogeneity": "分组效果",
        "what_dose": "剂量反应分析", "what_switching": "开始与停止实施的分析", "what_spillover": "邻近派出所影响分析",
        "what_heterogeneity": "分组效果分析",
        "page1_h": "进一步分析",
        "dose_step_share": "覆盖比例每提高10个百分点", "dose_step_unit": "实施强度每增加 1 个单位",
        "dose_sentence": "{step}，{outcome}{effect}（95% 置信区间：{range}）；按各所实际{level}，"
                         "实施改革的派出所平均{effect_o}（95% 置信区间：{range_o}）。",
        "dose_level_share": "覆盖比例", "dose_level_unit": "实施强度",
        "switch_in": "开始实施改革后，{outcome}{effect}（95% 置信区间：{range}；{n} 个派出所开始实施）。",
        "switch_out": "停止实施改革后，{outcome}{effect}（95% 置信区间：{range}；{n} 个派出所停止实施）。",
        "switch_both": "开始实施（{n_in} 个派出所）与停止实施（{n_out} 个派出所）合计：实施改革期间{outcome}{effect}"
                       "（95% 置信区间：{range}）。",
        "rebound": "回升",
        "spill_sentence": "邻近未实施派出所{outcome}{effect}（95% 置信区间：{range}）：{reading}。",
        "spill_displacement": "存在警情转移", "spill_diffusion": "效果扩散到邻近派出所",
        "spill_none": "未发现警情转移或效果扩散的证据", "spill_effect": "改革也影响了邻近派出所",
        "hetero_sentence": "按{by}分组：{groups}；{test}。",
        "hetero_group": "{group}{outcome}{effect}（95% 置信区间：{range}）{unrated}",
        "hetero_sep": "，",
        "hetero_test": "各组效果相等的检验 {p}",
        "hetero_test_na": "各组效果相等的检验无法进行（{reason}）",
        "unrated": "（样本不足，不评级）",
        "by_area_type": "辖区类型", "by_size_class": "派出所规模", "by_county": "区县", "by_cohort": "实施批次",
        "group_urban": "城区派出所", "group_rural": "农村派出所", "group_mixed": "城乡结合派出所",
        "group_small": "小规模派出所", "group_medium": "中等规模派出所", "group_large": "大规模派出所",
        "group_cohort": "{p} 起实施的派出所", "group_other": "{g}",
        "not_available": "{what}暂不可用：{reason}",
        "reason_no_intensity": "改革表没有实施强度（覆盖比例）一列，请导入 reforms.intensity",
        "reason_no_adjacency": "数据库中没有派出所相邻关系表（adjacency），请先导入",
        "reason_no_switch": "没有派出所开始或停止实施改革",
        "reason_dose_missing": "部分实施改革的派出所缺少实施强度（覆盖比例），请在改革表中补齐",
        "reason_adjacency_outside": "相邻关系表中没有连接本评估两个派出所的记录，请检查派出所编号",
        "reason_no_group_column": "数据中没有该分组所需的列",
        "reason_group_missing": "部分派出所缺少该分组所需的值，请在派出所名册中补齐",
        "reason_group_varies": "同一派出所在该列有多个取值，无法分组",
        "reason_cs_cohorts": "按批次平均的方法不能按该列拆分（同一批次内取值不同）",
        "reason_one_group": "只有一个分组有实施改革的派出所",
        "pct_note_spill": "邻近派出所的相对变化以其在相邻派出所实施改革前的月均值为基数；直接效果以实施派出所改革前的月均值为基数。",
        "switch_off_missing_note": "{n} 个派出所停止实施改革，但停止的效果无法估计：{reason}。",
        "switch_stopped_note": "{n} 个派出所先开始后停止实施：本方法按首次变化分组，它们计为开始实施的派出所，"
                               "停止后的月份计入开始实施后的效果。",
        "hetero_estimator_note": "按{by}分组采用{estimator}的拟合（主要结果的方法按整批次平均，不能按该列拆分；估计对象相同）。",
        # tables
        "col_outcome": "指标", "col_quantity": "估计对象", "col_estimate": "估计值", "col_ci": "95% 置信区间",
        "col_band": "95% 一致置信带", "col_pct": "占改革前均值", "col_p": "p 值", "col_n": "派出所数",
        "col_group": "分组", "col_by": "分组依据", "col_verdict": "评级", "col_test": "检验", "col_stat": "统计量",
        "col_df": "自由度", "col_dose": "实施强度",
        "q_acr_step": "{step}的效果", "q_att_o": "按实际强度的平均效果（ATT^o）",
        "q_switch_total": "平均总效果（每单位处理变化）", "q_switch_in": "开始实施的效果", "q_switch_out": "停止实施的效果（已按停止方向换算）",
        "q_direct": "对实施派出所的直接效果", "q_spill": "对邻近未实施派出所的效果",
        "n_dose": "实施派出所 {n} 个，{k} 种强度", "n_switch": "开始 {n_in} 个，停止 {n_out} 个",
        "n_spill": "未实施 {n_ctl} 个，其中与实施派出所相邻 {n_exp} 个", "n_group": "实施 {n_a} 个，对照 {n_c} 个",
        "unrated_col": "不评级：{why}",
        "placebo_test_name": "改革前安慰剂联合检验（{k} 个月，小样本 F 检验）",
        "reason_no_stop_comparison": "停止时没有仍在实施且未停止的派出所可作对照",
        "reason_dose_one_per_cohort": ("每个实施批次内的覆盖比例种类都少于剂量曲线所需（例如每批只有一个派出所），"
                                       "无法比较不同覆盖比例"),
        "reason_few_switchers": "切换的派出所太少，无法进行小样本 F 检验（派出所数须多于安慰剂月数加 1；χ² 检验在此情形下会过度拒绝）",
        "equality_row": "各组效果相等（{by}）",
        "pct_note": "相对变化以实施派出所改革前的月均值为基数。",
        "dose_skipped_note": ("{outcome}：{cells} 个队列-月份单元的覆盖比例种类少于剂量曲线所需，未纳入剂量分析；"
                              "{unused} 个实施改革的派出所因此未被使用。"),
        "dose_note": "强度曲线需要“强平行趋势”假设才能比较不同强度；阴影为 95% 一致置信带。",
        # charts
        "x_dose_share": "覆盖比例", "x_dose_unit": "实施强度", "x_switch": "开始或停止实施后的月数",
        "x_spill": "改革后月数（邻近派出所：相邻派出所实施后）",
        "att_d": "不同强度下的效果 ATT(d)", "acrt_d": "强度的边际效果 ACRT(d)", "acr_o": "平均边际效果 ACR^o",
        "band": "95% 一致置信带", "effects": "效果", "placebos": "安慰剂（改革前）",
        "direct": "实施派出所", "neighbours": "邻近未实施派出所", "overall_line": "总体效果",
        "n_label": "实施 {n} 个", "y_slope": "{step}（{unit}）",
        "dir_in": "开始实施", "dir_out": "停止实施",
        # the demo world's planted truths (synthetic warehouses only; the headline's truth_note words)
        "truth_sentence": "演示数据中植入的真实效果约为：{parts}。", "truth_sep": "；",
        "truth_dose": "{step}{slope}，按各所实际{level}平均{att}",
        "truth_switch_in": "开始实施后{x}", "truth_switch_out": "停止实施后{x}",
        "truth_spill": "邻近未实施派出所{x}（以其未受影响时的预期值为基数），实施派出所{direct}",
        "truth_group": "{group}{x}",
        "col_truth": "演示数据真实值",
    },
    "en": {
        "h_dose": "Intensity and effect", "h_switching": "Switching the reform on and off",
        "h_spillover": "Effects on neighbouring stations", "h_heterogeneity": "Effects by subgroup",
        "what_dose": "Dose-response analysis", "what_switching": "Switching analysis",
        "what_spillover": "Neighbouring-stations analysis", "what_heterogeneity": "Subgroup analysis",
        "page1_h": "Further analyses",
        "dose_step_share": "Each 10-percentage-point increase in coverage",
        "dose_step_unit": "Each one-unit increase in intensity",
        "dose_sentence": "{step}: {outcome} {effect} (95% CI: {range}); at the {level} each station reached, "
                         "{outcome} at adopting stations {effect_o} on average (95% CI: {range_o}).",
        "dose_level_share": "coverage", "dose_level_unit": "intensity",
        "switch_in": "After switching the reform on, {outcome} {effect} (95% CI: {range}; {n} stations switched on).",
        "switch_out": "After switching the reform off, {outcome} {effect} (95% CI: {range}; {n} stations switched off).",
        "switch_both": "Stations switching the reform on ({n_in}) and off ({n_out}) pooled: while the reform runs, "
                       "{outcome} {effect} (95% CI: {range}).",
        "rebound": "rose by",
        "spill_sentence": "At untreated neighbouring stations, {outcome} {effect} (95% CI: {range}): {reading}.",
        "spill_displacement": "incidents were displaced to the neighbours",
        "spill_diffusion": "the benefit diffused to the neighbours",
        "spill_none": "no evidence of displacement or diffusion", "spill_effect": "the reform also affected the neighbours",
        "hetero_sentence": "By {by}: {groups}; {test}.",
        "hetero_group": "{group}: {outcome} {effect} (95% CI: {range}){unrated}",
        "hetero_sep": "; ",
        "hetero_test": "test that the effects are equal: {p}",
        "hetero_test_na": "the test that the effects are equal is not available ({reason})",
        "unrated": " (too few stations to rate)",
        "by_area_type": "area type", "by_size_class": "station size", "by_county": "county", "by_cohort": "adoption cohort",
        "group_urban": "urban stations", "group_rural": "rural stations", "group_mixed": "mixed urban-rural stations",
        "group_small": "small stations", "group_medium": "medium-sized stations", "group_large": "large stations",
        "group_cohort": "stations adopting in {p}", "group_other": "{g}",
        "not_available": "{what} not available: {reason}",
        "reason_no_intensity": "the reforms table has no intensity (coverage) column; load reforms.intensity",
        "reason_no_adjacency": "the warehouse has no station adjacency table; load one first",
        "reason_no_switch": "no station switches the reform on or off",
        "reason_dose_missing": "some adopting stations have no intensity (coverage); fill it in the reforms table",
        "reason_adjacency_outside": "no adjacency pair joins two stations of this evaluation; check the station ids",
        "reason_no_group_column": "the data have no column for this grouping",
        "reason_group_missing": "some stations have no value for this grouping; fill it in the station register",
        "reason_group_varies": "the column takes several values for one station",
        "reason_cs_cohorts": "the cohort-averaging method cannot split by this column (it varies within a cohort)",
        "reason_one_group": "only one subgroup has adopting stations",
        "pct_note_spill": "The neighbours' percentages are of their own monthly mean before a neighbour adopted; the "
                          "direct effect's of the adopting stations' mean before adoption.",
        "switch_off_missing_note": "{n} station(s) stopped the reform, but the effect of stopping cannot be estimated: {reason}.",
        "switch_stopped_note": "{n} station(s) switched the reform on and later off: the method groups stations by "
                               "their first change, so they count as switching on and their months after the stop "
                               "are part of the effect after switching on.",
        "hetero_estimator_note": "Subgroups by {by} use the {estimator} fit (the headline's method averages whole "
                                 "cohorts and cannot split by this column; same estimand).",
        "col_outcome": "Outcome", "col_quantity": "Quantity", "col_estimate": "Estimate", "col_ci": "95% CI",
        "col_band": "95% uniform band", "col_pct": "% of pre-reform mean", "col_p": "p-value", "col_n": "Stations",
        "col_group": "Subgroup", "col_by": "Grouping", "col_verdict": "Rating", "col_test": "Test",
        "col_stat": "Statistic", "col_df": "df", "col_dose": "Intensity",
        "q_acr_step": "{step}", "q_att_o": "Average effect at the intensity reached (ATT^o)",
        "q_switch_total": "Average total effect (per unit of treatment change)", "q_switch_in": "Effect of switching on",
        "q_switch_out": "Effect of switching off (sign as switching off)",
        "q_direct": "Direct effect at adopting stations", "q_spill": "Effect at untreated neighbours",
        "n_dose": "{n} adopting stations, {k} intensity levels", "n_switch": "{n_in} switched on, {n_out} off",
        "n_spill": "{n_ctl} not adopting, {n_exp} of them next to an adopter", "n_group": "{n_a} adopting, {n_c} comparison",
        "unrated_col": "not rated: {why}",
        "placebo_test_name": "Joint placebo test before the switch ({k} months, small-sample F)",
        "reason_no_stop_comparison": "no station was still running the reform, without stopping, when they stopped",
        "reason_dose_one_per_cohort": ("every adoption cohort has fewer distinct coverage shares than the dose curve "
                                       "needs (e.g. one station per cohort), so coverage shares cannot be compared"),
        "reason_few_switchers": ("too few switching stations for the small-sample F test (it needs more stations "
                                 "than placebo months plus one; the χ² test over-rejects here)"),
        "equality_row": "Equal effects across subgroups ({by})",
        "pct_note": "Percentages are of the adopting stations' monthly mean before adoption.",
        "dose_skipped_note": ("{outcome}: {cells} cohort-month cells have fewer distinct coverage shares than the "
                              "dose curve needs and are left out of the dose analysis; {unused} adopting stations "
                              "are therefore not used."),
        "dose_note": "Comparing intensities needs 'strong parallel trends'; the shaded area is the 95% uniform band.",
        "x_dose_share": "Coverage", "x_dose_unit": "Intensity", "x_switch": "Months since switching on or off",
        "x_spill": "Months since adoption (neighbours: since a neighbour adopted)",
        "att_d": "Effect by intensity ATT(d)", "acrt_d": "Marginal effect of intensity ACRT(d)",
        "acr_o": "Average marginal effect ACR^o",
        "band": "95% uniform band", "effects": "effects", "placebos": "placebos (before)",
        "direct": "adopting stations", "neighbours": "untreated neighbours", "overall_line": "overall effect",
        "n_label": "n={n}", "y_slope": "{step} ({unit})",
        "dir_in": "switching on", "dir_out": "switching off",
        "truth_sentence": "The true effects planted in the demo data are about: {parts}.", "truth_sep": "; ",
        "truth_dose": "{step}, {slope}; at the {level} each station reached, {att} on average",
        "truth_switch_in": "after switching on, {x}", "truth_switch_out": "after switching off, {x}",
        "truth_spill": "at untreated neighbours, {x} (of their expected level without it); at adopting stations, {direct}",
        "truth_group": "{group}, {x}",
        "col_truth": "Planted truth (demo)",
    },
}

#: recorded reasons of an analysis that could not run → key of :data:`ANALYSIS_TEXTS` (first match wins);
#: anything else: :func:`reason_words`
ANALYSIS_REASONS: tuple[tuple[str, str], ...] = (
    (r"have no intensity", "reason_dose_missing"),
    (r"intensity", "reason_no_intensity"),
    (r"no adjacency pair", "reason_adjacency_outside"),
    (r"adjacen", "reason_no_adjacency"),
    (r"subgroups: no column", "reason_no_group_column"),
    (r"subgroups: column .* is missing", "reason_group_missing"),
    (r"takes several values for station", "reason_group_varies"),
    (r"averages whole adoption cohorts", "reason_cs_cohorts"),
    (r"fewer than two subgroups", "reason_one_group"),
    (r"no unit switches|ended_on", "reason_no_switch"),
    (r"too few switchers for the small-sample test", "reason_few_switchers"),
    (r"no station keeps running the reform", "reason_no_stop_comparison"),
    (r"every adoption cohort has fewer distinct doses", "reason_dose_one_per_cohort"),
)


def at(key: str, lang: str, **kw: Any) -> str:
    """A word of the further-analysis sections (:data:`ANALYSIS_TEXTS`) in ``lang``, formatted."""
    text = ANALYSIS_TEXTS[lang][key]
    return text.format(**kw) if kw else text


def analysis_reason(reason: Any, lang: str) -> str:
    """Why an analysis is not available, in words: a known analysis reason, else :func:`reason_words`."""
    text = str(reason or "")
    for pattern, key in ANALYSIS_REASONS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return at(key, lang)
    return reason_words(reason, lang)


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
