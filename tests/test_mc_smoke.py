"""Smoke test of the estimator Monte Carlo (benchmarks/mc_estimators.py): 3 replications, fast."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mc_estimators", ROOT / "benchmarks" / "mc_estimators.py")
mc = importlib.util.module_from_spec(_spec)
sys.modules["mc_estimators"] = mc  # dataclasses resolve annotations through sys.modules
_spec.loader.exec_module(mc)


def test_mc_core_runs_three_reps():
    reps = mc.run_mc(reps=3, seed=1, designs=("fixed", "redraw"), scenarios=("ttor_fight", "placebo_total"),
                     estimators=("twfe", "cs_never", "imputation", "naive_yoy"))
    assert list(reps.columns) == mc.REP_COLUMNS
    assert (reps["error"] == "").all(), reps.loc[reps["error"] != "", "error"].tolist()
    # fixed: 2 scenarios x 4 estimators; redraw: 1 scenario x 3 (naive_yoy is not a core estimator)
    assert len(reps) == 3 * (2 * 4 + 3)
    assert reps["estimate"].notna().all() and reps["std_error"].gt(0).all()
    fixed = reps[(reps["design"] == "fixed") & (reps["scenario"] == "ttor_fight")]
    # the fixed design has one estimand: the same truth in every replication, and it is an effect < 0
    assert fixed.groupby("estimator")["truth"].nunique().eq(1).all()
    assert (fixed.loc[fixed["target"] == "overall", "truth"] < 0).all()
    assert (reps.loc[reps["scenario"] == "placebo_total", "truth"] == 0).all()
    # the redraw design draws a new world per replication, hence a new truth
    assert reps.loc[reps["design"] == "redraw", "world_seed"].nunique() == 3

    summary = mc.summarize(reps)
    expected = {"design", "scenario", "estimator", "target", "n_reps", "mean_estimate", "mean_truth", "bias",
                "bias_pct", "rmse", "emp_sd", "mean_se", "coverage", "reject_rate"}
    assert expected <= set(summary.columns)
    assert len(summary) == 2 * 4 + 3
    assert summary["coverage"].between(0, 1).all() and (summary["n_reps"] == 3).all()


def test_simulated_noise_matches_world_and_expected_values():
    w = mc.W.build_world("small", 42)
    a = mc.simulate_counts(w, 5)
    b = mc.simulate_counts(w, 5)
    c = mc.simulate_counts(w, 6)
    assert np.array_equal(a["incidents_fight"], b["incidents_fight"])
    assert not np.array_equal(a["incidents_fight"], c["incidents_fight"])
    # draws are centred on the world's expected values (treated potential outcome)
    ey = mc.expected(w, "incidents_total", True)
    assert abs(a["incidents_total"].sum() / ey.sum() - 1) < 0.01
