"""The word values of a large CSV from a spread sample, and the rows the sample missed.

The value maps of an ingest (station references, categories, codes, yes/no words; see
:mod:`evalkit.ingest.words`) are built from a column's distinct values. For a CSV of at least
:data:`SAMPLE_MIN_BYTES` read straight from the file (a direct view), those values are taken from
:data:`BLOCKS` stretches spread over the file instead of a scan of all of it (10 M rows: 1.8 s of
scan, 0.1 s of sample; docs/performance.md, session 25). Correctness never rests on the sample:

- the stage marks a row ``_out`` when one of its word values is not in its map (:func:`missed_sql`)
  and keeps its raw text, as it does for a rejected row;
- after the stage, :func:`settle_missed` adds those values to the maps and parses the missed rows
  again from their raw text with the full maps, in place (only scalar columns are updated, which
  keeps the stage's rowids, the file row numbers of the parallel pass).

A map is the same function of each value whichever values it holds, so every row gets what a map of
all the file's values gives it. The key hashes for the duplicate check then come from their own scan
(:func:`key_candidates`), which reads the key column only, or, for a file of one record a line, from
the stage after the pass (:mod:`evalkit.ingest.late_dups`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from evalkit.ingest.sources import _cleaner, csv_read_error
from evalkit.ingest.sql import ident
from evalkit.ingest.stage import map_join

SAMPLE_MIN_BYTES = 64 << 20  # smaller files: the words come from a scan of the whole file (cheap)
BLOCKS = 512  # stretches read, evenly spread (a column sorted by value: every value spanning ≥ 1/512 of the file is seen)
BLOCK_BYTES = 8 << 10  # 4 MiB in all: ~35,000 records of a police export, parsed in ~0.1 s
VARIED = 0.05  # a sampled word column with more distinct values than this share of its values: no sample


def usable(src, key_cols: tuple[str, ...]) -> bool:
    """Whether the words of ``src`` may come from a sample: a file of at least :data:`SAMPLE_MIN_BYTES`
    with text keys (the caller passes only a UTF-8 CSV read straight from the file, a direct view)."""
    return bool(key_cols) and src.kind == "csv" and src.path.stat().st_size >= SAMPLE_MIN_BYTES


def sample_rows(src) -> list[list[str]]:
    """The complete records of :data:`BLOCKS` stretches of :data:`BLOCK_BYTES` spread over the file
    (the title and header lines skipped); a record cut by a stretch's ends is left out. Fields as the
    csv module reads them (a line split inside a quoted field gives a record of the wrong width,
    left out too)."""
    size = src.path.stat().st_size
    n = len(src.headers)
    rows: list[list[str]] = []
    with open(src.path, "rb") as fh:
        for i in range(BLOCKS):
            off = i * max(size - BLOCK_BYTES, 0) // max(BLOCKS - 1, 1)
            fh.seek(off)
            data = fh.read(BLOCK_BYTES)
            if off == 0:
                start = 0
                for _ in range(src.skip_lines):
                    start = data.find(b"\n", start) + 1
                    if start == 0:
                        break
            else:
                start = data.find(b"\n") + 1  # the first line may begin before the stretch
            end = data.rfind(b"\n") + 1  # the last one may end after it
            if start <= 0 or end <= start:
                continue
            text = data[start:end].decode("utf-8", errors="replace")
            rows.extend(r for r in csv.reader(io.StringIO(text, newline=""), delimiter=src.delimiter,
                                              quotechar='"', doublequote=True) if len(r) == n)
    return rows


def sample_words(con, rows: list[list[str]], positions: dict[str, int], cols: list[str], lead: frozenset[str],
                 table: str) -> bool:
    """Temp table ``table`` (the words table, see :func:`evalkit.ingest.words._word_values`): the
    distinct values of the columns ``cols`` (``v_<name>``) in ``rows`` (:func:`sample_rows`), cleaned
    as the direct view cleans them. False (no table) when a column holds more distinct values than
    :data:`VARIED` of its values (free text, a register named by thousands of stations): most rows
    would then miss the maps and be parsed twice, so the whole file's words are read instead."""
    names = [c[2:] for c in cols]
    for nm in names:
        vals = [r[positions[nm]] for r in rows if r[positions[nm]]]
        if len(vals) >= 1000 and len(set(vals)) > VARIED * len(vals):  # (a sample of a large file has ~35,000)
            return False
    frame = pd.DataFrame({f"c{positions[nm]}": pd.Series([r[positions[nm]] for r in rows], dtype=object)
                          for nm in names})
    clean = ", ".join(f"{_cleaner(nm, lead)(ident('c' + str(positions[nm])))} AS {ident('v_' + nm)}" for nm in names)
    sets = ", ".join(f"({ident('v_' + nm)})" for nm in names)
    con.register("_ek_sample", frame)
    try:
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT {', '.join(ident('v_' + nm) for nm in names)} FROM "
                    f"(SELECT {clean} FROM _ek_sample) GROUP BY GROUPING SETS ({sets})")
    finally:
        con.unregister("_ek_sample")
    return True


def key_candidates(con, table: str, key_cols: tuple[str, ...], src, stored: bool) -> np.ndarray:
    """The duplicate candidates (see :func:`evalkit.ingest.words._word_values`) from a scan of the
    direct view's key columns: every row's key hash, sorted by numpy (repeats are neighbours), and
    with ``stored`` (the table holds rows) the hashes the table holds too (:func:`stored_hashes`)."""
    try:
        h = np.sort(con.execute(f"SELECT hash({', '.join('v_' + k for k in key_cols)}) AS h FROM _ek_v")
                    .fetchnumpy()["h"])
    except duckdb.InvalidInputException as e:
        raise csv_read_error(e, src) from None
    held = stored_hashes(con, table, ", ".join(key_cols), h) if stored else h[:0]
    return np.union1d(repeated(h), held).astype(np.uint64)


def stored_hashes(con, table: str, keys: str, h: np.ndarray) -> np.ndarray:
    """The values of ``hash(keys)`` over ``table`` that are also in ``h`` (the file's key hashes,
    sorted), once each: a semi-join inside DuckDB (under its memory limit), so only the few common
    hashes are fetched, never the table's hash of every stored row (8 bytes a row, 60 M rows and more)."""
    if not len(h):
        return np.empty(0, dtype=np.uint64)
    con.register("_ek_file_h", pd.DataFrame({"h": h[np.r_[True, h[1:] != h[:-1]]].astype(np.uint64)}))
    try:
        return con.execute(f"SELECT DISTINCT hash({keys}) AS h FROM {table} WHERE hash({keys}) IN "
                           f"(SELECT h FROM _ek_file_h)").fetchnumpy()["h"].astype(np.uint64)
    finally:
        con.unregister("_ek_file_h")


def repeated(h: np.ndarray) -> np.ndarray:
    """The values a sorted array holds more than once, once each (sorted)."""
    return np.unique(h[1:][h[1:] == h[:-1]]).astype(np.uint64)


def _map_joins(joins: list[str]) -> list[tuple[str, str, str]]:
    """:func:`evalkit.ingest.stage.map_join` of each join, which must all be value maps."""
    out = [map_join(j) for j in joins]
    bad = [j for j, m in zip(joins, out, strict=True) if m is None]
    if bad:
        raise AssertionError(f"not a value-map join: {bad[0]}")
    return out


def missed_sql(joins: list[str]) -> str | None:
    """TRUE for a row with a word value its map does not hold (the value was not in the sample;
    the map's ``v`` column is NULL for it); None when there is no map."""
    parts = [f"({vv} IS NOT NULL AND {alias}.v IS NULL)" for _table, alias, vv in _map_joins(joins)]
    return " OR ".join(parts) if parts else None


def settle_missed(con, joins: list[str], raw_cols: list[str], srow: Callable[[str], str], words_table: str,
                  replan: Callable[[], None], restage: Callable[[str, str], None], update_cols: list[str],
                  read_back: Callable[[np.ndarray], None] | None = None) -> int:
    """Parse again, with maps of all their values, the stage rows marked ``_out`` (a word value not in
    the sample): their values are added to ``words_table``, the maps rebuilt (``replan``: drops and
    builds them; the plan must come out the same text), the view ``_ek_v`` pointed at those rows' raw
    text (``raw_cols``: the names of ``_raw``'s entries; ``srow``: the stage's file row), the rows
    staged into ``_ek_fix`` (``restage(table, out)``: the serial pass, ``out`` marking a value still
    missed, which must not happen), and their columns ``update_cols`` updated in place. Returns the
    number of rows parsed again. ``read_back(rows)``: a stage without raw text, whose missed rows
    (file rows, ascending) it puts in ``_ek_missed`` (``_row`` and ``raw_cols``) from the file."""
    if read_back is not None:
        rows = con.execute(f"SELECT {srow('')} AS r FROM _ek_stage WHERE _out ORDER BY r").fetchnumpy()["r"]
        if not len(rows):
            return 0
        read_back(rows)
    else:  # the missed rows' raw text, taken out of the 10 M-row stage once (usually a handful of rows)
        view = ", ".join(f"_raw[{i}] AS {ident(c)}" for i, c in enumerate(raw_cols, start=1))
        con.execute(f"CREATE TEMP TABLE _ek_missed AS SELECT {srow('')} AS _row, {view} FROM _ek_stage WHERE _out")
    n = con.execute("SELECT count(*) FROM _ek_missed").fetchall()[0][0]
    if not n:
        con.execute("DROP TABLE _ek_missed")
        return 0
    have = {r[0] for r in con.execute(f"DESCRIBE {words_table}").fetchall()}
    for _table, _alias, vv in _map_joins(joins):
        if vv in have and vv in raw_cols:  # (not a constant given by --set: in its map already)
            con.execute(f"INSERT INTO {words_table} ({ident(vv)}) SELECT DISTINCT {ident(vv)} FROM _ek_missed "
                        f"WHERE {ident(vv)} IS NOT NULL")
    replan()
    con.execute("CREATE OR REPLACE TEMP VIEW _ek_v AS SELECT * FROM _ek_missed")
    restage("_ek_fix", missed_sql(joins))
    fixed, left = con.execute("SELECT count(*), count(*) FILTER (WHERE _out) FROM _ek_fix").fetchall()[0]
    if left or fixed != n:
        raise AssertionError(f"parsed {fixed} of {n} rows again, {left} with a word value still not in its map")
    sets = ", ".join(f"{ident(c)} = f.{ident(c)}" for c in [*update_cols, "_out"])
    updated = con.execute(f"UPDATE _ek_stage s SET {sets} FROM _ek_fix f WHERE {srow('s.')} = f._row").fetchall()[0][0]
    con.execute("DROP VIEW _ek_v")
    con.execute("DROP TABLE _ek_fix")
    con.execute("DROP TABLE _ek_missed")
    if updated != n:
        raise AssertionError(f"updated {updated} of the {n} stage rows parsed again")
    return int(n)
