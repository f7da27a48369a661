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
from moderndid_refs import load_mpdta

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mpdta_files(tmp_path_factory) -> dict[str, Path]:
    d = load_mpdta().drop(columns="state")  # tests/data/mpdta.csv.gz (source: tests/data/mpdta.SOURCE.md)
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
    assert data["schema_version"] == 2 and data["estimator"] == "cs"
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
    assert proc.returncode == 2 and "unknown method 'magic'; choose from naive_yoy" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "evalkit", "estimate", str(mpdta_files["csv"]), "--outcome", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "column 'station_id' not in the panel (missing: ['station_id', 'period', 'first_treat', 'nope']); columns are [year, countyreal" in proc.stderr


# ---------------------------------------------------------------------------- panel errors, options, weights
def _small_panel() -> pd.DataFrame:
    rows = []
    for i in range(16):
        g = 0 if i < 8 else 8
        for t in range(1, 16):
            rows.append({"station_id": f"s{i:02d}", "period": t, "first_treat": g, "pop": 1.0 + i % 3,
                         "y": 10.0 + 0.1 * t + (i % 4) + (-1.0 if g and t >= g else 0.0) + 0.01 * ((i * t) % 7)})
    return pd.DataFrame(rows)


def _run(panel: pd.DataFrame, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    f = tmp_path / "panel.csv"
    panel.to_csv(f, index=False)
    return subprocess.run([sys.executable, "-m", "evalkit", "estimate", str(f), "--outcome", "y", *args],
                          capture_output=True, text=True, cwd=ROOT)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("method", ["naive_yoy", "sdid", "twfe", "cs"])
def test_inf_outcome_is_a_one_line_error(tmp_path, method):
    p = _small_panel()
    p.loc[20, "y"] = float("inf")
    msg = _one_line_error(_run(p, tmp_path, "--method", method))
    assert "column 'y': non-finite outcome (inf) in 1 row, first rows [20]" in msg


def test_duplicated_rows_and_varying_cohort(tmp_path):
    p = _small_panel()
    msg = _one_line_error(_run(pd.concat([p, p.iloc[[3]]], ignore_index=True), tmp_path, "--method", "sa"))
    assert "column 'period': duplicated (station_id, period) pair in 2 rows, first rows [3, 240]" in msg
    p.loc[130, "first_treat"] = 9
    msg = _one_line_error(_run(p, tmp_path, "--method", "twfe"))
    assert "column 'first_treat': adoption period varies within a 'station_id' unit" in msg


def test_options_a_method_does_not_take_are_refused(tmp_path):
    msg = _one_line_error(_run(_small_panel(), tmp_path, "--method", "twfe", "--bootstrap", "9"))
    assert "--bootstrap does not apply to method twfe" in msg
    msg = _one_line_error(_run(_small_panel(), tmp_path, "--method", "bacon", "--weights", "pop"))
    assert "method bacon does not take observation weights" in msg and "methods: did2x2, twfe" in msg
    msg = _one_line_error(_run(_small_panel(), tmp_path, "--method", "sc", "--trim-e", "3"))
    assert "--trim-e expects LO,HI" in msg


def test_bad_weights_column_is_a_one_line_error(tmp_path):
    p = _small_panel()
    p.loc[[4, 9], "pop"] = -1.0
    msg = _one_line_error(_run(p, tmp_path, "--method", "cs", "--weights", "pop"))
    assert "column 'pop': negative weight in 2 rows, first rows [4, 9]" in msg


def test_help_lists_every_spec():
    from evalkit.estimators import SPECS

    proc = subprocess.run([sys.executable, "-m", "evalkit", "estimate", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    for name in SPECS:
        assert name in proc.stdout
    assert "estimator: " + " | ".join(SPECS) in proc.stdout          # --method help iterates the specs
    assert "methods: cs, sdid, sc" in proc.stdout                     # --seed: every spec that takes it


def test_naive_and_sdid_write_the_result_contract(tmp_path):
    for method, extra in (("naive_yoy", ["--window", "5"]), ("sdid", ["--reps", "20", "--seed", "1"])):
        out = tmp_path / f"{method}.json"
        proc = _run(_small_panel(), tmp_path, "--method", method, "--json", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        res = EstimationResult.from_json(out)
        assert res.meta["sample"]["n_units"] == 16 and res.meta["estimand"] and res.context is None
        assert (res.estimates["kind"] == "overall").sum() == 1


@pytest.mark.parametrize("method", ["cs", "twfe"])
def test_weights_reach_the_estimator(tmp_path, method):
    from evalkit.estimators import get_estimator

    p = _small_panel()
    p["y"] = p["y"] + 0.3 * p["pop"] * (p["first_treat"] > 0) * (p["period"] >= p["first_treat"])
    out = tmp_path / "w.json"
    proc = _run(p, tmp_path, "--method", method, "--weights", "pop", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    res = EstimationResult.from_json(out)
    direct_w = get_estimator(method)(p, "y", weights="pop")
    direct = get_estimator(method)(p, "y")
    assert res.att == pytest.approx(direct_w.att, rel=1e-10) and res.se == pytest.approx(direct_w.se, rel=1e-10)
    assert abs(res.att - direct.att) > 1e-3                   # the weights changed the estimate
    if method == "cs":  # twfe fills meta["sample"] once the fe-engine branch converts it to the result contract
        assert res.meta["sample"]["weights"] == "pop"


# ---------------------------------------------------------------------------- dose and switching (issue 17)
def _dose_panel(n: int = 48, seed: int = 0) -> pd.DataFrame:
    """Staggered adoption at periods 3 and 5 (a third never treated); effect 2 × dose after adoption."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lam = rng.normal(size=8)
    rows = []
    for i in range(n):
        g = (0, 3, 5)[i % 3]
        d = float(rng.uniform(0.2, 1.0)) if g else 0.0
        a = rng.normal()
        for t in range(1, 7):
            post = g != 0 and t >= g
            rows.append({"station_id": f"s{i:02d}", "period": t, "first_treat": g, "coverage": d if post else 0.0,
                         "y": a + lam[t] + (2.0 * d if post else 0.0) + 0.1 * rng.normal()})
    return pd.DataFrame(rows)


def _switch_panel(n: int = 60, seed: int = 5) -> pd.DataFrame:
    """Treatment levels 0/1/2 that go up and down; outcome = unit + period effects + 0.7 × treatment + noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lam = rng.normal(size=8)
    rows = []
    for i in range(n):
        path = np.full(8, float(rng.integers(0, 3)))
        for _ in range(rng.integers(0, 3)):
            f = rng.integers(1, 8)
            path[f:] = max(0.0, path[f - 1] + rng.choice([-1.0, 1.0]))
        a = rng.normal()
        rows += [{"station_id": f"s{i:02d}", "period": t + 1, "in_programme": path[t],
                  "y": a + lam[t] + 0.7 * path[t] + 0.1 * rng.normal()} for t in range(8)]
    return pd.DataFrame(rows)


def test_dose_through_the_cli_equals_a_direct_call(tmp_path):
    from evalkit.estimators import get_estimator

    p = _dose_panel()
    out = tmp_path / "dose.json"
    proc = _run(p, tmp_path, "--method", "dose", "--treatment", "coverage", "--degree", "1", "--knots", "0",
                "--bootstrap", "49", "--seed", "7", "--control", "notyet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ATT(d=" in proc.stdout and "ACRT(d=" in proc.stdout and "ACR" in proc.stdout  # the curve is printed
    res = EstimationResult.from_json(out)
    assert res.estimator == "dose" and res.meta["sample"]["n_units"] == 48
    direct = get_estimator("dose")(p, "y", dose="coverage", degree=1, knots=0, bootstrap=49, seed=7,
                                   control="notyet")
    assert res.att == pytest.approx(direct.att, rel=1e-12) and res.se == pytest.approx(direct.se, rel=1e-12)
    curve, ref = res.rows("dose"), direct.rows("dose")
    assert len(curve) == len(ref) > 0
    assert curve["estimate"].to_numpy() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
    assert curve["ci_low"].to_numpy() == pytest.approx(ref["ci_low"].to_numpy(), rel=1e-12)
    # the options reached the estimator: a quadratic curve differs from the linear one
    quad = tmp_path / "quad.json"
    proc = _run(p, tmp_path, "--method", "dose", "--treatment", "coverage", "--degree", "2", "--bootstrap", "0",
                "--json", str(quad))
    assert proc.returncode == 0, proc.stderr
    q = EstimationResult.from_json(quad).rows("dose")["estimate"].to_numpy()
    assert abs(q - ref["estimate"].to_numpy()).max() > 1e-6


def test_switching_through_the_cli_equals_a_direct_call(tmp_path):
    from evalkit.estimators import get_estimator

    p = _switch_panel()
    out = tmp_path / "switching.json"
    proc = _run(p, tmp_path, "--method", "switching", "--treatment", "in_programme", "--effects", "3",
                "--placebo", "2", "--switchers", "in", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Av_tot_effect" in proc.stdout and "Effect_3" in proc.stdout and "Placebo_2" in proc.stdout
    res = EstimationResult.from_json(out)
    assert res.estimator == "switching" and res.meta["switchers"] == "in" and res.meta["treatment"] == "in_programme"
    direct = get_estimator("switching")(p, "y", treatment="in_programme", effects=3, placebo=2, switchers="in")
    assert res.att == pytest.approx(direct.att, rel=1e-12) and res.se == pytest.approx(direct.se, rel=1e-12)
    assert res.rows("event")["estimate"].to_numpy() == pytest.approx(direct.rows("event")["estimate"].to_numpy(),
                                                                     rel=1e-12)
    assert list(res.rows("event")["term"]) == ["Effect_1", "Effect_2", "Effect_3", "Placebo_1", "Placebo_2"]
    assert res.att == pytest.approx(0.7, abs=0.1)                  # the planted effect per unit of treatment


@pytest.mark.parametrize("panel, args, message", [
    ("dose", ["--method", "dose"], "method dose needs --treatment COLUMN (the station-period dose column)"),
    ("switch", ["--method", "switching"], "method switching needs --treatment COLUMN"),
    ("dose", ["--method", "cs", "--treatment", "coverage"], "--treatment does not apply to method cs; methods: dose, switching"),
    ("dose", ["--method", "dose", "--treatment", "nope"], "--treatment column 'nope' not in the panel; columns are [station_id"),
    ("switch", ["--method", "switching", "--treatment", "nope"], "--treatment column 'nope' not in the panel"),
    ("switch", ["--method", "switching", "--treatment", "in_programme", "--cohort", "g"],
     "--cohort does not apply to method switching"),
    ("switch", ["--method", "switching", "--treatment", "in_programme", "--switchers", "up"],
     "--switchers must be in, out or both, got 'up'"),
    ("dose", ["--method", "dose", "--treatment", "coverage", "--effects", "2"], "--effects does not apply to method dose"),
    ("dose", ["--method", "twfe", "--degree", "2"], "--degree does not apply to method twfe"),
    ("dose", ["--method", "dose", "--treatment", "coverage", "--knots", "a,b"], "--knots expects a count or"),
])
def test_dose_and_switching_option_errors_are_one_line(tmp_path, panel, args, message):
    p = _dose_panel() if panel == "dose" else _switch_panel()
    assert message in _one_line_error(_run(p, tmp_path, *args))
