"""Time and peak memory to generate the demo world at each size.

Usage::

    .venv/bin/python benchmarks/bench_demo_world.py            # small and medium
    .venv/bin/python benchmarks/bench_demo_world.py --national # also national (long, ~GBs on disk)

Each size runs in a fresh subprocess so that peak RSS (``resource.getrusage``) is per size.
With ``--tracemalloc`` the peak of Python-tracked allocations (numpy included) is also
reported (slower).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
from evalkit.demo import generate_world
size, seed, out, trace = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
wf = generate_world(size, seed, out)
dt = time.perf_counter() - t0
peak_trace = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
m = json.loads(Path(wf.manifest).read_text(encoding="utf-8"))
disk = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file()) / 2**20
print(json.dumps({"size": size, "seconds": dt, "peak_rss_mib": rss, "peak_traced_mib": peak_trace,
                  "stations": m["n_stations"], "months": m["n_months"], "incidents": m["rows"]["incidents"],
                  "disputes": m["rows"]["disputes"], "disk_mib": disk}))
"""


def run(size: str, seed: int, trace: bool) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"evalkit_bench_{size}_"))
    try:
        res = subprocess.run([sys.executable, "-c", CHILD, size, str(seed), str(out), "1" if trace else "0"],
                             check=True, capture_output=True, text=True)
        return json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--national", action="store_true", help="also generate the national world")
    ap.add_argument("--tracemalloc", action="store_true", help="also report tracemalloc peak")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sizes", nargs="*", default=None, help="explicit sizes (default small medium)")
    a = ap.parse_args()
    sizes = a.sizes or ["small", "medium"] + (["national"] if a.national else [])
    rows = []
    for s in sizes:
        r = run(s, a.seed, a.tracemalloc)
        rows.append(r)
        print(f"  {s}: {r['seconds']:.1f}s", file=sys.stderr, flush=True)
    head = f"| {'size':8} | {'stations':>8} | {'months':>6} | {'incidents':>11} | {'disputes':>9} | " \
           f"{'time (s)':>8} | {'peak RSS (MiB)':>14} | {'traced peak (MiB)':>17} | {'on disk (MiB)':>13} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        tr = f"{r['peak_traced_mib']:.0f}" if r["peak_traced_mib"] is not None else "-"
        print(f"| {r['size']:8} | {r['stations']:>8} | {r['months']:>6} | {r['incidents']:>11,} | "
              f"{r['disputes']:>9,} | {r['seconds']:>8.1f} | {r['peak_rss_mib']:>14.0f} | {tr:>17} | "
              f"{r['disk_mib']:>13.0f} |")


if __name__ == "__main__":
    main()
