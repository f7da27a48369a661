"""Monte Carlo on the demo world (known truth): bias, RMSE and 95% CI coverage of evalkit's estimators.

Usage::

    .venv/bin/python benchmarks/mc_estimators.py [--reps 200] [--seed 2024] [--report docs/monte-carlo.md]

Two designs, both on the ``small`` demo world (100 stations x 84 months, 2019-01..2025-12):

``fixed``   world ``build_world("small", 42)`` (stations, parameters, reform assignment) held fixed;
            every replication redraws only the outcome noise. The estimand (the expected-value
            ATT of the realised assignment, ``compute_truth(w)``) is the same in every replication.
            Scenarios: 两队一室 on ``incidents_fight`` (all stations but the pilot, or urban
            stations only) and the placebo 便民服务升级 on ``incidents_total``.
``redraw``  every replication draws a new world (``build_world("small", seed_r)``: new stations,
            new assignment) *and* new noise; the truth is recomputed with ``compute_truth`` for
            that world. Scenarios: 两队一室 on ``incidents_fight`` (both samples), core estimators.

Outcome noise is the world's own DGP, without generating records: ``draw_counts`` (gamma-Poisson
counts per station x month x category, station-month and station-month-category frailties) is
called on a copy of the world whose ``seed`` is the replication's noise seed; non-police calls are
then thinned binomially by the diversion share, exactly as ``incident_records`` does, so
``incidents_fight`` / ``incidents_total`` have the distribution of the records-based panel.

Because every estimator here is linear in the outcome, its mean over noise replications equals its
value on the expected-value panel ``E[Y]``. The script therefore also reports that noise-free
value and splits the bias into a parallel-trends part (the estimator applied to ``E[Y(0)]``, whose
truth is 0) and an effect-heterogeneity part (the rest).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit.demo import world as W
from evalkit.estimators import get_estimator
from evalkit.estimators._cs_blas import blas_threads

ROOT = Path(__file__).resolve().parents[1]
FIXED_WORLD_SEED = 42
SIZE = "small"
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Scenario:
    name: str
    reform: str
    outcome: str
    exclude: tuple[str, ...]  # reforms whose stations are dropped (they move the outcome)
    sample: str = "all"  # "all" stations or "urban" stations only
    label: str = ""


SCENARIOS: dict[str, Scenario] = {
    "ttor_fight": Scenario(
        "ttor_fight", "two_teams_one_room", "incidents_fight", ("station_pilot",),
        label="两队一室 → incidents_fight (heterogeneous, growing effects); all stations but the pilot"),
    "ttor_fight_urban": Scenario(
        "ttor_fight_urban", "two_teams_one_room", "incidents_fight", ("station_pilot",), sample="urban",
        label="两队一室 → incidents_fight; urban stations only (comparable controls)"),
    "placebo_total": Scenario(
        "placebo_total", "service_hall", "incidents_total",
        ("two_teams_one_room", "nonpolice_diversion", "village_auxiliary", "station_pilot"),
        label="service_hall (placebo, true effect 0) → incidents_total"),
}

# label -> (registry name, options, target)
# targets: "overall" = ATT over all post-adoption treated station-months (CS simple aggregation);
# "first_year" = mean effect over event months 0..11 of all adopters (naive before/after);
# "cohort_year" = mean effect over event months 0..11 of the 2x2 DiD's cohort.
ESTIMATORS: dict[str, tuple[str, dict, str]] = {
    "twfe": ("twfe", {}, "overall"),
    "cs_never": ("cs", {}, "overall"),
    "cs_notyet": ("cs", {"control": "notyet"}, "overall"),
    "sa": ("sa", {}, "overall"),
    "imputation": ("imputation", {}, "overall"),
    "did2x2": ("did2x2", {}, "cohort_year"),
    "naive_yoy": ("naive_yoy", {}, "first_year"),
}
CORE = ("twfe", "cs_never", "cs_notyet", "imputation")
DESIGNS: dict[str, dict] = {
    "fixed": {"scenarios": ("ttor_fight", "ttor_fight_urban", "placebo_total"), "estimators": tuple(ESTIMATORS)},
    "redraw": {"scenarios": ("ttor_fight", "ttor_fight_urban"), "estimators": CORE},
}
REP_COLUMNS = ["design", "scenario", "rep", "world_seed", "noise_seed", "estimator", "target", "estimate",
               "std_error", "ci_low", "ci_high", "p_value", "truth", "covered", "reject", "seconds", "error"]


# ---------------------------------------------------------------------------- data
def simulate_counts(w: W.World, noise_seed: int) -> dict[str, np.ndarray]:
    """One draw of the station x month incident outcomes of world ``w`` ([S, T] arrays)."""
    idx = np.arange(w.n_stations)
    counts, _, prm = W.draw_counts(dataclasses.replace(w, seed=int(noise_seed)), idx, 0)
    rng = np.random.default_rng([int(noise_seed), 3])
    handled = counts.astype(np.int64)
    handled[:, :, W.NP] = rng.binomial(handled[:, :, W.NP], 1.0 - prm["p_div"])  # diverted to 12345
    out = {f"incidents_{c}": handled[:, :, i] for c, i in W.C_IDX.items()}
    out["incidents_total"] = handled.sum(axis=2)
    return out


def expected(w: W.World, outcome: str, treated: bool) -> np.ndarray:
    idx = np.arange(w.n_stations)
    return W.expected_outcomes(w, idx, W.station_month_params(w, idx, treated=treated))[outcome]


def sample_mask(w: W.World, sc: Scenario) -> np.ndarray:
    keep = ~np.isin(w.reform_of, [W.R_IDX[r] for r in sc.exclude])
    if sc.sample == "urban":
        keep &= w.area == W.A_IDX["urban"]
    return keep


def make_panel(w: W.World, sc: Scenario, y: np.ndarray) -> pd.DataFrame:
    """Analysis panel: stations of the sample, first_treat = this reform's adoption month (0 = never)."""
    keep = sample_mask(w, sc)
    T = len(w.periods)
    ft = np.where(w.reform_of == W.R_IDX[sc.reform], w.adopt, 0)[keep]
    n = int(keep.sum())
    return pd.DataFrame({
        "station_id": np.repeat(w.stations["station_id"].to_numpy()[keep], T),
        "period": np.tile(w.periods, n).astype(np.int64),
        "first_treat": np.repeat(ft, T).astype(np.int64),
        sc.outcome: np.asarray(y, dtype=float)[keep].ravel(),
    })


class Truth:
    """Expected-value truths of one world for one reform x outcome, from ``compute_truth``."""

    def __init__(self, w: W.World, sc: Scenario, table: pd.DataFrame | None = None):
        tr = W.compute_truth(w) if table is None else table
        self.t = tr[(tr["reform"] == sc.reform) & (tr["outcome"] == sc.outcome)]
        ov = self.t[(self.t["kind"] == "overall") & self.t["cohort"].isna()]
        self.overall = float(ov["att_level"].iloc[0]) if len(ov) else 0.0

    def window(self, cohort: int | None, lo: int = 0, hi: int = 11) -> float:
        ev = self.t[(self.t["kind"] == "event") & self.t["event_time"].between(lo, hi)]
        ev = ev[ev["cohort"].isna()] if cohort is None else ev[ev["cohort"] == cohort]
        n = ev["n_treated_station_months"].to_numpy(float)
        return float((ev["att_level"].to_numpy() * n).sum() / n.sum()) if n.sum() else 0.0

    def of(self, target: str, meta: dict) -> float:
        if target == "overall":
            return self.overall
        if target == "first_year":
            return self.window(None, 0, int(meta.get("window_months", 12)) - 1)
        if target == "cohort_year":
            return self.window(int(meta["treated_cohort"]), 0, int(meta.get("window_months", 12)) - 1)
        raise ValueError(target)


# ---------------------------------------------------------------------------- estimation
def run_estimators(panel: pd.DataFrame, outcome: str, names: tuple[str, ...], truth: Truth) -> list[dict]:
    rows = []
    for lab in names:
        name, opts, target = ESTIMATORS[lab]
        t0 = time.perf_counter()
        row = {"estimator": lab, "target": target, "error": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = get_estimator(name)(panel, outcome, **opts)
            ov = res.overall
            tv = truth.of(target, res.meta)
            row.update(estimate=float(ov["estimate"]), std_error=float(ov["std_error"]),
                       ci_low=float(ov["ci_low"]), ci_high=float(ov["ci_high"]), p_value=float(ov["p_value"]),
                       truth=tv)
        except Exception as exc:  # record and go on: one failure must not kill a 10-minute run
            row.update(estimate=np.nan, std_error=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                       truth=truth.overall, error=f"{type(exc).__name__}: {exc}"[:200])
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def run_mc(reps: int = 200, seed: int = 2024, designs: tuple[str, ...] = ("fixed", "redraw"),
           scenarios: tuple[str, ...] | None = None, estimators: tuple[str, ...] | None = None,
           progress: bool = False) -> pd.DataFrame:
    """Per-replication results (one row per design x scenario x replication x estimator).

    ``scenarios`` / ``estimators`` restrict the design defaults (``DESIGNS``). Noise seed of
    replication ``r`` is ``seed * 100_000 + r``; in the ``redraw`` design this is also the
    world seed. BLAS runs single-threaded (multi-threaded OpenBLAS crawls on a shared machine).
    """
    with blas_threads(1):
        return _run_mc(reps, seed, designs, scenarios, estimators, progress)


def _run_mc(reps: int, seed: int, designs: tuple[str, ...], scenarios: tuple[str, ...] | None,
            estimators: tuple[str, ...] | None, progress: bool) -> pd.DataFrame:
    out: list[dict] = []
    fixed_world = W.build_world(SIZE, FIXED_WORLD_SEED)
    fixed_truth = W.compute_truth(fixed_world)
    for design in designs:
        spec = DESIGNS[design]
        scs = [s for s in spec["scenarios"] if scenarios is None or s in scenarios]
        ests = tuple(e for e in spec["estimators"] if estimators is None or e in estimators)
        t_design = time.perf_counter()
        for r in range(reps):
            noise_seed = seed * 100_000 + r
            if design == "fixed":
                w, table = fixed_world, fixed_truth
            else:
                w = W.build_world(SIZE, noise_seed)
                table = W.compute_truth(w)  # truth of THIS world's realised assignment
            draws = simulate_counts(w, noise_seed)
            for s in scs:
                sc = SCENARIOS[s]
                truth = Truth(w, sc, table)
                panel = make_panel(w, sc, draws[sc.outcome])
                for row in run_estimators(panel, sc.outcome, ests, truth):
                    row.update(design=design, scenario=s, rep=r, world_seed=w.seed, noise_seed=noise_seed)
                    out.append(row)
            if progress and (r + 1) % 10 == 0:
                el = time.perf_counter() - t_design
                print(f"[mc] {design}: {r + 1}/{reps} reps, {el:.0f}s", file=sys.stderr, flush=True)
    df = pd.DataFrame(out)
    ok = df["estimate"].notna()
    df["covered"] = ((df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"])).astype(float).where(ok)
    df["reject"] = ((df["ci_low"] > 0) | (df["ci_high"] < 0)).astype(float).where(ok)
    return df[REP_COLUMNS]


def summarize(reps: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, SD vs SE, coverage and rejection rate per design x scenario x estimator."""
    rows = []
    order = {e: i for i, e in enumerate(ESTIMATORS)}
    for (design, scen, est), g in reps.groupby(["design", "scenario", "estimator"], sort=False):
        ok = g[g["estimate"].notna()]
        n = len(ok)
        err = ok["estimate"] - ok["truth"]
        truth = ok["truth"].mean()
        bias = err.mean()
        cov = ok["covered"].astype(float).mean()
        rej = ok["reject"].astype(float).mean()
        rows.append({
            "design": design, "scenario": scen, "estimator": est, "target": g["target"].iloc[0],
            "n_reps": n, "n_failed": int(len(g) - n),
            "mean_estimate": ok["estimate"].mean(), "mean_truth": truth, "bias": bias,
            "bias_mcse": err.std(ddof=1) / math.sqrt(n) if n > 1 else np.nan,
            "bias_pct": 100 * bias / truth if abs(truth) > 1e-12 else np.nan,
            "rmse": math.sqrt((err**2).mean()) if n else np.nan,
            "emp_sd": err.std(ddof=1) if n > 1 else np.nan,
            "mean_se": ok["std_error"].mean(),
            "coverage": cov,
            "coverage_mcse": math.sqrt(cov * (1 - cov) / n) if n else np.nan,
            "reject_rate": rej,
            "sec_per_rep": g["seconds"].mean(),
        })
    s = pd.DataFrame(rows)
    key = {"design": list(DESIGNS), "scenario": list(SCENARIOS), "estimator": list(order)}
    s = s.sort_values(["design", "scenario", "estimator"], kind="stable",
                      key=lambda c: c.map({v: i for i, v in enumerate(key[c.name])}))
    return s.reset_index(drop=True)


def noise_free(w: W.World | None = None, scenarios: tuple[str, ...] = ("ttor_fight", "ttor_fight_urban",
                                                                         "placebo_total")) -> pd.DataFrame:
    """Estimators on the expected-value panels E[Y] and E[Y(0)] of the fixed world (no noise).

    For linear estimators ``est(E[Y])`` is the exact mean over noise draws; ``est(E[Y(0)])`` is
    the bias from non-parallel (level) trends; the remainder is the bias from effect heterogeneity.
    """
    w = W.build_world(SIZE, FIXED_WORLD_SEED) if w is None else w
    table = W.compute_truth(w)
    rows = []
    for s in scenarios:
        sc = SCENARIOS[s]
        truth = Truth(w, sc, table)
        p1 = make_panel(w, sc, expected(w, sc.outcome, True))
        p0 = make_panel(w, sc, expected(w, sc.outcome, False))
        r1 = {r["estimator"]: r for r in run_estimators(p1, sc.outcome, tuple(ESTIMATORS), truth)}
        r0 = {r["estimator"]: r for r in run_estimators(p0, sc.outcome, tuple(ESTIMATORS), truth)}
        for e in ESTIMATORS:
            a, b = r1[e], r0[e]
            rows.append({
                "scenario": s, "estimator": e, "target": a["target"], "truth": a["truth"],
                "est_EY": a["estimate"], "bias": a["estimate"] - a["truth"],
                "bias_parallel_trends": b["estimate"],
                "bias_heterogeneity": a["estimate"] - b["estimate"] - a["truth"],
                "n_stations": int(p1["station_id"].nunique()),
                "n_treated": int((p1.groupby("station_id")["first_treat"].first() > 0).sum()),
            })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- report
def _fmt(v, nd: int = 3) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.{nd}f}"


def md_table(df: pd.DataFrame, cols: dict[str, tuple[str, int]]) -> str:
    head = "| " + " | ".join(h for h, _ in cols.values()) + " |"
    sep = "|" + "|".join("---" if nd == 0 and c in ("estimator", "target") else "---:"
                         for c, (_, nd) in cols.items()) + "|"
    body = ["| " + " | ".join(_fmt(r[c], nd) for c, (_, nd) in cols.items()) + " |" for _, r in df.iterrows()]
    return "\n".join([head, sep, *body])


SUMMARY_COLS = {
    "estimator": ("estimator", 0), "target": ("target", 0), "mean_estimate": ("mean est.", 3),
    "mean_truth": ("truth", 3), "bias": ("bias", 3), "bias_mcse": ("MC SE", 3), "bias_pct": ("bias %", 1),
    "rmse": ("RMSE", 3), "emp_sd": ("emp. SD", 3), "mean_se": ("mean SE", 3), "coverage": ("coverage", 3),
    "reject_rate": ("reject H0", 3), "n_reps": ("reps", 0),
}
NOISE_FREE_COLS = {
    "estimator": ("estimator", 0), "target": ("target", 0), "truth": ("truth", 3), "est_EY": ("est. on E[Y]", 3),
    "bias": ("bias", 3), "bias_parallel_trends": ("… from level trends (est. on E[Y(0)])", 3),
    "bias_heterogeneity": ("… from effect heterogeneity", 3),
}


def render(summary: pd.DataFrame, nf: pd.DataFrame, settings: dict) -> str:
    parts = ["<!-- mc:begin (generated by benchmarks/mc_estimators.py; edit outside the markers) -->", ""]
    parts.append("### Settings\n")
    for k, v in settings.items():
        parts.append(f"* {k}: {v}")
    for (design, scen), g in summary.groupby(["design", "scenario"], sort=False):
        sc = SCENARIOS[scen]
        parts += ["", f"### Design `{design}` — {sc.label}", "",
                  md_table(g, SUMMARY_COLS if scen != "placebo_total" else
                           {k: v for k, v in SUMMARY_COLS.items() if k != "bias_pct"})]
    parts += ["", "### Noise-free decomposition (fixed world, expected-value panels)", "",
              "Every estimator here is linear in the outcome, so its value on E[Y] is its exact mean over",
              "noise draws. Bias = (estimate on E[Y(0)], i.e. failure of parallel trends in levels) +",
              "(effect heterogeneity)."]
    for scen, g in nf.groupby("scenario", sort=False):
        sc = SCENARIOS[scen]
        parts += ["", f"**{scen}** — {sc.label}; {g['n_stations'].iloc[0]} stations, "
                  f"{g['n_treated'].iloc[0]} treated", "", md_table(g, NOISE_FREE_COLS)]
    parts += ["", "<!-- mc:end -->"]
    return "\n".join(parts)


REPORT_HEAD = """# Monte Carlo: bias and coverage of the estimators on the demo world

Generated by `benchmarks/mc_estimators.py`; the block between the markers is rewritten on every run.

"""


def write_report(path: Path, block: str) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        pat = re.compile(r"<!-- mc:begin.*?<!-- mc:end -->", re.S)
        if pat.search(text):
            path.write_text(pat.sub(lambda _: block, text), encoding="utf-8")
            return
    path.write_text(REPORT_HEAD + block + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2024, help="master seed: noise/world seed of rep r = seed*100000+r")
    ap.add_argument("--designs", default="fixed,redraw")
    ap.add_argument("--report", default=str(ROOT / "docs" / "monte-carlo.md"), help="'' to skip")
    ap.add_argument("--csv", default="", help="optional path for the per-replication results")
    a = ap.parse_args(argv)
    designs = tuple(d for d in a.designs.split(",") if d)
    t0 = time.perf_counter()
    # one process, one BLAS thread: multi-threaded OpenBLAS crawls on a shared, oversubscribed machine
    with blas_threads(1):
        reps = run_mc(a.reps, a.seed, designs, progress=True)
        t_mc = time.perf_counter() - t0
        nf = noise_free()
    summary = summarize(reps)
    runtime = time.perf_counter() - t0
    pd.set_option("display.width", 200, "display.max_columns", 30)
    show = summary.drop(columns=["coverage_mcse", "n_failed", "sec_per_rep"])
    print(show.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print()
    print(nf.drop(columns=["n_stations", "n_treated"]).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    fails = reps[reps["error"] != ""]
    if len(fails):
        print(f"\n{len(fails)} failed estimator calls, e.g.:", fails["error"].value_counts().head(3).to_dict())
    print(f"\nruntime {runtime:.0f}s (Monte Carlo {t_mc:.0f}s)")
    per_design = reps.groupby("design")["seconds"].sum().round(0).to_dict()
    settings = {
        "replications": f"{a.reps} per design (master seed {a.seed}; replication r uses noise seed "
                        f"{a.seed}*100000+r, which in `redraw` is also the world seed)",
        "world": f"`build_world(\"{SIZE}\", {FIXED_WORLD_SEED})` in `fixed`; 100 stations x 84 months "
                 "(2019-01..2025-12)",
        "noise": "world DGP: `draw_counts` (gamma-Poisson, station-month shape 50, "
                 "station-month-category shape 20) + binomial diversion of non-police calls",
        "CI": "95 % normal/cluster CIs as returned by each estimator (clustered by station)",
        "runtime": f"{runtime:.0f} s total on {platform.machine()} (1 process, shared 2-core machine); "
                   f"estimator time by design: {per_design}",
        "failed estimator calls": str(len(fails)),
    }
    if a.report:
        write_report(Path(a.report), render(summary, nf, settings))
        print(f"report -> {a.report}")
    if a.csv:
        reps.to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
