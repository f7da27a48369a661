"""Ingest benchmark: N synthetic incident rows (Chinese headers) as CSV and Parquet.

    .venv/bin/python benchmarks/bench_ingest.py --rows 2000000

Writes the inputs to benchmarks/_work/, ingests them into a fresh warehouse (stations first),
builds a station-month aggregation by SQL and prints wall time, rows/s and peak RSS.
Target: 10M rows within 60 s and 4 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from evalkit.ingest import ingest  # noqa: E402
from evalkit.warehouse import connect  # noqa: E402

N_STATIONS = 200


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_gib() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def generate(work: Path, rows: int) -> tuple[Path, Path, Path]:
    """Stations CSV, incidents CSV (Chinese headers, ~1% bad rows) and the same as Parquet."""
    con = duckdb.connect()
    stations = work / "stations.csv"
    con.execute(f"""
COPY (SELECT printf('S%04d', i) AS 派出所编码, printf('第%d派出所', i) AS 派出所名称, '青石区' AS 所属区县,
             '江城市' AS 所属地市, '某省' AS 省份, CASE i % 3 WHEN 0 THEN '城区' WHEN 1 THEN '农村' ELSE '城乡结合' END AS 辖区类型,
             10000 + i * 37 AS 辖区常住人口, 20 AS 民警数, 30 AS 辅警数, 5 AS 行政村数
      FROM range(1, {N_STATIONS + 1}) t(i)) TO '{stations}' (HEADER, DELIMITER ',')""")
    csv_path = work / "incidents_bench.csv"
    con.execute(f"""
COPY (
  WITH b AS (
    SELECT i, TIMESTAMP '2019-01-01' + to_seconds(CAST(hash(i) % 220000000 AS BIGINT)) AS rec,
           (hash(i * 7) % 1800) AS resp_s
    FROM range({rows}) t(i))
  SELECT printf('J%010d', CASE WHEN i % 1000 = 999 THEN i - 1 ELSE i END) AS 警情编号,
         printf('S%04d', 1 + i % {N_STATIONS}) AS 所属派出所编码,
         CASE WHEN i % 2 = 0 THEN strftime(rec, '%Y-%m-%d %H:%M:%S') ELSE strftime(rec, '%Y/%-m/%-d %H:%M') END AS 接警时间,
         strftime(rec + to_seconds(CAST(resp_s / 3 AS BIGINT)), '%Y-%m-%d %H:%M:%S') AS 派警时间,
         CASE WHEN i % 10 = 3 THEN NULL
              WHEN i % 1000 = 501 THEN strftime(rec - INTERVAL 5 MINUTE, '%Y-%m-%d %H:%M:%S')
              ELSE strftime(rec + to_seconds(CAST(resp_s AS BIGINT)), '%Y-%m-%d %H:%M:%S') END AS 到场时间,
         strftime(rec + INTERVAL 2 HOUR, '%Y-%m-%d %H:%M:%S') AS 结警时间,
         ['盗窃', '电信诈骗', '打架斗殴', '交通事故', '非警务求助', '纠纷', '黄赌'][1 + i % 7] AS 警情类别,
         CASE WHEN i % 10 = 3 THEN '分流' WHEN i % 2 = 0 THEN '巡逻' ELSE '派出所' END AS 处置力量,
         CASE WHEN i % 5 = 0 THEN '是' ELSE '否' END AS 是否立案
  FROM b) TO '{csv_path}' (HEADER, DELIMITER ',')""")
    pq_path = work / "incidents_bench.parquet"
    con.execute(f"COPY (SELECT * FROM read_csv('{csv_path}', all_varchar=true)) TO '{pq_path}' (FORMAT parquet)")
    con.close()
    return stations, csv_path, pq_path


PANEL_SQL = """
SELECT station_id, date_trunc('month', received_at) AS month, count(*) AS n,
       avg(date_diff('second', received_at, arrived_at)) / 60.0 AS mean_response_min,
       avg(CASE WHEN arrived_at IS NOT NULL THEN (date_diff('second', received_at, arrived_at) <= 300)::INT END)
         AS share_within_5min,
       count(*) FILTER (WHERE category = 'fraud') AS n_fraud
FROM incidents GROUP BY ALL
"""


def run_one(label: str, stations: Path, src: Path, wh: Path) -> dict:
    for p in (wh, Path(str(wh) + ".wal")):
        p.unlink(missing_ok=True)
    con = connect(wh)
    ingest("stations", stations, con=con)
    t0, c0 = time.perf_counter(), cpu_s()
    rep = ingest("incidents", src, con=con, study_window=("2019-01", "2025-12"))
    t1, c1 = time.perf_counter(), cpu_s()
    panel = con.execute(f"CREATE OR REPLACE TABLE panel_bench AS {PANEL_SQL}").fetchone()
    t2 = time.perf_counter()
    n_panel = con.execute("SELECT count(*) FROM panel_bench").fetchone()[0]
    con.close()
    del panel
    out = {"label": label, "rows": rep.rows_in, "accepted": rep.rows_accepted,
           "quarantined": rep.rows_quarantined, "ingest_s": t1 - t0, "panel_s": t2 - t1,
           "rows_per_s": rep.rows_in / (t1 - t0), "cpu_s": c1 - c0, "panel_rows": n_panel, "reasons": rep.quarantined_by_reason}
    print(f"[{label}] ingest {out['rows']:,} rows in {out['ingest_s']:.1f} s "
          f"({out['rows_per_s']:,.0f} rows/s; CPU {out['cpu_s']:.1f} s), accepted {out['accepted']:,}, quarantined {out['quarantined']:,} "
          f"{out['reasons']}; panel {out['panel_rows']:,} station-months in {out['panel_s']:.2f} s; "
          f"peak RSS so far {peak_rss_gib():.2f} GiB", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--format", choices=["csv", "parquet", "both"], default="both")
    ap.add_argument("--keep", action="store_true", help="keep benchmarks/_work afterwards")
    args = ap.parse_args(argv)
    work = HERE / "_work"
    work.mkdir(exist_ok=True)
    t = time.perf_counter()
    stations, csv_path, pq_path = generate(work, args.rows)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s "
          f"(CSV {csv_path.stat().st_size / 2**20:.0f} MiB, Parquet {pq_path.stat().st_size / 2**20:.0f} MiB)")
    results = []
    if args.format in ("csv", "both"):
        results.append(run_one("csv", stations, csv_path, work / "bench_csv.duckdb"))
    if args.format in ("parquet", "both"):
        results.append(run_one("parquet", stations, pq_path, work / "bench_parquet.duckdb"))
    total = sum(r["ingest_s"] + r["panel_s"] for r in results)
    load = os.getloadavg()[0]
    print(f"total ingest+panel {total:.1f} s; peak RSS {peak_rss_gib():.2f} GiB; "
          f"load average {load:.1f} on {os.cpu_count()} cores (wall times are inflated when others use the CPU)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
