"""Row numbers and row order of a CSV big enough for DuckDB to read it with several threads: every
quarantined row gets its file row, the accepted rows are stored in file order, the duplicate kept
is the first one (pinned for work that makes the stage pass parallel: DuckDB writes a table in
insertion order only when the pass allows it, see docs/ingest.md)."""

from __future__ import annotations

from pathlib import Path

from evalkit.ingest import ingest
from evalkit.warehouse import connect

REGISTER = Path(__file__).parent / "data" / "bad_inputs" / "_register_stations.csv"
N = 400_000  # ~45 MB: several CSV buffers, so several reader threads
HEAD = "警情编号,所属派出所编码,接警时间,派警时间,到场时间,结警时间,警情类别,处置力量,是否立案\n"


def _file(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Write the CSV; return the accepted ids in file order and the expected (row, reason)."""
    lines, accepted, bad = [HEAD], [], []
    seen: set[str] = set()
    for i in range(N):
        key = "J0000010" if i == 350_000 else f"J{i:07d}"  # row 350,002 repeats row 12's key
        station = ("S001", "东湖派出所", "S002 ")[i % 3]  # a code, a name, a code with a trailing blank
        arr = "2023-03-20 14:00:00" if i % 37_001 == 36_999 else "2023-03-20 14:15:00"
        cat = "新型类别" if i % 50_000 == 7 else ("盗窃", "纠纷")[i % 2]
        lines.append(f"{key},{station},2023-03-20 14:05:00,2023-03-20 14:07:00,{arr},2023-03-20 15:00:00,"
                     f"{cat},派出所,否\n")
        if i % 37_001 == 36_999:
            bad.append((i + 2, "arrival_before_receipt"))
        elif key in seen:
            bad.append((i + 2, "duplicate_id"))
        else:
            seen.add(key)
            accepted.append(key)
    path.write_text("".join(lines), encoding="utf-8")
    return accepted, bad


def test_rows_numbered_and_stored_in_file_order(tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    ingest("stations", REGISTER, warehouse=wh)
    accepted, bad = _file(tmp_path / "incidents.csv")
    rep = ingest("incidents", tmp_path / "incidents.csv", warehouse=wh, study_window=("2020-01", "2024-12"))
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (N, len(accepted), len(bad))
    con = connect(wh, read_only=True)
    try:
        assert con.execute("SELECT source_row, reason FROM quarantine ORDER BY source_row").fetchall() == bad
        assert [r[0] for r in con.execute("SELECT incident_id FROM incidents ORDER BY rowid").fetchall()] == accepted
        assert con.execute("SELECT count(DISTINCT station_id), count(*) FILTER (WHERE category = 'other') "
                           "FROM incidents").fetchall() == [(3, 8)]
    finally:
        con.close()
