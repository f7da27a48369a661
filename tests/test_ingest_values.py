"""Values as bureaus write them: month-only and mixed dates, Excel serials, 万人, category vocabulary,
dispute outcome text, ledgers without 民转刑 (unknown, never "no")."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.ingest import ingest
from evalkit.ingest.vocab import dispute_category, incident_category
from evalkit.warehouse import connect

WINDOW = ("2019-01", "2025-12")


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.fixture
def con(tmp_path):
    c = connect(":memory:")
    f = write_csv(tmp_path / "stations.csv", ["单位编码,单位名称,常住人口", "S001,城关派出所,52000",
                                               "S002,河口派出所,18000"])
    assert ingest("stations", f, con=c).rows_accepted == 2
    yield c
    c.close()



def test_adoption_list_with_month_only_dates_and_excel_serials(con, tmp_path):
    f = write_csv(tmp_path / "改革.csv", [
        "2023年改革推进情况表,,",
        "单位代码,改革项目,启动时间",
        "S001,一村一辅警,2023年1月",
        "S002,一村一辅警,2023-01",
        "S001,非警务分流,2023.01",
        "S002,非警务分流,2023/1",
        "S001,警网融合,44927",  # Excel serial for 2023-01-01
        "S002,警网融合,2023年13月",  # not a month
    ], "gb18030")
    rep = ingest("reforms", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (6, 5, 1)
    assert rep.quarantined_by_reason == {"bad_datetime": 1}
    days = con.execute("SELECT DISTINCT CAST(adopted_on AS VARCHAR) FROM reforms").fetchall()
    assert days == [("2023-01-01",)]
    q = con.execute("SELECT source_row, detail FROM quarantine").fetchall()
    assert q == [(8, "adopted_on (启动时间): 2023年13月 is not a date")]


def test_incident_times_month_only_quarantined_mixed_formats_read(con, tmp_path):
    f = write_csv(tmp_path / "incidents.csv", [
        "警情编号,管辖单位,报警时间,到达时间,警情类别",
        "J1,S001,2023-03-20 14:05:00,2023-03-20 14:15:00,盗窃",
        "J2,S001,2023/3/20 14:05,2023/3/20 14:15,盗窃",
        "J3,S001,2023年3月20日14时05分,2023年3月20日 14:15,盗窃",
        "J4,S001,45005.5868055556,45005.59375,盗窃",  # Excel serials
        "J5,S001,２０２３-０３-２０ １４:０５,,盗窃",  # full-width digits
        "J6,S001,2023年3月,,盗窃",
        "J7,S001,2023-03,,盗窃",
    ])
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (7, 5, 2)
    assert rep.quarantined_by_reason == {"date_without_day": 2}
    got = con.execute("SELECT DISTINCT strftime(received_at, '%Y-%m-%d %H:%M') FROM incidents").fetchall()
    assert got == [("2023-03-20 14:05",)]
    q = con.execute("SELECT source_row, detail FROM quarantine ORDER BY 1").fetchall()
    assert q == [(7, "received_at (报警时间): 2023年3月 gives a month but no day; a day is required here"),
                 (8, "received_at (报警时间): 2023-03 gives a month but no day; a day is required here")]


def test_population_units(tmp_path):
    c = connect(":memory:")
    f = write_csv(tmp_path / "s.csv", ["单位代码,人口", "S1,5.2万", "S2,3,456人", "S3,１２０００", "S4,约五万"])
    f.write_text("单位代码,人口\nS1,5.2万\nS2,\"3,456人\"\nS3,１２０００\nS4,约五万\n", encoding="utf-8")
    rep = ingest("stations", f, con=c)
    assert (rep.rows_accepted, rep.quarantined_by_reason) == (3, {"bad_number": 1})
    assert c.execute("SELECT station_id, population FROM stations ORDER BY 1").fetchall() == [
        ("S1", 52000), ("S2", 3456), ("S3", 12000)]


def test_category_vocabulary():
    assert incident_category("电信网络诈骗") == ("fraud", True)
    assert incident_category("电诈") == ("fraud", True)
    assert incident_category(" 盗窃电动车 ") == ("theft", True)
    assert incident_category("家庭纠纷") == ("dispute", True)
    assert incident_category("其他") == ("other", True)
    assert incident_category("来访") == ("other", False)
    assert incident_category("来访", {"来访": "nonpolice"}) == ("nonpolice", True)
    assert dispute_category("婚姻家庭纠纷") == ("family", True)
    assert dispute_category("家庭纠纷") == ("family", True)
    assert dispute_category("物业纠纷") == ("neighbour", True)
    assert dispute_category("宅基地纠纷") == ("property", True)
    assert dispute_category("欠薪") == ("labour", True)
    assert dispute_category("医疗纠纷") == ("other", False)


def test_dispute_ledger_outcome_text_and_no_escalation_column(con, tmp_path, capsys):
    f = write_csv(tmp_path / "矛盾纠纷.csv", [
        "矛盾纠纷排查调处台账,,,,,",
        "登记编号,责任单位,登记日期,调结日期,纠纷类别,调处结果",
        "D1,S001,2023-03-01,2023-03-05,婚姻家庭纠纷,调解成功",
        "D2,S001,2023-03-02,2023-03-20,物业纠纷,调解不成功",
        "D3,S002,2023-03-03,,邻里纠纷,正在调解",
        "D4,S002,2023-03-04,2023-03-06,家庭纠纷,已化解",
        "D5,S002,2023-03-05,2023-03-09,劳资纠纷,未化解",
        "D6,S001,2023-03-06,2023-03-10,医疗纠纷,正在调解",  # open but closed: quarantined
        "D7,S001,2023-03-07,,土地纠纷,看情况",  # outcome not understood
    ], "gb18030")
    rep = ingest("disputes", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (7, 5, 2)
    assert rep.quarantined_by_reason == {"open_with_close_date": 1, "bad_boolean": 1}
    assert rep.missing_columns == ["escalated"]
    got = con.execute("SELECT dispute_id, category, resolved, CAST(closed_on AS VARCHAR), escalated "
                      "FROM disputes ORDER BY 1").fetchall()
    assert got == [("D1", "family", True, "2023-03-05", None),
                   ("D2", "neighbour", False, "2023-03-20", None),
                   ("D3", "neighbour", False, None, None),
                   ("D4", "family", True, "2023-03-06", None),
                   ("D5", "labour", False, "2023-03-09", None)]
    q = con.execute("SELECT source_row, reason, detail FROM quarantine ORDER BY 1").fetchall()
    assert q == [(8, "open_with_close_date", "resolved (调处结果) 正在调解 means still open, but closed_on (调结日期) "
                                             "2023-03-10 is given"),
                 (9, "bad_boolean", "resolved (调处结果): 看情况 is not an outcome (调解成功/调解不成功/正在调解, 是/否); "
                                    "map it under values: resolved: in a mapping file")]
    # the value mapping extends the outcome words
    f2 = write_csv(tmp_path / "d2.csv", ["登记编号,责任单位,登记日期,纠纷类别,调处结果,是否民转刑",
                                         "D9,S001,2023-04-01,医疗纠纷,看情况,无"])
    rep = ingest("disputes", f2, con=con, study_window=WINDOW,
                 mapping={"values": {"resolved": {"看情况": "open"}, "category": {"医疗纠纷": "other"}}})
    assert rep.rows_accepted == 1 and rep.other_share == 1.0
    assert con.execute("SELECT resolved, escalated FROM disputes WHERE dispute_id = 'D9'").fetchall() == [
        (False, False)]


def test_arrival_as_a_duration_in_minutes_or_hours(con, tmp_path):
    f = write_csv(tmp_path / "incidents.csv", [
        "警情编号,管辖单位,报警时间,到场用时（分钟）,警情类别",
        "J1,S001,2023-03-20 14:05:00,12,盗窃",
        "J2,S001,2023-03-20 15:05:00,0.5小时,盗窃",
        "J3,S001,2023-03-20 16:05:00,90秒,盗窃",
        "J4,S001,2023-03-20 17:05:00,很快,盗窃",
        "J5,S001,2023-03-20 18:05:00,,盗窃",
    ])
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.quarantined_by_reason) == (5, 4, {"bad_number": 1})
    assert "arrived_at" not in rep.missing_columns
    got = con.execute("SELECT incident_id, strftime(arrived_at, '%H:%M:%S') FROM incidents ORDER BY 1").fetchall()
    assert got == [("J1", "14:17:00"), ("J2", "15:35:00"), ("J3", "16:06:30"), ("J5", None)]
    assert con.execute("SELECT detail FROM quarantine").fetchall() == [
        ("response_duration (到场用时(分钟)): 很快 is not a duration (minutes, or 小时/分钟 with the unit)",)]


def test_clean_sql_trims_like_python_and_lead_clean_agrees_on_nulls():
    """The byte-comparison tests of ``clean_sql`` give exactly Python's strip of the same blanks
    (empty → NULL); ``lead_clean_sql`` is NULL where it is, and cleaning its result gives the same."""
    import random

    import duckdb
    import pyarrow as pa

    from evalkit.ingest.sources import BLANKS, clean_sql, lead_clean_sql, trim_py

    alphabet = [" ", "\t", "\r", "\n", "\u3000", "\u3001", "　", "a", "1", "城", "\x0b", "\x00", "Ｘ", '"',
                "\u00a0", "\U0001f600", "!"]
    rng = random.Random(7)
    vals = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(20_000)] + [None]
    c = duckdb.connect()
    c.register("t", pa.table({"x": pa.array(vals, pa.string())}))
    got = c.execute(f"SELECT x, {clean_sql('x')}, {lead_clean_sql('x')}, {clean_sql(lead_clean_sql('x'))} "
                    f"FROM t").fetchall()
    for x, full, lead, full_of_lead in got:
        want = None if x is None or not x.strip(BLANKS) else x.strip(BLANKS)
        assert full == want, repr(x)
        assert (lead is None) == (want is None), repr(x)
        assert full_of_lead == want, repr(x)
        assert want is None or trim_py(lead) == want
    assert len(got) == len(vals)


def test_blanks_around_times_and_words_read_as_trimmed(con, tmp_path):
    """Trailing tabs / full-width spaces after a time or a code word (the raw view trims those
    columns at the leading end only) parse and map as the trimmed value; a blank-only value is empty."""
    f = write_csv(tmp_path / "incidents.csv", [
        "警情编号,管辖单位,报警时间,到达时间,警情类别,是否立案",
        "J1,S001,2023-03-20 14:05:00\t,2023-03-20 14:15:00\u3000,盗窃\t,是\u3000",
        "J2,S001, 2023/3/20 14:05\u3000,\u3000 \t,\u3000盗窃 ,否 ",
        "J3,S001,2023年3月\t,,新类别\u3000,是",
        "J4,S001,\t,,盗窃,是",
    ])
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (4, 2, 2)
    assert rep.quarantined_by_reason == {"date_without_day": 1, "missing_required": 1}
    got = con.execute("SELECT incident_id, strftime(received_at, '%Y-%m-%d %H:%M'), "
                      "strftime(arrived_at, '%H:%M'), category, is_case FROM incidents ORDER BY 1").fetchall()
    assert got == [("J1", "2023-03-20 14:05", "14:15", "theft", True),
                   ("J2", "2023-03-20 14:05", None, "theft", False)]
    q = con.execute("SELECT source_row, reason, detail FROM quarantine ORDER BY 1").fetchall()
    assert q[0] == (4, "date_without_day",
                    "received_at (报警时间): 2023年3月 gives a month but no day; a day is required here")
    assert q[1][:2] == (5, "missing_required")
