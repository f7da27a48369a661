"""The reforms table's optional columns of issue 17 — ``ended_on`` (停止日期) and ``intensity`` (覆盖比例) —
from hand-made exports as bureaus write them (a GB18030 CSV, an XLSX with a merged title row), not from
the demo writer: parsed, quarantined with a reason when wrong, rows in = accepted + quarantined."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from _exports import write_csv, write_register
from evalkit.ingest import ingest
from evalkit.warehouse import connect
from realistic.files import Sheet, write_xlsx

WINDOW = ("2019-01", "2025-12")
HEADER = ["序号", "派出所编码", "改革项目", "实施时间", "停止日期", "覆盖比例"]
ROWS = [
    [1, "441502001", "一村一辅警", "2022年7月", "", "60%"],           # percent → 0.6, still running
    [2, "441502002", "一村一辅警", "2022-10", "2024-07-01", "0.25"],  # a stop; plain share
    [3, "441581003", "一村一辅警", "2023.01", "2023年1月", "0.5"],     # stop in the adoption month
    [4, "441581004", "一村一辅警", "2023-01", "", "0"],               # zero dose
    [5, "441502001", "两队一室", "2023-04", "2022-12-31", ""],        # stop before adoption
    [6, "441502002", "两队一室", "2023-04", "", "很多"],               # not a number
    [7, "441581003", "两队一室", "2023-04", "2024年8月", "－0.2"],     # full-width minus: negative
    [8, "441581004", "两队一室", "2023-04", "2024年8月", "７５％"],     # full-width 75 %: 0.75
]


@pytest.fixture()
def wh(tmp_path):
    path = tmp_path / "wh.duckdb"
    ingest("stations", write_register(tmp_path / "reg.xlsx"), warehouse=path)
    return path


def _rows(wh):
    con = connect(wh, read_only=True)
    try:
        return {(r[0], r[1]): r[2:] for r in con.execute(
            "SELECT station_id, reform, adopted_on, ended_on, intensity FROM reforms").fetchall()}
    finally:
        con.close()


def test_gb18030_csv_ended_on_and_intensity(wh, tmp_path):
    f = write_csv(tmp_path / "改革推进台账.csv", HEADER, ROWS)
    rep = ingest("reforms", f, warehouse=wh, study_window=WINDOW)
    assert rep.rows_in == len(ROWS) == rep.rows_accepted + rep.rows_quarantined
    assert dict(rep.quarantined_by_reason) == {"ends_before_adoption": 2, "bad_intensity": 2, "bad_number": 1}
    got = _rows(wh)
    assert got == {
        ("441502001", "village_auxiliary"): (dt.date(2022, 7, 1), None, pytest.approx(0.6)),
        ("441502002", "village_auxiliary"): (dt.date(2022, 10, 1), dt.date(2024, 7, 1), 0.25),
        ("441581004", "two_teams_one_room"): (dt.date(2023, 4, 1), dt.date(2024, 8, 1), pytest.approx(0.75)),
    }
    con = connect(wh, read_only=True)
    try:
        q = dict(con.execute("SELECT source_row, reason FROM quarantine ORDER BY source_row").fetchall())
        detail = dict(con.execute("SELECT source_row, detail FROM quarantine").fetchall())
    finally:
        con.close()
    # file rows: header = row 1, so the data row k is file row k + 1
    assert q == {4: "ends_before_adoption", 5: "bad_intensity", 6: "ends_before_adoption", 7: "bad_number",
                 8: "bad_intensity"}
    assert detail[6] == "ended_on (停止日期) 2022-12-31 is not after the adoption month 2023-04-01"
    assert "很多" in detail[7] and "not a number" in detail[7]


def test_xlsx_with_title_rows_and_other_aliases(wh, tmp_path):
    """结束日期 / 实施强度 headers under a merged title row and a note row; a planned stop after today
    is accepted (an agreement's end date), without a stop the column is empty (NULL)."""
    rows = [["某市公安局一村一辅警推进情况"], ["填报单位：某市公安局"],
            ["序号", "单位名称", "改革事项", "启动时间", "结束日期", "实施强度"],
            [1, "某市公安局城区分局城关派出所", "一村一辅警", "2022年7月", "2099-12-31", 1],
            [2, "东门派出所", "一村一辅警", "2022年7月", None, "100%"],
            [3, "石桥派出所", "一村一辅警", "2022年7月", "2022-07-15", 0.5]]
    f = write_xlsx(tmp_path / "推进情况.xlsx", [Sheet("Sheet1", rows, merged=["A1:F1"])])
    rep = ingest("reforms", f, warehouse=wh, study_window=WINDOW)
    assert rep.rows_in == 3 == rep.rows_accepted + rep.rows_quarantined
    assert dict(rep.quarantined_by_reason) == {"ends_before_adoption": 1}
    got = _rows(wh)
    assert got[("441502001", "village_auxiliary")] == (dt.date(2022, 7, 1), dt.date(2099, 12, 31), 1.0)
    assert got[("441502002", "village_auxiliary")] == (dt.date(2022, 7, 1), None, 1.0)


def test_without_the_new_columns_nothing_changes(wh, tmp_path):
    f = write_csv(tmp_path / "改革台账.csv", ["序号", "派出所编码", "改革项目", "实施时间"],
                  [[1, "441502001", "两队一室", "2023-01"]])
    rep = ingest("reforms", f, warehouse=wh, study_window=WINDOW)
    assert (rep.rows_accepted, rep.rows_quarantined) == (1, 0)
    assert _rows(wh) == {("441502001", "two_teams_one_room"): (dt.date(2023, 1, 1), None, None)}


def test_panel_treatment_dose_and_stops(wh, tmp_path):
    """build_panel: ``treatment`` on from adoption to the month before the stop, ``dose`` from adoption
    on (also after a stop: the dose analysis is about starting), ``first_treat`` unchanged
    (intent-to-treat), ``n_stopped`` counts stops inside the window only."""
    from evalkit.panel import build_panel
    from evalkit.registry import period_of

    rows = [[1, "441502001", "一村一辅警", "2022年7月", "", "60%"],
            [2, "441502002", "一村一辅警", "2022-10", "2024-07-01", "0.25"],
            [3, "441581003", "一村一辅警", "2023-01", "2026-03-01", ""],   # stop after the window; no dose
            [4, "441581004", "两队一室", "2023-01", "2023-06-30", "0.5"]]  # another reform
    ingest("reforms", write_csv(tmp_path / "r.csv", HEADER, rows), warehouse=wh, study_window=WINDOW)
    con = connect(wh, read_only=True)
    try:
        panel = build_panel(con, "一村一辅警", start="2022-01", end="2025-12")
        other = build_panel(con, "两队一室", start="2022-01", end="2025-12")
    finally:
        con.close()
    p = panel.set_index(["station_id", "period"])
    jul22, oct22, jun24, jul24 = (period_of(f"{m}-01") for m in ("2022-07", "2022-10", "2024-06", "2024-07"))
    assert p.loc[("441502002", oct22), ["first_treat", "treated", "treatment"]].tolist() == [oct22, 1, 1]
    assert p.loc[("441502002", jun24), "treatment"] == 1
    assert p.loc[("441502002", jul24), ["treated", "treatment"]].tolist() == [1, 0]  # ITT vs actual
    assert p.loc[("441502002", jul24), "dose"] == 0.25
    assert p.loc[("441502002", oct22 - 1), ["treatment", "dose"]].tolist() == [0, 0.0]
    assert p.loc[("441502001", jul22), "dose"] == pytest.approx(0.6)
    assert p.loc[("441581003", jul24), "treatment"] == 1  # its stop lies after the window
    assert np.isnan(p.loc[("441581003", jul24), "dose"])  # adopter without an intensity: unknown
    assert p.loc[("441581004", jul24), ["treatment", "dose"]].tolist() == [0, 0.0]  # never adopted this one
    assert panel.attrs["n_stopped"] == 1 and panel.attrs["n_dose_missing"] == 1
    assert (panel["treatment"] <= panel["treated"]).all()
    o = other.set_index(["station_id", "period"])
    assert other.attrs["n_stopped"] == 1 and "dose" in other.columns
    assert o.loc[("441581004", period_of("2023-06-01")), "treatment"] == 0  # stopped in June: off from June


def test_panel_without_stops_or_doses(wh, tmp_path):
    from evalkit.panel import build_panel

    f = write_csv(tmp_path / "r.csv", ["序号", "派出所编码", "改革项目", "实施时间"], [[1, "441502001", "两队一室", "2023-01"]])
    ingest("reforms", f, warehouse=wh, study_window=WINDOW)
    con = connect(wh, read_only=True)
    try:
        panel = build_panel(con, "两队一室", start="2022-01", end="2025-12")
    finally:
        con.close()
    assert "dose" not in panel.columns and panel.attrs["n_stopped"] == 0
    assert (panel["treatment"] == panel["treated"]).all()
