"""A batch's shared station-month cells (evalkit.cells_cache): a panel built from the shared file equals the
panel built from the records, the file is computed once per warehouse × region × window and reused, and
nothing is shared without the folder."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor

import duckdb
import pandas as pd
import pytest

from evalkit import cells_cache
from evalkit.cells_cache import CACHE_ENV
from evalkit.panel import PanelSpec, build_panel
from evalkit.warehouse import open_db

CASES = [  # (reform, region, window, exclude_reforms)
    ("两队一室", {"area_type": "urban"}, ("2019-01", "2025-12"), None),
    ("一村一辅警", {"area_type": "rural"}, ("2019-01", "2025-12"), None),
    ("巡处一体化", None, ("2020-03", "2024-08"), ["两队一室"]),
]


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("cells-*.parquet"))


@pytest.fixture
def con(demo_warehouse):
    c = open_db(demo_warehouse, read_only=True)
    yield c
    c.close()


def test_panel_from_the_shared_cells_equals_the_panel_from_the_records(con, tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    plain = [build_panel(con, r, start=w[0], end=w[1], region=g, exclude_reforms=x) for r, g, w, x in CASES]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for (r, g, w, x), want in zip(CASES, plain, strict=True):
        for _ in range(2):  # the first build writes the file, the second reads it
            got = build_panel(con, r, start=w[0], end=w[1], region=g, exclude_reforms=x)
            pd.testing.assert_frame_equal(want, got, check_exact=True)  # values, NaN pattern, dtypes
            assert want.attrs == got.attrs
    assert len(_files(tmp_path)) == 3  # one file per region × window
    assert not list(tmp_path.glob("*.tmp"))


def test_the_cells_are_computed_once_and_shared_across_reforms(con, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    build_panel(con, "两队一室", region={"area_type": "urban"})
    [file] = tmp_path.glob("cells-*.parquet")
    stamp = file.stat().st_mtime_ns
    copies = []
    real = duckdb.DuckDBPyConnection.execute

    class Spy:  # counts the COPY statements the second build sends
        def __init__(self, c):
            self.c = c

        def execute(self, sql, *a):
            if sql.startswith("COPY"):
                copies.append(sql)
            return real(self.c, sql, *a)

        def __getattr__(self, name):
            return getattr(self.c, name)

    build_panel(Spy(con), "巡处一体化", region={"area_type": "urban"})  # same region and window, other reform
    assert copies == [] and file.stat().st_mtime_ns == stamp and len(_files(tmp_path)) == 1
    build_panel(Spy(con), "巡处一体化", region={"area_type": "rural"})  # another region: its own file
    assert len(copies) == 1 and len(_files(tmp_path)) == 2


def test_another_warehouse_file_gets_its_own_cells(demo_warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cells"))
    (tmp_path / "cells").mkdir()
    copy = tmp_path / "copy.duckdb"
    shutil.copy(demo_warehouse, copy)
    for wh in (demo_warehouse, copy):
        c = open_db(wh, read_only=True)
        try:
            build_panel(c, "两队一室", region={"area_type": "urban"})
        finally:
            c.close()
    assert len(_files(tmp_path / "cells")) == 2


def test_nothing_is_shared_without_the_folder_or_for_an_in_memory_database(con, tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    args = ({"area_type": "urban"}, 600, 620, "(SELECT 1)", "(SELECT 1)")
    assert cells_cache.shared_cells(con, *args) is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "missing"))
    assert cells_cache.shared_cells(con, *args) is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cells_cache.shared_cells(duckdb.connect(), *args) is None
    monkeypatch.delenv(CACHE_ENV)
    build_panel(con, "两队一室", region={"area_type": "urban"})
    assert _files(tmp_path) == []


def test_regions_that_cover_the_warehouse_share_one_file_of_all_stations(con, demo_warehouse, tmp_path,
                                                                         monkeypatch):
    regions = [{"area_type": "urban"}, {"area_type": ["rural", "mixed"]}, {"area_type": "rural"}, None]
    monkeypatch.delenv(CACHE_ENV, raising=False)
    plain = [build_panel(con, "两队一室", region=g) for g in regions]
    # urban and rural alone hold fewer stations than the warehouse: one file per region as before
    p0, p1 = PanelSpec("").first_period, PanelSpec("").last_period  # the default window
    assert cells_cache.plan_whole(tmp_path, [(str(demo_warehouse), g, p0, p1) for g in regions[::2]]) == []
    whole = cells_cache.plan_whole(tmp_path, [(str(demo_warehouse), g, p0, p1) for g in regions])
    assert whole == [[str(demo_warehouse.resolve()), p0, p1]]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for g, want in zip(regions, plain, strict=True):
        got = build_panel(con, "两队一室", region=g)
        pd.testing.assert_frame_equal(want, got, check_exact=True)
        assert want.attrs == got.attrs
    assert len(_files(tmp_path)) == 1  # every region read its rows from the one file of all stations
    got = build_panel(con, "两队一室", start="2020-01", region=regions[0])  # another window: its own file
    assert len(_files(tmp_path)) == 2
    monkeypatch.delenv(CACHE_ENV)
    pd.testing.assert_frame_equal(build_panel(con, "两队一室", start="2020-01", region=regions[0]), got,
                                  check_exact=True)


def test_batch_workers_pass_the_folder_to_their_kernels(tmp_path):
    from evalkit.batch.local import _worker_init

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(None, os.getpid(), str(tmp_path))) as ex:
        assert ex.submit(os.getenv, CACHE_ENV).result(timeout=120) == str(tmp_path)


# ------------------------------------------------------------------ one run's cells, computed ahead of its kernel
def _copies(con, log, every=None):
    real = duckdb.DuckDBPyConnection.execute

    class Spy:  # records the COPY statements a build sends (a kernel must never write into a folder ahead)
        def execute(self, sql, *a):
            if sql.startswith("COPY"):
                log.append(sql)
            if every is not None:
                every.append(sql)
            return real(con, sql, *a)

        def __getattr__(self, name):
            return getattr(con, name)

    return Spy()


@pytest.mark.parametrize("reform, region, window, exclude", CASES)
def test_cells_computed_ahead_give_the_same_panel_and_the_kernel_only_reads_them(con, demo_warehouse, tmp_path,
                                                                                monkeypatch, reform, region,
                                                                                window, exclude):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    want = build_panel(con, reform, start=window[0], end=window[1], region=region, exclude_reforms=exclude)
    folder = tmp_path / "kernel" / "cells"
    folder.parent.mkdir()
    spec = PanelSpec("", *window)
    ahead = cells_cache.start_ahead(folder, demo_warehouse, region or {}, (spec.first_period, spec.last_period))
    monkeypatch.setenv(CACHE_ENV, str(folder))
    # in a run the kernel needs a second to start; here the folder may not be there yet on a busy host (a
    # kernel arriving first computes its own cells, checked elsewhere): wait until the thread shows it
    while not folder.exists() and ahead._thread.is_alive():
        time.sleep(0.005)
    copies: list[str] = []
    got = build_panel(_copies(con, copies), reform, start=window[0], end=window[1], region=region,
                      exclude_reforms=exclude)  # waits for the file if the thread still writes it
    ahead.wait()  # `written` is set once the thread has released the lock the kernel waited for
    assert ahead.error is None and ahead.written is not None and ahead.written.is_file()
    pd.testing.assert_frame_equal(want, got, check_exact=True)  # bit for bit: values, NaN pattern, dtypes
    assert want.attrs == got.attrs
    assert copies == []  # the panel read the file written ahead
    assert (folder / cells_cache.AHEAD_MARK).is_file() and not list(folder.glob("*.tmp"))
    ahead.close()
    assert not folder.exists() and list(folder.parent.iterdir()) == []


def test_a_folder_written_ahead_is_read_only_for_other_cells(con, demo_warehouse, tmp_path, monkeypatch):
    folder = tmp_path / "cells"
    spec = PanelSpec("")
    ahead = cells_cache.start_ahead(folder, demo_warehouse, {"area_type": "urban"},
                                    (spec.first_period, spec.last_period))
    ahead._thread.join()
    monkeypatch.setenv(CACHE_ENV, str(folder))
    copies: list[str] = []
    monkeypatch.delenv(CACHE_ENV)
    want = build_panel(con, "两队一室", region={"area_type": "rural"})
    monkeypatch.setenv(CACHE_ENV, str(folder))
    got = build_panel(_copies(con, copies), "两队一室", region={"area_type": "rural"})  # cells not given: records
    pd.testing.assert_frame_equal(want, got, check_exact=True)
    assert copies == [] and len(_files(folder)) == 1
    ahead.close()
    assert not folder.exists()


def test_the_kernel_waits_for_cells_being_written_ahead(con, demo_warehouse, tmp_path, monkeypatch):
    """The kernel sees the folder only with the file's lock held: it waits for the file, never reads half."""
    import threading

    folder = tmp_path / "cells"
    spec = PanelSpec("")
    gate = threading.Event()
    real = cells_cache._write

    def slow_write(*a):
        gate.wait(30)
        return real(*a)

    monkeypatch.setattr(cells_cache, "_write", slow_write)
    ahead = cells_cache.start_ahead(folder, demo_warehouse, {"area_type": "urban"},
                                    (spec.first_period, spec.last_period))
    for _ in range(600):  # the folder appears once the lock is held
        if folder.exists():
            break
        time.sleep(0.05)
    monkeypatch.setenv(CACHE_ENV, str(folder))
    threading.Timer(0.3, gate.set).start()
    copies: list[str] = []
    t0 = time.monotonic()
    got = build_panel(_copies(con, copies), "两队一室", region={"area_type": "urban"})
    waited = time.monotonic() - t0
    ahead.wait()  # `written` is set once the thread has released the lock the kernel waited for
    assert waited >= 0.25 and copies == [] and ahead.written is not None
    monkeypatch.delenv(CACHE_ENV)
    pd.testing.assert_frame_equal(build_panel(con, "两队一室", region={"area_type": "urban"}), got, check_exact=True)
    ahead.close()


def test_a_failure_ahead_leaves_the_kernel_to_read_the_records(con, tmp_path, monkeypatch):
    folder = tmp_path / "cells"
    ahead = cells_cache.start_ahead(folder, tmp_path / "missing.duckdb", None, (600, 620))
    ahead._thread.join()
    assert ahead.error is not None and ahead.written is None and not folder.exists()
    ahead.close()
    assert list(tmp_path.iterdir()) == []


def test_close_stops_a_computation_still_running(demo_warehouse, tmp_path):
    folder = tmp_path / "cells"
    ahead = cells_cache.start_ahead(folder, demo_warehouse, None, (600, 620))
    ahead.close()  # at once (Ctrl-C in the runner): stopped before it wrote anything, the folder gone
    assert not ahead._thread.is_alive() and list(tmp_path.iterdir()) == []
    assert ahead.written is None and ahead.error is not None


def test_close_between_the_queries_stops_before_the_copy(demo_warehouse, tmp_path, monkeypatch):
    """close() while no query runs (here: before the COPY, held at a gate) interrupts nothing: the stop
    is checked before the COPY, so Ctrl-C does not wait for the whole computation."""
    import threading

    folder = tmp_path / "cells"
    gate, copies = threading.Event(), []
    real = cells_cache._write

    def gated(*a):
        gate.wait(30)
        copies.append(a[2])
        return real(*a)

    monkeypatch.setattr(cells_cache, "_write", gated)
    spec = PanelSpec("")
    ahead = cells_cache.start_ahead(folder, demo_warehouse, None, (spec.first_period, spec.last_period))
    for _ in range(600):  # the folder appears once the lock is held, right before the COPY
        if folder.exists():
            break
        time.sleep(0.05)
    closing = threading.Thread(target=ahead.close)
    closing.start()
    while not ahead._stop.is_set():
        time.sleep(0.005)
    gate.set()
    closing.join(30)
    assert not closing.is_alive() and len(copies) == 1
    assert ahead.written is None and isinstance(ahead.error, cells_cache.Stopped)
    assert list(tmp_path.iterdir()) == []


def test_the_index_panel_reads_its_span_of_cells_computed_ahead(con, demo_warehouse, tmp_path, monkeypatch):
    """two_teams_index: the panel and the index share one TEMP table of the index's span of cells
    (panel.panel_cache); computed ahead, that table is read from the file, and the panel is the same."""
    from pathlib import Path

    from evalkit.index.outcome import cells_span, panel_with_index
    from evalkit.params import load_params

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the params' index_definition is relative to the repository
    params = load_params(root / "params" / "two_teams_index.yaml").model_copy(
        update={"warehouse": str(demo_warehouse)})
    monkeypatch.delenv(CACHE_ENV, raising=False)
    want = panel_with_index(con, params)
    folder = tmp_path / "cells"
    ahead = cells_cache.start_ahead(folder, demo_warehouse, params.region.as_filter(),
                                    lambda c: cells_span(c, params))
    ahead._thread.join()
    assert ahead.error is None and ahead.written is not None
    monkeypatch.setenv(CACHE_ENV, str(folder))
    copies: list[str] = []
    every: list[str] = []
    got = panel_with_index(_copies(con, copies, every), params)
    pd.testing.assert_frame_equal(want, got, check_exact=True)
    assert want.attrs == got.attrs and copies == []
    temp = [q for q in every if q.startswith("CREATE OR REPLACE TEMP TABLE")]
    assert len(temp) == 1 and "read_parquet" in temp[0]  # the span's cells, from the file written ahead
    ahead.close()
