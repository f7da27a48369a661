"""Station references in exports match the register whatever their form; ambiguous ones are
quarantined with their candidates; too many unknown ones stop the ingest (unless accepted)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from _exports import INC_H, REGISTER, incident_rows, months, write_csv, write_register
from evalkit.cli import app
from evalkit.ingest import IngestError, ingest, ingest_cli
from evalkit.ingest.stations import StationMatcher, core, norm, tail
from evalkit.warehouse import connect, table_counts

REG = [(code, name, county, "某市") for code, name, county, _p in REGISTER]


def test_normal_forms():
    assert norm(" ４４１５０２００１ ") == "441502001"
    assert norm("城关 派出所") == norm("城关\u3000派出所") == "城关派出所"
    assert tail("某市公安局城区分局城关派出所") == "城关派出所"
    assert tail("某县公安局城关派出所") == "城关派出所"
    assert tail("某市公安局交警支队城关中队") == "城关中队"
    assert core("某市公安局城区分局城关派出所") == core("城关所") == core("城关") == "城关"


@pytest.mark.parametrize("ref, expected", [
    ("441502002", "441502002"),  # code
    ("４４１５０２００２", "441502002"),  # full-width code
    ("东门", "441502002"),  # short name
    ("东门所", "441502002"),
    ("东门派出所", "441502002"),
    ("东门 派出所", "441502002"),
    ("某市公安局城区分局东门派出所", "441502002"),  # full name as in the register
    ("某市公安局东门派出所", "441502002"),  # other prefixes
    ("城区分局东门派出所", "441502002"),
    ("某某市公安局某某区分局东门派出所", "441502002"),
    ("石桥派出所", "441581003"),
    ("某县公安局城关派出所", "441581004"),  # the full name tells the two 城关 apart
    ("某市公安局城区分局城关派出所", "441502001"),
    ("某县城关派出所", "441581004"),  # county name in front, no bureau
    ("城区城关所", "441502001"),
])
def test_reference_forms_match(ref, expected):
    m = StationMatcher(REG)(ref)
    assert (m.station_id, m.status) == (expected, "matched")


def test_ambiguous_and_unmatched():
    m = StationMatcher(REG)("城关派出所")
    assert m.status == "ambiguous" and m.candidates == ("441502001", "441581004")
    assert StationMatcher(REG)("西关派出所").status == "unmatched"
    # an id always wins over a name that equals it
    assert StationMatcher([("A1", "B2"), ("B2", "其他所")])("B2").station_id == "B2"


@pytest.fixture
def wh(tmp_path):
    p = tmp_path / "warehouse.duckdb"
    rep = ingest("stations", write_register(tmp_path / "register.xlsx"), warehouse=p)
    assert rep.rows_accepted == 4
    return p


def test_full_unit_names_in_a_gb18030_export(wh, tmp_path):
    ms = months("2023-01", "2023-03")
    rows = (incident_rows("某市公安局城区分局东门派出所", ms, 30, "A")
            + incident_rows("某县公安局石桥派出所", ms, 10, "B")
            + incident_rows("东门所", ms, 5, "C")
            + incident_rows("城关派出所", ["2023-01"], 1, "D"))  # ambiguous: 1 row of 136
    f = write_csv(tmp_path / "警情_2023Q1.csv", INC_H, rows)
    rep = ingest("incidents", f, warehouse=wh, study_window=("2019-01", "2025-12"))
    assert (rep.rows_accepted, rep.rows_quarantined) == (135, 1)
    assert rep.quarantined_by_reason == {"ambiguous_station": 1}
    con = connect(wh)
    assert dict(con.execute("SELECT station_id, count(*) FROM incidents GROUP BY 1").fetchall()) == {
        "441502002": 105, "441581003": 30}
    detail = con.execute("SELECT detail FROM quarantine").fetchone()[0]
    assert "城关派出所" in detail and "441502001/441581004" in detail
    con.close()


def test_unmatched_above_one_percent_fails_and_rolls_back(wh, tmp_path, capsys):
    ms = months("2023-01", "2023-02")
    rows = (incident_rows("东门派出所", ms, 40, "A") + incident_rows("西关派出所", ms, 2, "X")
            + incident_rows("北郊派出所", ["2023-01"], 1, "Y"))  # 5 unknown of 85 rows = 5.9 %
    good = write_csv(tmp_path / "good.csv", INC_H, incident_rows("石桥所", ms, 3, "G"))
    f = write_csv(tmp_path / "incidents.csv", INC_H, rows)
    con = connect(wh)
    before = table_counts(con)
    con.close()
    with pytest.raises(IngestError) as e:
        ingest("incidents", [good, f], warehouse=wh, study_window=("2019-01", "2025-12"))
    msg = str(e.value)
    assert "\n" not in msg and "incidents.csv" in msg and "5 of 85 rows" in msg
    assert msg.index("西关派出所 (4)") < msg.index("北郊派出所 (1)") and "--accept-unmatched" in msg
    con = connect(wh)
    assert table_counts(con) == before  # the whole call is rolled back, the good file too
    con.close()
    # the CLI exits non-zero with the same one-line message
    assert ingest_cli("incidents", [str(f)], str(wh), None, None) == 1
    assert "西关派出所 (4)" in capsys.readouterr().err
    # accepted explicitly (the CLI flag): quarantined with the reason
    r = CliRunner().invoke(app, ["ingest", "incidents", str(f), "--warehouse", str(wh), "--accept-unmatched"])
    assert r.exit_code == 0, r.output
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 80
    assert con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall() == [("unknown_station", 5)]
    con.close()
    rep = ingest("incidents", f, warehouse=wh, study_window=("2019-01", "2025-12"), accept_unmatched=True,
                 replace=True)
    assert rep.rows_accepted == 80 and rep.quarantined_by_reason == {"unknown_station": 5}
    assert rep.unmatched_rows == 5


def test_one_percent_or_less_is_quarantined_without_flag(wh, tmp_path):
    rows = incident_rows("东门派出所", months("2023-01", "2023-10"), 10, "A")[:99] + \
        incident_rows("西关派出所", ["2023-01"], 1, "X")  # 1 of 100 rows = 1 %: not above the limit
    rep = ingest("incidents", write_csv(tmp_path / "i.csv", INC_H, rows), warehouse=wh,
                 study_window=("2019-01", "2025-12"))
    assert rep.quarantined_by_reason == {"unknown_station": 1} and rep.rows_accepted == 99


def test_matching_runs_on_distinct_values(wh, tmp_path, monkeypatch):
    calls = []
    real = StationMatcher.__call__

    def spy(self, ref):
        calls.append(ref)
        return real(self, ref)

    monkeypatch.setattr(StationMatcher, "__call__", spy)
    rows = incident_rows("某市公安局城区分局东门派出所", months("2022-01", "2023-12"), 40, "A") + \
        incident_rows("石桥", months("2022-01", "2023-12"), 40, "B")
    rep = ingest("incidents", write_csv(tmp_path / "i.csv", INC_H, rows), warehouse=wh,
                 study_window=("2019-01", "2025-12"))
    assert rep.rows_accepted == 1920
    assert sorted(calls) == sorted(["某市公安局城区分局东门派出所", "石桥"])
