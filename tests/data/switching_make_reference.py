"""Regenerate tests/data/switching_panel.csv and tests/data/switching_ref.json (run by hand, not by the suite).

The panel is evalkit's own seeded simulation (below; no third-party data): 60 stations × 10 periods,
a treatment with levels 0/1/2 that goes up and down (binary column ``D_bin`` and multi-valued ``D``),
two blocks of missing outcomes and a ``county`` cluster column. The reference numbers are computed by
the test-only peer ``py-did-multiplegt-dyn`` 0.1.9 (PyPI, BSD-3-Clause, Python port of the Stata/R
``did_multiplegt_dyn`` by de Chaisemartin, D'Haultfœuille et al.). Only its output numbers are
stored; no code or text is copied.

    PYTHONPATH=src python tests/data/switching_make_reference.py

py-did-multiplegt-dyn 0.1.9 calls ``polars.count()`` without arguments, which polars >= 1.0 refuses;
:func:`peer_fit` patches that one call to ``polars.len()`` for the run (the numbers are unaffected).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
#: (name, treatment column, switchers, cluster, effects, placebos)
CASES = [
    ("binary_both", "D_bin", "both", None, 3, 2),
    ("binary_in", "D_bin", "in", None, 3, 2),
    ("binary_out", "D_bin", "out", None, 3, 2),
    ("levels_both", "D", "both", None, 4, 3),
    ("levels_in_county", "D", "in", "county", 4, 3),
    ("levels_out_county", "D", "out", "county", 3, 2),
    ("levels_both_county", "D", "both", "county", 4, 3),
]


def simulate(n: int = 60, periods: int = 10, seed: int = 20250) -> pd.DataFrame:
    """Stations with a baseline level 0/1/2 and up to two changes of ±1 or +2 (never below 0); effect
    0.8 per level, unit effects, a trend; about 4% of outcomes missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        path = np.full(periods, float(rng.integers(0, 3)))
        for _ in range(rng.integers(0, 3)):
            f = rng.integers(1, periods)
            path[f:] = max(0.0, path[f - 1] + rng.choice([-1.0, 1.0, 2.0]))
        a = rng.normal()
        bin_path = (path >= 1).astype(float)
        for t in range(periods):
            y = a + 0.2 * t + 0.8 * path[t] + rng.normal()
            rows.append({"station": i, "period": t + 1, "D": path[t], "D_bin": bin_path[t],
                         "county": f"c{i % 20:02d}", "Y": np.nan if rng.random() < 0.04 else y})
    return pd.DataFrame(rows)


def peer_fit(panel: pd.DataFrame, treatment: str, switchers: str, cluster: str | None, effects: int,
             placebo: int) -> dict[str, list[float]]:
    """Run ``DidMultiplegtDyn`` and return its estimates and SEs: overall (average total effect),
    effects 1..L, placebos 1..P, and the joint placebo test's p-value."""
    import polars as pl
    from did_multiplegt_dyn import DidMultiplegtDyn

    count = pl.count
    pl.count = lambda *a, **k: pl.len() if not a and not k else count(*a, **k)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = DidMultiplegtDyn(pl.from_pandas(panel), "Y", "station", "period", treatment, cluster=cluster,
                                 effects=effects, placebo=placebo,
                                 switchers="" if switchers == "both" else switchers).fit()
    finally:
        pl.count = count
    r = m.result["did_multiplegt_dyn"]
    est = np.r_[r["ATE"]["Estimate"], r["Effects"]["Estimate"], r["Placebos"]["Estimate"]]
    se = np.r_[r["ATE"]["SE"], r["Effects"]["SE"], r["Placebos"]["SE"]]
    sw = np.r_[r["Effects"]["Switchers"], r["Placebos"]["Switchers"]]
    return {"estimate": est.tolist(), "std_error": se.tolist(), "n_switchers": sw.tolist(),
            "p_jointplacebo": float(r["p_jointplacebo"])}


def main() -> None:
    simulate().round(12).to_csv(HERE / "switching_panel.csv", index=False)
    panel = pd.read_csv(HERE / "switching_panel.csv")
    ref: dict = {"source": "py-did-multiplegt-dyn 0.1.9 (PyPI, BSD-3-Clause), run by "
                           "tests/data/switching_make_reference.py",
                 "panel": "tests/data/switching_panel.csv (evalkit simulation, seed 20250)",
                 "order": "overall (Av_tot_effect), Effect_1..L, Placebo_1..P"}
    for name, treat, sw, cl, eff, pl_ in CASES:
        ref[name] = {"treatment": treat, "switchers": sw, "cluster": cl, "effects": eff, "placebo": pl_,
                     **peer_fit(panel, treat, sw, cl, eff, pl_)}
    (HERE / "switching_ref.json").write_text(json.dumps(ref, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
