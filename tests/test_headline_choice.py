"""The headline chosen for the design (evalkit.headline_choice) and the evaluation steps that follow
the headline: imputation jackknife SE and pre-trend test, randomization inference on the headline,
the CS multiplier bootstrap refused with fewer than 12 clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import get_estimator
from evalkit.evaluation import Evaluation, WarehouseFacts
from evalkit.evaluation_steps import (
    MBOOT_MIN_CLUSTERS,
    estimator_options,
    robustness_variants,
    small_sample_headline_se,
    small_sample_pretrend,
)
from evalkit.headline_choice import (
    LARGE_MIN_ADOPTERS,
    LARGE_MIN_COMPARISON,
    RULES,
    choose_headline,
    design_facts,
)
from evalkit.params import ParamsError, validate_params

Y = "incidents_total"


def _panel(n_treated: int, n_control: int, *, T: int = 48, seed: int = 0, effect: float = -3.0,
           cohorts: tuple[int, ...] = (25, 29, 33)) -> pd.DataFrame:
    """Station-month panel: station levels, month shocks, noise; adopters spread over ``cohorts``."""
    rng = np.random.default_rng(seed)
    ft = np.array([cohorts[i % len(cohorts)] for i in range(n_treated)] + [0] * n_control)
    S = len(ft)
    per = np.arange(1, T + 1)
    y = 30 + rng.normal(0, 3, (S, 1)) + rng.normal(0, 1, (1, T)) + rng.normal(0, 2, (S, T))
    y += np.where((ft[:, None] > 0) & (per[None, :] >= ft[:, None]), effect, 0.0)
    return pd.DataFrame({"station_id": np.repeat([f"s{i:03d}" for i in range(S)], T),
                         "period": np.tile(per, S), "first_treat": np.repeat(ft, T),
                         "county": np.repeat(np.arange(S) % 3, T), Y: y.ravel()})


def _params(**kw):
    return validate_params({"evaluation_id": "hc", "reform": "两队一室", "outcomes": [Y], "warehouse": "w.duckdb",
                            "ri_draws": 19, "pretrend_draws": 19, **kw})


# ----------------------------------------------------------------------------- the rules
def test_rule_keys_and_thresholds():
    assert RULES == ("user", "small_design", "large_design")
    assert (LARGE_MIN_ADOPTERS, LARGE_MIN_COMPARISON) == (40, 40)


def test_small_county_gets_imputation():
    c = choose_headline(_panel(6, 9), _params())
    assert (c.estimator, c.rule) == ("imputation", "small_design")
    f = c.facts
    assert (f["n_treated"], f["n_control"], f["n_cohorts"], f["smallest_cohort"]) == (6, 9, 3, 2)
    assert f["counted_on"] == "sample" and f["design"] == "staggered"
    assert c.to_dict() == {"estimator": "imputation", "rule": "small_design", "facts": f}


@pytest.mark.parametrize("n_t, n_c, estimator, rule", [
    (40, 40, "cs", "large_design"),         # both floors met exactly
    (39, 200, "imputation", "small_design"),  # too few adopters
    (200, 39, "imputation", "small_design"),  # too few comparison stations
    (60, 80, "cs", "large_design"),
])
def test_thresholds(n_t, n_c, estimator, rule):
    c = choose_headline(_panel(n_t, n_c, T=30, cohorts=(20, 24)), _params())
    assert (c.estimator, c.rule, c.facts["n_treated"], c.facts["n_control"]) == (estimator, rule, n_t, n_c)


def test_named_headline_wins():
    c = choose_headline(_panel(6, 9), _params(headline="cs"))
    assert (c.estimator, c.rule) == ("cs", "user")
    assert c.facts["n_treated"] == 6  # the facts are recorded all the same


def test_preferred_estimator_not_requested_falls_back_to_the_ranking():
    c = choose_headline(_panel(6, 9), _params(estimators=["twfe", "cs"]))
    assert (c.estimator, c.rule) == ("cs", "small_design")
    c = choose_headline(_panel(60, 80, T=30, cohorts=(20, 24)), _params(estimators=["twfe", "imputation"]))
    assert (c.estimator, c.rule) == ("imputation", "large_design")


def test_single_station_design_keeps_its_estimator():
    c = choose_headline(_panel(1, 20), _params(design="single_station"))
    assert (c.estimator, c.rule) == ("sdid", "small_design")


def test_counts_are_the_estimators_counts():
    """Late adopters are comparison stations, a station treated from the first month is dropped, a
    station without any observed outcome too — exactly as in the estimators' ``meta["sample"]``."""
    panel = _panel(6, 9)
    first = panel["station_id"] == "s000"
    panel.loc[first, "first_treat"] = 1  # treated from the first period: dropped
    panel.loc[panel["station_id"] == "s001", "first_treat"] = 99  # adopts after the window: comparison
    panel.loc[panel["station_id"] == "s010", Y] = np.nan  # no outcome: dropped
    f = design_facts(panel, Y)
    fit = get_estimator("imputation")(panel, Y)
    assert (f["n_treated"], f["n_control"]) == (fit.meta["sample"]["n_treated"], fit.meta["sample"]["n_control"])
    assert (f["n_treated"], f["n_control"]) == (4, 9)


def test_all_missing_outcome_counts_the_panel():
    panel = _panel(6, 9)
    panel[Y] = np.nan
    f = design_facts(panel, Y)
    assert (f["counted_on"], f["n_treated"], f["n_control"]) == ("panel", 6, 9)


def test_params_headline_values():
    assert _params().headline == "auto"
    assert _params(headline=None).headline == "auto"  # the notebooks' parameters cell says None
    with pytest.raises(ParamsError, match="headline estimator 'sdid' is not in estimators"):
        _params(headline="sdid")


# ----------------------------------------------------------------------------- steps on an imputation headline
def _fit(panel, p, name="imputation"):
    return get_estimator(name)(panel, Y, **estimator_options(name, p))


def test_jackknife_on_an_imputation_headline_matches_a_hand_loop():
    panel = _panel(6, 9, seed=3)
    p = _params().model_copy(update={"headline": "imputation"})
    res = {"imputation": _fit(panel, p)}
    small_sample_headline_se(panel, Y, p, res)  # headline_se auto: imputation with < 100 adopters
    out = res["imputation"]
    hs = out.meta["headline_se"]
    assert hs["method"] == "jackknife" and hs["n_fits"] == 15 and hs["df"] == 14
    thetas = np.array([float(_fit(panel[panel.station_id != s], p).overall["estimate"])
                       for s in sorted(panel.station_id.unique())])
    se = np.sqrt(14 / 15 * np.sum((thetas - thetas.mean()) ** 2))
    assert float(out.overall["std_error"]) == pytest.approx(se, rel=1e-9)
    assert out.meta["analytic_overall"]["std_error"] != pytest.approx(se)


def test_analytic_headline_se_is_kept_when_asked():
    panel = _panel(6, 9, seed=3)
    p = _params(headline_se="analytic").model_copy(update={"headline": "imputation"})
    res = {"imputation": _fit(panel, p)}
    small_sample_headline_se(panel, Y, p, res)
    assert "headline_se" not in res["imputation"].meta


def test_permutation_pretrend_runs_on_an_imputation_headline():
    panel = _panel(6, 9, seed=4)
    p = _params().model_copy(update={"headline": "imputation"})
    res = {"imputation": _fit(panel, p)}
    assert res["imputation"].meta["pretrend"]["df"] > 0  # BJS test 1: the leads' joint Wald test
    small_sample_pretrend(panel, Y, p, res)
    pt = res["imputation"].meta["pretrend"]
    assert pt["method"] == "permutation" and pt["estimator"] == "imputation", pt
    assert 0 < pt["p_value"] <= 1 and pt["p_value"] == pt["p_permutation"] and 0 <= pt["p_chi2"] <= 1


# ----------------------------------------------------------------------------- robustness rows
def test_few_clusters_get_no_multiplier_bootstrap_row():
    panel = _panel(4, 7)  # 11 stations
    p = _params(estimators=["imputation", "cs"]).model_copy(update={"headline": "imputation"})
    out, fails = robustness_variants(panel, Y, p, {})
    assert "cs_mboot" not in out and {"cs_never", "cs_notyet"} <= set(out)
    assert fails["cs_mboot"] == (f"only 11 stations: the multiplier bootstrap needs at least {MBOOT_MIN_CLUSTERS} "
                                 "clusters to resample (with fewer its interval is far too narrow), so it is not used")
    county = p.model_copy(update={"cluster": "county"})
    _, fails = robustness_variants(_panel(6, 9), Y, county, {})  # 15 stations but 3 counties
    assert fails["cs_mboot"].startswith("only 3 county clusters:")
    out, fails = robustness_variants(_panel(5, 7), Y, p, {})  # 12 stations: enough
    assert "cs_mboot" in out and "cs_mboot" not in fails


def test_randomization_inference_tests_the_headline_estimator():
    panel = _panel(5, 8, seed=5)
    p = _params(inference=["randomization"]).model_copy(update={"headline": "imputation"})
    head = _fit(panel, p)
    out, fails = robustness_variants(panel, Y, p, {"imputation": head})
    assert "ri" in out, fails.get("ri")
    ri = out["ri"]
    assert ri.meta["statistic"] == "imputation"
    # the actual statistic is the headline's own estimate (same options: horizons 0..H)
    assert float(ri.overall["estimate"]) == pytest.approx(float(head.overall["estimate"]), rel=1e-9)


def test_event_study_chart_follows_an_imputation_headline():
    panel = _panel(6, 9, seed=6)
    p = _params(estimators=["imputation", "cs"]).model_copy(update={"headline": "imputation"})
    res = {"imputation": _fit(panel, p), "cs": _fit(panel, p, "cs")}
    boot = get_estimator("cs")(panel, Y, bootstrap=99, seed=1, trim_e=(-12, 24), aggregations=("simple", "dynamic"))
    ev = Evaluation(params=p, panel=panel, results={Y: res}, failures={},
                    facts=WarehouseFacts(path="w.duckdb", synthetic=False, quarantined=0, rows={}),
                    robustness={Y: {"cs_mboot": boot}})
    assert ev.event_study()[0] == "imputation"
    ev.params = p.model_copy(update={"headline": "cs"})
    assert ev.event_study()[0] == "cs" and ev.event_study()[1]["band_low"].notna().any()


def test_headline_numbers_carry_estimand_horizon_and_rule():
    from evalkit.estimand import HEADLINE_ESTIMAND
    from evalkit.headline_choice import HeadlineChoice
    from evalkit.results import EstimationResult

    panel = _panel(6, 9)
    p = _params(event_window=[-6, 18]).model_copy(update={"headline": "imputation"})
    row = {"kind": "overall", "term": "ATT", "estimate": -3.0, "std_error": 1.0, "ci_low": -5.0, "ci_high": -1.0,
           "p_value": 0.003}
    r = EstimationResult("imputation", Y, pd.DataFrame([row]),
                         {"baseline_mean": 30.0, "estimand": HEADLINE_ESTIMAND, "sample": {"n_treated": 6,
                                                                                           "n_control": 9}})
    choice = HeadlineChoice("imputation", "small_design", {"n_treated": 6, "n_control": 9})
    ev = Evaluation(params=p, panel=panel, results={Y: {"imputation": r}}, failures={},
                    facts=WarehouseFacts(path="w.duckdb", synthetic=False, quarantined=0, rows={}),
                    headline_choice=choice)
    h = ev.headline()
    assert (h["estimand"], h["horizon"], h["headline_rule"]) == (HEADLINE_ESTIMAND, [0, 18], "small_design")
    d = ev.to_dict()
    assert d["headline_choice"] == {"estimator": "imputation", "rule": "small_design",
                                    "facts": {"n_treated": 6, "n_control": 9}}
    assert d["headline"][Y]["headline_rule"] == "small_design"
    # a headline on another estimand keeps its own key and says no months 0..H
    r.meta["estimand"] = "twfe_static_coefficient"
    assert (ev.headline()["estimand"], ev.headline()["horizon"]) == ("twfe_static_coefficient", None)
