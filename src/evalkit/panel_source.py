"""The station × month panel from a ready-made Parquet file (params key ``panel_file``).

At national scale (40,000 stations × 120 months, hundreds of millions of incident records) the
panel is aggregated once — e.g. by ``benchmarks/bench_national_panel.py`` or the bureau's own
warehouse job — and evaluations read that station-month file instead of the records. This module
reads it through DuckDB and returns the same frame :func:`evalkit.panel.build_panel` returns:

* the file gives ``station_id``, ``month`` (a date, a timestamp or ``YYYY-MM`` text) or ``period``
  (``year*12 + month-1``), and the outcome columns (counts or rates; ``NULL``/NaN = missing);
* ``first_treat`` comes from the warehouse's ``reforms`` table and the region columns (name,
  county, city, province, area_type, population, officers, auxiliaries) from its ``stations``
  table, with the params' region filter and ``exclude_reforms`` applied as in ``build_panel``;
* every station of the file (in the region) gets every month of ``params.window``: a station-month
  the file does not have is missing (NaN), never zero.

Bad input raises :class:`PanelFileError`, one line naming the file and the column. Rows of the
file outside the window or the region are not used; how many is in ``panel.attrs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from evalkit.panel import _region_sql
from evalkit.registry import NEVER_TREATED, period_label, period_start, reform_id

STATION_COLUMNS = ("name", "county", "city", "province", "area_type", "population", "officers", "auxiliaries")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
_INTEGER = _NUMERIC[:9]


class PanelFileError(ValueError):
    """The panel file cannot be used as given (one line: file, column, problem, what to do)."""


def _err(path: Path, column: str | None, problem: str, hint: str) -> PanelFileError:
    at = f"column {column!r}: " if column else ""
    return PanelFileError(f"panel_file {path}: {at}{problem}; {hint}")


def _window(params: Any) -> tuple[int, int]:
    w = params.window
    return int(w.start[:4]) * 12 + int(w.start[5:]) - 1, int(w.end[:4]) * 12 + int(w.end[5:]) - 1


def _period_expr(path: Path, types: dict[str, str]) -> str:
    """SQL for the registry period of a file row (``f`` is the file's alias)."""
    if "period" in types:
        if not types["period"].startswith(_INTEGER):
            raise _err(path, "period", f"type {types['period']}, expected integer periods (year*12 + month-1)",
                       "store the period as an integer, or give a 'month' column (date or YYYY-MM)")
        return "CAST(f.period AS BIGINT)"
    t = types["month"]
    if t.startswith(("DATE", "TIMESTAMP")):
        return "year(f.month) * 12 + month(f.month) - 1"
    if t == "VARCHAR":
        return "year(try_strptime(f.month, '%Y-%m')) * 12 + month(try_strptime(f.month, '%Y-%m')) - 1"
    raise _err(path, "month", f"type {t}, expected a date or YYYY-MM text", "store months as dates or YYYY-MM")


def read_panel_file(con: duckdb.DuckDBPyConnection, path: str | Path, params: Any) -> pd.DataFrame:
    """The panel of ``params`` (reform, window, region, exclude_reforms, outcomes) from the
    station-month Parquet ``path`` and the warehouse behind ``con`` (its stations and reforms).

    Returns one row per station (of the file, in the region, not excluded) and month of the window,
    sorted by (station_id, period), with the columns of :func:`evalkit.panel.build_panel` that the
    file and the warehouse give: region columns, ``period``, ``month``, ``first_treat``,
    ``treated``, ``event_time`` and the outcomes (float64 with NaN when a cell is missing, int64
    when none is). Raises :class:`PanelFileError` (one line) for a bad file.
    """
    from evalkit.index.outcome import is_index_name

    path = Path(path)
    if not path.is_file():
        raise _err(path, None, "file not found", "give the path of a station-month Parquet file (params key panel_file)")
    src = f"read_parquet({_quote(str(path))})"
    try:
        desc = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    except duckdb.Error as exc:
        raise _err(path, None, f"cannot be read as Parquet ({str(exc).splitlines()[0]})",
                   "write the panel with DuckDB, pandas or pyarrow as Parquet") from None
    types = {str(r[0]): str(r[1]) for r in desc}
    shown = ", ".join(list(types)[:20])
    if "station_id" not in types:
        raise _err(path, "station_id", f"missing (columns are [{shown}])", "name the station column station_id")
    if "period" not in types and "month" not in types:
        raise _err(path, "month", f"missing: the file needs a 'month' or a 'period' column (columns are [{shown}])",
                   "add the month of each row")
    outcomes = [o for o in params.outcomes if not is_index_name(o)]
    for o in outcomes:
        if o not in types:
            raise _err(path, o, f"outcome missing (columns are [{shown}])", "add the column or remove the outcome")
        if not types[o].startswith(_NUMERIC):
            raise _err(path, o, f"type {types[o]}, expected numbers", "store outcomes as numbers (NULL = missing)")
    per = _period_expr(path, types)
    mcol = "period" if "period" in types else "month"
    p0, p1 = _window(params)
    region_sql, region_args = _region_sql(params.region.as_filter())
    named: dict[str, Any] = {}
    for k, v in enumerate(region_args):
        region_sql = region_sql.replace("?", f"$r{k}", 1)
        named[f"r{k}"] = v
    ycols = ", ".join(f"CAST(f.{_ident(o)} AS DOUBLE) AS {_ident(o)}" for o in outcomes)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _panel_file AS SELECT CAST(f.station_id AS VARCHAR) AS station_id, "
                f"{per} AS period, {mcol} AS _raw_month{', ' + ycols if ycols else ''} FROM {src} f")
    _check_rows(con, path, mcol, outcomes)

    # stations of the file in the region; the rows of the window; adoption and exclusion as build_panel
    reform = reform_id(params.reform)
    others = [reform_id(r) for r in params.exclude_reforms]
    named |= {"reform": reform, "others": others or [""], "t1": period_start(p1 + 1).to_pydatetime()}
    stations = con.execute(f"""
        WITH adopt AS (SELECT station_id, min(adopted_on) AS adopted_on FROM reforms WHERE reform = $reform
                       GROUP BY station_id)
        SELECT s.station_id, {', '.join('s.' + c for c in STATION_COLUMNS)},
               coalesce(year(a.adopted_on) * 12 + month(a.adopted_on) - 1, {NEVER_TREATED}) AS first_treat,
               a.station_id IS NULL AND s.station_id IN (
                   SELECT station_id FROM reforms WHERE reform IN (SELECT unnest($others)) AND adopted_on < $t1
               ) AS excluded
        FROM stations s LEFT JOIN adopt a ON a.station_id = s.station_id
        WHERE {region_sql} AND s.station_id IN (SELECT DISTINCT station_id FROM _panel_file)
        ORDER BY s.station_id""", named).df()
    excluded = _excluded_counts(con, stations, others, named)
    stations = stations[~stations.pop("excluded").astype(bool)].reset_index(drop=True)
    if stations.empty:
        raise _err(path, "station_id", f"no station of the file is in the region {params.region.as_filter()} "
                   f"(after exclude_reforms)", "check the region filter and the warehouse's stations table")
    T = p1 - p0 + 1
    con.register("_panel_stations", stations[["station_id"]].assign(_code=np.arange(len(stations), dtype=np.int64)))
    try:
        cells = con.execute(f"""
            SELECT s._code, f.period - $p0 AS t{''.join(', f.' + _ident(o) for o in outcomes)}
            FROM _panel_file f JOIN _panel_stations s USING (station_id)
            WHERE f.period BETWEEN $p0 AND $p1""", {"p0": p0, "p1": p1}).fetchnumpy()
        used = int(con.execute("SELECT count(*) FROM _panel_file").fetchall()[0][0])
    finally:
        con.unregister("_panel_stations")
    # the full grid: station-major, months inside; a cell the file does not give stays NaN
    S = len(stations)
    at = np.asarray(cells["_code"], dtype=np.int64) * T + np.asarray(cells["t"], dtype=np.int64)
    code = np.repeat(np.arange(S), T)
    df = pd.DataFrame({c: _take(stations[c], code) for c in ("station_id", *STATION_COLUMNS)}, copy=False)
    df["period"] = np.tile(np.arange(p0, p1 + 1, dtype=np.int64), S)
    df["first_treat"] = np.repeat(stations["first_treat"].to_numpy(dtype=np.int64), T)
    missing: dict[str, int] = {}
    for o in outcomes:
        y = np.full(S * T, np.nan)
        v = cells[o]
        y[at] = np.ma.getdata(v).astype(float) if not np.ma.is_masked(v) else np.ma.filled(v.astype(float), np.nan)
        missing[o] = int(np.isnan(y).sum())
        whole = missing[o] == 0 and types[o].startswith(_INTEGER)
        df[o] = y.astype(np.int64) if whole else y
    per = np.arange(p0, p1 + 1)  # the T months once, tiled (not one date conversion per row)
    df["month"] = np.tile(pd.to_datetime({"year": per // 12, "month": per % 12 + 1, "day": 1}).to_numpy(), S)
    ever = df["first_treat"] != NEVER_TREATED
    df["treated"] = (ever & (df["period"] >= df["first_treat"])).astype("int8")
    df["event_time"] = pd.array((df["period"] - df["first_treat"]).where(ever), dtype="Int64")
    df.attrs.update({
        "panel_file": str(path), "excluded_stations": excluded, "missing_cells": missing,
        "balanced": not any(missing.values()), "rows_used": int(len(at)), "rows_not_used": used - int(len(at)),
        "reform": reform, "start": params.window.start, "end": params.window.end,
        "region": params.region.as_filter(),
    })
    return df


def _check_rows(con: duckdb.DuckDBPyConnection, path: Path, mcol: str, outcomes: list[str]) -> None:
    """Missing ids/months, unparseable months, infinite or negative outcomes (one scan of the file),
    duplicates and unknown stations (one query each); the first offending station and month named."""
    def first(cond: str, column: str, problem: str, hint: str, sql: str | None = None) -> None:
        row = con.execute(sql or f"SELECT count(*), any_value(station_id), any_value(_raw_month) FROM _panel_file "
                          f"WHERE {cond}").fetchall()[0]
        if row[0]:
            raise _err(path, column, f"{problem} in {row[0]} row{'s' if row[0] != 1 else ''} (e.g. station_id="
                       f"{row[1]!r}, {mcol}={_show(row[2])})", hint)

    rowwise = [("station_id IS NULL", "station_id", "missing station id", "every row needs a station_id"),
               ("_raw_month IS NULL", mcol, "missing month", f"every row needs its {mcol}"),
               ("period IS NULL", mcol, "unreadable month", "write months as dates or YYYY-MM text")]
    for o in outcomes:
        rowwise += [(f"isinf({_ident(o)})", o, "infinite value", "set the cell to NULL (missing) or fix it"),
                    (f"{_ident(o)} < 0", o, "negative value", "counts and rates are >= 0; set the cell to NULL if unknown")]
    counts = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c[0]})" for c in rowwise)
                         + " FROM _panel_file").fetchall()[0]
    for n, check in zip(counts, rowwise, strict=True):
        if n:  # name the first offending row
            first(*check)
    first("", "station_id", "station-month given more than once", "keep one row per station and month",
          sql="SELECT count(*), any_value(station_id), any_value(period) FROM (SELECT station_id, period "
              "FROM _panel_file GROUP BY ALL HAVING count(*) > 1)")
    first("", "station_id", "station not in the warehouse's stations table",
          "ingest the station register first (evalkit ingest stations …) or fix the id",
          sql="SELECT count(*), any_value(station_id), any_value(_raw_month) FROM _panel_file "
              "WHERE station_id NOT IN (SELECT station_id FROM stations)")


def _excluded_counts(con: duckdb.DuckDBPyConnection, stations: pd.DataFrame, others: list[str],
                     named: dict[str, Any]) -> dict[str, int]:
    """Stations dropped by ``exclude_reforms``, per reform (as ``build_panel``'s attrs)."""
    if not others:
        return {}
    ids = stations.loc[stations["excluded"].astype(bool), "station_id"]
    rows = con.execute("SELECT reform, station_id FROM reforms WHERE reform IN (SELECT unnest($r)) "
                       "AND adopted_on < $t1", {"r": others, "t1": named["t1"]}).df()
    rows = rows[rows["station_id"].isin(ids)]
    return {r: int(rows.loc[rows["reform"] == r, "station_id"].nunique()) for r in others}


def _take(values: pd.Series, code: np.ndarray) -> pd.Series:
    """``values[code]``; text columns stay ``object`` arrays sharing the station-level strings (one
    pointer per row, no string per row, and ``to_numpy`` is free for the estimators' unit codes)."""
    v = values.to_numpy()
    if v.dtype.kind in "iuf":
        return pd.Series(v[code], copy=False)
    return pd.Series(v.astype(object, copy=False)[code], dtype=object, copy=False)


def _show(v: Any) -> str:
    return period_label(int(v)) if isinstance(v, (int, np.integer)) else repr(str(v)[:10])


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["PanelFileError", "STATION_COLUMNS", "read_panel_file"]
