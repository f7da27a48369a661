"""Regenerate tests/data/dose_panel.csv and tests/data/dose_contdid_ref.json (run by hand, not by the suite).

The panel is evalkit's own seeded simulation (below; no third-party data). The reference numbers are
computed by the test-only peer ``contdid`` 0.1.0 (PyPI, AGPL-3.0, https://github.com/gorgeousfish/contdid):
``contdid.multiperiod.estimate_multiperiod_dose`` (multi-period, staggered; and one cohort with
knots). Only its output numbers are stored; no contdid code or text is copied.

    PYTHONPATH=src python tests/data/dose_make_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def simulate(n: int = 240, seed: int = 20241, periods: range = range(1, 7), cohorts: tuple[int, ...] = (0, 3, 5),
             noise: float = 1.0) -> pd.DataFrame:
    """Staggered panel: cohorts 3 and 5 and never-treated units; doses U(0.2, 1) from adoption on,
    effect 1.5 d − d² + 0.2 (t − g) d, unit effects and a common trend."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        g = cohorts[i % len(cohorts)]
        d = 0.0 if g == 0 else float(rng.uniform(0.2, 1.0))
        a = rng.normal()
        for t in periods:
            post = g != 0 and t >= g
            eff = (1.5 * d - d * d + 0.2 * (t - g) * d) if post else 0.0
            rows.append({"id": i, "period": t, "G": g, "D": d if post else 0.0,
                         "county": f"c{i % 30:02d}", "Y": a + 0.3 * t + eff + noise * rng.normal()})
    return pd.DataFrame(rows)


def main() -> None:
    from contdid.multiperiod import estimate_multiperiod_dose

    panel = simulate()
    panel.round(12).to_csv(HERE / "dose_panel.csv", index=False)
    panel = pd.read_csv(HERE / "dose_panel.csv")
    # grid inside every cohort's dose range (contdid clips the grid to each cell's range)
    lo = panel[panel.G > 0].groupby("G").D.max().min()
    hi_lo = panel[(panel.G > 0) & (panel.D > 0)].groupby("G").D.min().max()
    grid = np.round(np.linspace(hi_lo + 0.01, lo - 0.01, 9), 6)
    ref: dict = {"source": "contdid 0.1.0 (PyPI, AGPL-3.0), run by tests/data/dose_make_reference.py",
                 "panel": "tests/data/dose_panel.csv (evalkit simulation, seed 20241)", "grid": grid.tolist()}
    for control in ("nevertreated", "notyettreated"):
        for target in ("level", "slope"):
            r = estimate_multiperiod_dose(panel, id_column="id", time_column="period", outcome_column="Y",
                                          dose_column="D", group_column="G", dose_grid=grid, degree=3, num_knots=0,
                                          control_group=control, target=target, cband=False, biters=10)
            ref[f"multiperiod_{control}_{target}"] = {"estimate": list(r.point_estimate),
                                                      "std_error": list(r.standard_error)}
    # one cohort (3) and the never-treated units, cubic B-spline with 2 quantile knots: each cell's
    # knots are then the pooled ones (contdid's cont_did two-period route needs asset files the
    # 0.1.0 wheel lacks, so the multi-period routine is used here too)
    one = panel[panel.G != 5]
    grid1 = np.round(np.linspace(0.25, 0.95, 8), 6)
    ref["one_cohort_grid"] = grid1.tolist()
    for target in ("level", "slope"):
        r = estimate_multiperiod_dose(one, id_column="id", time_column="period", outcome_column="Y",
                                      dose_column="D", group_column="G", dose_grid=grid1, degree=3, num_knots=2,
                                      control_group="nevertreated", target=target, cband=False, biters=10)
        ref[f"one_cohort_knots2_{target}"] = {"estimate": list(r.point_estimate),
                                              "std_error": list(r.standard_error)}
    (HERE / "dose_contdid_ref.json").write_text(json.dumps(ref, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
