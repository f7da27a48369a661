"""Monte Carlo: coverage of the sensitivity analysis' robust CIs at M̄ = 0 / M = 0 under no effect.

Usage::

    .venv/bin/python benchmarks/mc_sensitivity.py [--reps 100] [--stations 15] [--seed 0]

Panels are generated here, not drawn from the demo world (:func:`county_panel`): negative-binomial
monthly counts per station (station level × seasonality × common shocks), ``adopters`` stations
adopting at 2–3 dates, parallel trends and no effect (or ``--effect``, a proportional change).
Each replication runs :func:`evalkit.sensitivity_run.binned_event_study` (the event study the
sensitivity analysis bounds, its covariance with the small-sample factor) and reports how often the
original CI of the target, the relative-magnitudes CI at M̄ = 0 and the smoothness FLCI at M = 0
cover the truth (0), the share of replications that could be computed,
and the bin widths chosen, and how often the verdict's input (RM at M̄ = 0.5) excludes zero — the
size under no effect, the power with ``--effect -0.2``. Not a timed test: tests import :func:`county_panel` only.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def county_panel(n_stations: int = 15, adopters: int = 6, dates: tuple[int, ...] = (30, 42, 54), months: int = 72,
                 effect: float = 0.0, seed: int = 0, size: float = 20.0) -> pd.DataFrame:
    """A county panel: ``station_id``, ``period`` (1..months), ``first_treat`` (0 = never),
    ``county``, ``incidents_total`` (NB counts, mean ≈ 30 per station-month, dispersion ``size``).

    The first ``adopters`` stations adopt at ``dates`` in turn; ``effect`` multiplies the mean from
    adoption on (−0.2 = −20 %). Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    level = 30.0 * np.exp(rng.normal(0.0, 0.4, n_stations))
    t = np.arange(1, months + 1)
    season = 1.0 + 0.15 * np.sin(2 * np.pi * t / 12)
    shock = np.exp(rng.normal(0.0, 0.05, months))
    first = np.zeros(n_stations, int)
    first[:adopters] = [dates[i % len(dates)] for i in range(adopters)]
    treated = (first[:, None] > 0) & (t[None, :] >= first[:, None])
    mu = level[:, None] * season[None, :] * shock[None, :] * np.where(treated, 1.0 + effect, 1.0)
    y = rng.negative_binomial(size, size / (size + mu))
    return pd.DataFrame({
        "station_id": np.repeat([f"S{i:02d}" for i in range(n_stations)], months),
        "period": np.tile(t, n_stations),
        "first_treat": np.repeat(first, months),
        "county": "C1",
        "incidents_total": y.ravel().astype(float),
    })


def main(argv: list[str] | None = None) -> None:
    from evalkit.params import validate_params
    from evalkit.sensitivity import honest_did, original_ci
    from evalkit.sensitivity_run import SensitivityError, binned_event_study

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--stations", type=int, default=15)
    ap.add_argument("--adopters", type=int, default=6)
    ap.add_argument("--effect", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    p = validate_params({"evaluation_id": "mc_sens", "reform": "两队一室", "outcomes": ["incidents_total"]})
    cover_rm = cover_sd = cover_orig = robust = reject = ok = 0
    widths: Counter[int] = Counter()
    reasons: Counter[str] = Counter()
    for r in range(a.reps):
        panel = county_panel(a.stations, a.adopters, effect=a.effect, seed=a.seed + r)
        try:
            b, *_ = binned_event_study(panel, "incidents_total", p)
        except SensitivityError as exc:
            reasons[str(exc)[:80]] += 1
            continue
        ok += 1
        widths[b.bin_months] += 1
        kw = {"num_pre": b.num_pre, "num_post": b.num_post, "l_vec": b.l_vec, "alpha": p.alpha}
        orig = original_ci(b.beta, b.sigma, **kw)
        rm = honest_did(b.beta, b.sigma, type="rm", Mbar=[0.0], grid_points=300, seed=r, **kw).iloc[0]
        sd = honest_did(b.beta, b.sigma, type="sd", M=[0.0], **kw).iloc[0]
        rm5 = honest_did(b.beta, b.sigma, type="rm", Mbar=[0.5], grid_points=300, seed=r, **kw).iloc[0]
        reject += bool(orig["ub"] < 0 or orig["lb"] > 0)
        robust += bool(rm5.ub < 0 or rm5.lb > 0)  # the verdict's input: RM at M̄ = 0.5 excludes 0
        truth = 0.0 if a.effect == 0 else np.nan  # with an effect only the robust rate is meaningful here
        cover_orig += bool(orig["lb"] <= truth <= orig["ub"])
        cover_rm += bool(rm.lb <= truth <= rm.ub)
        cover_sd += bool(sd.lb <= truth <= sd.ub)
    mc = lambda k: f"{k / max(ok, 1):.3f} ± {1.96 * np.sqrt(0.95 * 0.05 / max(ok, 1)):.3f}"  # noqa: E731
    print(f"{a.stations} stations, {a.adopters} adopters, effect {a.effect}: computed {ok}/{a.reps}")
    print(f"bin widths (months: count): {dict(sorted(widths.items()))}")
    print(f"coverage of 0: original CI {mc(cover_orig)}; RM at M̄=0 (C-LF) {mc(cover_rm)}; "
          f"SD at M=0 (FLCI) {mc(cover_sd)}")
    print(f"original CI of the target excludes 0: {reject / max(ok, 1):.3f}; "
          f"robust (RM at M̄=0.5 excludes 0): {robust / max(ok, 1):.3f}")
    for why, n in reasons.most_common(3):
        print(f"not computable ({n}×): {why}")


if __name__ == "__main__":
    main()
