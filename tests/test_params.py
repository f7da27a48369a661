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
    assert p.outcomes


def test_chinese_names_resolve():
    p = validate_params({"evaluation_id": "x", "reform": "一室两队", "outcomes": ["纠纷化解率"]})
    assert p.reform == "two_teams_one_room" and p.outcomes == ["dispute_resolution_rate"]
    assert p.headline == "imputation"


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
