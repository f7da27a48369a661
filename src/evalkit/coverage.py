"""Which station-months each record table really covers (so that a gap is missing, not zero).

A month is *covered* for a station and a table (incidents or disputes) when the station's
export for that month reached the warehouse. An export that never arrived and a quiet month
both leave no record, so coverage is inferred from the accepted rows:

1. **Candidate months.** Every load (one ingested file) spans the months from its first to its
   last record, over all stations. A station's candidate months are the union of the spans of
   the loads that hold at least one of its records. Months outside every such span are not
   covered: a missing file is a gap for everyone in it; a station absent from a load is not
   covered by it.
2. **Months with records** are always covered.
3. **Runs of empty candidate months** (consecutive months without a record, including runs
   at the start or end of the span) are covered — real zeros — unless a run of ``k`` months
   is implausible for the station's volume: with ``p0`` the chance of an empty month, a run
   is a gap when ``p0**k < GAP_P`` (``GAP_P`` = 1e-9: strict, so that the demo world, where
   every station reports every month, shows no false gap — checked for the small and medium
   worlds, whose most extreme empty run scores about 1e-5). ``p0`` comes from a negative binomial
   fitted by moments to the station's monthly counts over its *other* candidate months (the
   run left out, so a long outage does not make itself look plausible; mean ``μ``, variance
   ``v``; ``r = μ²/(v-μ)``, ``p0 = (r/(r+μ))**r``; Poisson ``exp(-μ)`` when ``v ≤ μ``),
   because police counts are overdispersed. A station with ~100 incidents a month
   that shows one empty month has stopped exporting; one with ~7 disputes a month (and the demo's
   overdispersion) needs about four empty months in a row; a village station with 0.5
   disputes a month is never declared a gap from its zeros alone.

A station with no record at all in a table has no coverage there. Consequences: a station
too quiet to tell an outage from silence is treated as covered (zeros) — a documented limit;
in the demo world every station reports every month, so every month is covered.

Stored in the warehouse table ``coverage(table_name, station_id, period, n_records)``, one
row per covered station-month (``n_records`` may be 0), recomputed by the ingest after every
load, replace and forget.
"""

from __future__ import annotations

import math

import duckdb
import pandas as pd

from evalkit.warehouse import has_column

GAP_P = 1e-9  # a run of empty months less likely than this (negative binomial) is a gap
RECORD_TABLES = {"incidents": "received_at", "disputes": "opened_on"}


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [table]).fetchall()[0][0])


def coverage_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SELECT returning ``(station_id, period, n_records)`` for every covered month of ``table``."""
    date = RECORD_TABLES[table]
    load = "load_id" if has_column(con, table, "load_id") else "CAST(NULL AS BIGINT)"
    threshold = -math.log(GAP_P)
    return f"""
WITH rec AS (
  SELECT station_id, {load} AS load_id, year({date}) * 12 + month({date}) - 1 AS period, count(*) AS n
  FROM {table} WHERE station_id IS NOT NULL AND {date} IS NOT NULL GROUP BY ALL
),
spans AS (SELECT load_id, min(period) AS lo, max(period) AS hi FROM rec GROUP BY load_id),
cand AS (
  SELECT DISTINCT r.station_id, unnest(range(sp.lo, sp.hi + 1)) AS period
  FROM (SELECT DISTINCT station_id, load_id FROM rec) r
  JOIN spans sp ON sp.load_id IS NOT DISTINCT FROM r.load_id
),
cnt AS (SELECT station_id, period, sum(n) AS n FROM rec GROUP BY ALL),
grid AS (
  SELECT c.station_id, c.period, coalesce(n.n, 0) AS n FROM cand c
  LEFT JOIN cnt n ON n.station_id = c.station_id AND n.period = c.period
),
sums AS (SELECT station_id, sum(n) AS s1, sum(n * n) AS s2, count(*) AS nm FROM grid GROUP BY station_id),
runs AS (
  SELECT station_id, period, n,
         period - row_number() OVER (PARTITION BY station_id, n = 0 ORDER BY period) AS island
  FROM grid
),
zero_runs AS (
  SELECT station_id, island, count(*) AS k FROM runs WHERE n = 0 GROUP BY ALL
),
run_mom AS (  -- the station's mean and variance over its other months (the run left out)
  SELECT z.station_id, z.island, z.k, s.s1 / (s.nm - z.k) AS mu,
         s.s2 / (s.nm - z.k) - (s.s1 / (s.nm - z.k)) ^ 2 AS v
  FROM zero_runs z JOIN sums s USING (station_id)
),
run_p AS (  -- -log P(k empty months): negative binomial by moments, Poisson when not overdispersed
  SELECT station_id, island,
         k * CASE WHEN v > mu THEN (mu * mu / (v - mu)) * ln(v / mu) ELSE mu END AS neglogp
  FROM run_mom
)
SELECT r.station_id, CAST(r.period AS INTEGER) AS period, CAST(r.n AS BIGINT) AS n_records
FROM runs r
LEFT JOIN run_p z ON r.n = 0 AND z.station_id = r.station_id AND z.island = r.island
WHERE r.n > 0 OR z.neglogp <= {threshold}
"""


def refresh(con: duckdb.DuckDBPyConnection, tables=tuple(RECORD_TABLES)) -> None:
    """Recompute the stored coverage of ``tables`` (call inside the ingest's transaction)."""
    for t in tables:
        if t not in RECORD_TABLES:
            continue
        con.execute("DELETE FROM coverage WHERE table_name = ?", [t])
        con.execute(f"INSERT INTO coverage SELECT '{t}', station_id, period, n_records FROM ({coverage_sql(con, t)})")


def is_stored(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """True when the warehouse holds an up-to-date coverage for ``table`` (written by the ingest).

    Warehouses written before coverage existed (or hand-made ones) return False; readers then
    compute it on the fly with :func:`coverage_sql`.
    """
    if not _has_table(con, "coverage"):
        return False
    n_cov = con.execute("SELECT count(*) FROM coverage WHERE table_name = ?", [table]).fetchall()[0][0]
    if n_cov:
        return True
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0


def coverage_source(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A FROM-able SQL source with ``(station_id, period, n_records)`` for ``table``."""
    if is_stored(con, table):
        return f"(SELECT station_id, period, n_records FROM coverage WHERE table_name = '{table}')"
    return f"({coverage_sql(con, table)})"


def coverage_frame(con: duckdb.DuckDBPyConnection, table: str = "incidents") -> pd.DataFrame:
    """Covered station-months of ``table``: columns station_id, period, n_records."""
    return con.execute(f"SELECT * FROM {coverage_source(con, table)} ORDER BY station_id, period").df()


def coverage_ranges(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per station and table: first and last covered month, covered months and gap months.

    ``gap_months`` counts months between the first and last covered month that are not covered
    (a station that stopped exporting for a while); ``covered`` lists the covered months as
    ``YYYY-MM..YYYY-MM`` ranges.
    """
    from evalkit.registry import period_label

    parts = []
    for t in RECORD_TABLES:
        df = coverage_frame(con, t)
        if df.empty:
            continue
        df["table_name"] = t
        parts.append(df)
    cols = ["table_name", "station_id", "first", "last", "months", "gap_months", "covered"]
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True).sort_values(["table_name", "station_id", "period"])
    rows = []
    for (t, sid), g in df.groupby(["table_name", "station_id"], sort=True):
        p = g["period"].to_numpy()
        breaks = [0, *(i for i in range(1, len(p)) if p[i] != p[i - 1] + 1), len(p)]
        ranges = [(int(p[a]), int(p[b - 1])) for a, b in zip(breaks[:-1], breaks[1:], strict=True)]
        text = ", ".join(period_label(a) if a == b else f"{period_label(a)}..{period_label(b)}" for a, b in ranges)
        rows.append({"table_name": t, "station_id": sid, "first": period_label(int(p[0])),
                     "last": period_label(int(p[-1])), "months": len(p),
                     "gap_months": int(p[-1] - p[0] + 1 - len(p)), "covered": text})
    return pd.DataFrame(rows, columns=cols)


def data_span(con: duckdb.DuckDBPyConnection, table: str, region: dict | None = None) -> tuple[int, int] | None:
    """(first, last) covered period of ``table`` over the stations of ``region`` (all when None, same
    filter as :func:`evalkit.panel.build_panel`), or None when they have no records."""
    from evalkit.panel import _region_sql

    region_sql, args = _region_sql(region)
    row = con.execute(f"SELECT min(c.period), max(c.period) FROM {coverage_source(con, table)} c "
                      f"JOIN stations s USING (station_id) WHERE {region_sql}", args).fetchall()[0]
    return None if row[0] is None else (int(row[0]), int(row[1]))


__all__ = ["GAP_P", "RECORD_TABLES", "coverage_frame", "coverage_ranges", "coverage_source", "coverage_sql",
           "data_span", "is_stored", "refresh"]
