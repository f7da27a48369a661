"""Texts of notebooks and briefs in Chinese (default) and English, and number formatting."""

from __future__ import annotations

import math

from evalkit.registry import OUTCOMES, REFORMS

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "synthetic_notice": "合成演示数据 · 非真实警务数据 · 结论仅用于演示",
        "eval_id": "评估编号",
        "page": "第 {page} 页",
        "question_h": "评估问题",
        "question": "{reform}改革是否改变了{outcome}？评估范围：{stations}，{start} 至 {end}。",
        "stations_desc": "{n_treated} 个实施改革的派出所（对照：{n_control} 个未实施的派出所）",
        "answer_h": "结论",
        "answer": "{estimator}估计，实施{reform}后，{outcome}{direction} {pct}（95% 置信区间 {lo} 至 {hi}）。",
        "answer_level": "{estimator}估计，实施{reform}后，{outcome}平均变化 {eff}{unit}（95% 置信区间 {lo} 至 {hi}）。",
        "up": "上升",
        "down": "下降",
        "change": "变化",
        "verdict_h": "证据评级",
        "naive_h": "同比口径对比",
        "naive": "按地方通报常用的同比口径（改革后 12 个月对比前 12 个月），{outcome}{direction} {pct}；"
                 "扣除同期趋势、季节和共同冲击后的因果估计为 {causal}。",
        "naive_why": "两者不同，是因为同比口径把改革效果与同期的整体趋势、季节变化和全省共同冲击混在一起，"
                     "而双重差分用未实施改革的派出所作对照，把这些因素扣除掉。",
        "estimates_h": "估计结果（各方法对比）",
        "event_h": "事件研究：改革前后逐月效果",
        "trends_h": "实施与未实施改革派出所的走势",
        "method_h": "方法说明",
        "data_h": "数据说明",
        "estimator": "方法",
        "estimate": "估计值",
        "ci": "95% 置信区间",
        "p_value": "p 值",
        "pct": "相对变化",
        "n_treated": "实施所数",
        "n_control": "对照所数",
        "treated_group": "实施改革的派出所",
        "control_group": "未实施改革的派出所",
        "months_since": "距改革实施的月数",
        "effect_axis": "效果（{unit}）",
        "month_axis": "月份",
        "adoption": "改革实施",
        "suppressed": "<{n}",
        "pretrend_ok": "改革前趋势检验未发现显著差异（p = {p}）。",
        "pretrend_bad": "改革前趋势检验显示实施组与对照组已有差异（p = {p}），结论需谨慎。",
        "pretrend_na": "未进行改革前趋势检验。",
        "method_note": (
            "本评估采用双重差分法：比较实施改革的派出所在改革前后的变化，与同期未实施改革的派出所的变化之差。"
            "同一时期影响所有派出所的因素（整体趋势、季节、疫情等共同冲击）因此被扣除。"
            "各派出所实施时间不同，传统双向固定效应可能有偏，表中并列多种方法以便对照。"
            "标准误按派出所聚类；置信区间为 95%。"
        ),
        "data_note": "数据来源：{sources}。期间 {start} 至 {end}，共 {stations} 个派出所、{months} 个月、{rows} 个派出所-月观测。"
                     "入库时隔离的问题记录：{quarantined} 条。",
        "sources_demo": "合成演示数据（evalkit demo-data，已知真实效果）",
        "sources_wh": "警情、处警与矛盾纠纷记录（数据仓库）",
        "truth_note": "演示数据中植入的真实效果约为 {truth}。",
        "failed_estimator": "{estimator} 未能完成：{error}",
        "diagnostics_h": "诊断",
        "synthetic_h": "试点派出所与其“合成对照”的走势",
        "pretrend_table_h": "改革前趋势联合检验（各方法）",
        "test_stat": "检验统计量",
        "df": "自由度",
        "bacon_h": "Goodman-Bacon 分解：双向固定效应估计由哪些比较构成",
        "bacon_note": "双向固定效应系数是各类 2×2 比较的加权平均；“较晚实施 vs 较早实施”的比较以已实施的派出所作对照，"
                      "在效果随时间增长时会造成偏差。",
        "comparison": "比较类型",
        "weight": "权重",
        "bacon_types": "earlier_vs_later=较早实施 vs 较晚实施（未实施期作对照）;later_vs_earlier=较晚实施 vs 较早实施（已实施者作对照）;"
                       "treated_vs_never=实施 vs 从未实施;treated_vs_always=实施 vs 始终实施",
        "generated": "由 evalkit {version} 生成",
    },
    "en": {
        "synthetic_notice": "SYNTHETIC DEMO DATA · not real police records · for demonstration only",
        "eval_id": "Evaluation",
        "page": "Page {page}",
        "question_h": "The question",
        "question": "Did the {reform} reform change {outcome}? Scope: {stations}, {start} to {end}.",
        "stations_desc": "{n_treated} adopting stations (comparison: {n_control} stations that did not adopt)",
        "answer_h": "The answer",
        "answer": "By {estimator}, after {reform} {outcome} {direction} {pct} (95% CI {lo} to {hi}).",
        "answer_level": "By {estimator}, after {reform} {outcome} changed by {eff} {unit} on average (95% CI {lo} to {hi}).",
        "up": "rose by",
        "down": "fell by",
        "change": "changed by",
        "verdict_h": "Strength of evidence",
        "naive_h": "The year-on-year figure",
        "naive": "Read year-on-year as local reports do (12 months after vs the 12 before), {outcome} {direction} {pct}; "
                 "net of common trends, seasonality and shocks the causal estimate is {causal}.",
        "naive_why": "They differ because the year-on-year figure mixes the reform with province-wide trends, "
                     "seasonality and common shocks; difference-in-differences removes them by comparing with "
                     "stations that did not adopt.",
        "estimates_h": "Estimates (methods side by side)",
        "event_h": "Event study: effect by month since adoption",
        "trends_h": "Adopting vs non-adopting stations over time",
        "method_h": "Method note",
        "data_h": "Data note",
        "estimator": "Estimator",
        "estimate": "Estimate",
        "ci": "95% CI",
        "p_value": "p-value",
        "pct": "Relative change",
        "n_treated": "Adopting",
        "n_control": "Comparison",
        "treated_group": "Adopting stations",
        "control_group": "Non-adopting stations",
        "months_since": "Months since adoption",
        "effect_axis": "Effect ({unit})",
        "month_axis": "Month",
        "adoption": "adoption",
        "suppressed": "<{n}",
        "pretrend_ok": "The pre-adoption trend test finds no significant difference (p = {p}).",
        "pretrend_bad": "The pre-adoption trend test finds a difference before adoption (p = {p}); read with care.",
        "pretrend_na": "No pre-trend test was run.",
        "method_note": (
            "This evaluation uses difference-in-differences: the change at adopting stations from before to after "
            "adoption, minus the change over the same months at stations that had not adopted. Anything that hits "
            "all stations at once (trends, seasons, the 2020 shock) cancels out. Because stations adopted at "
            "different times, plain two-way fixed effects can be biased, so several estimators are shown side by "
            "side. Standard errors are clustered by station; intervals are 95%."
        ),
        "data_note": "Sources: {sources}. Period {start} to {end}: {stations} stations, {months} months, "
                     "{rows} station-months. Records quarantined at ingest: {quarantined}.",
        "sources_demo": "synthetic demo data (evalkit demo-data, with known true effects)",
        "sources_wh": "incident, dispatch and dispute-mediation records (warehouse)",
        "truth_note": "The true effect planted in the demo data is about {truth}.",
        "failed_estimator": "{estimator} did not complete: {error}",
        "diagnostics_h": "Diagnostics",
        "synthetic_h": "The pilot station against its synthetic counterpart",
        "pretrend_table_h": "Joint pre-trend tests (by estimator)",
        "test_stat": "Statistic",
        "df": "df",
        "bacon_h": "Goodman-Bacon decomposition: what the TWFE estimate is made of",
        "bacon_note": "The TWFE coefficient is a weighted average of 2×2 comparisons; comparisons of later adopters "
                      "against earlier adopters use already-treated stations as controls and are biased when effects grow.",
        "comparison": "Comparison",
        "weight": "Weight",
        "bacon_types": "earlier_vs_later=earlier vs later adopters;later_vs_earlier=later vs earlier adopters (already treated as controls);"
                       "treated_vs_never=adopters vs never adopters;treated_vs_always=adopters vs always treated",
        "generated": "Generated by evalkit {version}",
    },
}

ESTIMATOR_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "naive_yoy": "同比口径（改革前后对比）",
        "did2x2": "经典 2×2 双重差分",
        "twfe": "双向固定效应（TWFE）",
        "event_twfe": "动态双向固定效应（事件研究）",
        "cs": "Callaway–Sant'Anna 交错双重差分",
        "sa": "Sun–Abraham 交互加权",
        "imputation": "插补估计（Borusyak 等）",
        "bacon": "Goodman-Bacon 分解",
        "poisson": "泊松固定效应（PPML）",
        "sdid": "合成双重差分（SDID）",
        "sc": "合成控制法（SC）",
    },
    "en": {
        "naive_yoy": "Naive year-on-year (before/after)",
        "did2x2": "Canonical 2×2 DiD",
        "twfe": "Two-way fixed effects (TWFE)",
        "event_twfe": "Dynamic TWFE (event study)",
        "cs": "Callaway–Sant'Anna staggered DiD",
        "sa": "Sun–Abraham interaction-weighted",
        "imputation": "Imputation (Borusyak et al.)",
        "bacon": "Goodman-Bacon decomposition",
        "poisson": "Poisson fixed effects (PPML)",
        "sdid": "Synthetic difference-in-differences (SDID)",
        "sc": "Synthetic control (SC)",
    },
}


def t(key: str, lang: str = "zh", **kw: object) -> str:
    """Look up a text in ``lang`` and format it."""
    text = TEXTS[lang][key]
    return text.format(**kw) if kw else text


def estimator_label(name: str, lang: str = "zh") -> str:
    return ESTIMATOR_LABELS[lang].get(name, name)


def reform_label(reform: str, lang: str = "zh") -> str:
    r = REFORMS[reform]
    return f"“{r.zh}”" if lang == "zh" else f"{r.en} ({r.zh})"


def outcome_label(outcome: str, lang: str = "zh") -> str:
    o = OUTCOMES[outcome]
    return o.zh if lang == "zh" else o.en.lower() if not o.en[:2].isupper() else o.en


def outcome_unit(outcome: str, lang: str = "zh") -> str:
    o = OUTCOMES[outcome]
    if o.kind == "share":
        return "百分点" if lang == "zh" else "percentage points"
    return o.unit_zh if lang == "zh" else o.unit_en


def fmt_num(x: float | None, lang: str = "zh", digits: int = 2) -> str:
    """Format a number for the language (thousands separators; '—' for missing)."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "—"
    return f"{x:,.{digits}f}"


def fmt_pct(x: float | None, lang: str = "zh", digits: int = 1, signed: bool = False) -> str:
    """Format a percentage (input in percent units: 23.7 → '23.7%')."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "—"
    return f"{x:+.{digits}f}%" if signed else f"{x:.{digits}f}%"


def fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
