"""Monte Carlo: size of the joint pre-trend test and how often the no-effect placebo reform is
declared significant.

Usage::

    .venv/bin/python benchmarks/mc_pretrend.py [--reps 100] [--draws 99] [--seed 0]

Part 1 (pure noise): station and station-month iid N(0,1) noise, 84 months, cohorts of the
shapes below, Callaway–Sant'Anna event study over leads −12..−1; rejection rates of the χ²
Wald test, Hotelling's F (treated stations as the sample) and the permutation test of
:func:`evalkit.inference.pretrend.pretrend_test`.

Part 2 (demo world, placebo 便民服务升级 on incidents_total, the params file's comparison group):
each replication draws a new small world and new counts (superpopulation design, as
``mc_estimators.py``'s ``redraw``); reports the rejection rate of CS's overall effect, of the
pre-trend tests, and of the verdict's "declared an effect" (CS p < 0.05 — analytic, and with the
jackknife SE the evaluations use for small designs — and the pre-trend permutation test not
rejecting).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mc_estimators as M  # noqa: E402

from evalkit.demo import world as W  # noqa: E402
from evalkit.inference import jackknife  # noqa: E402
from evalkit.inference.pretrend import pretrend_test  # noqa: E402

SHAPES = {"1,1,4,3 + 26 never": ([1, 1, 4, 3], 26), "4x4 + 26 never": ([4] * 4, 26),
          "10x4 + 60 never": ([10] * 4, 60)}
OPTS = {"trim_e": (-12, 24)}


def noise_panel(sizes, n_never, seed, T=84, first=24264):
    """Pure noise: station N(0,1) + station-month N(0,1), ``T`` months from 24228; cohorts of
    ``sizes`` stations adopt 6 months apart from month ``first``, ``n_never`` never adopt."""
    rng = np.random.default_rng(seed)
    ft = np.concatenate([[0] * n_never] + [[first + 6 * k] * s for k, s in enumerate(sizes)])
    S = len(ft)
    y = rng.normal(0, 1, (S, 1)) + rng.normal(0, 1, (S, T))
    return pd.DataFrame({"station_id": np.repeat(np.arange(S), T), "period": np.tile(24228 + np.arange(T), S),
                         "first_treat": np.repeat(ft, T), "y": y.ravel()})


def rate(x) -> str:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if not len(x):
        return "n/a"
    return f"{x.mean():.3f} ± {np.sqrt(x.mean() * (1 - x.mean()) / len(x)):.3f}"


def part1(reps: int, draws: int, seed: int) -> None:
    from evalkit.estimators import get_estimator

    cs = get_estimator("cs")
    print(f"## Part 1: pure noise, {reps} replications, {draws} permutation draws each")
    print("| design | χ² Wald | Hotelling F | permutation |\n|---|---|---|---|")
    for label, (sizes, never) in SHAPES.items():
        chi, f, perm = [], [], []
        for r in range(reps):
            t = pretrend_test(cs(noise_panel(sizes, never, seed * 100_000 + r), "y", **OPTS),
                              method="permutation", draws=draws, seed=r)
            chi.append(np.nan if t.p_chi2 is None else t.p_chi2 < 0.05)
            f.append(np.nan if t.p_f is None else t.p_f < 0.05)
            perm.append(np.nan if t.p_permutation is None else t.p_permutation < 0.05)
        print(f"| {label} | {rate(chi)} | {rate(f)} | {rate(perm)} |", flush=True)


def part2(reps: int, draws: int, seed: int) -> None:
    from evalkit.estimators import get_estimator

    sc = M.SCENARIOS["placebo_total"]
    cs = get_estimator("cs")
    rows = []
    for r in range(reps):
        w = W.build_world("small", seed * 100_000 + 1000 + r)
        y = M.simulate_counts(w, seed * 100_000 + 5000 + r)[sc.outcome]
        panel = M.make_panel(w, sc, y)
        res = cs(panel, sc.outcome, **OPTS)
        t = pretrend_test(res, method="permutation", draws=draws, seed=r)
        p = float(res.overall["p_value"])
        pj = jackknife(res).p_value
        p_perm = np.nan if t.p_permutation is None else t.p_permutation
        rows.append({"n_treated": t.n_treated, "cs_reject": p < 0.05, "jk_reject": pj < 0.05,
                     "chi2_pre": t.p_chi2 is not None and t.p_chi2 < 0.05, "perm_pre": p_perm < 0.05,
                     "declared_analytic": (p < 0.05) and (p_perm >= 0.05),
                     "declared": (pj < 0.05) and (p_perm >= 0.05)})
    d = pd.DataFrame(rows)
    print(f"\n## Part 2: demo-world placebo, {reps} redrawn worlds (mean {d.n_treated.mean():.1f} treated stations)")
    print("| quantity | rate |\n|---|---|")
    print(f"| CS overall effect p < 0.05, analytic SE | {rate(d.cs_reject)} |")
    print(f"| CS overall effect p < 0.05, jackknife SE (the evaluations' default here) | {rate(d.jk_reject)} |")
    print(f"| pre-trend χ² rejects | {rate(d.chi2_pre)} |")
    print(f"| pre-trend permutation rejects | {rate(d.perm_pre)} |")
    print(f"| declared an effect, analytic SE + permutation pre-test | {rate(d.declared_analytic)} |")
    print(f"| **declared an effect, jackknife SE + permutation pre-test (the brief's rule)** | {rate(d.declared)} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--draws", type=int, default=99)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", choices=["1", "2", "both"], default="both")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.time()
    if a.part in ("1", "both"):
        part1(a.reps, a.draws, a.seed)
    if a.part in ("2", "both"):
        part2(a.reps, a.draws, a.seed)
    print(f"\nruntime {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
