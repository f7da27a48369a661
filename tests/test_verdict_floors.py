"""Verdict floors and requirements on a whole evaluation (issue 14): station floors, "strong" only
with a pre-trend test and a sensitivity analysis that ran, "no data" for a constant or missing
outcome, disagreeing estimators, pre-trend tests that are not available, page-1 wording.

Each case builds an :class:`~evalkit.evaluation.Evaluation` from hand-made results (no fitting),
so the exact verdict code and the exact sentence are asserted."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evalkit.brief_text import change_range, change_words, headline_text
from evalkit.evaluation import Evaluation, WarehouseFacts
from evalkit.params import validate_params
from evalkit.results import EstimationResult
from evalkit.verdict import MIN_ADOPTERS, MIN_COMPARISON, decide

PRE_OK = {"p_value": 0.40, "stat": 5.1, "df": 6, "method": "permutation", "draws": 999, "status": "ok"}


def _result(name: str, outcome: str, pct: float, lo: float, hi: float, p: float, *, n_t: int = 20,
            n_c: int = 40, pretrend: dict | None = None) -> EstimationResult:
    """A fitted result whose percent effect (baseline mean 100) is ``pct`` with interval [lo, hi]."""
    row = {"kind": "overall", "term": "ATT", "estimate": pct, "std_error": (hi - lo) / 3.92,
           "ci_low": lo, "ci_high": hi, "p_value": p}
    meta = {"baseline_mean": 100.0, "sample": {"n_treated": n_t, "n_control": n_c}}
    if pretrend is not None:
        meta["pretrend"] = pretrend
    return EstimationResult(name, outcome, pd.DataFrame([row]), meta)


def _ev(results: list[EstimationResult], *, outcome: str = "incidents_fight", lang: str = "zh",
        robust: bool | None = True, values: np.ndarray | None = None, design: str = "staggered") -> Evaluation:
    params = validate_params({"evaluation_id": "floors", "reform": "两队一室", "outcomes": [outcome],
                              "warehouse": "w.duckdb", "lang": lang})
    params.design, params.headline = design, results[0].estimator
    n = 12
    panel = pd.DataFrame({"station_id": np.repeat(np.arange(n), 4), "period": np.tile(np.arange(4), n),
                          "first_treat": np.repeat(np.where(np.arange(n) < 4, 2, 0), 4),
                          outcome: np.arange(4 * n, dtype=float) if values is None else values})
    facts = WarehouseFacts(path="w.duckdb", synthetic=False, quarantined=0, rows={})
    sens = None if robust is None else SimpleNamespace(outcome=outcome, robust=robust)
    return Evaluation(params=params, panel=panel, results={outcome: {r.estimator: r for r in results}},
                      failures={}, facts=facts, sensitivity=sens)


def _strong_case(**kw) -> Evaluation:
    return _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=PRE_OK, **kw)])


def test_all_requirements_met_is_strong():
    ev = _strong_case()
    h, text = ev.headline(), headline_text(ev)
    assert (h["verdict"], h["verdict_reason"], h["verdict_caps"]) == ("strong", "strong_robust", [])
    assert text["verdict_label"] == "证据充分"
    assert text["disagree_sentence"] == ""


def test_floors_at_their_minimum_are_enough():
    assert (MIN_ADOPTERS, MIN_COMPARISON) == (2, 5)
    assert _strong_case(n_t=2, n_c=5).headline()["verdict"] == "strong"
    assert decide(0.001, 0.4, robust=True, n_treated=2, n_control=5).code == "strong"


def test_27_adopters_against_one_comparison_station_is_capped():
    ev = _strong_case(n_t=27, n_c=1)
    h, text = ev.headline(), headline_text(ev)
    assert (h["verdict"], h["verdict_reason"], h["verdict_caps"]) == ("limited", "capped", ["few_comparison"])
    assert text["verdict_label"] == "证据有限"
    assert text["verdict_explanation"] == \
        "95% 置信区间不含零，但评级最高为“证据有限”：对照派出所仅 1 个（评为“证据充分”至少需要 5 个）。"


def test_one_adopter_in_a_staggered_evaluation_is_routed_to_the_single_station_design():
    ev = _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 1e-5, n_t=1, n_c=30, pretrend=PRE_OK)],
             lang="en")
    h, text = ev.headline(), headline_text(ev)
    assert (h["verdict"], h["verdict_caps"]) == ("limited", ["one_adopter"])
    assert text["verdict_explanation"] == (
        "The 95% interval excludes zero, but the rating is capped at 'Limited evidence': "
        "one adopting station: use the single-station design (design: single_station).")
    zh = headline_text(_ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 1e-5, n_t=1, n_c=30,
                                    pretrend=PRE_OK)]))
    assert zh["verdict_explanation"] == \
        "95% 置信区间不含零，但评级最高为“证据有限”：只有一个实施改革的派出所，请改用单所设计（design: single_station）。"


def test_single_station_pilot_without_pretrend_or_sensitivity_is_capped_and_consistent():
    ev = _ev([_result("sdid", "incidents_fight", -30.0, -45.0, -15.0, 0.002, n_t=1, n_c=20)],
             robust=None, design="single_station")
    h, text = ev.headline(), headline_text(ev)
    # one adopter is the design here, not a floor; the missing test and analysis cap the verdict
    assert (h["verdict"], h["verdict_caps"]) == ("limited", ["no_pretrend", "no_sensitivity"])
    assert text["verdict_explanation"] == \
        "95% 置信区间不含零，但评级最高为“证据有限”：未能进行改革前趋势检验；该指标未进行敏感性分析。"
    assert text["pretrend_sentence"] == ""  # said once, never "未见异常" next to "未进行"
    assert "未见异常" not in text["verdict_explanation"]


def test_no_pretrend_without_cap_still_says_so():
    ev = _ev([_result("cs", "incidents_fight", 5.6, -8.0, 19.2, 0.40)], robust=None)
    text = headline_text(ev)
    assert ev.headline()["verdict"] == "no_effect"
    assert text["pretrend_sentence"] == "未进行改革前趋势检验。"


def test_without_sensitivity_analysis_not_strong():
    ev = _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=PRE_OK)], robust=None,
             lang="en")
    h, text = ev.headline(), headline_text(ev)
    assert (h["verdict"], h["verdict_caps"]) == ("limited", ["no_sensitivity"])
    assert text["verdict_explanation"] == ("The 95% interval excludes zero, but the rating is capped at "
                                           "'Limited evidence': no sensitivity analysis was run for this outcome.")


@pytest.mark.parametrize("values", [np.full(48, np.nan), np.zeros(48), np.full(48, 3.0)])
def test_constant_or_missing_outcome_is_no_data(values):
    ev = _ev([_result("cs", "incidents_vice", 0.0, math.nan, math.nan, math.nan, pretrend=PRE_OK)],
             outcome="incidents_vice", values=values)
    h, text = ev.headline(), headline_text(ev)
    assert (h["verdict"], h["verdict_reason"]) == ("no_data", "no_data")
    assert text["verdict_label"] == "数据不足"
    assert text["sentence"] == "黄赌警情在评估期内全部缺失或始终不变，无法估计实施“两队一室”的效果。"
    assert text["verdict_explanation"] == "该指标在评估范围内全部缺失或始终不变，无法估计效果（这不等于“没有效果”）。"
    assert "上升" not in text["sentence"] and "—" not in text["sentence"]
    en = headline_text(_ev([_result("cs", "incidents_vice", 0.0, math.nan, math.nan, math.nan)],
                           outcome="incidents_vice", values=values, lang="en"))
    assert en["verdict_label"] == "No usable data"


def test_disagreeing_estimators_are_stated_and_cap_the_verdict():
    head = _result("cs", "incidents_fight", -36.6, -45.0, -28.0, 0.001, pretrend=PRE_OK)
    other = _result("imputation", "incidents_fight", -13.2, -20.0, -6.4, 0.001)
    ev = _ev([head, other])
    h, text = ev.headline(), headline_text(ev)
    assert h["disagree_with"] == ["imputation"]
    assert (h["verdict"], h["verdict_caps"]) == ("limited", ["estimators_disagree"])
    assert text["disagree_sentence"] == "其他方法的估计区间与上述结果不重叠，结论取决于所用方法，需谨慎解读。"
    assert text["verdict_explanation"] == "95% 置信区间不含零，但评级最高为“证据有限”：其他方法的置信区间与此不重叠。"
    en = headline_text(_ev([head, other], lang="en"))
    assert en["disagree_sentence"] == ("Other methods give intervals that do not overlap this one: the conclusion "
                                       "depends on the method, so read it with caution.")
    # overlapping intervals (and the naive year-on-year row, whatever it says) are no disagreement
    close = _result("imputation", "incidents_fight", -25.0, -33.0, -17.0, 0.001)
    naive = _result("naive_yoy", "incidents_fight", 20.0, 10.0, 30.0, 0.01)
    naive.meta["pct_change"] = 20.0
    ev2 = _ev([head, close, naive])
    assert ev2.headline()["disagree_with"] == [] and ev2.headline()["verdict"] == "strong"
    assert headline_text(ev2)["disagree_sentence"] == ""


def test_pretrend_not_available_gives_the_reason_never_a_statistic():
    pre = {"p_value": math.nan, "stat": math.nan, "df": 18, "method": "chi2", "status": "not_available",
           "reason": "the covariance of the 18 leads is singular"}
    ev = _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=pre)], lang="en")
    h, text = ev.headline(), headline_text(ev)
    assert h["pretrend_p"] is None and h["verdict_caps"] == ["no_pretrend"]
    assert text["pretrend_sentence"] == ("The pre-trend test is not available, because the covariance matrix is "
                                         "singular (too few stations or clusters).")
    zh = headline_text(_ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=pre)]))
    # the English technical reason never reaches the Chinese brief
    assert zh["pretrend_sentence"] == "改革前趋势检验无法计算，原因：协方差矩阵奇异（派出所或聚类太少）。"


def test_page1_signs_never_mix():
    text = headline_text(_strong_case())
    assert "下降 58.4%（95% 置信区间：下降 47.1%–69.7%）" in text["sentence"]
    assert "-" not in text["sentence"].replace("–", "")
    null = headline_text(_ev([_result("cs", "incidents_fight", 5.6, -8.0, 19.2, 0.40, pretrend=PRE_OK)]))
    assert "未见明显变化（95% 置信区间：介于下降 8.0% 与上升 19.2% 之间）" in null["sentence"]
    assert "上升 5.6%" not in null["sentence"]
    en = headline_text(_ev([_result("cs", "incidents_fight", 12.0, 4.0, 20.0, 0.003, pretrend=PRE_OK)], lang="en"))
    assert en["sentence"] == ("After Two teams, one room (两队一室), fights incidents rose by 12.0% "
                              "(95% CI: an increase of 4.0%–20.0%).")


def test_change_words_and_ranges():
    assert change_range(-69.7, -47.1, "zh") == "下降 47.1%–69.7%"
    assert change_range(-8.0, 19.2, "en") == "between a decrease of 8.0% and an increase of 19.2%"
    assert change_range(-5.0, 3.0, "zh") == "介于下降 5.0% 与上升 3.0% 之间"
    assert change_range(-69.7, -47.1, "en") == "a decrease of 47.1%–69.7%"
    assert change_range(-0.036, -0.010, "zh", share=True, unit="百分点") == "下降 1.0–3.6 百分点"
    assert change_range(math.nan, 1.0, "zh") == "—"
    assert change_words(5.6, -8.0, 19.2, "zh") == "未见明显变化"
    assert change_words(-58.4, -69.7, -47.1, "zh") == "下降 58.4%"


def _naive(pct: float) -> EstimationResult:
    r = _result("naive_yoy", "incidents_fight", pct, pct - 1.0, pct + 1.0, 0.01)
    r.meta["pct_change"] = pct
    return r


def test_year_on_year_why_only_when_it_differs():
    head = _result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=PRE_OK)
    differs = headline_text(_ev([head, _naive(-8.9)]))
    assert differs["naive_sentence"] == ("按地方通报常用的同比口径（改革后 12 个月对比前 12 个月），打架斗殴警情下降 8.9%；"
                                         "扣除同期趋势、季节和共同冲击后，打架斗殴警情下降 58.4%。")
    assert differs["naive_why"].startswith("两者不同，是因为")
    agrees = headline_text(_ev([head, _naive(-50.0)]))
    assert agrees["naive_why"] == ""
    null = headline_text(_ev([_result("cs", "incidents_fight", 5.6, -8.0, 19.2, 0.40, pretrend=PRE_OK),
                              _naive(-5.0)], lang="en"))
    assert null["naive_sentence"].endswith("net of common trends, seasonality and shocks, fights incidents "
                                           "showed no clear change.")
    assert null["naive_why"] == ""


def test_pretrend_table_never_shows_an_impossible_statistic():
    from evalkit.brief_text import pretrend_table

    negative = {"p_value": 0.0, "stat": -110.52, "df": 6, "method": "chi2", "status": "ok"}
    missing = {"p_value": math.nan, "stat": math.nan, "df": 18, "method": "chi2", "status": "not_available",
               "reason": "the covariance of the 18 leads is singular"}
    ev = _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=PRE_OK),
              _result("sa", "incidents_fight", -50.0, -60.0, -40.0, 0.001, pretrend=negative),
              _result("imputation", "incidents_fight", -50.0, -60.0, -40.0, 0.001, pretrend=missing)], lang="en")
    table = pretrend_table(ev)
    assert table["Statistic"].tolist() == [
        "5.10",
        "not available, because the statistic is not a finite non-negative number (singular covariance)",
        "not available, because the covariance matrix is singular (too few stations or clusters)"]
    assert table["p-value"].tolist()[1:] == ["—", "—"]


def test_negative_wald_statistic_is_no_pretrend_test():
    negative = {"p_value": 0.0, "stat": -3.8e18, "df": 6, "method": "chi2", "status": "ok"}
    ev = _ev([_result("cs", "incidents_fight", -58.4, -69.7, -47.1, 0.001, pretrend=negative)], lang="en")
    h, text = ev.headline(), headline_text(ev)
    assert h["pretrend_p"] is None
    assert (h["verdict"], h["verdict_caps"]) == ("limited", ["no_pretrend"])  # not "pre-trends doubtful"
    assert text["pretrend_sentence"] == ("The pre-trend test is not available, because the statistic is not a "
                                         "finite non-negative number (singular covariance).")
