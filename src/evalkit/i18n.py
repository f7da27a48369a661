"""Texts of notebooks and briefs in Chinese (default) and English, and number formatting."""

from __future__ import annotations

import math

from evalkit.estimators.specs import labels as estimator_labels
from evalkit.registry import OUTCOMES, REFORMS
from evalkit.verdict import MIN_ADOPTERS, MIN_COMPARISON

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "synthetic_notice": "合成演示数据 · 非真实警务数据 · 结论仅用于演示",
        "eval_id": "评估编号",
        "page": "第 {page} 页",
        "question_h": "评估问题",
        "question": "{reform}改革是否改变了{outcome}？评估范围：{stations}，{start} 至 {end}。",
        "stations_desc": "{n_treated} 个实施改革的派出所（对照：{n_control} 个未实施的派出所）",
        "answer_h": "结论",
        "answer": "实施{reform}后，{outcome}{effect}（95% 置信区间：{range}）。",
        "answer_null": "实施{reform}后，{outcome}未见明显变化（95% 置信区间：{range}）。",
        "answer_no_data": "{outcome}在评估期内全部缺失或始终不变，无法估计实施{reform}的效果。",
        "range": "{dir} {a}–{b}",
        "range_mixed": "介于{down} {a} 与{up} {b} 之间",
        "no_change": "未见明显变化",
        "disagree": "其他方法的估计区间与上述结果不重叠，结论取决于所用方法，需谨慎解读。",
        "pretrend_unavailable": "改革前趋势检验无法计算，原因：{reason}。",
        "up": "上升",
        "down": "下降",
        "change": "变化",
        "verdict_h": "证据评级",
        "naive_h": "同比口径对比",
        "naive": "按地方通报常用的同比口径（改革后 12 个月对比前 12 个月），{outcome}{direction} {pct}；"
                 "扣除同期趋势、季节和共同冲击后，{outcome}{causal}。",
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
        "months_since": "改革后月数",
        "effect_axis": "效果（{unit}）",
        "month_axis": "月份",
        "pilot_station": "试点派出所",
        "adoption": "改革实施",
        "suppressed": "<{n}",
        "pretrend_ok": "改革前趋势检验未发现显著差异（{method}，p = {p}）。",
        "pretrend_bad": "改革前趋势检验显示实施组与对照组已有差异（{method}，p = {p}），结论需谨慎。",
        "pretrend_na": "未进行改革前趋势检验。",
        "method_note": (
            "本评估采用双重差分法：比较实施改革的派出所在改革前后的变化，与同期未实施改革的派出所的变化之差。"
            "同一时期影响所有派出所的因素（整体趋势、季节、疫情等共同冲击）因此被扣除。"
            "各派出所实施时间不同，传统双向固定效应可能有偏，表中并列多种方法以便对照。"
            "标准误按{cluster}聚类；置信区间为 95%。"
        ),
        "other_note_incidents": "警情类别未能识别、归入“其他”的记录 {n} 条（占警情记录 {share}）。",
        "other_note_disputes": "纠纷类别未能识别、归入“其他”的记录 {n} 条（占纠纷记录 {share}）。",
        "gaps_note": "部分月份不在数据覆盖范围内的派出所：{stations} 个（共 {cells} 个派出所-月），按缺失处理，未计为零。",
        "data_note": "数据来源：{sources}。期间 {start} 至 {end}，共 {stations} 个派出所、{months} 个月、{rows} 个派出所-月观测。"
                     "入库时隔离的问题记录：{quarantined} 条。",
        "sources_demo": "合成演示数据（evalkit demo-data，已知真实效果）",
        "sources_wh": "警情、处警与矛盾纠纷记录（数据仓库）",
        "truth_note": "演示数据中植入的真实效果约为{truth}。",
        "failed_estimator": "{estimator} 未能完成：{error}",
        "diagnostics_h": "诊断",
        "synthetic_h": "试点派出所与其“合成对照”的走势",
        "pretrend_table_h": "改革前趋势联合检验（各方法）",
        "test_stat": "检验统计量",
        "pt_not_available": "无法计算，原因：{reason}",
        "pt_stat_impossible": "检验统计量不是有限的非负数（协方差矩阵奇异）",
        "df": "自由度",
        "test_method": "检验方法",
        "excluded_note": "对照组已排除同期实施了其他会影响该指标的改革的 {n} 个派出所：{reforms}。",
        "pt_method_chi2": "Wald χ² 检验",
        "pt_method_f": "小样本 F 检验（Hotelling）",
        "pt_method_permutation": "置换检验：随机重排实施时间 {draws} 次",
        "bacon_h": "Goodman-Bacon 分解：双向固定效应估计由哪些比较构成",
        "bacon_note": "双向固定效应系数是各类 2×2 比较的加权平均；“较晚实施 vs 较早实施”的比较以已实施的派出所作对照，"
                      "在效果随时间增长时会造成偏差。",
        "comparison": "比较类型",
        "weight": "权重",
        "bacon_types": "earlier_vs_later=较早实施 vs 较晚实施（未实施期作对照）;later_vs_earlier=较晚实施 vs 较早实施（已实施者作对照）;"
                       "treated_vs_never=实施 vs 从未实施;treated_vs_always=实施 vs 始终实施",
        "generated": "由 evalkit {version} 生成",
        "cluster_station_id": "派出所",
        "cluster_county": "区县",
        "cluster_city": "城市",
        "check": "类别",
        "check_estimator": "估计方法",
        "check_control": "对照组",
        "check_inference": "推断方法",
        "control_never": "从未实施的派出所",
        "control_notyet": "尚未实施的派出所",
        "weights_rademacher": "Rademacher 权重",
        "weights_webb": "Webb 权重",
        "row_cs_never": "Callaway–Sant'Anna，对照组：从未实施改革的派出所",
        "row_cs_notyet": "Callaway–Sant'Anna，对照组：尚未实施改革的派出所",
        "row_cs_mboot": "Callaway–Sant'Anna，乘数自助法置信区间（{boot} 次，对照组：{control}）",
        "row_twfe_wild": "双向固定效应，野聚类自助法 p 值与区间（{wild} 次，{weights}）",
        "row_ri": "{estimator}，随机化推断 p 值（{ri} 次随机置换）",
        "robustness_note": "表中前几行为不同估计方法；“对照组”行换用不同的对照派出所；“推断方法”行用不同方法计算置信区间和 p 值，估计值本身不变。",
        "outcome": "指标",
        "p_headline": "p 值（{estimator}）",
        "p_bh": "BH 校正后 p 值",
        "p_wild_raw": "p 值（{estimator}，置换检验）",
        "p_rw": "Romano–Wolf 校正后 p 值",
        "multiple_h": "多指标检验校正",
        "multiple_note": "同时检验多个指标时，偶然出现“显著”的机会增加。BH 校正控制错误发现率；Romano–Wolf 校正（基于{estimator}，实施时间置换 {draws} 次）控制至少一项误报的概率。校正后的 p 值不小于原始 p 值。",
        "sensitivity_h": "敏感性分析：若平行趋势不完全成立",
        "sensitivity_intro": "双重差分的前提是：若无改革，实施组与对照组会保持平行走势。下面检验这一前提被适度违反时结论是否仍成立（Rambachan 与 Roth 方法）。相对幅度图允许改革后的趋势偏离达到改革前最大偏离的 M̄ 倍；平滑度图允许两组差距的走势{step}弯曲至多 M。竖线为稳健置信区间，最左侧为原始区间；事件研究采用{source}。",
        "sens_source_cs": "Callaway–Sant'Anna 估计（以{base}为统一基期）",
        "sens_source_event_twfe": "动态双向固定效应",
        "sens_rm_sentence": "结论在以下情况下仍然成立：改革后趋势偏离不超过改革前最大偏离的 {x} 倍（M̄ = {x}，对象为改革后前 {n} 个月的平均效果）。",
        "sens_rm_inf": "即使改革后趋势偏离达到改革前最大偏离的 {x} 倍，结论仍然成立（改革后前 {n} 个月的平均效果）。",
        "sens_rm_zero": "只要改革后的趋势偏离哪怕很小，结论就不再成立（M̄ 临界值约为 0）。",
        "sens_not_sig": "即使假定平行趋势完全成立，改革后前 {n} 个月的平均效果也不显著，敏感性分析不会改变这一结论。",
        "sens_sd_sentence": "平滑度检验：只要两组差距的走势{step}弯曲不超过 {m}{unit}，结论仍然成立。",
        "sens_sd_zero": "平滑度检验：仅允许改革前趋势线性外推时，结论已不再成立。",
        "sens_robust_yes": "据此，证据评级认为结论对适度的趋势偏离稳健。",
        "sens_robust_no": "据此，证据评级认为结论对适度的趋势偏离不稳健。",
        "sens_chart_rm": "相对幅度（M̄）：前 {n} 个月平均效果",
        "sens_chart_sd": "平滑度（M）：前 {n} 个月平均效果",
        "sens_part_failed": "{part}未能完成：{reason}",
        "sens_part_rm": "相对幅度分析",
        "sens_part_breakdown_rm": "相对幅度临界值",
        "sens_part_breakdown_sd": "平滑度临界值",
        "sens_source_fallback": "Callaway–Sant'Anna 事件研究无法用于敏感性分析（{reason}），改用动态双向固定效应。",
        "pretrend_small_failed": "小样本改革前趋势检验未能完成（{reason}）；渐近 χ² 检验在此情形下不可靠，未用于证据评级。",
        "method_jackknife_failed": "刀切法标准误未能完成（{reason}），结论采用解析标准误。",
        "not_available": "{what}暂不可用：{reason}",
        "sensitivity_what": "敏感性分析",
        "multiple_what": "多指标检验校正",
        "ri_h": "随机化推断：把“改革”随机分配给其他派出所",
        "ri_text": "将实施改革的身份在派出所之间随机置换 {draws} 次，每次重新估计{estimator}；实际估计值比 {share} 的置换结果更极端，随机化推断 p 值为 {p}。",
        "method_controls": "对照组方面，同时给出以“从未实施改革的派出所”和以“尚未实施改革的派出所”为对照的 Callaway–Sant'Anna 估计（主结果采用{control}）。",
        "method_boot": "Callaway–Sant'Anna 的置信区间另用乘数自助法（{boot} 次）计算。",
        "method_jackknife": "实施改革的派出所较少，结论中的标准误采用逐一剔除{unit}的刀切法（jackknife），"
                            "置信区间按自由度为 {df} 的 t 分布计算；解析标准误在此情形下可能偏小。",
        "method_wild": "双向固定效应另用野聚类自助法（{draws} 次，{weights}）检验，p 值为 {p}。",
        "method_ri": "另对{estimator}做随机化推断（随机置换实施改革的派出所 {draws} 次），p 值为 {p}。",
        "method_sens": "敏感性分析采用 Rambachan 与 Roth（2023）的方法，考察平行趋势被适度违反时结论是否成立。",
        "method_multiple": "多个指标同时检验时给出 BH 与 Romano–Wolf 校正后的 p 值。",
        "method_verdict": "证据评级规则：置信区间不含零、做了改革前趋势检验且未见异常、做了敏感性分析且在改革后趋势偏离不超过改革前最大偏离一半时结论仍成立、"
                          "对照派出所不少于 5 个、实施改革的派出所不少于 2 个（单所设计除外）、其他方法的置信区间与之重叠，才评为“证据充分”；"
                          "显著但缺少其中任何一项评为“证据有限”；指标全部缺失或始终不变评为“数据不足”。",
    },
    "en": {
        "synthetic_notice": "SYNTHETIC DEMO DATA · not real police records · for demonstration only",
        "eval_id": "Evaluation",
        "page": "Page {page}",
        "question_h": "The question",
        "question": "Did the {reform} reform change {outcome}? Scope: {stations}, {start} to {end}.",
        "stations_desc": "{n_treated} adopting stations (comparison: {n_control} stations that did not adopt)",
        "answer_h": "The answer",
        "answer": "After {reform}, {outcome} {effect} (95% CI: {range}).",
        "answer_null": "After {reform}, {outcome} showed no clear change (95% CI: {range}).",
        "answer_no_data": "{outcome} is missing or constant throughout the evaluation, so the effect of {reform} "
                          "cannot be estimated.",
        "range": "{dir} {a}–{b}",
        "range_mixed": "between {down} {a} and {up} {b}",
        "no_change": "showed no clear change",
        "disagree": "Other methods give intervals that do not overlap this one: the conclusion depends on the "
                    "method, so read it with caution.",
        "pretrend_unavailable": "The pre-trend test is not available, because {reason}.",
        "up": "rose by",
        "down": "fell by",
        "change": "changed by",
        "verdict_h": "Strength of evidence",
        "naive_h": "The year-on-year figure",
        "naive": "Read year-on-year as local reports do (12 months after vs the 12 before), {outcome} {direction} {pct}; "
                 "net of common trends, seasonality and shocks, {outcome} {causal}.",
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
        "pilot_station": "Pilot station",
        "adoption": "adoption",
        "suppressed": "<{n}",
        "pretrend_ok": "The pre-adoption trend test finds no significant difference ({method}, p = {p}).",
        "pretrend_bad": "The pre-adoption trend test finds a difference before adoption ({method}, p = {p}); "
                        "read with care.",
        "pretrend_na": "No pre-trend test was run.",
        "method_note": (
            "This evaluation uses difference-in-differences: the change at adopting stations from before to after "
            "adoption, minus the change over the same months at stations that had not adopted. Anything that hits "
            "all stations at once (trends, seasons, the 2020 shock) cancels out. Because stations adopted at "
            "different times, plain two-way fixed effects can be biased, so several estimators are shown side by "
            "side. Standard errors are clustered by {cluster}; intervals are 95%."
        ),
        "other_note_incidents": "Incident records whose category was not recognised and counted as \"other\": {n} ({share} of incident records).",
        "other_note_disputes": "Dispute records whose category was not recognised and counted as \"other\": {n} ({share} of dispute records).",
        "gaps_note": "Stations with months outside the coverage of the data: {stations} ({cells} station-months in all), "
                     "treated as missing, never as zero.",
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
        "pt_not_available": "not available, because {reason}",
        "pt_stat_impossible": "the statistic is not a finite non-negative number (singular covariance)",
        "df": "df",
        "test_method": "Test",
        "excluded_note": "The comparison group leaves out {n} stations that adopted other reforms which also "
                         "move this outcome: {reforms}.",
        "pt_method_chi2": "Wald χ² test",
        "pt_method_f": "small-sample F test (Hotelling)",
        "pt_method_permutation": "permutation test ({draws} random re-assignments of adoption dates)",
        "bacon_h": "Goodman-Bacon decomposition: what the TWFE estimate is made of",
        "bacon_note": "The TWFE coefficient is a weighted average of 2×2 comparisons; comparisons of later adopters "
                      "against earlier adopters use already-treated stations as controls and are biased when effects grow.",
        "comparison": "Comparison",
        "weight": "Weight",
        "bacon_types": "earlier_vs_later=earlier vs later adopters;later_vs_earlier=later vs earlier adopters (already treated as controls);"
                       "treated_vs_never=adopters vs never adopters;treated_vs_always=adopters vs always treated",
        "generated": "Generated by evalkit {version}",
        "cluster_station_id": "station",
        "cluster_county": "county",
        "cluster_city": "city",
        "check": "Check",
        "check_estimator": "Estimator",
        "check_control": "Control group",
        "check_inference": "Inference",
        "control_never": "never-treated stations",
        "control_notyet": "not-yet-treated stations",
        "weights_rademacher": "Rademacher weights",
        "weights_webb": "Webb weights",
        "row_cs_never": "Callaway–Sant'Anna, controls: never-treated stations",
        "row_cs_notyet": "Callaway–Sant'Anna, controls: not-yet-treated stations",
        "row_cs_mboot": "Callaway–Sant'Anna, multiplier-bootstrap interval ({boot} draws; controls: {control})",
        "row_twfe_wild": "TWFE, wild cluster bootstrap p-value and interval ({wild} draws, {weights})",
        "row_ri": "{estimator}, randomization-inference p-value ({ri} permutations)",
        "robustness_note": "The first rows are different estimators; the control-group rows use different comparison "
                           "stations; the inference rows compute intervals and p-values differently for the same estimate.",
        "outcome": "Outcome",
        "p_headline": "p-value ({estimator})",
        "p_bh": "BH-adjusted p",
        "p_wild_raw": "p-value ({estimator}, permutation)",
        "p_rw": "Romano–Wolf adjusted p",
        "multiple_h": "Several outcomes: adjusted p-values",
        "multiple_note": "Testing several outcomes raises the chance of a 'significant' result by luck. BH controls the "
                         "false discovery rate; Romano–Wolf ({estimator}, {draws} permutations of the adoption dates) controls the chance of "
                         "any false positive. Adjusted p-values are never smaller than the unadjusted ones.",
        "sensitivity_h": "Sensitivity: what if parallel trends do not hold exactly?",
        "sensitivity_intro": "Difference-in-differences assumes that without the reform adopters and comparison stations "
                             "would have moved in parallel. Below we check whether the conclusion survives moderate "
                             "violations (Rambachan and Roth). In the relative-magnitudes chart post-reform trend deviations "
                             "may reach M̄ times the largest pre-reform deviation; in the smoothness chart the gap between "
                             "the groups may bend by up to M {step}. Bars are robust confidence intervals, the "
                             "leftmost is the original one; event study: {source}.",
        "sens_source_cs": "Callaway–Sant'Anna (with {base} as a common base period)",
        "sens_source_event_twfe": "dynamic TWFE",
        "sens_rm_sentence": "The conclusion holds unless post-reform trend deviations exceed M̄ = {x} times the largest "
                            "pre-reform deviation (average effect over the first {n} months).",
        "sens_rm_inf": "The conclusion holds even if post-reform trend deviations reach {x} times the largest "
                       "pre-reform deviation (average effect over the first {n} months).",
        "sens_rm_zero": "The conclusion does not survive even small post-reform trend deviations (breakdown M̄ ≈ 0).",
        "sens_not_sig": "Even if parallel trends hold exactly, the average effect over the first {n} months is not "
                        "significant; the sensitivity analysis cannot change that.",
        "sens_sd_sentence": "Smoothness check: the conclusion holds as long as the gap between the groups bends by no "
                            "more than {m} {unit} {step}.",
        "sens_sd_zero": "Smoothness check: the conclusion already fails when the pre-reform trend is only extrapolated linearly.",
        "sens_robust_yes": "The strength-of-evidence rating therefore treats the conclusion as robust to moderate trend deviations.",
        "sens_robust_no": "The strength-of-evidence rating therefore treats the conclusion as not robust to moderate trend deviations.",
        "sens_chart_rm": "Relative magnitudes (M̄): first {n} months",
        "sens_chart_sd": "Smoothness (M): first {n} months",
        "sens_part_failed": "{part} failed: {reason}",
        "sens_part_rm": "The relative-magnitudes analysis",
        "sens_part_breakdown_rm": "The relative-magnitudes breakdown value",
        "sens_part_breakdown_sd": "The smoothness breakdown value",
        "sens_source_fallback": "The Callaway–Sant'Anna event study could not be used for the sensitivity analysis "
                                "({reason}); the dynamic TWFE event study is used instead.",
        "pretrend_small_failed": "The small-sample pre-trend test failed ({reason}); the asymptotic χ² test is unreliable "
                                 "here and is not used for the rating.",
        "method_jackknife_failed": "The jackknife standard error failed ({reason}); the analytic one is used.",
        "not_available": "{what} not available: {reason}",
        "sensitivity_what": "Sensitivity analysis",
        "multiple_what": "Multiple-testing adjustment",
        "ri_h": "Randomization inference: the reform reassigned at random",
        "ri_text": "The adopting stations were reshuffled at random {draws} times and {estimator} re-estimated each time; the "
                   "actual estimate is more extreme than {share} of the reshuffled ones: randomization p-value {p}.",
        "method_controls": "For the control group, Callaway–Sant'Anna is shown both against never-treated and against "
                           "not-yet-treated stations (the main result uses {control}).",
        "method_boot": "Callaway–Sant'Anna intervals are also computed by the multiplier bootstrap ({boot} draws).",
        "method_jackknife": "Few stations adopted, so the headline standard error is a delete-one-{unit} jackknife "
                            "with a t interval on {df} degrees of freedom; the analytic one can be too small with so few adopters.",
        "method_wild": "TWFE is also tested with the wild cluster bootstrap ({draws} draws, {weights}): p = {p}.",
        "method_ri": "Randomization inference on {estimator} (adopting stations reshuffled {draws} times) gives p = {p}.",
        "method_sens": "The sensitivity analysis (Rambachan and Roth, 2023) asks whether the conclusion holds when "
                       "parallel trends are moderately violated.",
        "method_multiple": "With several outcomes, BH and Romano–Wolf adjusted p-values are shown.",
        "method_verdict": "Rating rules: 'Strong evidence' needs an interval excluding zero, a pre-trend test that ran "
                          "and shows no problem, a sensitivity analysis that ran and finds the conclusion surviving "
                          "post-reform trend deviations up to half the largest pre-reform deviation, at least 5 "
                          "comparison stations and (outside the single-station design) 2 adopting stations, and "
                          "intervals of other methods that overlap it; significant but missing any of these is "
                          "'Limited evidence'; an outcome missing or constant everywhere is 'No usable data'.",
    },
}

# page 1 (every outcome), the estimand, the headline rule, pre-trend tests and failure reasons
# (evalkit.brief_words, evalkit.brief_text)
TEXTS["zh"].update({
    "estimand": "估计对象：实施改革的派出所在改革后第{a}–{b}个月的平均效果。",
    "estimand_all_post": "估计对象：试点派出所改革后各月的平均效果。",
    "outcomes_h": "各项指标一览",
    "line": "{outcome}：{effect}（{extra}95% 置信区间：{range}）。评级：{label}。",
    "line_null": "{outcome}：未见明显变化（95% 置信区间：{range}）。评级：{label}。",
    "line_no_data": "{outcome}：全部缺失或始终不变，无法估计。评级：{label}。",
    "line_failed": "{outcome}：未能估计，原因：{reason}。",
    "extra_level": "每个派出所每月 {n}；",
    "extra_pct": "即 {p}；",
    "pretrend_chi2_differs": "同一统计量按 χ² 分布计算的 p 值为 {p}，结论与之不同：派出所较少时，基于聚类稳健协方差的 χ² "
                             "检验会过度拒绝，证据评级因此采用{method}。",
    "pretrend_table_note": "证据评级只采用{estimator}的{method}（p = {p}）；其他行是各方法自带的检验，派出所较少时 χ² "
                           "检验会过度拒绝，仅供参考。",
    "different_question_col": "注",
    "different_question": "† 该行回答的是另一个问题：估计对象与结论不同（例如月份范围或权重不同），数值不宜直接与结论比较。",
    "tech_h": "技术附录：记录的失败原因",
    "choice_user": "主要结果采用{estimator}，由评估参数指定。",
    "choice_small_design": "主要结果采用{estimator}：本设计较小（实施改革的派出所 {n_treated} 个、对照派出所 {n_control} 个，"
                           "任一少于 {min_adopters} 个即视为小设计），此时插补估计量利用全部改革前月份构造对照，检验力更高。",
    "choice_large_design": "主要结果采用{estimator}：本设计较大（实施改革的派出所 {n_treated} 个、对照派出所 {n_control} 个，"
                           "均不少于 {min_adopters} 个），数据足以采用只要求改革前最后一个月起平行趋势的 Callaway–Sant'Anna 估计量。",
    "choice_single_station": "主要结果采用{estimator}：只有一个试点派出所，采用单所设计的合成对照方法。",
    "choice_other": "主要结果采用{estimator}。",
    "sens_estimand": "敏感性分析针对与结论相同的估计对象：改革后第{a}–{b}个月的平均效果。",
    "sens_bins": "派出所较少，逐月系数的协方差无法估计，事件研究按每 {k} 个月合并为一组。",
    "reason_mboot_few": "聚类少于 12 个时乘数自助法的区间过窄",
    "reason_wild_many": "聚类数以千计，解析的聚类稳健 p 值与区间已足够（与自助法只差蒙特卡洛误差）",
    "skipped_estimator": "{estimator} 未采用：{error}",
    "reason_balanced": "该方法需要平衡面板（每个派出所每个月都有数据），本样本不满足",
    "reason_one_adopter": "只有一个实施改革的派出所",
    "reason_no_adopters": "样本中没有实施改革的派出所",
    "reason_no_controls": "样本中没有可作对照的派出所",
    "reason_permutation_failed": "置换检验的每一次抽样都未能完成",
    "reason_singular": "协方差矩阵奇异（派出所或聚类太少）",
    "reason_few_clusters": "聚类（派出所或区县）太少",
    "reason_f_undefined": "实施改革的派出所少于该检验所需的数量",
    "reason_no_leads": "改革前没有可供检验的月份",
    "reason_no_timing": "各派出所实施时间没有差异",
    "reason_disconnected": "未实施改革的观测不足以识别各月的共同变化",
    "reason_counts_only": "该方法只适用于计数指标",
    "reason_not_requested": "评估参数未要求该方法",
    "reason_other": "计算出错（技术细节见英文版报告的技术附录或 results.json）",
})
TEXTS["en"].update({
    "estimand": "What is estimated: the average effect over months {a}–{b} after adoption at the adopting stations.",
    "estimand_all_post": "What is estimated: the average effect over all months after adoption at the pilot station.",
    "outcomes_h": "All outcomes at a glance",
    "line": "{outcome}: {effect} ({extra}95% CI: {range}). Rating: {label}.",
    "line_null": "{outcome}: no clear change (95% CI: {range}). Rating: {label}.",
    "line_no_data": "{outcome}: missing or constant throughout, no estimate. Rating: {label}.",
    "line_failed": "{outcome}: no estimate, because {reason}.",
    "extra_level": "{n} per station-month; ",
    "extra_pct": "{p}; ",
    "pretrend_chi2_differs": "The χ² p-value of the same statistic is {p} and points the other way: with few stations "
                             "the χ² test on a cluster-robust covariance over-rejects, so the rating uses the {method}.",
    "pretrend_table_note": "The rating uses only the {method} of {estimator} (p = {p}); the other rows are each "
                           "method's own test, and with few stations the χ² test over-rejects: for reference only.",
    "different_question_col": "Note",
    "different_question": "† This row answers a different question: its estimand differs from the answer's (e.g. "
                          "other months or weights), so its number is not directly comparable.",
    "tech_h": "Technical appendix: recorded failure reasons",
    "choice_user": "The headline uses {estimator}, as the params file asks (headline: {name}).",
    "choice_small_design": "The headline uses {estimator}: the design is small ({n_treated} adopting and {n_control} "
                           "comparison stations; below {min_adopters} of either counts as small), and the imputation "
                           "estimator, which builds the counterfactual from every pre-adoption month, has more power there.",
    "choice_large_design": "The headline uses {estimator}: the design is large ({n_treated} adopting and {n_control} "
                           "comparison stations, both at least {min_adopters}), so the data can afford Callaway–Sant'Anna, "
                           "which needs parallel trends only from the last month before adoption.",
    "choice_single_station": "The headline uses {estimator}: one pilot station, so the single-station design's "
                             "synthetic-control method is used.",
    "choice_other": "The headline uses {estimator}.",
    "sens_estimand": "The sensitivity analysis bounds the same quantity as the answer: the average effect over months "
                     "{a}–{b} after adoption.",
    "sens_bins": "There are too few stations to estimate the covariance of monthly coefficients, so the event study "
                 "uses {k}-month bins.",
    "reason_mboot_few": "with fewer than 12 clusters its interval is far too narrow",
    "reason_wild_many": "with thousands of clusters the analytic cluster-robust p-value and interval suffice (they "
                        "differ from the bootstrap's by Monte Carlo error only)",
    "skipped_estimator": "{estimator} not used: {error}",
    "reason_balanced": "the method needs a balanced panel (every station observed every month), which this sample is not",
    "reason_one_adopter": "only one station adopted the reform",
    "reason_no_adopters": "no station in the sample adopted the reform",
    "reason_no_controls": "no station in the sample can serve as a comparison",
    "reason_permutation_failed": "every permutation draw failed",
    "reason_singular": "the covariance matrix is singular (too few stations or clusters)",
    "reason_few_clusters": "there are too few clusters (stations or counties)",
    "reason_f_undefined": "fewer stations adopted than the test needs",
    "reason_no_leads": "there are no pre-adoption months to test",
    "reason_no_timing": "all stations adopted at the same time",
    "reason_disconnected": "the non-adopting observations cannot identify the common monthly changes",
    "reason_counts_only": "the method applies to count outcomes only",
    "reason_not_requested": "the params did not ask for this method",
    "reason_other": "the computation failed (technical detail in the appendix)",
})

# estimator labels live in the estimator specs (evalkit.estimators.specs), one place per estimator
ESTIMATOR_LABELS: dict[str, dict[str, str]] = {lang: estimator_labels(lang) for lang in ("zh", "en")}


# verdict labels and explanations (codes and rules: evalkit.verdict)
VERDICT_LABELS: dict[str, dict[str, str]] = {
    "strong": {"zh": "证据充分", "en": "Strong evidence"},
    "limited": {"zh": "证据有限", "en": "Limited evidence"},
    "no_effect": {"zh": "未见明显效果", "en": "No clear effect"},
    "pretrend_doubtful": {"zh": "前期趋势存疑", "en": "Pre-trends doubtful"},
    "no_data": {"zh": "数据不足", "en": "No usable data"},
}

VERDICT_EXPLANATIONS: dict[str, dict[str, str]] = {
    "strong_robust": {"zh": "95% 置信区间不含零，改革前趋势检验未见异常，且在允许适度偏离平行趋势时结论仍成立。",
                      "en": "The 95% interval excludes zero, the pre-trend test shows no problem, and the "
                            "conclusion survives moderate departures from parallel trends."},
    "limited": {"zh": "效果仅在 10% 水平显著，证据偏弱。",
                "en": "The effect is significant only at the 10% level."},
    "limited_fragile": {"zh": "95% 置信区间不含零，但在允许适度偏离平行趋势时结论不再成立（见敏感性分析）。",
                        "en": "The 95% interval excludes zero, but the conclusion does not survive modest "
                              "departures from parallel trends (sensitivity analysis)."},
    "no_effect": {"zh": "置信区间包含零，数据与“没有效果”相容。",
                  "en": "The interval includes zero: the data are compatible with no effect."},
    "pretrend_doubtful": {"zh": "改革前实施组与对照组走势已有差异，对照组可能不可比。",
                          "en": "Adopters and comparison stations already diverged before adoption."},
    "no_data": {"zh": "该指标在评估范围内全部缺失或始终不变，无法估计效果（这不等于“没有效果”）。",
                "en": "The outcome is missing or constant throughout the evaluation: no effect can be "
                      "estimated (which is not the same as no effect)."},
    "capped": {"zh": "95% 置信区间不含零，但评级最高为“证据有限”：{caps}。",
               "en": "The 95% interval excludes zero, but the rating is capped at 'Limited evidence': {caps}."},
}

# why a significant estimate is capped at "limited" (evalkit.verdict.CAPS); {n}: the station count
VERDICT_CAPS: dict[str, dict[str, str]] = {
    "one_adopter": {"zh": "只有一个实施改革的派出所，请改用单所设计（design: single_station）",
                    "en": "one adopting station: use the single-station design (design: single_station)"},
    "few_adopters": {"zh": "实施改革的派出所仅 {n} 个（至少需要 {min} 个）",
                     "en": "only {n} adopting stations (at least {min} needed)"},
    "few_comparison": {"zh": "对照派出所仅 {n} 个（评为“证据充分”至少需要 {min} 个）",
                       "en": "only {n} comparison stations (at least {min} needed for 'Strong evidence')"},
    "no_pretrend": {"zh": "未能进行改革前趋势检验", "en": "no pre-trend test could be run"},
    "no_sensitivity": {"zh": "该指标未进行敏感性分析", "en": "no sensitivity analysis was run for this outcome"},
    "fragile": {"zh": "在允许适度偏离平行趋势时结论不再成立（见敏感性分析）",
                "en": "the conclusion does not survive modest departures from parallel trends (sensitivity analysis)"},
    "estimators_disagree": {"zh": "其他方法的置信区间与此不重叠",
                            "en": "other methods give intervals that do not overlap this one"},
}

CAP_FALLBACK = {"zh": "另一项“证据充分”的要求未满足", "en": "another requirement of 'Strong evidence' is not met"}


def t(key: str, lang: str = "zh", **kw: object) -> str:
    """Look up a text in ``lang`` and format it."""
    text = TEXTS[lang][key]
    return text.format(**kw) if kw else text


def verdict_label(code: str, lang: str = "zh") -> str:
    """The verdict's name on page 1 (证据充分 …)."""
    return VERDICT_LABELS[code][lang]


def verdict_explanation(reason: str, lang: str = "zh", caps: tuple[str, ...] = (),
                        n_treated: int | None = None, n_control: int | None = None) -> str:
    """One sentence on why the verdict is what it is (``Verdict.reason``; for ``capped``, every
    requirement missed, ``Verdict.caps``, with the station counts of the floors)."""
    if reason != "capped":
        return VERDICT_EXPLANATIONS.get(reason, {}).get(lang, "")
    counts = {"few_adopters": (n_treated, MIN_ADOPTERS), "few_comparison": (n_control, MIN_COMPARISON)}
    parts = []
    for c in caps:  # a cap key this version has no words for still gets a sentence
        n, floor = counts.get(c, (None, None))
        parts.append(VERDICT_CAPS.get(c, CAP_FALLBACK)[lang].format(n="—" if n is None else n, min=floor))
    return VERDICT_EXPLANATIONS["capped"][lang].format(caps=("；" if lang == "zh" else "; ").join(parts))


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
