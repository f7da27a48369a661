"""Ingest benchmark: N synthetic incident rows (Chinese headers) against a plain DuckDB load.

    .venv/bin/python benchmarks/bench_ingest.py                       # 10 M rows, CSV
    .venv/bin/python benchmarks/bench_ingest.py --rows 2000000 --format both
    .venv/bin/python benchmarks/bench_ingest.py --work /tmp/ingest10m --keep --before /tmp/main-src/src
    .venv/bin/python benchmarks/bench_ingest.py --reuse --before /tmp/main-src/src --rounds 3

Writes the inputs to benchmarks/_work/ (or ``--work``; 0.2 % planted bad rows), then, each in its
own process so that the peak RSS figures are separate:

- **floor**: plain DuckDB, ``CREATE TABLE incidents AS SELECT * FROM read_csv(FILE)`` (type
  detection on, default settings) into a fresh database file — the fastest a load of this file can be;
- **ingest**: ``evalkit.ingest.ingest("incidents", FILE)`` into a fresh warehouse holding the station
  register (header finding, aliases, value repairs, station matching, masking, quarantine, load ids,
  coverage), then the station-month aggregation by SQL;
- **ingest (before)**, with ``--before SRC``: the same ingest importing evalkit from another source
  folder (e.g. ``git archive main src | tar -x -C /tmp/main-src``), so that a change is compared with
  the code it replaces in the same run, next to the same floor.

Prints one table: wall seconds, rows/s and peak RSS of each, and the ratio ingest / floor.
``--rounds N`` repeats floor, before and ingest N times, before and ingest in alternating order
(on a shared machine compare the ratios within a round, and their minimum over the rounds).
Target (issue 15): ingest ≤ 2 × floor. Results and where the time goes: docs/performance.md § Ingest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
# the evalkit source the ingest child imports (--before runs a second ingest with an older copy)
sys.path.insert(0, os.environ.get("EVALKIT_BENCH_SRC", str(HERE.parent / "src")))

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


def run_floor(src: Path, wh: Path) -> dict:
    """Plain DuckDB load of ``src`` into a fresh database file (the floor)."""
    for p in (wh, Path(str(wh) + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(wh))
    reader = "read_parquet" if src.suffix == ".parquet" else "read_csv"
    t0, c0 = time.perf_counter(), cpu_s()
    con.execute(f"CREATE TABLE incidents AS SELECT * FROM {reader}('{src}')")
    con.execute("CHECKPOINT")
    t1, c1 = time.perf_counter(), cpu_s()
    n = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    con.close()
    return {"rows": n, "seconds": t1 - t0, "cpu_s": c1 - c0, "peak_rss_gib": peak_rss_gib()}


def run_ingest(stations: Path, src: Path, wh: Path) -> dict:
    """evalkit ingest of ``src`` into a fresh warehouse (station register first), then the panel SQL."""
    for p in (wh, Path(str(wh) + ".wal")):
        p.unlink(missing_ok=True)
    con = connect(wh)
    ingest("stations", stations, con=con)
    t0, c0 = time.perf_counter(), cpu_s()
    rep = ingest("incidents", src, con=con, study_window=("2019-01", "2025-12"))
    con.execute("CHECKPOINT")
    t1, c1 = time.perf_counter(), cpu_s()
    con.execute(f"CREATE OR REPLACE TABLE panel_bench AS {PANEL_SQL}")
    t2 = time.perf_counter()
    n_panel = con.execute("SELECT count(*) FROM panel_bench").fetchone()[0]
    con.close()
    return {"rows": rep.rows_in, "accepted": rep.rows_accepted, "quarantined": rep.rows_quarantined,
            "seconds": t1 - t0, "cpu_s": c1 - c0, "panel_s": t2 - t1, "panel_rows": n_panel,
            "reasons": rep.quarantined_by_reason, "peak_rss_gib": peak_rss_gib()}


def in_child(*args: str, src: Path | None = None) -> dict:
    """Run this script's ``--child`` mode in a fresh process (importing evalkit from ``src``, default
    this checkout); its JSON result."""
    src_dir = str(src or HERE.parent / "src")
    env = {**os.environ, "PYTHONPATH": src_dir, "EVALKIT_BENCH_SRC": src_dir}
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, env=env,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--format", choices=["csv", "parquet", "both"], default="csv")
    ap.add_argument("--keep", action="store_true", help="keep benchmarks/_work afterwards")
    ap.add_argument("--reuse", action="store_true", help="reuse inputs already in benchmarks/_work (same --rows)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--work", type=Path, default=HERE / "_work",
                    help="folder for the inputs and databases (default benchmarks/_work; removed unless --keep, "
                         "or only this run's databases when --reuse found the inputs there; a --json written there stays)")
    ap.add_argument("--before", type=Path, help="also time the ingest of another evalkit source folder "
                    "(e.g. a `git archive` of main's src/) in the same run, printed as 'ingest (before)'")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the timed steps (before/ingest alternating)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *paths = args.child
        res = run_floor(Path(paths[0]), Path(paths[1])) if kind == "floor" else \
            run_ingest(Path(paths[0]), Path(paths[1]), Path(paths[2]))
        print(json.dumps(res))
        return 0
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    stations, csv_path, pq_path = work / "stations.csv", work / "incidents_bench.csv", work / "incidents_bench.parquet"
    reused = args.reuse and csv_path.exists() and pq_path.exists()
    before_files = set(work.iterdir())  # with --reuse, what was there stays (inputs shared by other runs)
    if not reused:
        t = time.perf_counter()
        stations, csv_path, pq_path = generate(work, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s "
              f"(CSV {csv_path.stat().st_size / 2**20:.0f} MiB, Parquet {pq_path.stat().st_size / 2**20:.0f} MiB)",
              flush=True)
    fmts = ["csv", "parquet"] if args.format == "both" else [args.format]
    load0 = os.getloadavg()[0]
    results = []
    for rnd, fmt in ((r, f) for r in range(args.rounds) for f in fmts):
        src = csv_path if fmt == "csv" else pq_path
        floor = in_child("floor", str(src), str(work / f"floor_{fmt}.duckdb"))
        row = {"format": fmt + (f" #{rnd + 1}" if args.rounds > 1 else ""), "floor": floor}
        for step in (("before", "ingest") if rnd % 2 == 0 else ("ingest", "before")):
            if step == "before" and args.before:
                row["before"] = in_child("ingest", str(stations), str(src), str(work / f"before_{fmt}.duckdb"),
                                         src=args.before)
                (work / f"before_{fmt}.duckdb").unlink(missing_ok=True)
            elif step == "ingest":
                row["ingest"] = in_child("ingest", str(stations), str(src), str(work / f"bench_{fmt}.duckdb"))
        ing = row["ingest"]
        results.append(row)
        print(f"[{fmt}] ingest accepted {ing['accepted']:,}, quarantined {ing['quarantined']:,} {ing['reasons']}; "
              f"panel {ing['panel_rows']:,} station-months in {ing['panel_s']:.2f} s", flush=True)
    load1 = os.getloadavg()[0]
    print("\n| format | rows | step | wall s | rows/s | CPU s | peak RSS GiB |\n|---|---:|---|---:|---:|---:|---:|")
    for r in results:
        for step in ("floor", "before", "ingest"):
            if step not in r:
                continue
            x = r[step]
            name = {"floor": "DuckDB read → table", "before": "evalkit ingest (before)", "ingest": "evalkit ingest"}[step]
            print(f"| {r['format']} | {x['rows']:,} | {name} "
                  f"| {x['seconds']:.1f} | {x['rows'] / x['seconds']:,.0f} | {x['cpu_s']:.1f} | {x['peak_rss_gib']:.2f} |")
    print()
    for r in results:
        if "before" in r:
            b = r["before"]
            same = (b["accepted"], b["quarantined"], b["reasons"]) == (r["ingest"]["accepted"], r["ingest"]["quarantined"],
                                                                     r["ingest"]["reasons"])
            print(f"{r['format']}: before / floor = {b['seconds'] / r['floor']['seconds']:.2f} × wall, "
                  f"{b['cpu_s'] / r['floor']['cpu_s']:.2f} × CPU; same counts and reasons as now: {same}")
        ratio = r["ingest"]["seconds"] / r["floor"]["seconds"]
        cpu = r["ingest"]["cpu_s"] / r["floor"]["cpu_s"]
        print(f"{r['format']}: ingest / floor = {ratio:.2f} × wall (target ≤ 2 ×{' ✓' if ratio <= 2 else ' ✗'}), "
              f"{cpu:.2f} × CPU, {r['ingest']['peak_rss_gib'] / r['floor']['peak_rss_gib']:.2f} × peak RSS")
    print(f"load average {load0:.1f} → {load1:.1f} on {os.cpu_count()} cores (wall times are inflated when others "
          f"use the CPU; the ratio is measured in the same run)")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "load": [load0, load1], "results": results}, indent=1))
    if not args.keep:
        # generated inputs go with this run's databases; reused inputs stay; a --json written here stays
        keep = args.json.resolve() if args.json else None
        for f in (set(work.iterdir()) if not reused else set(work.iterdir()) - before_files):
            if f.resolve() == keep:
                continue
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
        if not reused and not any(work.iterdir()):
            work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
