"""The ingest's results pinned on a mid-size messy export (issue 15: the ingest may get faster, never
different): the accepted rows, the quarantine (row, column, reason, masked detail and raw copy),
the load log and the coverage of a 6,000-row incident file with every kind of planted problem, read
through each reader (DuckDB from UTF-8, DuckDB through the GB18030 stream, the Python reader for a
file with a stray quote), plus a dispute ledger and an adoption list.

The digests were computed with the ingest before the speed work (branch ``ingestspeed``, from main
6490e58); a change of any stored value, reason or row number changes them. If a change of results
is intended, say so in docs/ingest.md and update the digests with the reason in the commit."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import duckdb
import pytest

from evalkit.ingest import ingest
from evalkit.warehouse import connect
from realistic import exports as E
from realistic.county import BUREAU, NAMES, PHONES, citizen_id, stations
from realistic.files import csv_line, write_csv

WINDOW = ("2022-01", "2023-12")


def messy_incidents(n: int = 6000, seed: int = 15) -> list[list[object]]:
    """``n`` incident rows in every written form (see ``realistic.exports.incident_rows``) with about
    4 % planted problems of every kind the checks know."""
    sts = stations(8)
    rows = E.incident_rows(sts, n, seed=seed)
    rng = random.Random(seed)
    plants = [
        lambda r: r.__setitem__(1, citizen_id("33010219850312004")),          # ID number as key
        lambda r: r.__setitem__(4, f"{BUREAU}城南分局港区派出所"),              # unknown station
        lambda r: r.__setitem__(4, "城关派出所 "),                              # trailing blank
        lambda r: r.__setitem__(2, f"报警人{NAMES[1]}称昨晚，电话{PHONES[0]}"),  # free text date
        lambda r: r.__setitem__(2, "2023年3月"),                                # month without day
        lambda r: r.__setitem__(2, ""),                                        # missing required
        lambda r: r.__setitem__(2, "2019-05-01 10:00:00"),                     # outside the window
        lambda r: r.__setitem__(3, "2022-12-31 23:59:00"),                     # arrival before receipt
        lambda r: r.__setitem__(3, "2024-06-01 08:00:00"),                     # absurd response time
        lambda r: r.__setitem__(3, "明天"),                                     # bad arrival
        lambda r: r.__setitem__(5, "外星人入侵"),                                # category → other
        lambda r: r.__setitem__(5, "　电诈　"),                                  # full-width blanks
        lambda r: r.__setitem__(1, "ＪＱ２０２３"),                               # full-width key
        lambda r: r.__setitem__(4, ""),                                        # no station
    ]
    for i in rng.sample(range(n), 240):
        plants[i % len(plants)](rows[i])
    for i in rng.sample(range(1, n), 60):  # duplicated keys (within the file)
        rows[i][1] = rows[i - 1][1]
    return rows


def canonical(con: duckdb.DuckDBPyConnection, d: Path) -> dict[str, str]:
    """sha256 of each warehouse table's rows in a fixed order (time stamps of the run, the
    folder ``d`` and the file digests — an XLSX holds its creation time — left out)."""
    out = {}
    for t in ("stations", "incidents", "disputes", "reforms", "quarantine", "ingest_log", "coverage"):
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [t]).fetchall() if c not in ("ingested_at", "removed_at", "source_path", "sha256")]
        sel = ", ".join(f'replace(CAST("{c}" AS VARCHAR), {str(d)!r}, \'\')' for c in cols)
        rows = con.execute(f"SELECT {sel} FROM {t} ORDER BY ALL").fetchall()
        out[t] = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    return out


def build(d: Path) -> tuple[dict[str, str], dict[str, int]]:
    rows = messy_incidents()
    utf8 = write_csv(d / "警情_utf8.csv", [E.INCIDENT_HEAD, *rows[:2000]], encoding="utf-8")
    gb = write_csv(d / "警情_gb.csv", [E.PLAIN_HEAD, *rows[2000:4000]], encoding="gb18030")
    quoted = [list(r) for r in rows[4000:]]
    quoted[17][5] = "@"
    quoted[17] = csv_line(quoted[17]).replace(",@,", ',物业"纠纷,')  # a stray quote: the Python reader
    quoted[18][5] = "盗窃\n电动车"  # a quoted field spanning lines
    py = write_csv(d / "警情_quote.csv", [E.INCIDENT_HEAD, *quoted], encoding="utf-8")
    wh = d / "wh.duckdb"
    con = connect(wh)
    try:
        reasons: dict[str, int] = {}
        ingest("stations", E.register_files(d), con=con)
        for f in (utf8, gb, py):
            rep = ingest("incidents", f, con=con, study_window=WINDOW, accept_unmatched=True)
            rep.check()
            for k, v in rep.quarantined_by_reason.items():
                reasons[k] = reasons.get(k, 0) + v
        ingest("disputes", E.disputes_ledger(d).files, con=con, study_window=WINDOW)
        ingest("reforms", E.adoption_csv(d).files, con=con)
        return canonical(con, d), reasons
    finally:
        con.close()


EXPECTED_REASONS = {"outside_window": 18, "bad_datetime": 36, "arrival_before_receipt": 20, "duplicate_id": 67,
                    "id_number_in_key": 18, "missing_required": 32, "unknown_station": 16, "date_without_day": 15,
                    "absurd_response_time": 11, "unbalanced_quote": 1}
EXPECTED = {"stations": "3b30a1e05b223652", "incidents": "5c8eb62688f4be98", "disputes": "69dfbe3150590734",
            "reforms": "539be53c1fe2ecf1", "quarantine": "ea77cb1039880e02", "ingest_log": "f3e51571eea124e3",
            "coverage": "1d45eafa626a9c16"}


@pytest.mark.filterwarnings("ignore")
def test_messy_export_results_are_pinned(tmp_path):
    digests, reasons = build(tmp_path)
    assert reasons == EXPECTED_REASONS
    assert digests == EXPECTED
