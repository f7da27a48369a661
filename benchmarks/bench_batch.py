"""Batch benchmark: N evaluations with 1 and 2 local workers and on a local Dask cluster.

    .venv/bin/python benchmarks/bench_batch.py                       # 24 evaluations, small world
    .venv/bin/python benchmarks/bench_batch.py --n 12 --warehouse /tmp/batchdemo/warehouse.duckdb
    .venv/bin/python benchmarks/bench_batch.py --size medium         # medium demo world

Every configuration starts from an empty output folder (nothing skipped), uses the project's
default estimators and writes brief.pdf (``--no-pdf`` to skip Chromium). Prints wall times and
the mean per-evaluation split — kernel start, cell execution (of which estimation), kernel
shutdown, export — then the wall time of a resume run where everything is already complete.
Results go to benchmarks/_work/bench_batch.json.

Since issue 15 each evaluation's kernel is launched before its preflight and pre-imports evalkit, and a
worker can start its next evaluation's kernel while the brief exports (docs/batch.md; off unless
``EVALKIT_BATCH_PRESTART=1`` is in the environment): "kernel start" is the wait for a kernel that was
not ready yet, and "execute" no longer holds ``import evalkit``. Since session 22 a local worker keeps one
kernel for all its evaluations and restores its state between them (``evalkit.batch.kernels``): "kernel
start" is then ~0 for all but each worker's first evaluation. ``EVALKIT_BATCH_KERNEL_REUSE=0`` in the
environment measures a fresh kernel per evaluation. Since session 23 a local batch aggregates the records
into station-month cells once per region (or once for all stations when its regions cover the warehouse) and
its evaluations share them (``evalkit.cells_cache``, docs/batch.md): the first evaluations of a batch carry
that aggregation in their "estimate"; the workers start while the warehouse is fingerprinted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _table import print_table  # benchmarks/_table.py (scripts run from this folder)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from evalkit.batch import run_batch  # noqa: E402

# (reform, outcome, region) combinations with adopters in the demo world
COMBOS = [
    ("两队一室", "incidents_fight", {"area_type": "urban"}),
    ("两队一室", "dispatches", {"area_type": "urban"}),
    ("两队一室", "cases", {"area_type": "urban"}),
    ("两队一室", "incidents_theft", {"area_type": "urban"}),
    ("巡处一体化", "response_mean_min", {"area_type": "urban"}),
    ("巡处一体化", "share_within_5min", {"area_type": "urban"}),
    ("巡处一体化", "share_patrol_closed", {"area_type": "urban"}),
    ("非警务警情分流", "incidents_nonpolice", {"area_type": "mixed"}),
    ("非警务警情分流", "dispatches", {"area_type": "mixed"}),
    ("非警务警情分流", "incidents_total", {"area_type": "mixed"}),
    ("一村一辅警", "dispute_escalation_rate", {"area_type": "rural"}),
    ("一村一辅警", "dispute_resolution_rate", {"area_type": "rural"}),
    ("一村一辅警", "disputes_opened", {"area_type": "rural"}),
    ("便民服务升级", "incidents_total", {}),
    ("便民服务升级", "dispatches", {}),
]
PHASES = ["seconds_kernel_start", "seconds_execute", "seconds_estimate", "seconds_kernel_shutdown",
          "seconds_notebook", "seconds_export", "seconds_total"]


def make_params(folder: Path, n: int, warehouse: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        reform, outcome, region = COMBOS[i % len(COMBOS)]
        d = {"evaluation_id": f"e{i:02d}", "reform": reform, "outcomes": [outcome], "region": region,
             "lang": "zh" if i % 2 == 0 else "en", "warehouse": str(warehouse)}
        (folder / f"e{i:02d}.yaml").write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    return folder


def ensure_world(size: str, warehouse: Path | None, work: Path) -> Path:
    if warehouse is not None:
        return warehouse
    wh = work / f"world_{size}.duckdb"
    if not wh.is_file():
        subprocess.run([sys.executable, "-m", "evalkit", "demo-data", "--size", size, "--seed", "42",
                        "--out", str(work / f"world_{size}"), "--warehouse", str(wh)], check=True, cwd=ROOT)
    return wh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="number of evaluations")
    ap.add_argument("--size", default="small", choices=["small", "medium"])
    ap.add_argument("--warehouse", type=Path, default=None, help="use this warehouse instead of generating one")
    ap.add_argument("--configs", default="local1,local2,dask2", help="comma list of local<N> / dask<N>")
    ap.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--work", type=Path, default=HERE / "_work" / "batch")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                    help="measure the floor in the same run and print the target 2 x n x floor / workers")
    a = ap.parse_args()

    import pandas as pd

    a.work.mkdir(parents=True, exist_ok=True)
    wh = ensure_world(a.size, a.warehouse, a.work)
    src = make_params(a.work / "params", a.n, wh)
    # issue 15's target, measured in the same run: wall <= 2 x (n x floor / workers), floor = papermill on a
    # one-cell notebook + one brief export (benchmarks/bench_evaluation.py)
    from bench_evaluation import measure_floor

    (a.work / "floor").mkdir(parents=True, exist_ok=True)
    floor = measure_floor(a.work / "floor")["floor"] if a.floor else float("nan")
    print(f"floor {floor:.1f} s", flush=True)
    rows = []
    for cfg in a.configs.split(","):
        dask, workers = cfg.startswith("dask"), int(cfg.removeprefix("dask").removeprefix("local"))
        out = a.work / "out"
        shutil.rmtree(out / cfg, ignore_errors=True)
        t0 = time.perf_counter()
        rep = run_batch([str(src)], out, name=cfg, workers=workers, dask=dask, pdf=a.pdf, portfolio_pdf=a.pdf,
                        progress=False)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = run_batch([str(src)], out, name=cfg, workers=workers, dask=dask, pdf=a.pdf, portfolio_pdf=False,
                          progress=False)
        resume = time.perf_counter() - t1
        s = pd.read_parquet(rep.directory / "summary.parquet").drop_duplicates("evaluation_id")
        s = s[s["status"] == "ok"]
        means = {c: float(s[c].mean()) for c in PHASES}
        target = 2 * a.n * floor / workers
        rows.append({"config": cfg, "n": a.n, "ok": len(rep.ok), "failed": len(rep.failed), "wall_s": wall,
                     "target_s": target, "meets": "✓" if wall <= target else ("✗" if target == target else "–"),
                     "per_eval_wall_s": wall / a.n, "resume_all_skipped_s": resume,
                     "resume_skipped": len(again.skipped), **means})
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    (a.work / "bench_batch.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    short = {c: c.removeprefix("seconds_") for c in PHASES}
    print_table(df.rename(columns=short), ".1f")


if __name__ == "__main__":
    main()
