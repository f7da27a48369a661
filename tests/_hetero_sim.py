"""Simulated station panels for tests/test_heterogeneity.py (seeded; no demo world)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sim_panel(seed: int = 0, *, n: int = 60, t: int = 36, urban_effect: float = -0.30, rural_effect: float = -0.05,
              noise: float = 4.0) -> pd.DataFrame:
    """``n`` stations over ``t`` months; half adopt (cohorts 13, 19, 25), half never; area_type
    alternates urban/rural, so each cohort mixes both. Outcome = unit level x (1 + effect after
    adoption) + month effect + N(0, noise) (baseline level about 100, effects in proportion)."""
    rng = np.random.default_rng(seed)
    st = pd.DataFrame({"station_id": [f"S{i:03d}" for i in range(n)]})
    st["area_type"] = np.where(np.arange(n) % 2 == 0, "urban", "rural")
    st["county"] = np.where(np.arange(n) % 3 == 0, "A", np.where(np.arange(n) % 3 == 1, "B", "C"))
    st["population"] = rng.integers(5_000, 80_000, n)
    cohorts = np.array([13, 19, 25])
    st["first_treat"] = np.where(np.arange(n) < n // 2, cohorts[(np.arange(n) // 2) % 3], 0)
    level = rng.normal(100, 15, n)
    month = rng.normal(0, 3, t)
    rows = st.loc[st.index.repeat(t)].reset_index(drop=True)
    rows["period"] = np.tile(np.arange(1, t + 1), n)
    i = np.repeat(np.arange(n), t)
    eff = np.where(rows["area_type"] == "urban", urban_effect, rural_effect)
    d = (rows["first_treat"] > 0) & (rows["period"] >= rows["first_treat"])
    rows["y"] = level[i] * (1 + eff * d) + month[rows["period"] - 1] + rng.normal(0, noise, len(rows))
    return rows
