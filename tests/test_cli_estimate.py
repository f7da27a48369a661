"""`evalkit estimate`: any estimator on any panel file, table on stdout, full JSON result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalkit.results import EstimationResult

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mpdta_files(tmp_path_factory) -> dict[str, Path]:
    moderndid = pytest.importorskip("moderndid")
    d = pd.read_pickle(os.path.join(os.path.dirname(moderndid.__file__), "core", "datasets", "mpdta_long.pkl.gz"))
    root = tmp_path_factory.mktemp("mpdta")
    files = {"csv": root / "mpdta.csv", "parquet": root / "mpdta.parquet"}
    d.to_csv(files["csv"], index=False)
    d.to_parquet(files["parquet"], index=False)
    return files


def _estimate(panel: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalkit", "estimate", str(panel), "--outcome", "lemp",
                           "--unit", "countyreal", "--time", "year", "--cohort", "first.treat",
                           "--json", str(out), *extra], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cs_on_mpdta_matches_r_did(mpdta_files, tmp_path, fmt):
    out = tmp_path / "cs.json"
    proc = _estimate(mpdta_files[fmt], out, "--method", "cs")
    assert proc.returncode == 0, proc.stderr
    assert "ATT" in proc.stdout and "Callaway" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["estimator"] == "cs"
    res = EstimationResult.from_dict(data)
    assert res.att == pytest.approx(-0.039951, abs=5e-7)      # R did vignette: simple ATT
    assert res.se == pytest.approx(0.012034, abs=5e-6)
    assert len(res.rows("gt")) == 12                          # every ATT(g,t)
    assert {"event", "group", "calendar"} <= set(res.estimates["kind"])


@pytest.mark.parametrize("method", ["twfe", "sa", "imputation", "bacon", "event_twfe"])
def test_other_methods_write_results(mpdta_files, tmp_path, method):
    out = tmp_path / f"{method}.json"
    proc = _estimate(mpdta_files["parquet"], out, "--method", method)
    assert proc.returncode == 0, proc.stderr
    res = EstimationResult.from_dict(json.loads(out.read_text(encoding="utf-8")))
    assert res.estimator == method and pd.notna(res.att)


def _squash(text: str) -> str:
    """Drop rich's box drawing and line wrapping."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│╭╮╰╯─")


def test_bad_inputs_give_clear_errors(mpdta_files, tmp_path):
    proc = _estimate(mpdta_files["csv"], tmp_path / "x.json", "--method", "magic")
    assert proc.returncode != 0 and _squash("unknown method 'magic'") in _squash(proc.stderr)
    proc = subprocess.run([sys.executable, "-m", "evalkit", "estimate", str(mpdta_files["csv"]), "--outcome", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0 and _squash("'first_treat', 'nope']; columns are ['year'") in _squash(proc.stderr)
