"""Aggregate the national-scale incident records (partitioned Parquet) into the station-month panel.

DuckDB streams the Parquet files (``incidents/year=YYYY/part-*.parquet``) through one
``GROUP BY``; nothing is loaded whole. Prints wall time, rows per second and peak RSS, and
checks the result against the generator's own ``panel.parquet`` on the count columns.

Usage::

    .venv/bin/python -m evalkit demo-data --size national --out /tmp/national --no-load   # once (long)
    .venv/bin/python benchmarks/bench_national_panel.py /tmp/national [--memory-limit 3GB] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import duckdb

from evalkit.schema import INCIDENTS

# The national export keeps the Chinese headers and values of a real export (see schema.py).
H = {c.name: f'"{c.zh}"' for c in INCIDENTS.columns}
SQL = f"""
SELECT {H['station_id']} AS station_id,
       year({H['received_at']}) * 12 + month({H['received_at']}) - 1 AS period,
       count(*) AS calls_total,
       count(*) FILTER (WHERE coalesce({H['handled_by']}, '派出所') <> '分流') AS incidents_total,
       count(*) FILTER (WHERE {H['is_case']} = '是') AS cases,
       avg(date_diff('second', {H['received_at']}, {H['arrived_at']}) / 60.0) AS response_mean_min,
       avg(CASE WHEN {H['arrived_at']} IS NOT NULL
                THEN CAST(date_diff('second', {H['received_at']}, {H['arrived_at']}) <= 300 AS DOUBLE) END)
           AS share_within_5min
FROM read_parquet('{{glob}}', hive_partitioning = true)
GROUP BY ALL
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("world", type=Path, help="a national demo-world folder (with incidents/year=*/)")
    ap.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit (spills to disk beyond it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the aggregated panel here (Parquet)")
    args = ap.parse_args()
    inc = args.world / "incidents"
    if not inc.is_dir():
        print(f"{inc} not found: generate the national world first", file=sys.stderr)
        return 2
    glob = str(inc / "year=*" / "*.parquet")
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET temp_directory = '{args.world / '.duckdb_tmp'}'")
    n_files = len(list(inc.glob("year=*/*.parquet")))
    t0 = time.perf_counter()
    n_rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    t_count = time.perf_counter() - t0
    t1 = time.perf_counter()
    target = args.out or (args.world / "panel_from_records.parquet")
    con.execute(f"COPY ({SQL.format(glob=glob)}) TO '{target}' (FORMAT parquet)")
    t_agg = time.perf_counter() - t1
    cells = con.execute(f"SELECT count(*), sum(calls_total) FROM read_parquet('{target}')").fetchone()
    check = {}
    panel = args.world / "panel.parquet"
    if panel.is_file():
        diff = con.execute(f"""
            SELECT count(*) FILTER (WHERE coalesce(a.incidents_total, 0) <> coalesce(b.incidents_total, 0)),
                   count(*)
            FROM read_parquet('{panel}') b LEFT JOIN read_parquet('{target}') a
              ON a.station_id = b.station_id AND a.period = b.period
        """).fetchone()
        check = {"panel_cells_compared": diff[1], "cells_with_different_incidents_total": diff[0]}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    report = {
        "files": n_files, "incident_rows": n_rows, "station_months": cells[0], "calls_total": cells[1],
        "seconds_count": round(t_count, 2), "seconds_aggregate": round(t_agg, 2),
        "rows_per_second": round(n_rows / t_agg), "peak_rss_gib": round(rss, 2),
        "memory_limit": args.memory_limit, "threads": args.threads, **check,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
