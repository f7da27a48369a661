"""Ingest of the monthly report tables of the prevention index (办案/走访/风险隐患/巡逻/满意度/执法投诉):
one hand-made export per table with a title row and Chinese headers; rows in = accepted + quarantined."""

from __future__ import annotations

import pytest

from _exports import write_csv, write_register
from evalkit.ingest import ingest
from evalkit.ingest.loads import reconcile
from evalkit.warehouse import connect

TITLE = ["城关县公安局2024年月报表"]


def _file(tmp_path, name, header, rows):
    """A CSV with a title row above the header (GB18030, as bureaus hand it over)."""
    return write_csv(tmp_path / name, TITLE + [""] * (len(header) - 1), [header, *rows])


@pytest.fixture()
def wh(tmp_path):
    path = tmp_path / "wh.duckdb"
    ingest("stations", write_register(tmp_path / "reg.xlsx"), warehouse=path)
    return path


# table, header, rows, expected accepted rows as dicts, expected quarantine reasons
CASES = [
    ("cases", ["序号", "派出所", "统计月份", "立案数", "破案数", "案损（万元）"],
     [[1, "城关派出所", "2024年1月", "12", "5", "1.5"],          # ambiguous: two 城关派出所 → quarantined
      [2, "东门派出所", "2024年1月", "10", "4", "0.25"],
      [3, "东门派出所", "2024-02", "8", "9", "2,1"],            # 2,1 → 21 万元 (thousands separator)
      [4, "石桥派出所", "2024年1月", "x", "1", "1"],             # bad_number
      [5, "东门派出所", "2024年1月", "3", "1", "1"]],            # duplicate station-month
     {("441502002", "2024-01-01"): {"cases_opened": 10, "cases_solved": 4, "loss_yuan": 2500.0},
      ("441502002", "2024-02-01"): {"cases_opened": 8, "cases_solved": 9, "loss_yuan": 210000.0}},
     {"ambiguous_station": 1, "bad_number": 1, "duplicate_id": 1}),
    ("visits", ["单位代码", "月份", "走访户数"],
     [["441502001", "2024年1月", "120"], ["441502002", "2024-01-15", "80户"], ["441581003", "2024年1月", "-3"]],
     {("441502001", "2024-01-01"): {"households_visited": 120},
      ("441502002", "2024-01-01"): {"households_visited": 80}},
     {"bad_number": 1}),
    ("hazards", ["单位代码", "月份", "发现隐患数", "整改隐患数"],
     [["441502001", "2024年1月", "6", "4"], ["441502001", "2024年2月", "", "1"]],
     {("441502001", "2024-01-01"): {"hazards_found": 6, "hazards_resolved": 4}},
     {"missing_required": 1}),
    ("patrols", ["单位代码", "统计月份", "巡逻时长（小时）"],
     [["441502001", "2024年1月", "310.5"], ["441502002", "2024年1月", "12小时"], ["441581004", "二〇二四年", "1"]],
     {("441502001", "2024-01-01"): {"patrol_hours": 310.5}, ("441502002", "2024-01-01"): {"patrol_hours": 12.0}},
     {"bad_datetime": 1}),
    ("surveys", ["单位代码", "月份", "调查人数", "满意人数", "联系电话"],
     [["441502001", "2024年1月", "50", "45", "13812345678"], ["441502002", "2024年1月", "40", "41", "13812345678"]],
     {("441502001", "2024-01-01"): {"surveyed": 50, "satisfied": 45}},
     {"count_exceeds": 1}),
    ("complaints", ["单位代码", "月份", "投诉数", "查实数"],
     [["441502001", "2024年1月", "2", "1"], ["441502002", "2024年1月", "0", ""], ["999", "2024年1月", "0", "0"]],
     {("441502001", "2024-01-01"): {"complaints": 2, "complaints_upheld": 1},
      ("441502002", "2024-01-01"): {"complaints": 0, "complaints_upheld": None}},
     {"unknown_station": 1}),
]


@pytest.mark.parametrize("table,header,rows,accepted,reasons", CASES, ids=[c[0] for c in CASES])
def test_report_table_ingest(wh, tmp_path, table, header, rows, accepted, reasons):
    rep = ingest(table, _file(tmp_path, f"{table}.csv", header, rows), warehouse=wh, accept_unmatched=True)
    assert rep.rows_in == len(rows) == rep.rows_accepted + rep.rows_quarantined
    assert rep.rows_accepted == len(accepted)
    assert dict(rep.quarantined_by_reason) == reasons
    con = connect(wh, read_only=True)
    try:
        cols = [c for c in next(iter(accepted.values()))]
        got = con.execute(f"SELECT station_id, CAST(month AS VARCHAR), {', '.join(cols)} FROM {table} "
                          f"ORDER BY 1, 2").fetchall()
        assert {(r[0], r[1]): dict(zip(cols, r[2:], strict=True)) for r in got} == accepted
        assert reconcile(con)["ok"].all()
        # a personal-data column is never read, and no phone number reaches the warehouse
        raw = " ".join(str(r) for r in con.execute("SELECT raw, detail FROM quarantine").fetchall())
        assert "13812345678" not in raw
    finally:
        con.close()
    if table == "surveys":
        assert rep.refused_personal_columns == ["联系电话"]


def test_report_month_outside_window(wh, tmp_path):
    f = _file(tmp_path, "p.csv", ["单位代码", "月份", "巡逻时长"], [["441502001", "1999年1月", "3"]])
    rep = ingest("patrols", f, warehouse=wh, study_window=("2019-01", "2025-12"))
    assert dict(rep.quarantined_by_reason) == {"outside_window": 1}
