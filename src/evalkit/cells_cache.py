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

One ``evalkit run`` uses the same files ahead of its kernel (:class:`Ahead`): every kernel the runner starts
names a cells folder inside its private (0700) kernel folder (:data:`CACHE_ENV`, set by
:func:`evalkit.kernel_start.start`; the folder itself does not exist yet). While the kernel still imports, the
runner's own process, idle until then, computes the cells of the evaluation's panel there
(:func:`start_ahead`), holding the file's lock from before the folder appears, so the kernel's
:func:`evalkit.panel.build_panel` waits for it and only reads the file. Such a folder is marked read-only
(:data:`AHEAD_MARK`): a kernel never computes or writes cells into it (cells it was not given, it reads from
the records as without a folder). The folder goes with the kernel's folder when the run ends, failed or
interrupted.

The cells are aggregates per station and month (counts, rates, station attributes); no record and no
personal data reaches the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from evalkit.kernel_start import CELLS_CACHE_ENV as CACHE_ENV  # folder of the shared cells (unset: none)

#: a file in a cells folder written ahead of one run's kernel: the kernel only reads the folder's cells
AHEAD_MARK = "read-only"


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
                 dis_cov: str, *, write: bool = True) -> tuple[str, dict] | None:
    """A FROM-able source of the cells (:func:`evalkit.panel.cells_sql`) of ``region`` and months ``p0..p1``
    from the shared folder, and the parameters it needs: the region's own file (``read_parquet(...)``), or
    the rows of ``region`` in the file of all stations when :func:`plan_whole` chose that for this warehouse
    and window; computed now when no evaluation has computed them yet (with ``write`` false only a file that
    exists or is being written). ``None`` without a folder (or for an in-memory warehouse) or without such a
    file: the caller then reads the records itself."""
    from evalkit.panel import _region_sql, name_placeholders

    folder = cache_dir()
    if folder is None:
        return None
    wh = _warehouse_key(con)
    if wh is None:
        return None
    if not region or not _is_whole(folder, wh, p0, p1):
        src = _file(con, folder, wh, *region_cells(region, p0, p1, inc_cov, dis_cov), write)
        return None if src is None else (src, {})
    src = _file(con, folder, wh, *region_cells(None, p0, p1, inc_cov, dis_cov), write)
    if src is None:
        return None
    where, named = name_placeholders(*_region_sql(region), "cells_r")  # the cells carry their region columns
    return f"(SELECT * FROM {src} s WHERE {where})", named


def region_cells(region: dict | None, p0: int, p1: int, inc_cov: str, dis_cov: str) -> tuple[str, dict]:
    """The SQL and parameters of the cells of ``region`` (all stations for None) and months ``p0..p1``: what
    an evaluation's panel reads and what the cells computed ahead write (one key for both, see :func:`_name`)."""
    from evalkit.panel import PanelSpec, bind_cells, cells_sql

    return bind_cells(cells_sql(PanelSpec("", region=region), inc_cov, dis_cov), p0, p1, region)


def _name(wh: list, sql: str, named: dict) -> str:
    """The file name (without suffix) of the cells of ``sql`` with ``named`` over the warehouse ``wh``."""
    key = json.dumps([wh, sql, sorted((k, str(v)) for k, v in named.items())], ensure_ascii=False)
    return "cells-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _file(con: duckdb.DuckDBPyConnection, folder: Path, wh: list, sql: str, named: dict,
          write: bool = True) -> str | None:
    """``read_parquet`` of the file holding the rows of ``sql``, written now (under a lock) if missing; without
    ``write`` or in a folder written ahead (:data:`AHEAD_MARK`) only a file that is there or being written (its
    lock held: wait for it), else ``None``."""
    name = _name(wh, sql, named)
    file = folder / f"{name}.parquet"
    if not file.is_file():
        lock = folder / f"{name}.lock"
        if not write or (folder / AHEAD_MARK).is_file():
            if not lock.is_file():
                return None
            with _locked(lock):  # the runner's process holds it until the file is written (or it failed)
                pass
            return f"read_parquet('{_quote(file)}')" if file.is_file() else None
        with _locked(lock):
            if not file.is_file():  # not written by a worker that held the lock before us
                _write(con, folder, name, sql, named)
    return f"read_parquet('{_quote(file)}')"


def _write(con: duckdb.DuckDBPyConnection, folder: Path, name: str, sql: str, named: dict,
           stop: threading.Event | None = None) -> None:
    """COPY the cells to ``folder/name.parquet`` (atomically); not started once ``stop`` is set."""
    tmp = folder / f"{name}.{os.getpid()}.tmp"
    if stop is not None and stop.is_set():
        raise Stopped("cells ahead stopped before their COPY")
    try:
        con.execute(f"COPY ({sql}) TO '{_quote(tmp)}' (FORMAT parquet)", named)
        os.replace(tmp, folder / f"{name}.parquet")
    finally:
        tmp.unlink(missing_ok=True)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


class Stopped(Exception):
    """The cells ahead were stopped (:meth:`Ahead.close`) before they were written."""


class Ahead:
    """The cells of one panel computed by the runner's process for its kernel (:func:`start_ahead`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: Path | None = None  # the Parquet file, once written
        self.error: BaseException | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._thread: threading.Thread | None = None
        # set by close(): checked between the queries (an interrupt reaches only a query already running)
        self._stop = threading.Event()

    def _check(self) -> None:
        if self._stop.is_set():
            raise Stopped("cells ahead stopped")

    def wait(self) -> None:
        """Wait until the cells are written (or the computation failed or was stopped)."""
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop the computation if it still runs, wait for its thread and remove the cells folder."""
        self._stop.set()  # before reading _con: the thread checks it right after setting _con
        con = self._con
        if con is not None:
            with contextlib.suppress(Exception):
                con.interrupt()
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.folder.with_name(self.folder.name + ".tmp"), ignore_errors=True)

    def _run(self, warehouse: str, region: dict | None, months: Months, threads: int) -> None:
        from evalkit.coverage import coverage_source
        from evalkit.warehouse import open_db

        staging = self.folder.with_name(self.folder.name + ".tmp")
        try:
            with open_db(warehouse, read_only=True) as con:
                self._con = con
                self._check()
                con.execute(f"SET threads = {int(threads)}")
                p0, p1 = months(con) if callable(months) else months
                self._check()
                wh = _warehouse_key(con)
                covs = [coverage_source(con, t) for t in ("incidents", "disputes")]
                sql, named = region_cells(region, p0, p1, *covs)
                name = _name(wh, sql, named)  # build_panel's key for these cells (same SQL, same warehouse)
                self._check()
                staging.mkdir(mode=0o700)
                (staging / AHEAD_MARK).touch()
                with _locked(staging / f"{name}.lock"):
                    # the kernel sees the folder only now, with the lock held: it waits for the file
                    os.rename(staging, self.folder)
                    _write(con, self.folder, name, sql, named, self._stop)
                self.written = self.folder / f"{name}.parquet"
        except BaseException as exc:  # noqa: BLE001 - the kernel then reads the records itself
            self.error = exc
        finally:
            self._con = None


#: first and last month (period indices) of cells, or how to find them on the warehouse's connection
Months = tuple[int, int] | Callable[[duckdb.DuckDBPyConnection], tuple[int, int]]


def start_ahead(folder: str | Path, warehouse: str | Path, region: dict | None, months: Months, *,
                threads: int = 1) -> Ahead:
    """Compute the cells (:func:`evalkit.panel.cells_sql`) of ``region`` and ``months`` (``(p0, p1)``, or a
    function of the connection returning them, run in the thread) over ``warehouse`` into ``folder`` (which must not exist: a kernel's :data:`CACHE_ENV`) in a thread of this
    process, with ``threads`` DuckDB threads (the other core imports the kernel meanwhile). The folder appears
    marked :data:`AHEAD_MARK` with the file's lock held, so a kernel that gets there first waits for the file.
    Never raises in the thread: on any failure nothing is written and the kernel computes the cells itself.
    :meth:`Ahead.close` removes the folder (call it when the run ends, whatever happened)."""
    ahead = Ahead(Path(folder))
    ahead._thread = threading.Thread(target=ahead._run, args=(str(warehouse), region, months, threads),
                                     name="evalkit-cells-ahead", daemon=True)
    ahead._thread.start()
    return ahead
