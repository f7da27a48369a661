"""Duplicate keys and the logged file hash, pinned for the faster ingest (issue 15): a passing row
is quarantined as ``duplicate_id`` when its key is stored already or an earlier passing row of the
file has it — whatever the order of those two checks — and a row failing another check does not
make a later row with its key a duplicate. The SHA-256 in ``ingest_log`` is the file's, also when
it is computed while the file loads."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from evalkit.ingest import ingest
from evalkit.warehouse import connect

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
_spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
mc = importlib.util.module_from_spec(_spec)
sys.modules["make_corpus"] = mc
_spec.loader.exec_module(mc)
REGISTER = CORPUS / "_register_stations.csv"


def write(path: Path, rows) -> Path:
    path.write_bytes(mc.csv_text(mc.INC_H, rows).encode("utf-8"))
    return path


@pytest.fixture
def wh(tmp_path) -> Path:
    p = tmp_path / "wh" / "warehouse.duckdb"
    ingest("stations", REGISTER, warehouse=p)
    return p


def quarantine(wh: Path) -> list[tuple]:
    con = connect(wh, read_only=True)
    try:
        return con.execute("SELECT source_file, source_row, reason, column_name FROM quarantine "
                           "ORDER BY source_file, source_row").fetchall()
    finally:
        con.close()


def test_duplicates_within_file_and_against_warehouse(wh, tmp_path):
    first = write(tmp_path / "a.csv", [mc.inc("C1"), mc.inc("K1")])
    assert ingest("incidents", first, warehouse=wh).rows_accepted == 2
    rows = [
        mc.inc("A1"),                      # row 2: kept (first occurrence)
        mc.inc("A1"),                      # row 3: duplicate within the file
        mc.inc("B1", rec="待补录"),         # row 4: bad date (not a duplicate source)
        mc.inc("B1"),                      # row 5: accepted (the earlier B1 failed another check)
        mc.inc("C1"),                      # row 6: stored already
        mc.inc("C1"),                      # row 7: stored already and repeated
        mc.inc("A1", st="S999"),           # row 8: unknown station comes first
        mc.inc("D1"),                      # row 9: kept
        mc.inc("E1"),                      # row 10: accepted
        mc.inc("D1"),                      # row 11: duplicate within the file
        mc.inc("D1"),                      # row 12: duplicate within the file
    ]
    second = write(tmp_path / "b.csv", rows)
    rep = ingest("incidents", second, warehouse=wh, accept_unmatched=True)
    assert rep.rows_in == 11 and rep.rows_in == rep.rows_accepted + rep.rows_quarantined
    assert rep.quarantined_by_reason == {"duplicate_id": 5, "bad_datetime": 1, "unknown_station": 1}
    got = [(r[1], r[2], r[3]) for r in quarantine(wh) if r[0].endswith("b.csv")]
    assert got == [(3, "duplicate_id", "incident_id"), (4, "bad_datetime", "received_at"),
                   (6, "duplicate_id", "incident_id"), (7, "duplicate_id", "incident_id"),
                   (8, "unknown_station", "station_id"), (11, "duplicate_id", "incident_id"),
                   (12, "duplicate_id", "incident_id")]
    con = connect(wh, read_only=True)
    try:
        ids = sorted(r[0] for r in con.execute("SELECT incident_id FROM incidents").fetchall())
        raw = con.execute("SELECT raw FROM quarantine WHERE source_row = 12 AND source_file LIKE '%b.csv'").fetchone()[0]
    finally:
        con.close()
    assert ids == ["A1", "B1", "C1", "D1", "E1", "K1"]
    assert "D1" in raw and "2023-03-20 14:05:00" in raw  # the raw text of a duplicate is kept


def test_logged_sha256_is_the_files(wh, tmp_path):
    f = write(tmp_path / "one.csv", [mc.inc(1), mc.inc(2)])
    copy = tmp_path / "copy.csv"
    copy.write_bytes(f.read_bytes())
    rep = ingest("incidents", [f, copy], warehouse=wh)  # the copy is skipped within the same call
    assert rep.skipped_files == [str(copy)] and rep.rows_accepted == 2
    con = connect(wh, read_only=True)
    try:
        (sha,) = con.execute("SELECT sha256 FROM ingest_log WHERE table_name = 'incidents'").fetchone()
    finally:
        con.close()
    assert sha == hashlib.sha256(f.read_bytes()).hexdigest()


def test_duplicate_candidates_are_the_repeated_and_the_stored_keys(wh, tmp_path, monkeypatch):
    # the candidates (whose raw text the stage keeps) come from the words scan: the hashes of the
    # keys written twice in the file and of those the table holds already, each once, nothing else
    import duckdb

    import evalkit.ingest.core as core

    seen = []

    def spy(*a, **k):
        out = core_word_values(*a, **k)
        seen.append(None if out[0] is None else out[0].tolist())
        return out

    core_word_values = core._word_values
    monkeypatch.setattr(core, "_word_values", spy)
    ingest("incidents", write(tmp_path / "a.csv", [mc.inc("C1"), mc.inc("K1")]), warehouse=wh)
    assert seen == [[]]  # nothing repeated, nothing stored (an empty table is not read)
    ingest("incidents", write(tmp_path / "b.csv", [mc.inc("A1"), mc.inc("B1"), mc.inc("A1"), mc.inc("C1"),
                                                   mc.inc("D1"), mc.inc("A1")]), warehouse=wh)
    con = duckdb.connect()
    want = sorted(con.execute("SELECT hash(k) FROM (VALUES ('A1'), ('C1')) t(k)").fetchnumpy()["hash(k)"].tolist())
    assert seen[1] == want



def test_background_scan_is_the_files_whoever_finishes_it(tmp_path, monkeypatch):
    # the low-priority thread may read all, part or none of the file before result(): the caller
    # finishes it, and the digest and the lines read back are the file's either way
    from evalkit.ingest import filehash

    monkeypatch.setattr(filehash, "CHUNK_BYTES", 4096)
    lines = [f"row {i}," + "x" * (i % 37) for i in range(40_000)]
    data = ("\n".join(lines[:20_000]) + "\r\n" + "\r\n".join(lines[20_000:])).encode()  # no end at the end
    f = tmp_path / "f.csv"
    f.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    early = filehash.BackgroundFileScan(f)
    assert early.result() == want  # at once: most of the file read here
    late = filehash.BackgroundFileScan(f)
    late._thread.join(timeout=30)
    assert late._done and late.result() == want  # the thread read all of it
    numbers = [1, 2, 4095, 4096, 19_999, 20_000, 20_001, 39_999, 40_000]
    assert early.lines(numbers) == [lines[n - 1].encode() for n in numbers]
    assert late.text(numbers).to_pylist() == [lines[n - 1] for n in numbers]  # the same, as Arrow strings
    assert late.text([]).to_pylist() == [] and late.lines([]) == []
    for wrong in ([0], [3, 2], [5, 5], [40_001]):  # not ascending, or not a line of the file
        with pytest.raises(AssertionError):
            late.lines(wrong)
    stopped = filehash.BackgroundFileScan(f)
    stopped.close()
    stopped._thread.join(timeout=30)
    assert not stopped._thread.is_alive()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert filehash.BackgroundFileScan(empty).result() == hashlib.sha256(b"").hexdigest()
    one = tmp_path / "one.csv"
    one.write_bytes(b"only line")
    assert filehash.BackgroundFileScan(one).lines([1]) == [b"only line"]
    assert filehash.BackgroundFileScan(empty).lines([1]) == [b""]


def test_repeated_finds_each_repeated_value_once():
    import numpy as np

    from evalkit.ingest.sampled import repeated as _repeated

    got = _repeated(np.sort(np.array([7, 3, 7, 2**64 - 1, 5, 3, 7, 2**64 - 1], dtype=np.uint64)))
    assert got.dtype == np.uint64 and got.tolist() == [3, 7, 18446744073709551615]
    assert _repeated(np.arange(5, dtype=np.uint64)).tolist() == []
    assert _repeated(np.empty(0, dtype=np.uint64)).tolist() == []


def test_stored_hashes_fetch_only_the_common_hashes():
    # the table's key hashes are intersected with the file's inside DuckDB: only the common ones
    # come out, never one hash per stored row
    import duckdb
    import numpy as np

    from evalkit.ingest.sampled import stored_hashes

    class Spy:  # a connection recording how many rows each fetchnumpy returned
        def __init__(self, con):
            self.con, self.fetched = con, []

        def __getattr__(self, name):
            return getattr(self.con, name)

        def execute(self, sql):
            res, spy = self.con.execute(sql), self

            class Res:
                def fetchnumpy(self):
                    out = res.fetchnumpy()
                    spy.fetched.append(max((len(v) for v in out.values()), default=0))
                    return out
            return Res()

    con = duckdb.connect()
    con.execute("CREATE TABLE incidents AS SELECT 'J' || i AS incident_id FROM range(50000) t(i)")
    file_keys = ["J7", "J7", "J49999", "K1", "K2", "J123"]
    h = np.sort(np.array([con.execute("SELECT hash(?)", [k]).fetchall()[0][0] for k in file_keys], dtype=np.uint64))
    spy = Spy(con)
    got = stored_hashes(spy, "incidents", "incident_id", h)
    want = sorted(con.execute("SELECT hash(k) AS h FROM (VALUES ('J7'), ('J49999'), ('J123')) t(k)")
                  .fetchnumpy()["h"].tolist())
    assert got.dtype == np.uint64 and sorted(got.tolist()) == want
    assert spy.fetched and max(spy.fetched) <= 3
    assert stored_hashes(spy, "incidents", "incident_id", np.empty(0, dtype=np.uint64)).tolist() == []
