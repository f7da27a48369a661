"""Params validation: clear errors before any notebook starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.params import ParamsError, load_params, validate_params

PARAMS_DIR = Path(__file__).resolve().parents[1] / "params"


@pytest.mark.parametrize("path", sorted(PARAMS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_params_are_valid(path):
    p = load_params(path)
    assert p.evaluation_id == path.stem
    assert p.notebook == "prevention_index" or p.outcomes  # an index report has no outcomes


def test_chinese_names_resolve():
    p = validate_params({"evaluation_id": "x", "reform": "一室两队", "outcomes": ["纠纷化解率"]})
    assert p.reform == "two_teams_one_room" and p.outcomes == ["dispute_resolution_rate"]
    assert p.headline == "auto"  # chosen for the design when the evaluation runs (evalkit.headline_choice)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"], "colour": 1},
         "colour: unknown key"),
        ({"evaluation_id": "x", "reform": "三队两室", "outcomes": ["incidents_total"]}, "unknown reform '三队两室'"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["crime_rate"]}, "unknown outcome 'crime_rate'"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": "incidents_total"}, "outcomes: Input should be a valid list"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"], "alpha": "five"}, "alpha:"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"], "lang": "fr"}, "lang:"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"],
          "window": {"start": "2019-13", "end": "2020-01"}}, "window.start: month out of range"),
        ({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"],
          "estimators": ["twfe", "magic"]}, "unknown estimator(s) ['magic']"),
        ({"reform": "两队一室", "outcomes": ["incidents_total"]}, "evaluation_id: required key is missing"),
    ],
)
def test_bad_params_name_the_key(data, message):
    with pytest.raises(ParamsError) as err:
        validate_params(data, source="params/bad.yaml")
    assert "params/bad.yaml" in str(err.value)
    assert message in str(err.value)


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("reform: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(f)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


# ----------------------------------------------------------------- robustness / inference keys
BASE = {"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_fight"]}


def test_new_keys_defaults():
    p = validate_params(BASE)
    assert p.inference == [] and p.sensitivity is True and p.wild_weights == "rademacher"
    assert (p.wild_draws, p.ri_draws) == (999, 199)
    assert p.multiple_testing is False  # one outcome
    assert p.design == "staggered" and p.notebook == "evaluate_reform"
    two = validate_params(BASE | {"outcomes": ["incidents_fight", "dispatches"]})
    assert two.multiple_testing is True
    assert validate_params(BASE | {"outcomes": ["incidents_fight", "dispatches"],
                                   "multiple_testing": False}).multiple_testing is False


def test_inference_list_and_design_mapping():
    p = validate_params(BASE | {"inference": ["randomization", "wild_bootstrap", "randomization"],
                                "wild_weights": "webb", "wild_draws": 499, "ri_draws": 99, "sensitivity": False})
    assert p.inference == ["randomization", "wild_bootstrap"] and p.wild_weights == "webb"
    assert validate_params(BASE | {"inference": "wild_bootstrap"}).inference == ["wild_bootstrap"]
    pilot = validate_params(BASE | {"design": "single_station"})
    assert pilot.notebook == "pilot_station" and pilot.estimators == ["naive_yoy", "sdid", "sc", "twfe"]
    old = validate_params(BASE | {"notebook": "pilot_station"})
    assert old.design == "single_station"
    assert validate_params(BASE | {"design": "staggered", "notebook": "evaluate_reform"}).design == "staggered"


def test_notebook_round_trip_keeps_new_keys():
    from evalkit.params import EvaluationParams

    p = validate_params(BASE | {"inference": ["wild_bootstrap"], "sensitivity": False})
    back = EvaluationParams.from_notebook(p.notebook_parameters())
    assert back == p


@pytest.mark.parametrize("notebook", ["evaluate_reform", "pilot_station"])
def test_every_key_is_in_the_notebook_parameters_cell(notebook):
    """papermill warns about injected keys a notebook does not declare; every params key is declared."""
    import nbformat

    from evalkit.params import EvaluationParams

    nb = nbformat.read(PARAMS_DIR.parent / "notebooks" / f"{notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert set(EvaluationParams.model_fields) <= names


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"inference": ["bootstrap"]}, "inference: unknown inference method(s) ['bootstrap']"),
        ({"inference": 3}, "inference: must be a list"),
        ({"wild_weights": "mammen"}, "wild_weights: Input should be 'rademacher' or 'webb'"),
        ({"wild_draws": 10}, "wild_draws: Input should be greater than or equal to 99"),
        ({"ri_draws": 5}, "ri_draws: Input should be greater than or equal to 19"),
        ({"sensitivity": "maybe"}, "sensitivity:"),
        ({"multiple_testing": "often"}, "multiple_testing:"),
        ({"design": "cluster_rct"}, "design: Input should be 'staggered' or 'single_station'"),
        ({"design": "single_station", "notebook": "evaluate_reform"}, "design 'single_station' runs notebook"),
    ],
)
def test_bad_new_keys_name_the_key(extra, message):
    with pytest.raises(ParamsError) as err:
        validate_params(BASE | extra, source="params/bad.yaml")
    assert message in str(err.value) and "params/bad.yaml" in str(err.value)


def test_same_series_under_two_names_is_refused():
    """警情总量 and 处警量 are one series in the panel: listing both would show it twice and count it
    twice in the multiple-testing correction."""
    import pytest

    from evalkit.params import validate_params

    with pytest.raises(ValueError, match=r"incidents_total \(警情总量\) and dispatches \(处警量\) are the same series"):
        validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["警情总量", "处警量"]})
    assert validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["处警量"]}).outcomes == ["dispatches"]
