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
modification time), the cells' SQL and its parameters (window, region, coverage sources). Parquet keeps
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


def shared_cells(con: duckdb.DuckDBPyConnection, sql: str, named: dict) -> str | None:
    """A FROM-able source (``read_parquet(...)``) of the rows of ``sql`` with parameters ``named`` from the
    shared folder, computed now when no evaluation has computed them yet; ``None`` without a folder (or for
    an in-memory warehouse): the caller then runs ``sql`` itself."""
    folder = cache_dir()
    if folder is None:
        return None
    wh = _warehouse_key(con)
    if wh is None:
        return None
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
