"""Page 1 of the brief for every outcome, and diagnostics in words (issue 14).

Evaluations are built from hand-made results (no fitting), so every zh / en sentence is asserted
exactly: one line per outcome in its own unit and in percent, signs that never mix, null results
as "no clear change", "no data", the estimand in plain words, answer sentences without method
names, the headline rule, every verdict cap, pre-trend tests that disagree, localized failure
reasons, the different-question footnote, the multiple-testing and randomization labels."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evalkit.brief_text import (
    different_question,
    estimates_table,
    headline_text,
    method_note,
    multiple_table,
    outcome_lines,
    pretrend_table_note,
    sensitivity_sentences,
    variant_label,
)
from evalkit.brief_words import change_range, headline_choice_sentence, reason_words, technical_reasons
from evalkit.evaluation import Evaluation, WarehouseFacts
from evalkit.i18n import estimator_label, verdict_explanation
from evalkit.params import validate_params
from evalkit.results import EstimationResult
from evalkit.verdict import CAPS

PRE_OK = {"p_value": 0.40, "stat": 5.1, "df": 6, "method": "permutation", "draws": 999, "status": "ok"}
ESTIMATORS = set(estimator_label(n, lang) for n in ("cs", "imputation", "sa", "twfe", "sdid") for lang in ("zh", "en"))


def _result(name: str, outcome: str, est: float, lo: float, hi: float, p: float, *, base: float = 100.0,
            pretrend: dict | None = None, estimand: str | None = None) -> EstimationResult:
    """A fitted result with level effect ``est`` [lo, hi] around a baseline mean ``base``."""
    row = {"kind": "overall", "term": "ATT", "estimate": est, "std_error": (hi - lo) / 3.92,
           "ci_low": lo, "ci_high": hi, "p_value": p}
    meta = {"baseline_mean": base, "sample": {"n_treated": 20, "n_control": 40}}
    if pretrend is not None:
        meta["pretrend"] = pretrend
    if estimand is not None:
        meta["estimand"] = estimand
    return EstimationResult(name, outcome, pd.DataFrame([row]), meta)


def _ev(results: dict[str, list[EstimationResult]], *, lang: str = "zh", headline: str = "cs",
        failures: dict | None = None, robust: bool | None = True, values: dict | None = None,
        design: str = "staggered", **kw) -> Evaluation:
    outcomes = list(results) + [o for o in (failures or {}) if o not in results]
    params = validate_params({"evaluation_id": "page1", "reform": "两队一室", "outcomes": outcomes,
                              "warehouse": "w.duckdb", "lang": lang, "event_window": [-12, 24]})
    params.design, params.headline = design, headline
    n = 12
    panel = pd.DataFrame({"station_id": np.repeat(np.arange(n), 4), "period": np.tile(np.arange(4), n),
                          "first_treat": np.repeat(np.where(np.arange(n) < 4, 2, 0), 4)})
    for o in outcomes:
        panel[o] = (values or {}).get(o, np.arange(4 * n, dtype=float))
    facts = WarehouseFacts(path="w.duckdb", synthetic=False, quarantined=0, rows={})
    sens = None if robust is None else SimpleNamespace(outcome=outcomes[0], robust=robust)
    return Evaluation(params=params, panel=panel,
                      results={o: {r.estimator: r for r in rs} for o, rs in results.items()},
                      failures=failures or {}, facts=facts, sensitivity=sens, **kw)


def _three_outcomes(lang: str) -> Evaluation:
    return _ev({
        "incidents_fight": [_result("cs", "incidents_fight", -1.2, -1.4, -0.6, 0.001, base=2.0, pretrend=PRE_OK)],
        "response_mean_min": [_result("cs", "response_mean_min", -1.2, -1.9, -0.5, 0.002, base=15.0)],
        "share_within_5min": [_result("cs", "share_within_5min", 0.004, -0.010, 0.018, 0.5, base=0.4)],
    }, lang=lang)


# ----------------------------------------------------------------------------- one line per outcome
def test_page1_has_one_line_per_outcome_in_its_own_unit_zh():
    assert outcome_lines(_three_outcomes("zh")) == [
        "打架斗殴警情：下降 60.0%（每个派出所每月 1.2 起；95% 置信区间：下降 30.0%–70.0%）。评级：证据充分。",
        "平均到场时间：缩短 1.2 分钟（即 8.0%；95% 置信区间：缩短 0.5–1.9 分钟）。评级：证据有限。",
        "5分钟到场率：未见明显变化（95% 置信区间：介于下降 1.0 百分点 与上升 1.8 百分点 之间）。评级：未见明显效果。",
    ]


def test_page1_has_one_line_per_outcome_in_its_own_unit_en():
    assert outcome_lines(_three_outcomes("en")) == [
        "Fights incidents: a decrease of 60.0% (1.2 incidents per station-month; 95% CI: a decrease of "
        "30.0%–70.0%). Rating: Strong evidence.",
        "Mean arrival time: a decrease of 1.2 minutes (8.0%; 95% CI: a decrease of 0.5–1.9 minutes). "
        "Rating: Limited evidence.",
        "Share arriving within 5 minutes: no clear change (95% CI: between a decrease of 1.0 percentage points "
        "and an increase of 1.8 percentage points). Rating: No clear effect.",
    ]


def test_null_result_never_reads_as_a_rise():
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", 5.6, -5.0, 3.0 + 13.0, 0.4, pretrend=PRE_OK)]})
    line, = outcome_lines(ev)
    assert line == "打架斗殴警情：未见明显变化（95% 置信区间：介于下降 5.0% 与上升 16.0% 之间）。评级：未见明显效果。"
    assert "上升 5.6%" not in line and "-" not in line


def test_no_data_and_failed_outcomes_say_so_without_a_number():
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK)],
              "incidents_vice": [_result("cs", "incidents_vice", 0.0, math.nan, math.nan, math.nan)]},
             failures={"cases": {"cs": "ValueError: Bacon decomposition needs a balanced panel (one row per unit)"}},
             values={"incidents_vice": np.zeros(48)})
    lines = outcome_lines(ev)
    assert lines[1] == "黄赌警情：全部缺失或始终不变，无法估计。评级：数据不足。"
    assert lines[2] == "办案量：未能估计，原因：该方法需要平衡面板（每个派出所每个月都有数据），本样本不满足。"
    en = outcome_lines(_ev({"incidents_vice": [_result("cs", "incidents_vice", 0.0, math.nan, math.nan, math.nan)]},
                           values={"incidents_vice": np.zeros(48)}, lang="en"))
    assert en == ["Vice (gambling, prostitution) incidents: missing or constant throughout, no estimate. Rating: No usable data."]
    assert "—" not in "".join(lines + en)


# ----------------------------------------------------------------------------- answer and estimand
def test_answer_has_no_method_name_and_states_the_estimand():
    for lang in ("zh", "en"):
        ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK)]},
                 lang=lang)
        text = headline_text(ev)
        assert not any(name in text["sentence"] for name in ESTIMATORS)
        assert not re.search(r"Callaway|TWFE|插补|imputation", text["sentence"], flags=re.IGNORECASE)
    assert headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001)]}))[
        "sentence"] == "实施“两队一室”后，打架斗殴警情下降 30.0%（95% 置信区间：下降 20.0%–40.0%）。"
    zh = headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001)]}))
    assert zh["estimand_sentence"] == "估计对象：实施改革的派出所在改革后第0–24个月的平均效果。"
    en = headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001)]},
                           lang="en"))
    assert en["estimand_sentence"] == ("What is estimated: the average effect over months 0–24 after adoption at "
                                       "the adopting stations.")


def test_estimand_reads_the_headline_horizon_when_given(monkeypatch):
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001)]})
    orig = Evaluation.headline
    monkeypatch.setattr(Evaluation, "headline", lambda self, o=None: orig(self, o) | {"horizon": [0, 12]})
    assert headline_text(ev)["estimand_sentence"] == "估计对象：实施改革的派出所在改革后第0–12个月的平均效果。"


def test_response_time_answer_is_in_minutes():
    ev = _ev({"response_mean_min": [_result("cs", "response_mean_min", -1.2, -1.9, -0.5, 0.002, base=15.0)]},
             lang="en")
    assert headline_text(ev)["sentence"] == ("After Two teams, one room (两队一室), mean arrival time fell by 1.2 "
                                             "minutes (95% CI: a decrease of 0.5–1.9 minutes).")


def test_year_on_year_response_time_is_in_minutes_with_duration_words():
    naive = _result("naive_yoy", "response_mean_min", -6.2, -7.0, -5.4, 0.01, base=15.0)
    naive.meta["pct_change"] = -41.3
    ev = _ev({"response_mean_min": [_result("cs", "response_mean_min", -6.3, -7.2, -5.4, 0.001, base=15.0), naive]})
    text = headline_text(ev)
    assert text["naive_sentence"] == ("按地方通报常用的同比口径（改革后 12 个月对比前 12 个月），平均到场时间缩短 6.2 分钟；"
                                      "扣除同期趋势、季节和共同冲击后，平均到场时间缩短 6.3 分钟。")
    assert text["naive_why"] == ""  # −6.2 lies inside [−7.2, −5.4]: the two agree, no "两者不同"


def test_interval_words_never_mix_signs():
    assert change_range(-69.7, -47.1, "zh") == "下降 47.1%–69.7%"
    assert change_range(2.0, 9.5, "en") == "an increase of 2.0%–9.5%"
    assert change_range(-1.9, -0.5, "zh", form="level", unit="分钟") == "缩短 0.5–1.9 分钟"
    assert change_range(-0.3, 0.8, "zh", form="level", unit="分钟") == "介于缩短 0.3 分钟 与延长 0.8 分钟 之间"


# ----------------------------------------------------------------------------- headline rule, caps
@pytest.mark.parametrize(("rule", "lang", "expected"), [
    ("user", "zh", "主要结果采用Callaway–Sant'Anna 交错双重差分，由评估参数指定。"),
    ("user", "en", "The headline uses Callaway–Sant'Anna staggered DiD, as the params file asks (headline: cs)."),
    ("small_design", "zh", "主要结果采用插补估计（Borusyak 等）：本设计较小（实施改革的派出所 6 个、对照派出所 9 个，"
                           "任一少于 40 个即视为小设计），此时插补估计量利用全部改革前月份构造对照，检验力更高。"),
    ("large_design", "en", "The headline uses Callaway–Sant'Anna staggered DiD: the design is large (60 adopting and "
                           "90 comparison stations, both at least 40), so the data can afford Callaway–Sant'Anna, "
                           "which needs parallel trends only from the last month before adoption."),
    ("brand_new_rule", "zh", "主要结果采用Callaway–Sant'Anna 交错双重差分。"),
])
def test_headline_rule_sentence(rule, lang, expected):
    est = "imputation" if rule == "small_design" else "cs"
    n = (6, 9) if rule == "small_design" else (60, 90)
    choice = SimpleNamespace(estimator=est, rule=rule, facts={"n_treated": n[0], "n_control": n[1],
                                                             "thresholds": {"adopters": 40, "comparison": 40}})
    assert headline_choice_sentence(choice, est, lang) == expected
    # the results.json form (a dict) reads the same; no choice recorded: no sentence
    assert headline_choice_sentence({"estimator": est, "rule": rule, "facts": choice.facts}, est, lang) == expected
    assert headline_choice_sentence(None, est, lang) == ""


def test_method_note_carries_the_headline_rule_when_recorded():
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001)]})
    assert "主要结果采用" not in method_note(ev)  # before helper `headline`: no attribute, no sentence
    ev.headline_choice = SimpleNamespace(estimator="cs", rule="user", facts={})
    assert "主要结果采用Callaway–Sant'Anna 交错双重差分，由评估参数指定。" in method_note(ev)


def test_every_verdict_cap_has_words_and_unknown_caps_a_fallback():
    for lang in ("zh", "en"):
        for cap in CAPS:
            text = verdict_explanation("capped", lang, (cap,), n_treated=1, n_control=3)
            assert "{" not in text and "None" not in text, (cap, text)
    assert verdict_explanation("capped", "zh", ("new_cap",)) == \
        "95% 置信区间不含零，但评级最高为“证据有限”：另一项“证据充分”的要求未满足。"
    assert verdict_explanation("capped", "en", ("new_cap",)) == ("The 95% interval excludes zero, but the rating is "
                                                                "capped at 'Limited evidence': another requirement of "
                                                                "'Strong evidence' is not met.")


# ----------------------------------------------------------------------------- pre-trend tests
def test_chi2_and_permutation_disagree_one_sentence_says_why():
    pre = {**PRE_OK, "p_value": 0.49, "p_chi2": 0.0004, "draws": 199}
    zh = headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001,
                                                        pretrend=pre)]}))
    assert zh["pretrend_sentence"] == (
        "改革前趋势检验未发现显著差异（置换检验：随机重排实施时间 199 次，p = 0.490）。同一统计量按 χ² 分布计算的 p 值为 <0.001，"
        "结论与之不同：派出所较少时，基于聚类稳健协方差的 χ² 检验会过度拒绝，证据评级因此采用置换检验：随机重排实施时间 199 次。")
    en = headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001,
                                                        pretrend=pre)]}, lang="en"))
    assert en["pretrend_sentence"].endswith(
        "The χ² p-value of the same statistic is <0.001 and points the other way: with few stations the χ² test on "
        "a cluster-robust covariance over-rejects, so the rating uses the permutation test (199 random "
        "re-assignments of adoption dates).")
    agree = headline_text(_ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001,
                                                           pretrend={**pre, "p_chi2": 0.3})]}))
    assert "χ²" not in agree["pretrend_sentence"]


def test_pretrend_table_note_names_the_test_that_drives_the_rating():
    chi2 = {"p_value": 0.0001, "stat": 40.0, "df": 6, "method": "chi2", "status": "ok"}
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK),
                                  _result("sa", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=chi2)]})
    assert pretrend_table_note(ev) == ("证据评级只采用Callaway–Sant'Anna 交错双重差分的置换检验：随机重排实施时间 999 次（p = 0.400）；"
                                       "其他行是各方法自带的检验，派出所较少时 χ² 检验会过度拒绝，仅供参考。")
    alone = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK)]})
    assert pretrend_table_note(alone) == ""


# ----------------------------------------------------------------------------- failure reasons
@pytest.mark.parametrize(("raw", "zh", "en"), [
    ("ValueError: Bacon decomposition needs a balanced panel (one row per unit and period)",
     "该方法需要平衡面板（每个派出所每个月都有数据），本样本不满足",
     "the method needs a balanced panel (every station observed every month), which this sample is not"),
    ("the jackknife needs at least 3 clusters; county has 2", "聚类（派出所或区县）太少",
     "there are too few clusters (stations or counties)"),
    ("the covariance of the 18 event-study coefficients is singular (too few clusters: 6 county clusters)",
     "协方差矩阵奇异（派出所或聚类太少）", "the covariance matrix is singular (too few stations or clusters)"),
    ("only 1 station_id adopts: deleting it leaves no adopting unit, so the jackknife", "只有一个实施改革的派出所",
     "only one station adopted the reform"),
    ("StepSkipped: only 6 county clusters: the multiplier bootstrap needs at least 12 clusters to resample (with "
     "fewer its interval is far too narrow), so it is not used", "聚类少于 12 个时乘数自助法的区间过窄",
     "with fewer than 12 clusters its interval is far too narrow"),
    ("KeyError: 'x' happened in _cs_attgt.py line 4", "计算出错（技术细节见英文版报告的技术附录或 results.json）",
     "the computation failed (technical detail in the appendix)"),
])
def test_failure_reasons_are_localized(raw, zh, en):
    assert reason_words(raw, "zh") == zh
    assert reason_words(raw, "en") == en
    assert not re.search(r"[A-Za-z]{3,}", zh.replace("results.json", ""))  # no English inside the Chinese brief


def test_a_step_left_out_by_design_is_not_called_a_failure():
    from evalkit.brief_words import failed_step_sentence

    why = "only 6 county clusters: the multiplier bootstrap needs at least 12 clusters to resample"
    assert failed_step_sentence("乘数自助法", why, "zh") == "乘数自助法 未采用：聚类少于 12 个时乘数自助法的区间过窄"
    assert failed_step_sentence("The multiplier bootstrap", why, "en") == \
        "The multiplier bootstrap not used: with fewer than 12 clusters its interval is far too narrow"
    assert failed_step_sentence("SDID", "boom", "zh") == \
        "SDID 未能完成：计算出错（技术细节见英文版报告的技术附录或 results.json）"


def test_failed_estimators_and_sensitivity_parts_are_sentences_and_the_appendix_keeps_the_raw_reason():
    ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK)]},
             failures={"incidents_fight": {"bacon": "ValueError: Bacon decomposition needs a balanced panel"}},
             sensitivity_error=None)
    ev.sensitivity = SimpleNamespace(outcome="incidents_fight", robust=None, source="event_twfe",
                                     source_errors={"cs": "the covariance of 18 leads is singular"}, rm=None,
                                     original={"lb": -1.0, "ub": 1.0}, num_post=12, breakdown_sd=None,
                                     failed={"rm": "RuntimeError: vertex enumeration exploded"}, months=25,
                                     estimand="att_adopter_months_0_H", horizon=[0, 24], bin_months=3,
                                     note="3-month bins: 15 stations cannot support 36 monthly coefficients")
    zh = sensitivity_sentences(ev)
    assert zh[:3] == ["敏感性分析针对与结论相同的估计对象：改革后第0–24个月的平均效果。",
                      "派出所较少，逐月系数的协方差无法估计，事件研究按每 3 个月合并为一组。",
                      "Callaway–Sant'Anna 事件研究无法用于敏感性分析（协方差矩阵奇异（派出所或聚类太少）），改用动态双向固定效应。"]
    assert zh[-1] == "相对幅度分析未能完成：计算出错（技术细节见英文版报告的技术附录或 results.json）"
    assert not any("vertex" in s or "3-month bins" in s for s in zh)
    ev.params.lang = "en"
    en = sensitivity_sentences(ev)
    assert en[2] == "3-month bins: 15 stations cannot support 36 monthly coefficients"
    assert en[-1] == "The relative-magnitudes analysis failed: the computation failed (technical detail in the appendix)"
    # the raw reason, without the exception's class name (the brief shows no "Error")
    assert ("incidents_fight / bacon", "Bacon decomposition needs a balanced panel") in technical_reasons(ev)
    assert ("sensitivity / rm", "vertex enumeration exploded") in technical_reasons(ev)


# ----------------------------------------------------------------------------- tables
def test_rows_answering_a_different_question_are_marked():
    head = _result("imputation", "incidents_fight", -30.0, -40.0, -20.0, 0.001, estimand="att_adopter_months_0_H")
    same = _result("cs", "incidents_fight", -28.0, -40.0, -16.0, 0.001, estimand="att_adopter_months_0_H")
    other = _result("twfe", "incidents_fight", -20.0, -30.0, -10.0, 0.001, estimand="twfe_static_coefficient")
    ev = _ev({"incidents_fight": [head, same, other]}, headline="imputation", lang="en")
    assert different_question(ev) == {("estimator", "twfe")}
    table = estimates_table(ev)
    assert table["Estimator"].tolist() == [estimator_label(n, "en") for n in ("imputation", "cs", "twfe")]
    assert table["Note"].tolist() == ["", "", "†"]
    assert "Note" not in estimates_table(_ev({"incidents_fight": [head, same]}, headline="imputation", lang="en")).columns


def test_randomization_row_and_multiple_testing_name_the_estimator_they_use():
    head = _result("imputation", "incidents_fight", -30.0, -40.0, -20.0, 0.001)
    ri = _result("ri", "incidents_fight", -30.0, -40.0, -20.0, 0.01)
    ri.meta["statistic"] = "imputation"
    ev = _ev({"incidents_fight": [head]}, headline="imputation",
             robustness={"incidents_fight": {"ri": ri}})
    assert variant_label(ev, "ri") == "插补估计（Borusyak 等），随机化推断 p 值（199 次随机置换）"
    ev.multiple = pd.DataFrame({"outcome": ["incidents_fight"], "p_value": [0.001], "p_bh": [0.002],
                                "p_rw_raw": [0.01], "p_romano_wolf": [0.02]})
    assert list(multiple_table(ev).columns) == ["指标", "p 值（插补估计（Borusyak 等））", "BH 校正后 p 值",
                                                "p 值（插补估计（Borusyak 等），置换检验）", "Romano–Wolf 校正后 p 值"]


def test_month_axis_shows_months_not_period_integers():
    import matplotlib.pyplot as plt

    from evalkit.registry import period_of
    from evalkit.viz.style import month_axis

    fig, ax = plt.subplots()
    x = np.arange(period_of("2020-01-01"), period_of("2021-01-01"))
    ax.plot(x, np.zeros(len(x)))
    month_axis(ax)
    fig.canvas.draw()
    labels = [lab.get_text() for lab in ax.get_xticklabels() if lab.get_text()]
    plt.close(fig)
    assert labels and all(re.fullmatch(r"20\d\d-\d\d", s) for s in labels)


# ----------------------------------------------------------------------------- the brief's HTML
def _capture(monkeypatch) -> list[str]:
    import evalkit.report as report

    out: list[str] = []
    monkeypatch.setattr(report, "_html", out.append)
    return out


def test_page1_html_has_every_outcome_the_estimand_and_the_truth_in_words(monkeypatch):
    import evalkit.report as report

    html = _capture(monkeypatch)
    ev = _three_outcomes("zh")
    ev.planted_truth = lambda outcome=None: -19.0
    report.show_headline(ev)
    page = "".join(html)
    assert page.count("<li>") == 3 and "各项指标一览" in page
    assert "估计对象：实施改革的派出所在改革后第0–24个月的平均效果。" in page
    assert "演示数据中植入的真实效果约为下降 19.0%。" in page
    assert "-19.0%" not in page


def test_failures_are_sentences_in_the_brief_and_raw_only_in_the_english_appendix(monkeypatch):
    import evalkit.report as report

    raw = "ValueError: Bacon decomposition needs a balanced panel (one row per unit and period)"
    for lang in ("zh", "en"):
        html = _capture(monkeypatch)
        ev = _ev({"incidents_fight": [_result("cs", "incidents_fight", -30.0, -40.0, -20.0, 0.001, pretrend=PRE_OK)]},
                 failures={"incidents_fight": {"bacon": raw}}, lang=lang)
        report.show_estimates(ev)
        report.show_notes(ev)
        page = "".join(html)
        assert "ValueError" not in page and "Traceback" not in page
        if lang == "zh":
            assert "Goodman-Bacon 分解 未能完成：该方法需要平衡面板（每个派出所每个月都有数据），本样本不满足" in page
            assert "balanced panel" not in page and "技术附录" not in page
        else:
            assert ("Goodman-Bacon decomposition did not complete: the method needs a balanced panel (every station "
                    "observed every month), which this sample is not") in page
            assert "Technical appendix" in page
            assert "incidents_fight / bacon: Bacon decomposition needs a balanced panel (one row per unit and period)" \
                in page


def test_sensitivity_words_follow_the_bins():
    """With 6-month bins the intro, the base period and the smoothness sentence speak of 6 months,
    never of "每月" / "the month before adoption" (they contradicted the binning note)."""
    from evalkit.brief_words import sensitivity_steps
    from evalkit.i18n import t

    for lang, step, base in (("zh", "每 6 个月", "改革前 6 个月的平均"),
                             ("en", "per 6-month bin", "the 6 months before adoption (their mean)")):
        w = sensitivity_steps(6, lang)
        intro = t("sensitivity_intro", lang, n=25, source=t("sens_source_cs", lang, **w), **w)
        assert step in intro and base in intro
        assert "每月" not in intro and "per month" not in intro and "the month before adoption as" not in intro
        assert step in t("sens_sd_sentence", lang, m="0.5", unit="", step=w["step"])
    assert sensitivity_steps(1, "zh") == {"step": "每月", "base": "改革前一个月"}
    assert sensitivity_steps(None, "en")["base"] == "the month before adoption"
