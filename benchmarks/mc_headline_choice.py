"""The quick check behind the headline-choice thresholds (``evalkit.headline_choice``,
``docs/briefs.md`` § Headline choice): how often Callaway–Sant'Anna (never-treated, one base period
per cohort) and the imputation estimator reject at 5 % on simulated station panels.

Panels: negative-binomial counts (size 10) around a station level (log-normal, median 30 a month),
seasonality, a 2020-like shock (months 15–20, −20 %), AR(1) deviations (ρ = 0.5, sd 0.08), 72 months,
adopters drawn at random and adopting in months 31–55. ``viol`` deepens the shock for the adopters
(a parallel-trends violation in the far pre-period only). Analytic SEs; 100 panels per cell in the
docs table (about 3–13 s a cell on one core).

    python benchmarks/mc_headline_choice.py 15 6 -0.1 100        # stations, adopters, effect, panels
    python benchmarks/mc_headline_choice.py 120 40 0 100 -0.3    # ... and the violation
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from evalkit.estimators import get_estimator


def panel(rng: np.random.Generator, n: int, n_treat: int, effect: float, T: int = 72, viol: float = 0.0
          ) -> pd.DataFrame:
    """One simulated station panel (module docstring); ``effect``: proportional, e.g. −0.1."""
    lvl = rng.lognormal(np.log(30), 0.5, n)
    season = 0.1 * np.sin(2 * np.pi * np.arange(T) / 12)
    shock = np.where((np.arange(T) >= 14) & (np.arange(T) < 20), -0.2, 0.0)
    dev = np.zeros((n, T))
    e = rng.normal(0, 0.08, (n, T))
    for t in range(1, T):
        dev[:, t] = 0.5 * dev[:, t - 1] + e[:, t]
    first = np.zeros(n, int)
    tr = rng.choice(n, n_treat, replace=False)
    first[tr] = rng.choice(np.arange(30, 55), n_treat) + 1
    per = np.arange(1, T + 1)
    dev[tr, 14:20] += viol
    post = (first[:, None] > 0) & (per[None, :] >= first[:, None])
    mu = lvl[:, None] * np.exp(season[None, :] + shock[None, :] + dev + np.log1p(effect) * post)
    y = rng.negative_binomial(10, 10 / (10 + mu))
    return pd.DataFrame({"station_id": np.repeat(np.arange(n), T), "period": np.tile(per, n),
                         "first_treat": np.repeat(first, T), "y": y.ravel().astype(float)})


def run(n: int, k: int, effect: float, reps: int, seed: int, viol: float = 0.0) -> dict[str, tuple[int, int]]:
    """(rejections, valid fits) per estimator over ``reps`` panels."""
    rng = np.random.default_rng(seed)
    fits = {"cs": (get_estimator("cs"), {"trim_e": (-12, 24), "aggregations": ("simple",)}),
            "imputation": (get_estimator("imputation"), {"horizons": list(range(25)), "pretrend_leads": 12})}
    rej = dict.fromkeys(fits, 0)
    ok = dict.fromkeys(fits, 0)
    for _ in range(reps):
        df = panel(rng, n, k, effect, viol=viol)
        for name, (fn, kw) in fits.items():
            try:
                p = float(fn(df, "y", **kw).overall["p_value"])
            except Exception:  # noqa: BLE001 - a failed fit is counted out, not as a rejection
                continue
            ok[name] += 1
            rej[name] += p < 0.05
    return {name: (rej[name], ok[name]) for name in fits}


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    n, k, eff, reps = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    viol = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    print(n, k, eff, reps, "viol", viol, run(n, k, eff, reps, 1000 + n + k, viol))
