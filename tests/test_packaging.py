"""Packaging and light imports.

* ``import evalkit`` loads nothing heavy; ``evalkit validate`` and ``evalkit brief`` never import
  scipy, linearmodels, the estimators or matplotlib (checked on ``sys.modules`` in a subprocess).
* A wheel built from the repository contains the notebooks and templates, and, installed into a
  fresh venv outside the repository, runs ``evalkit demo-data`` and ``evalkit run`` (slow).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "linearmodels", "matplotlib", "evalkit.estimators.cs", "evalkit.estimators.twfe",
         "evalkit.estimators.sunab", "evalkit.estimators.imputation", "evalkit.results", "evalkit.evaluation",
         "evalkit.viz.style")

PROBE = """
import json, sys
from evalkit.cli import app
try:
    app(sys.argv[2:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
"""


def _loaded_after(*cli_args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *cli_args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_evalkit_is_light():
    code = "import sys, evalkit; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('numpy', 'pandas', 'scipy', 'matplotlib', 'duckdb')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    import evalkit

    assert callable(evalkit.evaluate) and evalkit.EvaluationParams.__name__ == "EvaluationParams"


def test_validate_does_not_import_the_statistics_stack():
    assert _loaded_after("validate", str(ROOT / "params" / "two_teams_fights.yaml")) == []


def test_brief_does_not_import_the_statistics_stack(tmp_path):
    assert _loaded_after("brief", str(tmp_path / "missing.ipynb"), "--no-pdf") == []


PARAMS = """evaluation_id: packaged_run
reform: village_auxiliary
region: {{area_type: rural}}
outcomes: [dispute_resolution_rate]
estimators: [naive_yoy, twfe, cs]
sensitivity: false
pretrend_test: chi2
headline_se: analytic
lang: en
warehouse: {warehouse}
"""


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    # build from a copy of the project files, so setuptools' build/ folder is not left in the repository
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(project)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("evalkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for nb in ("evaluate_reform", "pilot_station", "design_pilot", "explore_data"):
        assert f"evalkit/notebooks/{nb}.ipynb" in names
    assert {"evalkit/templates/brief/index.html.j2", "evalkit/templates/brief/conf.json"} <= names

    # a fresh venv; its dependencies come from this interpreter's site-packages through a .pth file
    # (no re-download), evalkit itself only from the wheel (.pth files of that folder are not read,
    # so a development install there stays invisible)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_evalkit_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    # data files that installing the dependencies would put in the venv: ipykernel's kernelspec,
    # nbconvert's base templates
    for sub in ("kernels", "nbconvert"):
        src = Path(sysconfig.get_paths()["data"]) / "share" / "jupyter" / sub
        if src.is_dir():
            shutil.copytree(src, venv / "share" / "jupyter" / sub)
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-3000:]

    work = tmp_path / "work"  # outside the repository: nothing can be found via the source tree
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EVALKIT_TEST_WAREHOUSE")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = subprocess.run([str(py), "-c", "import evalkit; print(evalkit.__file__)"], capture_output=True,
                           text=True, cwd=work, env=env, check=True).stdout.strip()
    assert where.startswith(str(site)), where

    evalkit = str(venv / "bin" / "evalkit")
    wh = work / "data" / "warehouse.duckdb"
    demo = subprocess.run([evalkit, "demo-data", "--size", "small", "--seed", "7", "--out", str(work / "data" / "demo"),
                           "--warehouse", str(wh)], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert demo.returncode == 0 and wh.is_file(), demo.stderr[-3000:]
    params = work / "packaged_run.yaml"
    params.write_text(PARAMS.format(warehouse=wh), encoding="utf-8")
    pdf = shutil.which("chromium") is not None or shutil.which("chromium-browser") is not None
    run = subprocess.run([evalkit, "run", str(params), "--outputs", str(work / "out"), "--pdf" if pdf else "--no-pdf"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = work / "out" / "packaged_run"
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["headline"]["dispute_resolution_rate"]["estimator"] == "cs"
    assert res["text"]["headline"]["dispute_resolution_rate"]["sentence"]
    assert (out / "brief.html").is_file() and (not pdf or (out / "brief.pdf").stat().st_size > 0)
