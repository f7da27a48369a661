"""Params keys of the further analyses (issue 17): ``dose``, ``switching``, ``spillover``,
``heterogeneity`` — strict types, unknown sub-keys named with file and key, and the warehouse check
that refuses an analysis whose data is missing before any notebook starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalkit.params import ParamsError, check_analyses, load_params, validate_params
from evalkit.warehouse import connect

BASE = {"evaluation_id": "x", "reform": "一村一辅警", "outcomes": ["disputes_opened"]}
ROOT = Path(__file__).resolve().parents[1]


def test_defaults_and_true():
    p = validate_params(BASE)
    assert (p.dose, p.switching, p.spillover, p.heterogeneity, p.analyses) == (None, None, None, [], [])
    p = validate_params({**BASE, "dose": True, "switching": True, "spillover": True,
                         "heterogeneity": ["area_type", "cohort"]})
    assert p.analyses == ["dose", "switching", "spillover", "heterogeneity"]
    assert (p.dose.degree, p.dose.knots, p.dose.bootstrap, p.dose.small_cohorts) == (3, 0, 999, "error")
    assert (p.switching.effects, p.switching.placebo, p.switching.switchers) == (12, 6, "both")
    assert (p.spillover.max_e, p.spillover.leaveout) == (None, True)
    p = validate_params({**BASE, "dose": {"degree": 1, "knots": [0.5]}, "spillover": {"max_e": 12},
                         "switching": False, "heterogeneity": "county"})
    assert (p.dose.degree, p.dose.knots, p.spillover.max_e, p.switching, p.heterogeneity) == (1, [0.5], 12, None,
                                                                                              ["county"])
    # round trip through the notebook's parameters cell
    back = type(p).from_notebook(p.notebook_parameters())
    assert back.dose == p.dose and back.spillover == p.spillover and back.heterogeneity == ["county"]


@pytest.mark.parametrize("extra, words", [
    ({"dose": 1}, "dose"),
    ({"dose": "yes"}, "dose"),
    ({"dose": {"degree": True}}, "dose.degree"),
    ({"dose": {"degree": "1"}}, "dose.degree"),
    ({"dose": {"bootstrap": -1}}, "dose.bootstrap"),
    ({"switching": {"effects": 0}}, "switching.effects"),
    ({"switching": {"switchers": "up"}}, "switching.switchers"),
    ({"spillover": {"max_e": 2.5}}, "spillover.max_e"),
    ({"spillover": {"leaveout": 1}}, "spillover.leaveout"),
    ({"heterogeneity": ["urban"]}, "unknown grouping(s) ['urban']"),
    ({"heterogeneity": {"by": "county"}}, "heterogeneity"),
])
def test_wrong_types_refused(extra, words):
    with pytest.raises(ParamsError, match="invalid evaluation parameters") as e:
        validate_params({**BASE, **extra})
    assert words in str(e.value)


def test_unknown_sub_key_names_file_key_and_allowed(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({**BASE, "spillover": {"max_e": 12, "ring": 2}}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ParamsError) as e:
        load_params(f)
    msg = str(e.value)
    assert str(f) in msg and "spillover.ring: unknown key (allowed: max_e, leaveout)" in msg


def test_single_station_refuses_analyses():
    with pytest.raises(ParamsError, match="dose: further analyses need design 'staggered'"):
        validate_params({**BASE, "design": "single_station", "dose": True})


def test_shipped_params_files_validate():
    for name, key in (("village_auxiliary_dose", "dose"), ("diversion_switching", "switching"),
                      ("patrol_spillover", "spillover"), ("police_grid_urban_rural", "heterogeneity")):
        p = load_params(ROOT / "params" / f"{name}.yaml")
        assert p.analyses == [key], name
    assert load_params(ROOT / "params" / "patrol_spillover.yaml").outcomes[0] == "incidents_theft"
    assert load_params(ROOT / "params" / "police_grid_urban_rural.yaml").heterogeneity == ["area_type"]


def test_missing_data_refused_with_one_line_naming_key(tmp_path):
    from _exports import write_csv, write_register
    from evalkit.ingest import ingest

    wh = tmp_path / "wh.duckdb"
    ingest("stations", write_register(tmp_path / "reg.xlsx"), warehouse=wh)
    f = write_csv(tmp_path / "r.csv", ["序号", "派出所编码", "改革项目", "实施时间"], [[1, "441502001", "一村一辅警", "2023-01"]])
    ingest("reforms", f, warehouse=wh, study_window=("2019-01", "2025-12"))
    p = validate_params({**BASE, "dose": True, "spillover": True, "switching": True, "heterogeneity": ["county"]})
    con = connect(wh, read_only=True)
    try:
        problems = check_analyses(p, con, "p.yaml")
    finally:
        con.close()
    assert problems == [
        "p.yaml: dose: the reforms table has no intensity (覆盖比例) for village_auxiliary; load a reforms file "
        "with that column (`evalkit ingest reforms FILE --replace`)",
        "p.yaml: spillover: the warehouse has no adjacency table; load one with `evalkit ingest adjacency FILE`",
    ]
    assert all("\n" not in m for m in problems)
    # with the data loaded, nothing is refused
    f = write_csv(tmp_path / "r.csv", ["序号", "派出所编码", "改革项目", "实施时间", "覆盖比例"],
                  [[1, "441502001", "一村一辅警", "2023-01", "50%"]])
    ingest("reforms", f, warehouse=wh, study_window=("2019-01", "2025-12"), replace=True)
    f = write_csv(tmp_path / "adj.csv", ["派出所编码", "相邻派出所编码"], [["441502001", "441502002"]])
    ingest("adjacency", f, warehouse=wh)
    con = connect(wh, read_only=True)
    try:
        assert check_analyses(p, con, "p.yaml") == []
    finally:
        con.close()
