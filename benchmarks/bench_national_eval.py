"""One national evaluation from its Parquet panel to the PDF, against the floor (issue 15).

Usage::

    .venv/bin/python benchmarks/bench_national_eval.py                       # 40,000 x 120, floor included
    .venv/bin/python benchmarks/bench_national_eval.py --stations 4000 --keep # a quick run, keep the files
    .venv/bin/python benchmarks/bench_national_eval.py --json /tmp/national.json

Results and their history: docs/performance.md § National evaluation.

A benchmark that prints a table, not a timed test. Measured in the same run:

* **floor** — as ``benchmarks/bench_evaluation.py`` defines it (its :func:`measure_floor`): papermill
  executing a one-cell notebook plus exporting one brief to HTML and PDF.
* **national** — ``evalkit run FILE`` in a fresh process on a params file of ``two_teams_fights``'
  shape (两队一室; fights, dispatches and cases; every estimator; wild cluster bootstrap and
  randomization inference; pre-trend test, sensitivity analysis, Romano–Wolf) whose panel is
  ``panel_file: panel.parquet`` (evalkit.panel_source). Every station of the national demo world
  (40,000; the shipped file's ``region: urban`` would keep 11,343) and the national window (120
  months, 2016-01..2025-12). Target: wall ≤ 90 s and peak RSS ≤ 6 GiB.

The world: the national demo world's stations and reforms (``evalkit.demo.build_world("national",
seed)``, 6,804 adopters of 两队一室 in eight half-year cohorts) written to a fresh warehouse
(stations and reforms tables only), and its station-month counts drawn by the world's own
generator (``draw_counts``: expected counts with the planted effects, negative-binomial noise)
without expanding them into the 684 M incident records: ``incidents_fight`` = the fight
category, ``dispatches`` = all categories, ``cases`` = a seeded binomial half of theft, fraud,
fight and vice. Written as one Parquet file sorted by station and month (``station_id``,
``month`` as a date, the three counts). Not timed.

Peak RSS: the process tree of ``evalkit run`` is sampled every 0.2 s (psutil); "evaluation" is the
largest resident set of one process (the notebook kernel that runs ``evaluate()``), "tree" the
largest sum over all processes at one sample. Per-step compute: results.json ``timings.steps``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_evaluation import ROOT, _env, measure_floor  # noqa: E402  (the floor is defined once)

WALL_TARGET, RSS_TARGET = 90.0, 6.0  # s, GiB
SHIPPED_INFERENCE = ["wild_bootstrap", "randomization"]  # params/two_teams_fights.yaml
GIB = 2**30


# ----------------------------------------------------------------------------- world and panel
def national_world(work: Path, stations: int, months: int, seed: int) -> tuple[Path, Path, dict]:
    """Warehouse (stations, reforms) and station-month Parquet panel of the national demo world."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalkit.demo.outcomes import draw_counts
    from evalkit.demo.params import CHUNK_STATIONS
    from evalkit.demo.world import build_world
    from evalkit.registry import CATEGORIES, period_label
    from evalkit.warehouse import connect, set_meta

    end = "2025-12"
    last = 2025 * 12 + 11
    start = period_label(last - months + 1)
    w = build_world("national", seed, start=start, end=end, n_stations=stations)
    wh = work / "national.duckdb"
    con = connect(wh)
    cols = ["station_id", "name", "county", "city", "province", "area_type", "population", "officers",
            "auxiliaries", "villages"]
    con.register("st", w.stations[cols])
    con.execute(f"INSERT INTO stations ({', '.join(cols)}) SELECT * FROM st")
    rf = w.reforms[["station_id", "reform", "adopted_on"]]
    con.register("rf", rf)
    con.execute("INSERT INTO reforms (station_id, reform, adopted_on) SELECT station_id, reform, "
                "CAST(adopted_on AS DATE) FROM rf")
    set_meta(con, "synthetic", "true")
    con.close()

    cat = list(CATEGORIES)
    fight = cat.index("fight")
    crime = [cat.index(c) for c in ("theft", "fraud", "fight", "vice")]
    months_arr = pd.to_datetime({"year": w.periods // 12, "month": w.periods % 12 + 1, "day": 1}).dt.date.to_numpy()
    path = work / "panel.parquet"
    writer = None
    rng = np.random.default_rng([seed, 15])
    step = CHUNK_STATIONS["national"]
    ids = w.stations["station_id"].to_numpy()
    for k, lo in enumerate(range(0, w.n_stations, step)):
        idx = np.arange(lo, min(w.n_stations, lo + step))
        counts, _, _ = draw_counts(w, idx, k)  # [S, T, C]
        T = counts.shape[1]
        tab = pa.table({
            "station_id": pa.array(np.repeat(ids[idx], T).tolist(), pa.string()),
            "month": pa.array(np.tile(months_arr, len(idx))),
            "incidents_fight": counts[:, :, fight].reshape(-1).astype(np.int64),
            "dispatches": counts.sum(axis=2).reshape(-1).astype(np.int64),
            "cases": rng.binomial(counts[:, :, crime].sum(axis=2).reshape(-1), 0.5).astype(np.int64),
        })
        writer = writer or pq.ParquetWriter(path, tab.schema, compression="zstd")
        writer.write_table(tab)
    writer.close()
    facts = {"stations": int(w.n_stations), "months": int(len(w.periods)), "start": start, "end": end,
             "adopters": int((w.reforms["reform"] == "two_teams_one_room").sum()),
             "panel_rows": int(w.n_stations * len(w.periods)), "panel_mib": path.stat().st_size / 2**20}
    return wh, path, facts


def national_params(work: Path, panel: Path, facts: dict, inference: list[str] | None = None) -> Path:
    """two_teams_fights' shape on every station and the national window, with ``panel_file``
    (``inference``: replaces the shipped file's list, for what-if runs)."""
    shipped = yaml.safe_load((ROOT / "params" / "two_teams_fights.yaml").read_text(encoding="utf-8"))
    p = dict(shipped, evaluation_id="national_two_teams", region={}, panel_file=str(panel),
             window={"start": facts["start"], "end": facts["end"]})
    if inference is not None:
        p["inference"] = inference
    path = work / "national_two_teams.yaml"
    path.write_text(yaml.safe_dump(p, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- run with memory sampling
class TreeRSS:
    """Largest RSS of one process and of the whole tree under ``pid``, sampled every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        import psutil

        self.root, self.every, self.one, self.tree, self.stop = psutil.Process(pid), every, 0, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.one = max(self.one, rss)
            self.tree = max(self.tree, total)
            self.stop.wait(self.every)

    def done(self) -> tuple[float, float]:
        self.stop.set()
        self.thread.join()
        return self.one / GIB, self.tree / GIB


def run_national(params: Path, warehouse: Path, outputs: Path) -> dict:
    """``evalkit run`` in a fresh process: wall, results.json seconds and steps, peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", str(params), "--warehouse", str(warehouse),
                             "--outputs", str(outputs), "--quiet"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = TreeRSS(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    one, tree = rss.done()
    row = {"wall": wall, "ok": proc.returncode == 0, "rss_one": one, "rss_tree": tree, "seconds": None, "steps": {}}
    results = outputs / "national_two_teams" / "results.json"
    if proc.returncode != 0 or not results.is_file():
        row["error"] = ((err or out).strip().splitlines() or ["no results.json"])[-1]
        return row
    res = json.loads(results.read_text(encoding="utf-8"))
    row["seconds"] = res.get("seconds")
    row["steps"] = (res.get("timings") or {}).get("steps", {})
    row["panel"] = res.get("panel")
    row["pdf"] = any((outputs / "national_two_teams").glob("*.pdf"))
    return row


def print_table(floor: dict, facts: dict, row: dict, load: tuple[float, float]) -> None:
    print(f"\nload average {load[0]:.1f} (start) / {load[1]:.1f} (end); floor {floor['floor']:.1f} s "
          f"(papermill one-cell notebook {floor['papermill']:.1f} s + brief export {floor['export']:.1f} s)")
    print(f"panel: {facts['stations']:,} stations × {facts['months']} months ({facts['start']}..{facts['end']}), "
          f"{facts['panel_rows']:,} rows, {facts['adopters']:,} adopters, Parquet {facts['panel_mib']:.0f} MiB\n")
    print("| evaluation | wall s | target s | compute s | outside compute s | peak RSS GiB (evaluation / tree) "
          "| target GiB | compute per step (s) |")
    print("|---|---:|---:|---:|---:|---|---:|---|")
    if not row["ok"]:
        print(f"| national_two_teams | {row['wall']:.1f} ✗ | {WALL_TARGET:.0f} | failed | — | "
              f"{row['rss_one']:.2f} / {row['rss_tree']:.2f} | {RSS_TARGET:.0f} | {row.get('error', '')[:160]} |")
        return
    steps = ", ".join(f"{k} {v:.1f}" for k, v in sorted(row["steps"].items(), key=lambda kv: -kv[1]))
    wmark = "✓" if row["wall"] <= WALL_TARGET else "✗"
    mmark = "✓" if row["rss_one"] <= RSS_TARGET else "✗"
    print(f"| national_two_teams | {row['wall']:.1f} {wmark} | {WALL_TARGET:.0f} | {row['seconds']:.1f} | "
          f"{row['wall'] - row['seconds']:.1f} | {row['rss_one']:.2f} {mmark} / {row['rss_tree']:.2f} | "
          f"{RSS_TARGET:.0f} | {steps} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=40_000)
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--seed", type=int, default=42, help="seed of the national demo world")
    ap.add_argument("--inference", help="comma-separated inference list replacing the shipped file's (what-if; "
                    "'' for none); the table then says so")
    ap.add_argument("--skip-floor", action="store_true", help="do not measure the floor (quick runs)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (warehouse, panel, outputs)")
    ap.add_argument("--json", help="also write the floor, the panel facts and the row to this JSON file")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="evalkit_bench_national_"))
    try:
        load0 = os.getloadavg()[0]
        floor = ({"floor": float("nan"), "papermill": float("nan"), "export": float("nan")} if a.skip_floor
                 else measure_floor(work))
        t = time.perf_counter()
        wh, panel, facts = national_world(work, a.stations, a.months, a.seed)
        print(f"  world and panel written in {time.perf_counter() - t:.0f} s (not timed)", file=sys.stderr, flush=True)
        inference = None if a.inference is None else [x for x in a.inference.split(",") if x]
        params = national_params(work, panel, facts, inference)
        if inference is not None:
            print(f"  what-if: inference = {inference} (shipped: {SHIPPED_INFERENCE})", file=sys.stderr)
        row = run_national(params, wh, work / "out")
        print_table(floor, facts, row, (load0, os.getloadavg()[0]))
        if a.json:
            Path(a.json).write_text(json.dumps({"floor": floor, "facts": facts, "row": row}, indent=1),
                                    encoding="utf-8")
    finally:
        if a.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
