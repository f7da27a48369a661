"""The panel's station-month cells computed once per evaluation (evalkit.panel.panel_cache): the panel
and the index scores read from the cached cells are those read from the records, and the cache's
TEMP tables are gone after the block."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit.index import load_definition
from evalkit.index.compute import default_window
from evalkit.index.outcome import add_index_outcomes, panel_with_index
from evalkit.index.report import station_scores
from evalkit.panel import build_panel, cached_cells, panel_cache
from evalkit.params import validate_params
from evalkit.warehouse import open_db

DEFN = Path(__file__).parents[1] / "params" / "index" / "prevention_index.yaml"
INDEX_COLS = ["index_prevent_calls", "index_score"]


def _cache_tables(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary "
                                      "AND table_name LIKE 'ek_panel_cells%'").fetchall()]


def test_panel_with_index_reads_the_cells_once_and_equals_the_records(demo_warehouse):
    p = validate_params({"evaluation_id": "ix", "reform": "两队一室", "index_definition": str(DEFN),
                         "outcomes": ["index:防警情", "index"], "exclude_reforms": ["一所一品试点"],
                         "window": {"start": "2021-01", "end": "2024-12"}})
    con = open_db(demo_warehouse, read_only=True)
    try:
        plain = add_index_outcomes(con, build_panel(con, p.reform, start=p.window.start, end=p.window.end,
                                                    exclude_reforms=p.exclude_reforms), p)
        assert _cache_tables(con) == []  # outside panel_cache nothing is cached
        cached = panel_with_index(con, p)
        assert _cache_tables(con) == []  # dropped at the end of the block
        # every panel column bit for bit (counts, rates, NaN pattern, dtypes), and the attrs
        pd.testing.assert_frame_equal(plain.drop(columns=INDEX_COLS), cached.drop(columns=INDEX_COLS),
                                      check_exact=True)
        assert plain.attrs == cached.attrs
        # the scores: rank rules exactly; z-score rules to DuckDB's parallel float sums
        pd.testing.assert_frame_equal(plain[INDEX_COLS], cached[INDEX_COLS], check_exact=False, rtol=1e-12,
                                      atol=1e-9)
    finally:
        con.close()


def test_shorter_window_and_region_read_their_cells(demo_warehouse):
    con = open_db(demo_warehouse, read_only=True)
    try:
        city = con.execute("SELECT min(city) FROM stations").fetchall()[0][0]
        plain = build_panel(con, "两队一室", start="2022-03", end="2023-02", region={"city": city})
        wide = build_panel(con, "两队一室", start="2021-01", end="2024-12")
        with panel_cache(con):
            cached_cells(con, {"city": city}, 24240, 24287)  # 2020-01..2023-12 in the region: cut below
            assert len(_cache_tables(con)) == 1
            cut = build_panel(con, "两队一室", start="2022-03", end="2023-02", region={"city": city})
            assert len(_cache_tables(con)) == 1  # read from the region's table
            whole = build_panel(con, "两队一室", start="2021-01", end="2024-12")  # another region: its own
            assert len(_cache_tables(con)) == 2
        pd.testing.assert_frame_equal(plain, cut, check_exact=True)
        pd.testing.assert_frame_equal(wide, whole, check_exact=True)
        assert _cache_tables(con) == []
    finally:
        con.close()


def test_index_report_scores_from_the_cells_equal_the_records(demo_warehouse):
    defn = load_definition(DEFN)
    con = open_db(demo_warehouse, read_only=True)
    try:
        plain = station_scores(con, defn, "quarter", None)
        with panel_cache(con):
            d0, d1 = default_window(con, defn)
            cached_cells(con, None, d0, d1)
            cached = station_scores(con, defn, "quarter", None)
        pd.testing.assert_frame_equal(plain[["station_id", "period"]], cached[["station_id", "period"]])
        pd.testing.assert_frame_equal(plain, cached, check_exact=False, rtol=1e-12, atol=1e-9)
    finally:
        con.close()
