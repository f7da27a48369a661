"""Headers as bureaus write them: title rows, merged and two-row headers, 序号, odd aliases, units,
missing columns with defaults, "did you mean", XLSX sheets and formulas, suggested mapping files.

Every input is written here the way a bureau's export looks (never by the demo writer).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalkit.ingest import IngestError, ingest, ingest_cli
from evalkit.ingest.headers import find_header, map_headers, split_unit
from evalkit.schema import INCIDENTS
from evalkit.warehouse import connect

WINDOW = ("2019-01", "2025-12")


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return path


def county_register(path: Path, encoding: str = "gb18030") -> Path:
    """A county bureau's register: title and note rows, 序号, 单位代码, full-width brackets, 万人."""
    return write_csv(path, [
        "城关县公安局派出所基本情况表,,,",
        "填报单位：城关县公安局   （数据截至2023年12月）,,,",
        "序号,单位代码 ,单位名称,辖区人口（万人）",
        "1,S001,城关派出所,5.2",
        "2,S002,河口派出所,1.85",
        "3,S003,东湖派出所,2.6",
    ], encoding)


def register_con(tmp_path) -> object:
    con = connect(":memory:")
    ingest("stations", county_register(tmp_path / "派出所.csv"), con=con, defaults=["province=某省", "city=江城市"])
    return con


def test_split_unit_and_find_header():
    assert split_unit("人口（万人）") == ("人口", "万人")
    assert split_unit("人口(单位:万人)") == ("人口", "万人")
    assert split_unit("到场时间") == ("到场时间", None)
    rows = [["某市公安局警情统计表", None, None, None], [None, None, None, None],
            ["序号", "警情编号", "时间", None, "单位"], [None, None, "接警", "到达", None]]
    hr = find_header(rows, INCIDENTS)
    assert (hr.index, hr.count) == (2, 2)
    assert hr.headers == ["序号", "警情编号", "接警时间", "到达时间", "单位"]
    hm = map_headers(hr.headers, INCIDENTS, None, "f", strict=False)
    assert hm.positions == {"incident_id": 1, "received_at": 2, "arrived_at": 3, "station_id": 4}
    assert hm.ignored == ["序号"]


def test_register_with_title_rows_units_and_defaults(tmp_path, capsys):
    f = county_register(tmp_path / "派出所.csv")
    wh = tmp_path / "w.duckdb"
    code = ingest_cli("stations", [str(f)], str(wh), None, None, ["province=某省"])
    assert code == 0
    out = capsys.readouterr().out
    assert "3 rows in → 3 accepted, 0 quarantined" in out
    # all missing columns named once, in one line
    missing = [ln for ln in out.splitlines() if "columns not in the file" in ln]
    assert missing == ["  columns not in the file (stored as unknown; give them with --set COLUMN=VALUE): "
                       "county, city, area_type, officers, auxiliaries, villages"]
    con = connect(wh)
    got = con.execute("SELECT station_id, name, province, city, population, area_type FROM stations "
                      "ORDER BY 1").fetchall()
    con.close()
    assert got == [("S001", "城关派出所", "某省", None, 52000, None),
                   ("S002", "河口派出所", "某省", None, 18500, None),
                   ("S003", "东湖派出所", "某省", None, 26000, None)]


def test_register_keyed_by_name_only(tmp_path):
    f = write_csv(tmp_path / "stations.csv", ["派出所,常住人口", "城关派出所,52000", "河口派出所,18000"])
    con = connect(":memory:")
    rep = ingest("stations", f, con=con)
    assert (rep.rows_accepted, rep.rows_quarantined) == (2, 0)
    assert con.execute("SELECT station_id, name FROM stations ORDER BY 1").fetchall() == [
        ("城关派出所", "城关派出所"), ("河口派出所", "河口派出所")]


def test_missing_columns_in_one_message_with_did_you_mean(tmp_path):
    f = write_csv(tmp_path / "incidents.csv", ["单位,报警时刻点,类别", "S001,2023-03-20 14:05,盗窃"])
    con = register_con(tmp_path)
    with pytest.raises(IngestError) as ei:
        ingest("incidents", f, con=con, study_window=WINDOW)
    assert str(ei.value) == (
        f"{f}: row 1: missing required columns incident_id (e.g. 警情编号, 接警编号, 警情号); "
        "received_at (e.g. 接警时间, 报警时间, 受理时间); unmatched headers: 报警时刻点 (did you mean "
        "报警时间 → received_at?) — rename the header, map it with --mapping (see --suggest-mapping) or "
        "give one value with --set COLUMN=VALUE")


def test_aliases_two_row_header_full_width_and_defaults_for_required(tmp_path):
    con = register_con(tmp_path)
    f = write_csv(tmp_path / "警情.csv", [
        "城关县公安局2023年3月警情登记表,,,,,",
        "序号,接警单号,管辖单位,时间,,警情性质",
        ",,,接警,到场,",
        "1,J1,S001,2023-03-20 14:05,2023-03-20 14:15,电信网络诈骗",
        "2,J2,S002,2023/3/21 8:05,2023/3/21 8:20,盗窃",
    ], "gb18030")
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (2, 2, 0)
    got = con.execute("SELECT incident_id, station_id, CAST(received_at AS VARCHAR), CAST(arrived_at AS VARCHAR), "
                      "category FROM incidents ORDER BY 1").fetchall()
    assert got == [("J1", "S001", "2023-03-20 14:05:00", "2023-03-20 14:15:00", "fraud"),
                   ("J2", "S002", "2023-03-21 08:05:00", "2023-03-21 08:20:00", "theft")]
    # a reform list without a reform column: the reform given as a default
    r = write_csv(tmp_path / "r.csv", ["单位代码,启动时间", "S001,2023年1月"])
    rep = ingest("reforms", r, con=con, study_window=WINDOW, defaults={"reform": "一村一辅警"})
    assert rep.rows_accepted == 1, rep.quarantined_by_reason


def _xlsx(path: Path) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    hidden = wb.active
    hidden.title = "警情"  # named like the table but hidden: never read by default
    hidden.append(["警情编号", "单位", "接警时间", "警情类型"])
    hidden.append(["H1", "S001", "2023-03-01 10:00", "盗窃"])
    hidden.sheet_state = "hidden"
    ws = wb.create_sheet("2023年3月")
    ws.append(["城关县公安局警情登记表"])
    ws.merge_cells("A1:F1")
    ws.append(["序号", "警情编号", "单位", "时间", None, "警情类型"])
    ws.merge_cells("D2:E2")
    ws.append([None, None, None, "接警", "到达", None])
    ws.append([1, "J1", "S001", "2023-03-20 14:05", "2023-03-20 14:15", "盗窃"])
    ws.append([2, "J2", "S001", "2023-03-20 15:05", "=D5+1/96", "盗窃"])  # formula, no saved value
    ws.append([3, "J3", "S002", "2023-03-20 16:05", "2023-03-20 16:25", "纠纷"])
    notes = wb.create_sheet("说明")
    notes.append(["本表由系统导出"])
    wb.save(path)
    return path


def test_xlsx_visible_sheet_merged_title_two_row_header_and_formula_cells(tmp_path):
    con = register_con(tmp_path)
    f = _xlsx(tmp_path / "警情.xlsx")
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (3, 2, 1)
    assert rep.quarantined_by_reason == {"formula_without_value": 1}
    q = con.execute("SELECT source_row, reason, detail FROM quarantine").fetchall()
    assert q == [(5, "formula_without_value", "formula cell E5 has no saved value (open the file in Excel/WPS, "
                                              "save it, and ingest again)")]
    assert con.execute("SELECT count(*) FROM incidents WHERE incident_id = 'H1'").fetchall() == [(0,)]
    # the hidden sheet only by explicit choice
    con = register_con(tmp_path)
    rep = ingest("incidents", f, con=con, study_window=WINDOW, sheet="警情")
    assert rep.rows_accepted == 1


def test_suggest_mapping_round_trip(tmp_path, capsys):
    wh = tmp_path / "w.duckdb"
    assert ingest_cli("stations", [str(county_register(tmp_path / "s.csv"))], str(wh), None, None) == 0
    f = write_csv(tmp_path / "disputes.csv", [
        "矛盾纠纷排查化解台账,,,,,",
        "编号,责任单位,登记时间,纠纷种类,调处结果,联系人",
        "D1,S001,2023-03-02,婚姻家庭纠纷,调解成功,张三",
        "D2,S002,2023-03-05,宅基地纠纷,正在调解,李四",
        "D3,S001,2023-03-09,外星人纠纷,调解终止,王五",
    ])
    out = tmp_path / "my_mapping.yaml"
    assert ingest_cli("disputes", [str(f)], str(wh), None, None, None, str(out)) == 0
    text = out.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["columns"] == {"编号": "dispute_id", "责任单位": "station_id", "登记时间": "opened_on",
                               "纠纷种类": None, "调处结果": "resolved", "联系人": "ignore"}
    assert "did you mean 纠纷类型 → category?" in text
    assert data["values"]["resolved"] == {"调解成功": True, "正在调解": "open", "调解终止": False}
    assert "张三" not in text
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM disputes").fetchall() == [(0,)]  # nothing loaded
    con.close()
    # the user fills in the unknowns and loads with the mapping
    data["columns"]["纠纷种类"] = "category"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert ingest_cli("disputes", [str(f)], str(wh), str(out), None, None, None) == 0
    printed = capsys.readouterr().out
    assert "category mapped to 'other': 1 of 3 rows (33.3%)" in printed
    data["values"]["category"] = {"外星人纠纷": "commercial"}
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    con = connect(":memory:")
    ingest("stations", county_register(tmp_path / "s2.csv"), con=con)
    rep = ingest("disputes", f, con=con, mapping=out, study_window=WINDOW)
    assert rep.other_share == 0.0
    got = con.execute("SELECT dispute_id, category, resolved, closed_on, escalated FROM disputes ORDER BY 1").fetchall()
    assert got == [("D1", "family", True, None, None), ("D2", "property", False, None, None),
                   ("D3", "commercial", False, None, None)]


def test_mixed_line_endings_and_stray_quotes(tmp_path):
    con = register_con(tmp_path)
    body = ("警情编号,单位,接警时间,警情类型\r\n"
            "J1,S001,2023-03-20 14:05,盗窃\n"
            "J2,S002,2023-03-20 15:05,盗窃 \"电动车\"\r\n"
            "J3,S001,2023-03-20 16:05,纠纷\n"
            "J4,S009,2023-03-20 17:05,盗窃\r\n")
    f = tmp_path / "incidents.csv"
    f.write_bytes(body.encode("gb18030"))
    # S009 is not in the register: its row is the quarantined one whose row number is checked
    rep = ingest("incidents", f, con=con, study_window=WINDOW, accept_unmatched=True)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (4, 3, 1)
    assert con.execute("SELECT source_row, reason FROM quarantine").fetchall() == [(5, "unknown_station")]
    assert con.execute("SELECT category FROM incidents WHERE incident_id = 'J2'").fetchall() == [("theft",)]
    bad = tmp_path / "bad.csv"
    bad.write_bytes((body + "J5,S001,2023-03-20 18:05\n").encode("utf-8"))
    with pytest.raises(IngestError) as ei:
        ingest("incidents", bad, con=con, study_window=WINDOW)
    assert str(ei.value) == f"{bad}: row 6: expected 4 fields, found 3 (truncated file or row)"


def test_only_hidden_sheet_holds_the_data(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "说明"
    ws.append(["本表由系统导出，请勿修改"])
    data = wb.create_sheet("数据")
    data.append(["单位代码", "单位名称"])
    data.append(["S001", "城关派出所"])
    data.sheet_state = "hidden"
    f = tmp_path / "stations.xlsx"
    wb.save(f)
    with pytest.raises(IngestError) as ei:
        ingest("stations", f, con=connect(":memory:"))
    assert str(ei.value) == (f"{f}: sheet '说明' has no stations header; hidden sheets (never read unless chosen): "
                             "数据 — choose one with --sheet")
    assert ingest("stations", f, con=connect(":memory:"), sheet="数据").rows_accepted == 1


def test_cli_set_option(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    f = county_register(tmp_path / "reg.csv")
    wh = tmp_path / "w.duckdb"
    proc = subprocess.run([sys.executable, "-m", "evalkit", "ingest", "stations", str(f), "--warehouse", str(wh),
                           "--set", "province=某省", "--set", "area_type=农村"], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(root / "src")})
    assert proc.returncode == 0, proc.stderr
    con = connect(wh)
    assert con.execute("SELECT DISTINCT province, area_type FROM stations").fetchall() == [("某省", "rural")]
    con.close()


def test_blank_lines_between_rows_keep_row_numbers(tmp_path):
    con = register_con(tmp_path)
    f = write_csv(tmp_path / "incidents.csv", [
        "警情登记表", "", "警情编号,单位,接警时间,警情类型",
        "J1,S001,2023-03-20 14:05,盗窃", "", "J2,S009,2023-03-20 15:05,盗窃", ""])
    # S009 is not in the register: its row is the quarantined one whose row number is checked
    rep = ingest("incidents", f, con=con, study_window=WINDOW, accept_unmatched=True)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (2, 1, 1)
    assert con.execute("SELECT source_row, reason FROM quarantine").fetchall() == [(6, "unknown_station")]


STRAY_HEAD = "序号,警情编号,接警时间,所属派出所,警情类别"


def test_stray_quote_at_field_start_never_merges_rows(tmp_path):
    """Issue 12: a quote opening row 2's category swallowed rows 3-4 into one 3-line category."""
    con = register_con(tmp_path)
    f = write_csv(tmp_path / "stray.csv", [
        STRAY_HEAD,
        '1,A1,2023-03-01 10:00,城关派出所,"电信网络诈骗',
        "2,A2,2023-03-01 11:00,城关派出所,盗窃",
        '3,A3,2023-03-01 12:00,城关派出所,盗窃"',
        "4,A4,2023-03-01 13:00,城关派出所,盗窃"], newline="\r\n")
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (4, 2, 2)
    assert con.execute("SELECT source_row, reason FROM quarantine ORDER BY 1").fetchall() == [
        (2, "unbalanced_quote"), (4, "unbalanced_quote")]
    assert con.execute("SELECT incident_id, category FROM incidents ORDER BY 1").fetchall() == [
        ("A2", "theft"), ("A4", "theft")]


def test_stray_quote_running_to_the_end_of_the_file_is_quarantined_by_row(tmp_path):
    con = register_con(tmp_path)
    f = write_csv(tmp_path / "stray.csv", [
        STRAY_HEAD,
        "1,A1,2023-03-01 10:00,城关派出所,盗窃",
        '2,A2,2023-03-01 11:00,城关派出所,"盗窃',
        "3,A3,2023-03-01 12:00,城关派出所,盗窃",
        "4,A4,2023-03-01 13:00,河口派出所,盗窃"], encoding="gb18030")
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (4, 3, 1)
    assert con.execute("SELECT source_row, reason FROM quarantine").fetchall() == [(3, "unbalanced_quote")]
    assert con.execute("SELECT incident_id FROM incidents ORDER BY 1").fetchall() == [("A1",), ("A3",), ("A4",)]


def test_quoted_field_spanning_lines_is_one_row(tmp_path):
    """Balanced quotes around a text with line breaks (and commas) are one record, as exported."""
    con = register_con(tmp_path)
    f = write_csv(tmp_path / "multi.csv", [
        "序号,警情编号,接警时间,所属派出所,简要警情,警情类别",
        "1,A1,2023-03-01 10:00,城关派出所,\"报警称电动车被盗,\n车停在楼下，\n已调取监控\",盗窃",
        "2,A2,2023-03-01 11:00,城关派出所,\"两人因停车\r\n发生口角\",打架斗殴",
        "3,A3,2023-03-01 12:00,城关派出所,无,盗窃"])
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (3, 3, 0)
    assert con.execute("SELECT incident_id, category FROM incidents ORDER BY 1").fetchall() == [
        ("A1", "theft"), ("A2", "fight"), ("A3", "theft")]
    # a quote left open at the end of the file is a truncated file: an error naming its row
    bad = write_csv(tmp_path / "cut.csv", [
        "序号,警情编号,接警时间,所属派出所,简要警情,警情类别",
        "1,A1,2023-03-01 10:00,城关派出所,\"报警称电动车被盗,\n车停在"])
    with pytest.raises(IngestError) as ei:
        ingest("incidents", bad, con=con, study_window=WINDOW)
    assert str(ei.value) == f"{bad}: row 2: unterminated quote (truncated file?)"


@pytest.mark.parametrize("chunk", [1 << 23, 7])  # 7 bytes: lines cut across chunks
def test_only_lines_with_odd_quotes_leave_the_fast_reader(tmp_path, monkeypatch, chunk):
    from evalkit.ingest import csvrows
    from evalkit.ingest.csvrows import risky

    monkeypatch.setattr(csvrows, "CHUNK_BYTES", chunk)

    plain = write_csv(tmp_path / "a.csv", [STRAY_HEAD, "1,A1,2023-03-01 10:00,城关派出所,盗窃"])
    quoted = write_csv(tmp_path / "b.csv", [STRAY_HEAD, '1,A1,2023-03-01 10:00,"城关派出所",盗窃'])
    stray = write_csv(tmp_path / "c.csv", [STRAY_HEAD, '1,A1,2023-03-01 10:00,城关派出所,"盗窃'])
    last = tmp_path / "d.csv"  # the stray quote on a last line without a line break
    last.write_bytes((STRAY_HEAD + '\n1,A1,2023-03-01 10:00,城关派出所,"盗窃').encode())
    assert (risky(plain), risky(quoted), risky(stray), risky(last)) == (False, True, "python", "python")
