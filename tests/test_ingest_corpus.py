"""The bad-input corpus: every file under tests/data/bad_inputs/ with its expected outcome."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from evalkit.ingest import IngestError, ingest
from evalkit.warehouse import connect, table_counts

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
_spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
mc = importlib.util.module_from_spec(_spec)
sys.modules["make_corpus"] = mc
_spec.loader.exec_module(mc)


@pytest.fixture
def con():
    c = connect(":memory:")
    rep = ingest("stations", CORPUS / "_register_stations.csv", con=c)
    assert rep.rows_accepted == 3
    yield c
    c.close()


def _files(case) -> list[Path]:
    names = case.file if isinstance(case.file, list) else [case.file]
    return [CORPUS / n for n in names]


def _id(case) -> str:
    return case.file if isinstance(case.file, str) else "+".join(case.file)


def test_corpus_size_and_files_exist():
    assert len(mc.CASES) >= 40
    for case in mc.CASES:
        for f in _files(case):
            assert f.exists(), f"{f} missing: run make_corpus.py"
    listed = {f.name for c in mc.CASES for f in _files(c)} | {"_register_stations.csv", "make_corpus.py"}
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file()}
    assert on_disk - listed == set(), "files without an expectation"


@pytest.mark.parametrize("case", mc.CASES, ids=_id)
def test_corpus_case(case, con):
    if case.table == "stations":  # station files are checked against an empty register
        con = connect(":memory:")
    files = _files(case)
    before = table_counts(con)
    kwargs = {"con": con, "study_window": mc.WINDOW, "sheet": case.sheet, "mapping": case.mapping}
    if case.error is not None:
        with pytest.raises(IngestError) as ei:
            ingest(case.table, files, **kwargs)
        assert str(ei.value) == case.error.format(file=files[0])
        assert table_counts(con) == before, "a failed ingest must write nothing"
        return
    rep = ingest(case.table, files, **kwargs)
    assert rep.rows_in == rep.rows_accepted + rep.rows_quarantined
    assert rep.quarantined_by_reason == case.reasons
    if case.accepted is not None:
        assert rep.rows_accepted == case.accepted
    q = con.execute("SELECT reason, source_file, source_row FROM quarantine ORDER BY source_file, source_row").fetchall()
    assert len(q) == rep.rows_quarantined
    for reason, rows in case.rows.items():
        got = sorted(r[2] for r in q if r[0] == reason)
        assert got == rows, reason
    after = table_counts(con)
    assert after[case.table] - before[case.table] == rep.rows_accepted


# --------------------------------------------------------------- case-specific value checks
def test_mixed_formats_parse_to_one_instant(con):
    ingest("incidents", CORPUS / "mixed_date_formats.csv", con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT DISTINCT CAST(received_at AS VARCHAR) FROM incidents").fetchall()
    assert got == [("2023-03-20 14:05:00",)]


def test_excel_serials(con):
    ingest("incidents", [CORPUS / "excel_serial_dates.csv"], con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT incident_id, CAST(received_at AS VARCHAR), CAST(arrived_at AS VARCHAR) "
                      "FROM incidents ORDER BY 1").fetchall()
    assert got == [("J000001", "2023-03-20 14:05:00", "2023-03-20 14:15:00"), ("J000002", "2023-03-20 00:00:00", None)]


def test_excel_serials_xlsx(con):
    ingest("incidents", CORPUS / "excel_serial_dates.xlsx", con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT CAST(received_at AS VARCHAR), is_case FROM incidents ORDER BY incident_id").fetchall()
    assert got == [("2023-03-20 14:05:00", False), ("2023-03-20 00:00:00", False)]


def test_station_name_and_normalised_ids(con):
    ingest("incidents", CORPUS / "station_by_name.csv", con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT incident_id, station_id FROM incidents ORDER BY 1").fetchall()
    assert [s for _, s in got] == ["S001", "S001", "S002", "S003"]


def test_unknown_category_kept_as_other_and_reported(con):
    rep = ingest("incidents", CORPUS / "unknown_category.csv", con=con, study_window=mc.WINDOW)
    assert rep.unknown_values == {"外星人": 1}
    got = dict(con.execute("SELECT incident_id, category FROM incidents").fetchall())
    assert got == {"J000001": "fraud", "J000002": "other", "J000003": "other"}


def test_unknown_and_personal_columns_reported(con):
    rep = ingest("incidents", CORPUS / "unknown_columns.csv", con=con, study_window=mc.WINDOW)
    assert rep.unknown_columns == ["备注", "天气"]
    rep = ingest("incidents", CORPUS / "personal_columns.csv", con=con, study_window=mc.WINDOW)
    assert rep.refused_personal_columns == ["报警人姓名", "身份证号", "联系电话"]
    assert rep.quarantined_by_reason == {"duplicate_id": 3}  # same ids as the previous file
    assert "personal-data columns refused" in rep.summary()


def test_reform_aliases_resolved(con):
    ingest("reforms", CORPUS / "reforms_unknown.csv", con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT station_id, reform, CAST(adopted_on AS VARCHAR) FROM reforms ORDER BY 1").fetchall()
    assert got == [("S001", "two_teams_one_room", "2021-06-01"), ("S002", "nonpolice_diversion", "2022-07-01")]


def test_disputes_values(con):
    ingest("disputes", CORPUS / "disputes_gb18030.csv", con=con, study_window=mc.WINDOW)
    got = con.execute("SELECT dispute_id, category, resolved, escalated FROM disputes ORDER BY 1").fetchall()
    assert got == [("D000001", "neighbour", True, False), ("D000004", "other", False, False)]


def test_corpus_generator_is_deterministic_for_text_files(tmp_path):
    mc.write_all(tmp_path)
    for p in tmp_path.iterdir():
        if p.suffix in (".csv", ".tsv", ".json"):
            assert p.read_bytes() == (CORPUS / p.name).read_bytes(), p.name
