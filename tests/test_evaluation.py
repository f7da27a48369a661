"""evalkit.evaluate on the small demo world: robustness variants, sensitivity, multiple testing, verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

import evalkit
from evalkit.brief_text import estimates_table, headline_text, multiple_table, sensitivity_sentences
from evalkit.estimand import HEADLINE_ESTIMAND
from evalkit.i18n import estimator_label
from evalkit.params import validate_params
from evalkit.sensitivity_run import SENS_MBAR
from evalkit.verdict import VERDICT_CODES as VERDICTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ev(demo_warehouse):
    params = validate_params({
        "evaluation_id": "test_eval", "reform": "两队一室", "outcomes": ["incidents_fight", "dispatches"],
        "region": {"area_type": "urban"}, "inference": ["wild_bootstrap", "randomization"],
        "sensitivity": True, "warehouse": str(demo_warehouse), "lang": "en",
    })
    return evalkit.evaluate(params)


def test_robustness_table_has_control_and_inference_variants(ev):
    table = estimates_table(ev)
    labels = table["Estimator"].tolist()
    assert "Callaway–Sant'Anna, controls: never-treated stations" in labels
    assert "Callaway–Sant'Anna, controls: not-yet-treated stations" in labels
    assert any(lbl.startswith("Callaway–Sant'Anna, multiplier-bootstrap interval (499 draws") for lbl in labels)
    assert any(lbl.startswith("TWFE, wild cluster bootstrap") for lbl in labels)
    # the randomization-inference row names the estimator it tests
    ri = estimator_label(ev.params.headline, "en") + ", randomization-inference"
    assert ev.params.headline == "imputation" and any(lbl.startswith(ri) for lbl in labels), labels
    assert set(table["Check"]) == {"Estimator", "Control group", "Inference"}
    nums = ev.estimates()
    assert list(nums["kind"]) == [{"Estimator": "estimator", "Control group": "control", "Inference": "inference"}[c]
                                  for c in table["Check"]]
    assert nums[["estimate", "ci_low", "ci_high", "p_value"]].dtypes.map(lambda d: d.kind == "f").all()
    rob = ev.robustness["incidents_fight"]
    assert rob["cs_mboot"].meta.get("bootstrap") or "bootstrap" in str(rob["cs_mboot"].meta.get("se_type", ""))
    assert rob["twfe_wild"].estimator == "twfe_wild" and 0 < rob["twfe_wild"].overall["p_value"] <= 1
    assert rob["ri"].tables["placebo"]["estimate"].notna().sum() > 100
    assert rob["ri"].meta["statistic"] == ev.params.headline  # randomization inference tests the headline
    assert not any(ev.robustness_failures.values())


def test_sensitivity_frame_has_finite_bounds(ev):
    s = ev.sensitivity
    assert s is not None, ev.sensitivity_error
    assert s.outcome == "incidents_fight" and s.num_pre >= 2 and s.num_post >= 1
    assert np.isfinite(s.sd[["lb", "ub"]].to_numpy()).all()
    assert (s.sd["lb"] <= s.sd["ub"]).all()
    # robust intervals widen with M and contain the original one's centre band
    assert s.sd["ub"].iloc[-1] - s.sd["lb"].iloc[-1] >= s.sd["ub"].iloc[0] - s.sd["lb"].iloc[0] - 1e-9
    if s.rm is not None:
        assert np.isfinite(s.rm[["lb", "ub"]].to_numpy()).all()
        assert s.rm["M"].iloc[0] == SENS_MBAR[0]
    assert s.robust in (True, False, None)
    assert s.breakdown_rm is not None or s.breakdown_sd is not None
    assert ev.headline()["robust"] == s.robust
    assert s.failed == {} and s.source == "cs" and s.source_errors == {}
    assert all(isinstance(x, str) and x for x in sensitivity_sentences(ev))


def test_headline_is_numbers_and_the_words_come_from_i18n(ev):
    h = ev.headline()
    assert set(h) >= {"estimate", "ci_low", "ci_high", "p_value", "pct", "verdict", "verdict_reason", "n_treated"}
    assert not any(isinstance(v, str) and " " in v for v in h.values()), "no sentences in the numbers"
    text = headline_text(ev)
    assert estimator_label(ev.params.headline, "en") not in text["sentence"] and "%" in text["sentence"]  # no method names in the answer
    assert text["verdict_label"] in ("Strong evidence", "Limited evidence", "No clear effect", "Pre-trends doubtful")
    assert "naive_sentence" in text and "year-on-year" in text["naive_sentence"]


def test_adjusted_pvalues_not_below_unadjusted(ev):
    m = ev.multiple
    assert m is not None and list(m["outcome"]) == ["incidents_fight", "dispatches"], ev.multiple_error
    assert (m["p_bh"] >= m["p_value"] - 1e-12).all()
    assert (m["p_romano_wolf"] >= m["p_rw_raw"] - 1e-12).all()
    assert not multiple_table(ev).empty


def test_verdict_is_one_of_four(ev):
    for outcome in ev.params.outcomes:
        assert ev.headline(outcome)["verdict"] in VERDICTS


def test_results_json_has_the_new_sections(ev, tmp_path):
    import json

    from evalkit.report import save_results

    data = json.loads(save_results(ev, tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data["text"]["lang"] == "en" and data["text"]["headline"]["incidents_fight"]["sentence"]
    assert "sentence" not in data["headline"]["incidents_fight"]
    assert list(data)[-2:] == ["timings", "seconds"] and "seconds" not in data["sensitivity"]
    assert "timing" not in data["results"]["incidents_fight"]["cs"]["meta"]
    assert "results/incidents_fight/cs" in data["timings"]["stages"]
    assert "cs_notyet" in data["robustness"]["incidents_fight"]
    assert data["sensitivity"]["sd"] and data["multiple_testing"]
    assert "cs_notyet" not in data["results"]["incidents_fight"]  # batch summaries read "results" only
    assert data["headline_choice"] == {"estimator": "imputation", "rule": "small_design",
                                       "facts": ev.headline_choice.facts}
    assert data["params"]["headline"] == "imputation"  # the concrete estimator, never "auto"
    assert data["headline"]["incidents_fight"]["headline_rule"] == "small_design"


def test_placebo_reform_is_not_strong(demo_warehouse):
    params = validate_params({
        "evaluation_id": "placebo", "reform": "service_hall", "outcomes": ["incidents_total"],
        "inference": ["randomization"], "warehouse": str(demo_warehouse),
    })
    ev = evalkit.evaluate(params)
    h = ev.headline()
    assert h["verdict"] in VERDICTS and h["verdict"] != "strong"
    assert ev.multiple is None  # one outcome: no multiple-testing table
    assert math.isfinite(ev.robustness["incidents_total"]["ri"].overall["p_value"])


def test_single_station_design_skips_the_extras(demo_warehouse):
    params = validate_params({"evaluation_id": "pilot", "reform": "一所一品试点", "design": "single_station",
                              "outcomes": ["incidents_total"], "warehouse": str(demo_warehouse),
                              "placebo_reps": 20})
    assert params.notebook == "pilot_station"
    ev = evalkit.evaluate(params)
    assert ev.sensitivity is None and not ev.robustness and ev.multiple is None
    assert ev.headline()["verdict"] in VERDICTS


def test_headline_chosen_for_the_design(ev):
    """The urban two-teams design is small (fewer than 40 adopters): imputation is the headline."""
    c = ev.headline_choice
    assert (c.estimator, c.rule) == ("imputation", "small_design") and ev.params.headline == "imputation"
    assert c.facts["n_treated"] < 40 and (c.facts["n_treated"], c.facts["n_control"]) == ev.n_units()
    h = ev.headline()
    assert (h["estimator"], h["headline_rule"], h["estimand"]) == ("imputation", "small_design",
                                                                   ev.result().meta["estimand"])
    # months 0..H of the headline estimand when the fit says it estimates it (evalkit.estimand), else its own
    assert h["horizon"] == ([0, 24] if h["estimand"] == HEADLINE_ESTIMAND else ev.result().meta.get("horizon"))
    forced = evalkit.evaluate(ev.params.model_copy(update={
        "headline": "cs", "outcomes": ["incidents_fight"], "estimators": ["cs", "imputation"], "inference": [],
        "sensitivity": False, "headline_se": "analytic", "pretrend_test": "chi2"}))
    assert (forced.headline_choice.rule, forced.params.headline, forced.headline()["estimator"]) == ("user", "cs", "cs")


def test_small_designs_get_permutation_pretrend_and_jackknife_se(ev):
    r = ev.result("incidents_fight", ev.params.headline)
    pt = r.meta["pretrend"]
    assert pt["method"] == "permutation" and pt["draws"] > 150 and pt["p_value"] == pt["p_permutation"]
    assert 0 < pt["p_chi2"] <= 1 and ev.pretrend_p("incidents_fight") == pt["p_value"]
    hs = r.meta["headline_se"]
    assert hs["method"] == "jackknife" and hs["df"] == hs["n_fits"] - 1
    row = r.overall
    assert float(row["std_error"]) != r.meta["analytic_overall"]["std_error"]
    assert float(row["ci_low"]) < float(row["estimate"]) < float(row["ci_high"])
    assert ev.headline("incidents_fight")["pretrend"]["method"] == "permutation"


def test_exclude_reforms_leaves_a_clean_comparison_group(demo_warehouse):
    base = {"evaluation_id": "excl", "reform": "便民服务升级", "outcomes": ["incidents_total"],
            "warehouse": str(demo_warehouse), "sensitivity": False, "pretrend_test": "chi2",
            "headline_se": "analytic", "estimators": ["twfe", "cs"]}
    everyone = evalkit.evaluate(validate_params(base))
    clean = evalkit.evaluate(validate_params({**base, "exclude_reforms": ["两队一室", "一村一辅警"]}))
    excluded = clean.panel.attrs["excluded_stations"]
    assert excluded["two_teams_one_room"] > 0 and excluded["village_auxiliary"] > 0
    assert clean.panel["station_id"].nunique() == everyone.panel["station_id"].nunique() - sum(excluded.values())
    assert clean.n_units()[0] == everyone.n_units()[0]  # adopters of the evaluated reform all stay
    assert clean.result().meta["pretrend"].get("method") is None  # chi2: nothing replaced
    with pytest.raises(evalkit.params.ParamsError, match="itself"):
        validate_params({**base, "exclude_reforms": ["service_hall"]})
    with pytest.raises(evalkit.params.ParamsError, match="unknown reform"):
        validate_params({**base, "exclude_reforms": ["no_such_reform"]})


def test_breakdown_bisection_is_bounded_work_not_a_clock():
    import inspect

    from evalkit import sensitivity_run
    from evalkit.sensitivity_run import breakdown_bisect

    calls = []

    def covers(m):
        calls.append(m)
        return m >= 1.2345

    b = breakdown_bisect(covers, [(0.5, False), (1.0, False), (1.5, True), (2.0, True)], upper=5.0, tol=0.05)
    assert 1.2345 <= b <= 1.2345 + 0.05 and len(calls) == math.ceil(math.log2(0.5 / 0.05))
    assert breakdown_bisect(lambda m: False, [(0.5, False)], upper=5.0, tol=0.05) == math.inf
    assert breakdown_bisect(lambda m: True, [(0.5, True)], upper=5.0, tol=0.05) == 0.0
    source = inspect.getsource(sensitivity_run)
    assert "perf_counter" not in source and "deadline" not in source and "time." not in source


def test_failed_small_sample_pretrend_is_reported_not_replaced_by_chi2(demo_warehouse, monkeypatch):
    import evalkit.inference.pretrend as pretrend

    def broken(*args, **kwargs):
        raise ValueError("every permutation draw failed")

    monkeypatch.setattr(pretrend, "pretrend_test", broken)
    params = validate_params({"evaluation_id": "pt_fail", "reform": "两队一室", "outcomes": ["incidents_fight"],
                              "region": {"area_type": "urban"}, "estimators": ["twfe", "cs"], "sensitivity": False,
                              "headline_se": "analytic", "pretrend_test": "permutation", "lang": "en",
                              "warehouse": str(demo_warehouse)})
    ev = evalkit.evaluate(params)
    pt = ev.result().meta["pretrend"]
    assert pt["status"] == "failed" and pt["reason"] == "every permutation draw failed"
    assert pt["p_value"] is None and 0 <= pt["p_chi2"] <= 1  # the χ² p-value is kept, not used
    h = ev.headline()
    assert h["pretrend_p"] is None
    sentence = headline_text(ev)["pretrend_sentence"]
    assert "every permutation draw failed" in sentence and "not used for the rating" in sentence
