"""Loads: every ingested file is one load with its own id, so it can be replaced or forgotten.

A load's accepted rows carry ``load_id`` in the data table, its quarantined rows carry it in
``quarantine``, and ``ingest_log`` holds its counts. Removing a load deletes both and marks the
log row ``live = FALSE`` (kept as history). Every removal checks the reconciliation: the rows
deleted equal the rows the load accepted and quarantined, so after any sequence of loads,
replaces and forgets the live rows of each table and the live quarantine are exactly the sums
over the live loads (:func:`reconcile`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from evalkit.ingest.errors import IngestError
from evalkit.schema import TABLES


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """One more than the largest load id ever used (forgotten loads included)."""
    return int(con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM ingest_log").fetchall()[0][0])


def find_loads(con: duckdb.DuckDBPyConnection, file: str | Path, table: str | None = None,
               sha: str | None = None) -> list[tuple[int | None, str, str]]:
    """Live loads of ``file``: ``[(load_id, table_name, source_file), …]``.

    Matched by path first (as given or resolved), then by content (``sha``, when given), then by
    file name alone — the last only when one path carries that name (two folders with an
    ``incidents_2023.csv`` each are ambiguous: an error asks for the full path).
    """
    args: list = []
    where = "live"
    if table:
        where += " AND table_name = ?"
        args.append(table)
    rows = con.execute(f"SELECT load_id, table_name, source_file, source_path, sha256 FROM ingest_log "
                       f"WHERE {where} ORDER BY load_id", args).fetchall()
    p = Path(file)
    given, resolved = str(file), str(p.resolve())
    by_path = [r for r in rows if r[2] == given or r[3] == resolved or (r[3] is None and
                                                                      str(Path(r[2]).resolve()) == resolved)]
    if by_path:
        return [(r[0], r[1], r[2]) for r in by_path]
    if sha:
        by_sha = [r for r in rows if r[4] == sha]
        if by_sha:
            return [(r[0], r[1], r[2]) for r in by_sha]
    by_name = [r for r in rows if Path(r[2]).name == p.name]
    paths = sorted({r[3] or r[2] for r in by_name})
    if len(paths) > 1:
        raise IngestError(f"several loaded files are named {p.name}: {', '.join(paths)}; give the full path "
                          f"of the one to replace or forget", file=given)
    return [(r[0], r[1], r[2]) for r in by_name]


def remove_load(con: duckdb.DuckDBPyConnection, load_id: int | None, how: str, now: dt.datetime,
                source: str = "") -> tuple[int, int]:
    """Delete a live load's rows and quarantine; mark it removed. Returns (rows, quarantined) removed."""
    if load_id is None:
        raise IngestError("this load was made before loads had ids and cannot be removed on its own; "
                          "rebuild the warehouse from its files", file=source or None)
    row = con.execute("SELECT table_name, rows_accepted, rows_quarantined FROM ingest_log "
                      "WHERE load_id = ? AND live", [load_id]).fetchall()
    if not row:
        raise IngestError(f"load {load_id} is not live", file=source or None)
    table, acc, qua = row[0]
    d = con.execute(f"DELETE FROM {table} WHERE load_id = ?", [load_id]).fetchall()[0][0]
    q = con.execute("DELETE FROM quarantine WHERE load_id = ?", [load_id]).fetchall()[0][0]
    if (d, q) != (acc, qua):  # the reconciliation of the load, checked when it leaves
        raise AssertionError(f"load {load_id} ({source}): removed {d} rows + {q} quarantined, "
                             f"but it had accepted {acc} + quarantined {qua}")
    con.execute("UPDATE ingest_log SET live = FALSE, removed_at = ?, removed_how = ? WHERE load_id = ?",
                [now, how, load_id])
    return int(d), int(q)


def _log_file(con, table: str, file: str, sha: str, res: dict, now, load_id: int) -> None:
    """One ingest_log row per load, after checking the load's rows in the warehouse: its live rows
    and quarantine rows are exactly what it accepted and quarantined."""
    live = con.execute(f"SELECT count(*) FROM {table} WHERE load_id = ?", [load_id]).fetchall()[0][0]
    qlive = con.execute("SELECT count(*) FROM quarantine WHERE load_id = ?", [load_id]).fetchall()[0][0]
    if (live, qlive) != (res["rows_accepted"], res["rows_quarantined"]):
        raise AssertionError(f"{file}: load {load_id} holds {live} rows + {qlive} quarantined, "
                             f"expected {res['rows_accepted']} + {res['rows_quarantined']}")
    con.execute("INSERT INTO ingest_log (table_name, source_file, sha256, rows_in, rows_accepted, rows_quarantined, "
                "ingested_at, load_id, source_path, rows_other, live) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE)",
                [table, file, sha, res["rows_in"], res["rows_accepted"], res["rows_quarantined"], now, load_id,
                 str(Path(file).resolve()), res["rows_other"]])


def _has_live_load(con, table: str) -> bool:
    """Whether ``table`` holds a live load (a file with the same content would then be skipped)."""
    return bool(con.execute("SELECT count(*) FROM ingest_log WHERE table_name = ? AND live",
                            [table]).fetchall()[0][0])


def check_station_references(con: duckdb.DuckDBPyConnection, action: str) -> None:
    """Refuse a change of the register that leaves records pointing at stations no longer in it."""
    from evalkit.schema import REPORT_TABLES

    for t in ("reforms", "incidents", "disputes", *REPORT_TABLES, "adjacency"):
        n = con.execute(f"SELECT count(*) FROM {t} WHERE station_id NOT IN (SELECT station_id FROM stations)"
                        ).fetchall()[0][0]
        if n:
            raise IngestError(f"{action} would leave {n:,} {t} rows pointing at stations no longer in the register; "
                              f"forget or replace those {t} loads first (evalkit warehouse status lists them)")


def reconcile(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per table: rows in, accepted, quarantined of the live loads against the live rows.

    Columns ``table_name, loads, rows_in, rows_accepted, rows_quarantined, live_rows,
    live_quarantine, ok``; ``ok`` means rows_in = accepted + quarantined and the live rows and
    quarantine equal the logged counts (rows with no load id, from older warehouses, are counted
    as live rows of no load and make ``ok`` False).
    """
    out = []
    for t in TABLES:
        lg = con.execute("SELECT count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_accepted), 0), "
                         "coalesce(sum(rows_quarantined), 0) FROM ingest_log WHERE live AND table_name = ?",
                         [t]).fetchall()[0]
        live = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        qlive = con.execute("SELECT count(*) FROM quarantine WHERE table_name = ?", [t]).fetchall()[0][0]
        n, rin, acc, qua = (int(x) for x in lg)
        out.append({"table_name": t, "loads": n, "rows_in": rin, "rows_accepted": acc, "rows_quarantined": qua,
                    "live_rows": int(live), "live_quarantine": int(qlive),
                    "ok": rin == acc + qua and acc == live and qua == qlive})
    return pd.DataFrame(out)


__all__ = ["check_station_references", "find_loads", "next_load_id", "reconcile", "remove_load"]
