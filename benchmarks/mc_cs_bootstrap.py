"""Monte Carlo check of the Callaway–Sant'Anna multiplier bootstrap (known truth).

Usage::

    .venv/bin/python benchmarks/mc_cs_bootstrap.py [--reps 500] [--units 1000] [--periods 20] [--draws 999]

Each replication draws a fresh staggered-adoption panel from ``bench_cs.make_panel`` (unit and
period effects, ~10 cohorts plus never-treated, effects that grow with event time and differ by
cohort, i.i.d. N(0, 1) noise) and estimates it with ``estimate_cs(..., bootstrap=draws)``.
The truth of every estimate is the same estimator applied to the noise-free outcome
(``make_panel(..., with_truth=True)``'s ``y_clean``: parallel trends hold exactly in it, so each
ATT(g,t) and every aggregation equals its in-sample target). Reported, over replications:

* bias and RMSE of the simple ATT;
* coverage of the 95 % pointwise intervals (bootstrap SE) for the simple ATT, each event time
  and each ATT(g,t), and of the analytic intervals for comparison;
* coverage of the 95 % uniform (simultaneous) bands: all event times, and all ATT(g,t), covered
  at once;
* the ratio of bootstrap to analytic SEs.

Monte Carlo standard errors of a coverage rate near 0.95 are sqrt(0.95 · 0.05 / reps)
(0.010 with 500 replications); pooled rates (every event time or ATT(g,t) of every
replication) have no simple standard error, as estimates within a replication are correlated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from bench_cs import make_panel  # noqa: E402

from evalkit.estimators.cs import estimate_cs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--periods", type=int, default=20)
    ap.add_argument("--draws", type=int, default=999)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cov = {k: [] for k in ("att_boot", "att_analytic", "event_boot", "event_analytic", "gt_boot", "gt_analytic",
                           "event_band", "gt_band")}
    err, ratio = [], []
    t0 = time.perf_counter()
    for r in range(args.reps):
        d = make_panel(args.units, args.periods, seed=1000 + r, with_truth=True)
        truth = estimate_cs(d, "y_clean").estimates
        boot = estimate_cs(d, "y", bootstrap=args.draws, seed=r).estimates
        ana = estimate_cs(d, "y").estimates
        tv = truth["estimate"].to_numpy()
        for name, res in (("boot", boot), ("analytic", ana)):
            inside = (res["ci_low"].to_numpy() <= tv + 1e-12) & (tv - 1e-12 <= res["ci_high"].to_numpy())
            ok = res["std_error"].notna().to_numpy()
            att = (res["kind"] == "overall").to_numpy() & (res["term"] == "ATT").to_numpy()
            ev = (res["kind"] == "event").to_numpy() & ok
            gt = (res["kind"] == "gt").to_numpy() & ok
            cov[f"att_{name}"].append(bool(inside[att][0]))
            cov[f"event_{name}"].extend(inside[ev].tolist())
            cov[f"gt_{name}"].extend(inside[gt].tolist())
        inb = (boot["band_low"].to_numpy() <= tv + 1e-12) & (tv - 1e-12 <= boot["band_high"].to_numpy())
        ev = (boot["kind"] == "event").to_numpy() & boot["band_low"].notna().to_numpy()
        gt = (boot["kind"] == "gt").to_numpy() & boot["band_low"].notna().to_numpy()
        cov["event_band"].append(bool(inb[ev].all()))
        cov["gt_band"].append(bool(inb[gt].all()))
        att_row = (boot["kind"] == "overall").to_numpy() & (boot["term"] == "ATT").to_numpy()
        err.append(float(boot["estimate"].to_numpy()[att_row][0] - tv[att_row][0]))
        okb = boot["std_error"].notna().to_numpy() & ana["std_error"].notna().to_numpy()
        ratio.append(float(np.median(boot["std_error"].to_numpy()[okb] / ana["std_error"].to_numpy()[okb])))
    wall = time.perf_counter() - t0
    print(f"CS multiplier bootstrap, {args.reps} replications of {args.units} units x {args.periods} periods, "
          f"{args.draws} Mammen draws ({wall:.0f} s)")
    print(f"simple ATT: bias {np.mean(err):+.4f} (MC se {np.std(err) / np.sqrt(len(err)):.4f}), "
          f"RMSE {np.sqrt(np.mean(np.square(err))):.4f}")
    print("| 95 % interval | coverage | MC se |\n|---|---|---|")
    per_rep = {"att_boot", "att_analytic", "event_band", "gt_band"}
    labels = {"att_boot": "simple ATT, bootstrap SE", "att_analytic": "simple ATT, analytic SE",
              "event_boot": "each event time, bootstrap SE", "event_analytic": "each event time, analytic SE",
              "gt_boot": "each ATT(g,t), bootstrap SE", "gt_analytic": "each ATT(g,t), analytic SE",
              "event_band": "uniform band, all event times at once",
              "gt_band": "uniform band, all ATT(g,t) at once"}
    for k, lab in labels.items():
        v = np.asarray(cov[k], dtype=float)
        if k in per_rep:  # one indicator per replication: binomial MC standard error
            print(f"| {lab} | {v.mean():.3f} | {np.sqrt(v.mean() * (1 - v.mean()) / len(v)):.3f} |")
        else:  # pooled over the estimates of each replication (correlated within a replication)
            print(f"| {lab} (pooled over {len(v) // args.reps} per replication) | {v.mean():.3f} | |")
    print(f"median bootstrap / analytic SE ratio: {np.median(ratio):.3f} (IQR {np.percentile(ratio, 25):.3f}"
          f"–{np.percentile(ratio, 75):.3f})")


if __name__ == "__main__":
    main()
