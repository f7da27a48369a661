"""Prevention-index benchmark: scores of S stations × T months from the six monthly report tables.

    .venv/bin/python benchmarks/bench_index.py --stations 1500 --months 84        # medium
    .venv/bin/python benchmarks/bench_index.py --stations 40000 --months 120      # national

Builds a warehouse under benchmarks/_work/ whose stations and report tables are drawn in DuckDB
SQL (seeded; the ingest is benchmarked by bench_ingest.py), then times ``compute_index`` for
the report-table indicators of params/index/prevention_index.yaml (the panel indicators read the
incidents, whose panel is benchmarked by bench_national_panel.py) by month, quarter and year, and
the alerts; prints wall time, CPU and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from evalkit.index import compute_index, load_definition  # noqa: E402
from evalkit.index.alerts import find_alerts  # noqa: E402
from evalkit.index.definition import IndexDefinition  # noqa: E402
from evalkit.warehouse import connect  # noqa: E402

DEFN = HERE.parent / "params" / "index" / "prevention_index.yaml"


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def report_only(defn: IndexDefinition) -> IndexDefinition:
    """The shipped definition without the panel indicators (capabilities left empty are dropped)."""
    d = defn.model_copy(deep=True)
    for c in d.capabilities:
        c.indicators = [i for i in c.indicators if i.source.table != "panel"]
    d.capabilities = [c for c in d.capabilities if c.indicators]
    return d


def build(path: Path, stations: int, months: int, seed: float = 0.42) -> None:
    con = connect(path)
    con.execute(f"SELECT setseed({seed})")
    con.execute(f"""INSERT INTO stations (station_id, county, city, province, area_type, population, officers)
        SELECT printf('S%06d', i), printf('C%04d', i // 15), printf('M%03d', i // 90), 'P',
               ['urban', 'rural', 'mixed'][1 + i % 3], 5000 + CAST(random() * 60000 AS INTEGER),
               5 + CAST(random() * 40 AS INTEGER)
        FROM range({stations}) t(i)""")
    grid = (f"(SELECT printf('S%06d', i) AS station_id, date_add(DATE '2016-01-01', INTERVAL (m) MONTH) AS month "
            f"FROM range({stations}) a(i), range({months}) b(m))")
    con.execute(f"""INSERT INTO cases (station_id, month, cases_opened, cases_solved, loss_yuan)
        SELECT station_id, month, o, CAST(o * (0.3 + random() * 0.5) AS INTEGER), o * 3000 * random()
        FROM (SELECT *, CAST(random() * 20 AS INTEGER) AS o FROM {grid})""")
    con.execute(f"INSERT INTO visits (station_id, month, households_visited) "
                f"SELECT station_id, month, CAST(random() * 300 AS INTEGER) FROM {grid}")
    con.execute(f"""INSERT INTO hazards (station_id, month, hazards_found, hazards_resolved)
        SELECT station_id, month, f, CAST(f * (0.6 + random() * 0.4) AS INTEGER)
        FROM (SELECT *, CAST(random() * 30 AS INTEGER) AS f FROM {grid})""")
    con.execute(f"INSERT INTO patrols (station_id, month, patrol_hours) SELECT station_id, month, random() * 900 "
                f"FROM {grid}")
    con.execute(f"INSERT INTO surveys (station_id, month, surveyed, satisfied) "
                f"SELECT station_id, month, 50, 40 + CAST(random() * 10 AS INTEGER) FROM {grid}")
    con.execute(f"""INSERT INTO complaints (station_id, month, complaints, complaints_upheld)
        SELECT station_id, month, c, CAST(c * random() AS INTEGER)
        FROM (SELECT *, CAST(random() * 4 AS INTEGER) AS c FROM {grid})""")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=1500)
    ap.add_argument("--months", type=int, default=84)
    ap.add_argument("--alerts", action="store_true", help="also time the alerts (monthly)")
    a = ap.parse_args()
    work = HERE / "_work" / "index"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    wh = work / "warehouse.duckdb"
    t0 = time.perf_counter()
    build(wh, a.stations, a.months)
    print(f"warehouse: {a.stations:,} stations × {a.months} months × 6 tables in {time.perf_counter() - t0:.1f}s")
    defn = report_only(load_definition(DEFN))
    con = connect(wh)
    try:
        for period in ("month", "quarter", "year"):
            t, c = time.perf_counter(), cpu_s()
            name = compute_index(con, defn, period=period, out=work / f"{period}.parquet")
            n = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            print(f"compute {period:<7} {n:>10,} rows  {time.perf_counter() - t:7.1f}s wall  "
                  f"{cpu_s() - c:7.1f}s CPU  peak RSS {peak_rss_gib():.2f} GiB")
        if a.alerts:
            t, c = time.perf_counter(), cpu_s()
            n = len(find_alerts(con, defn))
            print(f"alerts          {n:>10,} rows  {time.perf_counter() - t:7.1f}s wall  {cpu_s() - c:7.1f}s CPU  "
                  f"peak RSS {peak_rss_gib():.2f} GiB")
    finally:
        con.close()


if __name__ == "__main__":
    main()
