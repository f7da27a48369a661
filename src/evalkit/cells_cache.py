"""A batch's shared station-month cells: one aggregation of the records per region for all its evaluations.

Building a panel aggregates every record of the region's stations (:func:`evalkit.panel.cells_sql`): on the
medium world (18 M incidents) 3 s of CPU for the 448 urban stations, 5 s for all 1,500 — most of an
evaluation's compute in a batch, and the same cells for every evaluation of the batch with that region,
window and warehouse (a cell depends on its own station and month only, never on the reform or outcome).

When :data:`CACHE_ENV` names a folder (``evalkit batch`` sets it for its local workers and their kernels, a
folder inside the batch's output folder that it removes at the end), :func:`shared_cells` keeps each set of
cells there as a Parquet file: the first evaluation that needs it computes it (holding a lock on the
key, so a parallel worker waits for it instead of computing it too) and every later one reads it. The
file's name is a hash of everything the cells depend on: the warehouse file (resolved path, inode, size,
modification time), the cells' SQL and its parameters (window, region, coverage sources). When the batch's
regions together hold at least as many stations as the warehouse (:func:`plan_whole`, decided by the batch
before it starts), its evaluations share one file of all stations' cells instead, each reading its
region's rows: one aggregation instead of one per region (medium world, urban + mixed + rural + all: 5 s of
CPU instead of 13). Parquet keeps
DuckDB's integer, double and text values exactly, so a panel from the file equals the panel from the
records (``tests/test_cells_cache.py``). Without the variable nothing changes.

The cells are aggregates per station and month (counts, rates, station attributes); no record and no
personal data reaches the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

#: folder of the shared cells (unset or empty: every panel aggregates the records itself)
CACHE_ENV = "EVALKIT_CELLS_CACHE"


def cache_dir() -> Path | None:
    """The folder of :data:`CACHE_ENV`, or ``None`` when unset or missing."""
    d = os.environ.get(CACHE_ENV, "")
    return Path(d) if d and Path(d).is_dir() else None


def _warehouse_key(con: duckdb.DuckDBPyConnection) -> list | None:
    """The identity of ``con``'s database file (``None`` for an in-memory database: not shared)."""
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    path = rows[0][0] if rows else None
    if not path:
        return None
    st = Path(path).resolve().stat()
    return [str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX ``flock``; elsewhere none: parallel writers then both compute
    and the atomic rename keeps one whole file)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def plan_whole(folder: Path, evaluations: list[tuple[str, dict | None, int, int]]) -> list[list]:
    """Decide, before a batch runs, for which warehouse and window its evaluations share the cells of *all*
    stations (each evaluation then reads its region's rows of that one file) instead of one file per region:
    when the batch's regions together hold at least as many stations as the warehouse (e.g. urban, rural,
    mixed and the whole province), one aggregation of everything costs no more than one per region. Written
    to ``folder/whole.json`` as ``[warehouse file, p0, p1]`` rows, read by :func:`shared_cells`.
    ``evaluations``: (warehouse path, region filter, p0, p1) of each evaluation."""
    from evalkit.panel import _region_sql
    from evalkit.warehouse import open_db

    groups: dict[tuple[str, int, int], dict[str, dict | None]] = {}
    for wh, region, p0, p1 in evaluations:
        path = Path(wh).resolve()
        if path.is_file():
            groups.setdefault((str(path), p0, p1), {})[json.dumps(region or {}, sort_keys=True)] = region or None
    whole = []
    for (path, p0, p1), regions in groups.items():
        if len(regions) < 2:
            continue
        try:
            with open_db(path, read_only=True) as con:
                total = con.execute("SELECT count(*) FROM stations").fetchone()[0]
                held = 0
                for region in regions.values():
                    where, args = _region_sql(region)
                    held += con.execute(f"SELECT count(*) FROM stations s WHERE {where}", args).fetchone()[0]
        except Exception:  # noqa: BLE001 - no decision: each evaluation reads (or reports) its warehouse itself
            continue
        if total and held >= total:
            whole.append([path, p0, p1])
    (folder / WHOLE_FILE).write_text(json.dumps(whole, ensure_ascii=False), encoding="utf-8")
    return whole


#: :func:`plan_whole`'s decisions inside the cells folder
WHOLE_FILE = "whole.json"


def _is_whole(folder: Path, wh: list, p0: int, p1: int) -> bool:
    try:
        rows = json.loads((folder / WHOLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return [wh[0], p0, p1] in rows


def shared_cells(con: duckdb.DuckDBPyConnection, region: dict | None, p0: int, p1: int, inc_cov: str,
                 dis_cov: str) -> tuple[str, dict] | None:
    """A FROM-able source of the cells (:func:`evalkit.panel.cells_sql`) of ``region`` and months ``p0..p1``
    from the shared folder, and the parameters it needs: the region's own file (``read_parquet(...)``), or
    the rows of ``region`` in the file of all stations when :func:`plan_whole` chose that for this warehouse
    and window; computed now when no evaluation has computed them yet. ``None`` without a folder (or for an
    in-memory warehouse): the caller then reads the records itself."""
    from evalkit.panel import PanelSpec, _region_sql, bind_cells, cells_sql, name_placeholders

    folder = cache_dir()
    if folder is None:
        return None
    wh = _warehouse_key(con)
    if wh is None:
        return None
    if not region or not _is_whole(folder, wh, p0, p1):
        return _file(con, folder, wh, *bind_cells(cells_sql(PanelSpec("", region=region), inc_cov, dis_cov), p0,
                                                  p1, region)), {}
    src = _file(con, folder, wh, *bind_cells(cells_sql(PanelSpec(""), inc_cov, dis_cov), p0, p1, None))
    where, named = name_placeholders(*_region_sql(region), "cells_r")  # the cells carry their region columns
    return f"(SELECT * FROM {src} s WHERE {where})", named


def _file(con: duckdb.DuckDBPyConnection, folder: Path, wh: list, sql: str, named: dict) -> str:
    """``read_parquet`` of the file holding the rows of ``sql``, written now (under a lock) if missing."""
    key = json.dumps([wh, sql, sorted((k, str(v)) for k, v in named.items())], ensure_ascii=False)
    name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    file = folder / f"cells-{name}.parquet"
    if not file.is_file():
        with _locked(folder / f"cells-{name}.lock"):
            if not file.is_file():  # not written by a worker that held the lock before us
                tmp = folder / f"cells-{name}.{os.getpid()}.tmp"
                try:
                    con.execute(f"COPY ({sql}) TO '{_quote(tmp)}' (FORMAT parquet)", named)
                    os.replace(tmp, file)
                finally:
                    tmp.unlink(missing_ok=True)
    return f"read_parquet('{_quote(file)}')"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
