"""Smoke test of benchmarks/mc_cs_bootstrap.py and of the truth it relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cs import make_panel  # noqa: E402

from evalkit.estimators.cs import estimate_cs  # noqa: E402


def test_noise_free_outcome_gives_the_truth():
    d = make_panel(300, 12, seed=3, with_truth=True)
    assert np.array_equal(d.drop(columns="y_clean"), make_panel(300, 12, seed=3))  # same draws
    gt = estimate_cs(d, "y_clean").rows("gt")
    pre = gt["event_time"] < 0
    np.testing.assert_allclose(gt.loc[pre, "estimate"], 0.0, atol=1e-12)  # parallel trends hold exactly
    assert (gt.loc[~pre, "estimate"] > 0).all()  # the design's effects are positive after adoption


def test_script_runs():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mc_cs_bootstrap.py"), "--reps", "3",
                          "--units", "300", "--periods", "10", "--draws", "199"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert "uniform band, all event times at once" in out and "simple ATT: bias" in out
