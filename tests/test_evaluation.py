"""evalkit.evaluate on the small demo world: robustness variants, sensitivity, multiple testing, verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

import evalkit
from evalkit.evaluation import SENS_MBAR
from evalkit.params import validate_params
from evalkit.verdict import VERDICTS

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
    table = ev.estimates_table()
    labels = table["Estimator"].tolist()
    assert "Callaway–Sant'Anna, controls: never-treated stations" in labels
    assert "Callaway–Sant'Anna, controls: not-yet-treated stations" in labels
    assert any(lbl.startswith("Callaway–Sant'Anna, multiplier-bootstrap interval (499 draws") for lbl in labels)
    assert any(lbl.startswith("TWFE, wild cluster bootstrap") for lbl in labels)
    assert any(lbl.startswith("TWFE, randomization-inference") for lbl in labels)
    assert set(table["Check"]) == {"Estimator", "Control group", "Inference"}
    rob = ev.robustness["incidents_fight"]
    assert rob["cs_mboot"].meta.get("bootstrap") or "bootstrap" in str(rob["cs_mboot"].meta.get("se_type", ""))
    assert rob["twfe_wild"].estimator == "twfe_wild" and 0 < rob["twfe_wild"].overall["p_value"] <= 1
    assert rob["ri"].tables["placebo"]["estimate"].notna().sum() > 100
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


def test_adjusted_pvalues_not_below_unadjusted(ev):
    m = ev.multiple
    assert m is not None and list(m["outcome"]) == ["incidents_fight", "dispatches"], ev.multiple_error
    assert (m["p_bh"] >= m["p_value"] - 1e-12).all()
    assert (m["p_romano_wolf"] >= m["p_rw_raw"] - 1e-12).all()
    assert not ev.multiple_table().empty


def test_verdict_is_one_of_four(ev):
    for outcome in ev.params.outcomes:
        assert ev.headline(outcome)["verdict"] in VERDICTS


def test_results_json_has_the_new_sections(ev, tmp_path):
    import json

    data = json.loads(ev.save(tmp_path / "results.json").read_text(encoding="utf-8"))
    assert "cs_notyet" in data["robustness"]["incidents_fight"]
    assert data["sensitivity"]["sd"] and data["multiple_testing"]
    assert "cs_notyet" not in data["results"]["incidents_fight"]  # batch summaries read "results" only


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
