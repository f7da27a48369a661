"""Gaps are missing, not zero: coverage per station and table, NaN months in the panel, coverage
after replace/forget, and params windows checked against the data."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from _exports import DIS_H, INC_H, dispute_rows, incident_rows, months, write_csv, write_register
from evalkit.cli import app
from evalkit.coverage import coverage_frame, coverage_ranges
from evalkit.ingest import ingest
from evalkit.panel import DISPUTE_COUNTS, INCIDENT_COUNTS, build_panel
from evalkit.params import check_window, validate_params
from evalkit.registry import period_of
from evalkit.warehouse import connect, forget, is_demo

WINDOW = ("2019-01", "2025-12")
DONGMEN, CHENGGUAN, SHIQIAO, XIAN_CG = "441502002", "441502001", "441581003", "441581004"
STOP_DM = ("2022-04", "2022-05", "2022-06", "2022-07")  # 东门 stopped exporting for four months
STOP_CG = ("2022-09", "2022-10", "2022-11", "2022-12")  # 城区城关 stopped at the end of the year
QUIET = ["2021-01", "2021-05", "2021-09", "2022-02", "2022-10"]  # 石桥: one incident in these months only


def _year(y: int, skip_dm=STOP_DM, skip_cg=STOP_CG) -> list[list]:
    ms = months(f"{y}-01", f"{y}-12")
    return (incident_rows("某市公安局城区分局东门派出所", [m for m in ms if m not in skip_dm], 30, "DM")
            + incident_rows("某市公安局城区分局城关派出所", [m for m in ms if m not in skip_cg], 25, "CG")
            + incident_rows("某县公安局城关派出所", ms, 20, "XC")
            + incident_rows("石桥派出所", [m for m in QUIET if m.startswith(str(y))], 1, "SQ"))


@pytest.fixture
def wh(tmp_path):
    p = tmp_path / "warehouse.duckdb"
    ingest("stations", write_register(tmp_path / "register.xlsx"), warehouse=p)
    write_csv(tmp_path / "改革.csv", ["派出所", "改革事项", "实施日期"],
              [["东门派出所", "两队一室", "2022-01-01"], ["石桥所", "两队一室", "2023-03-01"]])
    ingest("reforms", tmp_path / "改革.csv", warehouse=p, study_window=WINDOW)
    ingest("incidents", write_csv(tmp_path / "警情2021.csv", INC_H, _year(2021)), warehouse=p, study_window=WINDOW)
    ingest("incidents", write_csv(tmp_path / "警情2022.csv", INC_H, _year(2022)), warehouse=p, study_window=WINDOW)
    # the dispute ledger arrived for 2021 only
    ledger = [r for unit in ("东门派出所", "城关所") for r in dispute_rows(unit, months("2021-01", "2021-12"), 4, unit[:2])]
    ledger = [[f"{r[0]}-{i}", *r[1:]] for i, r in enumerate(ledger)]
    # "城关所" is ambiguous (two 城关 stations): those rows are quarantined, 东门's are loaded
    ingest("disputes", write_csv(tmp_path / "纠纷台账2021.csv", DIS_H, ledger), warehouse=p, study_window=WINDOW)
    return p


def _cell(p, sid, month, col):
    return p.loc[(p.station_id == sid) & (p.period == period_of(month + "-01")), col].iloc[0]


def test_coverage_is_stored_per_station_and_table(wh):
    con = connect(wh, read_only=True)
    cov = coverage_ranges(con).set_index(["table_name", "station_id"])
    assert cov.loc[("incidents", DONGMEN), "covered"] == "2021-01..2022-03, 2022-08..2022-12"
    assert cov.loc[("incidents", DONGMEN), "gap_months"] == 4
    assert cov.loc[("incidents", CHENGGUAN), "covered"] == "2021-01..2022-08"
    assert cov.loc[("incidents", XIAN_CG), "covered"] == "2021-01..2022-12"
    # the quiet station: empty months are plausible zeros over the span of the files that hold it
    assert cov.loc[("incidents", SHIQIAO), "covered"] == "2021-01..2022-12"
    assert cov.loc[("disputes", DONGMEN), "covered"] == "2021-01..2021-12"
    assert ("disputes", SHIQIAO) not in cov.index
    frame = coverage_frame(con, "incidents")
    assert frame.loc[(frame.station_id == SHIQIAO) & (frame.period == period_of("2021-02-01")), "n_records"].item() == 0
    con.close()


def test_panel_marks_months_outside_coverage_missing(wh):
    con = connect(wh, read_only=True)
    p = build_panel(con, "两队一室", start="2021-01", end="2022-12")
    con.close()
    assert len(p) == 4 * 24  # no row dropped
    for m in STOP_DM:
        for col in ("calls_total", "incidents_total", "incidents_per_10k", "dispatches", "response_mean_min"):
            assert np.isnan(_cell(p, DONGMEN, m, col)), (m, col)
    assert _cell(p, DONGMEN, "2022-03", "calls_total") == 30 and _cell(p, DONGMEN, "2022-08", "calls_total") == 30
    for m in STOP_CG:
        assert np.isnan(_cell(p, CHENGGUAN, m, "incidents_total"))
    # months inside coverage without records stay zero counts (and NaN means)
    assert _cell(p, SHIQIAO, "2021-02", "incidents_total") == 0
    assert np.isnan(_cell(p, SHIQIAO, "2021-02", "response_mean_min"))
    # disputes: 2022 was never delivered — missing for everyone, not zero
    assert _cell(p, DONGMEN, "2021-06", "disputes_opened") == 4
    assert p.loc[p.period >= period_of("2022-01-01"), "disputes_opened"].isna().all()
    assert p.loc[p.station_id == SHIQIAO, "disputes_opened"].isna().all()  # never in the ledger
    assert p.attrs["balanced"] is False
    assert p.attrs["coverage_gaps"]["incidents"] == {DONGMEN: 4, CHENGGUAN: 4}
    assert p.attrs["coverage_gaps"]["disputes"][DONGMEN] == 12
    assert all(p[c].dtype == "float64" for c in ("calls_total", "disputes_opened"))
    assert p["incidents_total"].dropna().eq(p["incidents_total"].dropna().round()).all()


def test_replace_and_forget_update_coverage(wh, tmp_path):
    late = write_csv(tmp_path / "警情2022.csv", INC_H, _year(2022, skip_dm=(), skip_cg=()))
    ingest("incidents", late, warehouse=wh, study_window=WINDOW, replace=True)
    con = connect(wh, read_only=True)
    p = build_panel(con, "两队一室", start="2021-01", end="2022-12")
    con.close()
    assert p.attrs["coverage_gaps"]["incidents"] == {}
    assert _cell(p, DONGMEN, "2022-05", "calls_total") == 30
    forget(late, warehouse=wh)
    con = connect(wh, read_only=True)
    p = build_panel(con, "两队一室", start="2021-01", end="2022-12")
    con.close()
    assert p.loc[p.period >= period_of("2022-01-01"), "calls_total"].isna().all()
    assert p.loc[p.period < period_of("2022-01-01"), "calls_total"].notna().all()


def test_hand_made_warehouse_without_stored_coverage_is_computed(tmp_path):
    """A warehouse written before coverage existed (no coverage rows, no load ids) still gets NaN gaps."""
    import duckdb

    from evalkit.schema import TABLES

    con = duckdb.connect(":memory:")
    for t in TABLES.values():
        con.execute(t.ddl())
    con.execute("INSERT INTO stations VALUES ('S1', '甲', 'A', 'B', 'C', 'urban', 1000, 1, 1, 0)")
    rows = [(f"I{m}{k}", "S1", f"2021-{m:02d}-05 10:00:00", "fight") for m in (1, 2, 3, 6) for k in range(40)]
    con.executemany("INSERT INTO incidents (incident_id, station_id, received_at, category) VALUES (?, ?, ?, ?)", rows)
    p = build_panel(con, "两队一室", start="2021-01", end="2021-06")
    assert p["calls_total"].tolist()[:3] == [40, 40, 40] and p["calls_total"].iloc[5] == 40
    assert p["calls_total"].iloc[3:5].isna().all()


def test_demo_world_panel_is_balanced_and_unchanged(demo_warehouse):
    con = connect(demo_warehouse, read_only=True)
    p = build_panel(con, "两队一室", start="2019-01", end="2025-12")
    n_cov = dict(con.execute("SELECT table_name, count(*) FROM coverage GROUP BY 1").fetchall())
    assert is_demo(con)  # the meta says it is the demo world's warehouse
    con.close()
    assert p.attrs["balanced"] is True and p.attrs["missing_cells"] == {"incidents": 0, "disputes": 0}
    assert all(p[c].dtype == "int64" for c in (*INCIDENT_COUNTS, *DISPUTE_COUNTS))
    assert n_cov == {"incidents": 100 * 84, "disputes": 100 * 84}


# ------------------------------------------------------------------------------ windows against the data
def _params(**kw):
    base = {"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_total"],
            "window": {"start": "2021-01", "end": "2022-12"}}
    return validate_params(base | kw)


def test_window_checks(wh):
    con = connect(wh, read_only=True)
    assert check_window(_params(), con, "p.yaml") == []  # 石桥 adopts after the end: allowed
    beyond = check_window(_params(window={"start": "2021-01", "end": "2023-06"}), con, "p.yaml")
    assert beyond == ["p.yaml: window.end 2023-06 lies beyond the incidents data (last month 2022-12); "
                      "set window.end to 2022-12 or earlier"]
    before = check_window(_params(window={"start": "2020-01", "end": "2022-12"}), con, "p.yaml")
    assert len(before) == 1 and before[0].startswith("p.yaml: window.start 2020-01 lies before the incidents data")
    nopre = check_window(_params(window={"start": "2022-01", "end": "2022-12"}), con, "p.yaml")
    assert len(nopre) == 1 and "window.start 2022-01: every adopter" in nopre[0] and "no pre-period" in nopre[0]
    disp = check_window(_params(outcomes=["disputes_opened"]), con, "p.yaml")
    assert disp and "beyond the disputes data (last month 2021-12)" in disp[0]
    con.close()


def test_validate_refuses_with_one_line_naming_file_and_key(wh, tmp_path):
    f = tmp_path / "late.yaml"
    f.write_text(yaml.safe_dump({"reform": "两队一室", "outcomes": ["incidents_total"], "warehouse": str(wh),
                                 "window": {"start": "2021-01", "end": "2024-12"}}, allow_unicode=True),
                 encoding="utf-8")
    r = CliRunner().invoke(app, ["validate", str(f)], env={"COLUMNS": "300"})
    assert r.exit_code == 1
    line = [x for x in r.output.splitlines() if "window.end" in x]
    assert len(line) == 1 and str(f) in line[0] and "2022-12" in line[0]
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"reform": "两队一室", "outcomes": ["incidents_total"],
                                  "window": {"start": "2021-01", "end": "2022-12"}}, allow_unicode=True),
                  encoding="utf-8")
    r = CliRunner().invoke(app, ["validate", str(ok), "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
