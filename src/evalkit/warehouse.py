"""The embedded DuckDB warehouse: where it lives, how to open it, bookkeeping helpers.

The schema (canonical tables from :mod:`evalkit.schema` plus the ``meta``, ``quarantine``,
``ingest_log`` and ``coverage`` bookkeeping tables) is created on first connect, so every caller
sees the same layout. The path defaults to ``data/warehouse.duckdb`` and can be overridden with
the ``EVALKIT_WAREHOUSE`` environment variable or an explicit argument; the demo world lives in
its own file, ``data/demo/warehouse.duckdb`` (:data:`DEMO_WAREHOUSE`).

Also here: what is live (:func:`live_facts`, :func:`status`) and removing a file's load
(:func:`forget`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from evalkit.schema import META_DDL, META_MIGRATIONS, OPTIONAL_TABLES, TABLES

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
ENV_VAR = "EVALKIT_WAREHOUSE"


def warehouse_path(path: str | Path | None = None) -> Path:
    """Resolve the warehouse file: explicit ``path``, else ``$EVALKIT_WAREHOUSE``, else the default."""
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_WAREHOUSE


def find_existing(path: str | Path | None = None) -> Path:
    """The warehouse file to *read*: like :func:`warehouse_path`, but a relative path that does not
    exist from the working directory is also looked up in its parent folders (a notebook opened in
    JupyterLab runs in ``notebooks/``, while ``data/warehouse.duckdb`` sits at the project root)."""
    p = warehouse_path(path)
    if p.is_absolute() or p.exists():
        return p
    for parent in Path.cwd().resolve().parents:
        if (parent / p).exists():
            return parent / p
    return p


class WarehouseError(RuntimeError):
    """The warehouse file cannot be opened (in use, corrupt, not DuckDB); the message says what to do."""


# Rows in a row group that a writable connection appends (DuckDB's default is 122,880). Why: DuckDB's
# order-keeping insert takes its input one row group of the source at a time, and writes such a batch
# straight away only when it holds at least a row group of the target; a batch just short of one (an
# ingest's accepted rows: its stage's row groups less their rejected rows) is copied once more to be
# merged with its neighbours. With the target's row groups half the stage's, every batch that keeps
# half its rows is written as it comes (10 M rows: the insert 4.1 → 2.9 s, docs/performance.md).
ROW_GROUP_ROWS = 61_440
_RESERVED = {"memory", "temp", "system", "main"}  # database names taken in every DuckDB
_OPENING = threading.Lock()  # one thread at a time attaches a file (a file is attached once per process)


def _writable(p: Path) -> duckdb.DuckDBPyConnection:
    """A writable connection to the warehouse file ``p``, appending row groups of :data:`ROW_GROUP_ROWS`
    rows (an option of ATTACH only): a connection to a named in-memory DuckDB of this file (one per file
    and process, shared by its connections as ``duckdb.connect`` shares one per path, and gone with the
    last of them), which attaches the file under its name without the extension and uses it."""
    key = str(p.resolve())
    name = '"' + (p.stem if p.stem.lower() not in _RESERVED else "warehouse").replace('"', '""') + '"'
    with _OPENING:
        con = duckdb.connect(":memory:evalkit_" + hashlib.sha256(key.encode()).hexdigest()[:24])
        try:
            if not con.execute("SELECT count(*) FROM duckdb_databases() WHERE path = ?", [key]).fetchall()[0][0]:
                # spills go beside the file, as for a database opened directly (not to ./.tmp)
                con.execute("SET temp_directory = ?", [key + ".tmp"])
                con.execute(f"ATTACH ? AS {name} (ROW_GROUP_SIZE {ROW_GROUP_ROWS})", [key])
            con.execute(f"USE {name}.main")  # (.main: a name such as information_schema is also a schema's)
        except BaseException:
            con.close()
            raise
    return con


def open_db(p: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with DuckDB's failures turned into one-line :class:`WarehouseError` messages;
    a writable connection appends row groups of :data:`ROW_GROUP_ROWS` rows."""
    try:
        return duckdb.connect(str(p), read_only=True) if read_only else _writable(Path(p))
    except duckdb.Error as exc:
        raise WarehouseError(describe_open_error(p, exc)) from None


def describe_open_error(p: str | Path, exc: BaseException) -> str:
    """One line saying why the warehouse file ``p`` could not be opened and what to do."""
    text = " ".join(str(exc).split())
    if "Could not set lock" in text or "Conflicting lock" in text:
        pid = re.search(r"\(PID (\d+)\)", text)
        who = f" (process {pid.group(1)})" if pid else ""
        return (f"warehouse {p} is in use by another program{who}: close it (another evalkit command, a "
                f"notebook kernel or a DuckDB session) and try again")
    if "Unique file handle conflict" in text or "different configuration" in text:
        return (f"warehouse {p} is already open in this program by another DuckDB connection (read-only, or not "
                f"opened through evalkit): close it first")
    if "not a valid DuckDB database" in text:
        return (f"warehouse {p} is not a DuckDB database: set `warehouse:` to the .duckdb file written by "
                f"`evalkit ingest` or `evalkit demo-data`")
    if isinstance(exc, IsADirectoryError) or Path(p).is_dir():
        return f"warehouse {p} is a folder, not a DuckDB database: set `warehouse:` to the .duckdb file"
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return f"warehouse {p} cannot be opened: permission denied (check the file's owner and mode)"
    return (f"warehouse {p} is corrupt or unreadable ({text[:120]}): restore it from a backup, or move it "
            f"away and rebuild it with `evalkit ingest` (or `evalkit demo-data`)")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the canonical tables and bookkeeping tables if they are missing."""
    for t in TABLES.values():
        con.execute(t.ddl())
    for ddl in META_DDL:
        con.execute(ddl)
    for ddl in META_MIGRATIONS:
        con.execute(ddl)


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and on first use create) the warehouse.

    ``path=":memory:"`` opens a throwaway in-memory warehouse (handy in tests). A read-only
    connection never writes; it requires the file to exist already.
    """
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:")
        create_schema(con)
        return con
    p = warehouse_path(path)
    if read_only:
        if not p.exists():
            raise FileNotFoundError(f"warehouse {p} does not exist; ingest data first (evalkit ingest …)")
        return open_db(p, read_only=True)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = open_db(p)
    try:
        create_schema(con)
    except duckdb.Error as exc:  # a corrupt block can first show when the schema is read
        con.close()
        raise WarehouseError(describe_open_error(p, exc)) from None
    return con


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value) -> None:
    """Store ``value`` under ``key`` in ``meta`` (non-strings are stored as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, text])


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default=None):
    """Value stored under ``key`` as a string (dicts/lists come back decoded), or ``default``."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        row = rows[0] if rows else None
    except duckdb.CatalogException:
        return default
    if row is None or row[0] is None:
        return default
    text = row[0]
    if text[:1] in ("{", "["):  # containers were stored as JSON by set_meta
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the canonical tables and the quarantine (``{table: n}``)."""
    out: dict[str, int] = {}
    for name in [*TABLES, "quarantine", "ingest_log"]:
        try:
            out[name] = int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
        except duckdb.CatalogException:
            out[name] = 0
    return out


# ------------------------------------------------------------------------------ demo or real
DEMO_WAREHOUSE = Path("data/demo/warehouse.duckdb")


def is_demo(con: duckdb.DuckDBPyConnection) -> bool:
    """True for a warehouse written by ``evalkit demo-data`` (meta ``synthetic`` = true)."""
    return str(get_meta(con, "synthetic", "false")).lower() in ("true", "1", "yes")


def holds_real_data(path: str | Path) -> bool:
    """True when the file at ``path`` is a warehouse with any loaded row that is not the demo world."""
    p = Path(path)
    if not p.is_file():
        return False
    with open_db(p, read_only=True) as con:
        if is_demo(con):
            return False
        counts = table_counts(con)
    return any(counts[t] for t in [*TABLES, "quarantine", "ingest_log"])


# ------------------------------------------------------------------------------ status
def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """True when ``table`` has ``column`` (warehouses written by older versions may lack it)."""
    return bool(con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = ? "
                            "AND column_name = ?", [table, column]).fetchall()[0][0])


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: committed when the block ends, rolled back on any exception
    (including KeyboardInterrupt), so a failed load or repair leaves the warehouse as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise


def live_facts(con: duckdb.DuckDBPyConnection) -> dict:
    """What is live in the warehouse, for a brief's data note (replaced/forgotten loads excluded).

    ``{"rows": {table: n}, "quarantined": n, "quarantined_by_reason": {reason: n},
    "loads": n, "rows_other": {table: n}, "synthetic": bool}`` — ``rows_other`` counts live
    accepted rows whose category was mapped to ``other``.
    """
    counts = table_counts(con)
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall())
    live = "live" if has_column(con, "ingest_log", "live") else "TRUE"
    other_col = "rows_other" if has_column(con, "ingest_log", "rows_other") else "0"
    loads = con.execute(f"SELECT count(*) FROM ingest_log WHERE {live}").fetchall()[0][0]
    other = dict(con.execute(f"SELECT table_name, coalesce(sum({other_col}), 0) FROM ingest_log WHERE {live} "
                             f"AND table_name IN ('incidents', 'disputes') GROUP BY 1").fetchall())
    # the optional tables (monthly reports, adjacency) are listed only when they hold rows
    rows = {t: counts[t] for t in TABLES if t not in OPTIONAL_TABLES or counts[t]}
    return {"rows": rows, "quarantined": counts["quarantine"],
            "quarantined_by_reason": {k: int(v) for k, v in reasons.items()}, "loads": int(loads),
            "rows_other": {k: int(v) for k, v in other.items()}, "synthetic": is_demo(con)}


def status(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The warehouse at a glance, as frames (``evalkit warehouse status`` prints the same):

    - ``files``: live loads — table, file, load id, rows in / accepted / quarantined, rows and
      share mapped to category ``other``, when;
    - ``quarantine``: live quarantined rows by table and reason;
    - ``coverage``: per station and record table, first/last covered month, covered months,
      months missing in between and the covered ranges (see :mod:`evalkit.coverage`);
    - ``removed``: replaced or forgotten loads (history).
    """
    from evalkit.coverage import coverage_ranges

    has_live = has_column(con, "ingest_log", "live")
    live = "live" if has_live else "TRUE"
    extra = "load_id, coalesce(rows_other, 0) AS rows_other," if has_live else "NULL AS load_id, 0 AS rows_other,"
    files = con.execute(f"""
        SELECT table_name, source_file AS file, {extra} rows_in, rows_accepted, rows_quarantined, ingested_at
        FROM ingest_log WHERE {live} ORDER BY ingested_at, load_id""").df()
    has_cat = files["table_name"].isin(["incidents", "disputes"])
    files["rows_other"] = files["rows_other"].where(has_cat).astype("Int64")
    files.insert(files.columns.get_loc("rows_other") + 1, "share_other",
                 (files["rows_other"] / files["rows_accepted"].where(files["rows_accepted"] > 0))
                 .astype("float64").round(4))
    quarantine = con.execute("SELECT table_name, reason, count(*) AS rows FROM quarantine "
                             "GROUP BY ALL ORDER BY table_name, rows DESC").df()
    removed = (con.execute("SELECT table_name, source_file AS file, load_id, rows_accepted, rows_quarantined, "
                           "removed_how, removed_at FROM ingest_log WHERE NOT live ORDER BY removed_at").df()
               if has_live else pd.DataFrame())
    return {"files": files, "quarantine": quarantine, "coverage": coverage_ranges(con), "removed": removed}


# ------------------------------------------------------------------------------ forget
def forget(file: str | Path, *, warehouse: str | Path | None = None, con: duckdb.DuckDBPyConnection | None = None,
           table: str | None = None) -> list[dict]:
    """Remove every live load of ``file`` (its rows and its quarantine), in one transaction.

    Matched like ``ingest --replace`` (path, content, unique file name). Returns one dict per
    removed load (``table``, ``file``, ``load_id``, ``rows``, ``quarantined``); raises
    :class:`evalkit.ingest.IngestError` when nothing matches or the station register would lose
    stations that records still point at.
    """
    import datetime as dt

    from evalkit import coverage
    from evalkit.ingest.errors import IngestError
    from evalkit.ingest.loads import check_station_references, find_loads, remove_load
    from evalkit.ingest.sources import sha256_file

    own = con is None
    if own:
        con = connect(warehouse)
    now = dt.datetime.now().replace(microsecond=0)
    try:
        with transaction(con):
            sha = sha256_file(Path(file)) if Path(file).is_file() else None
            loads = find_loads(con, file, table, sha)
            if not loads:
                raise IngestError("no live load of this file in the warehouse (evalkit warehouse status lists "
                                  "the loaded files)", file=str(file))
            out = []
            for lid, t, src in loads:
                d, q = remove_load(con, lid, "forgotten", now, src)
                out.append({"table": t, "file": src, "load_id": lid, "rows": d, "quarantined": q})
            touched = {r["table"] for r in out}
            if "stations" in touched:
                check_station_references(con, f"forgetting {file}")
            coverage.refresh(con, sorted(touched))
    finally:
        if own:
            con.close()
    return out
