"""Every notebook: committed thin and stripped, packaged, and runs top to bottom under papermill.

The packaged copies (``src/evalkit/notebooks``) are what ``evalkit run`` executes; the repository's
``notebooks/`` folder holds identical copies for JupyterLab (edit one, copy it over the other).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "src" / "evalkit" / "notebooks"
NOTEBOOKS = sorted(PACKAGED.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_stripped_and_parameterized(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] and nb.metadata["language_info"]["name"] == "python"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"
            # thin: no function or class definitions, no SQL, no estimator internals
            assert "def " not in cell.source and "class " not in cell.source and "SELECT" not in cell.source


def test_all_four_notebooks_exist():
    from evalkit.runner import NOTEBOOKS as NAMES
    from evalkit.runner import notebook_path

    names = {p.stem for p in NOTEBOOKS}
    assert set(NAMES) == names
    assert all(notebook_path(n).parent.resolve() == PACKAGED.resolve() for n in NAMES)


def test_repository_notebooks_equal_the_packaged_ones():
    repo = {p.name: p for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert set(repo) == {p.name for p in NOTEBOOKS}
    for p in NOTEBOOKS:
        assert repo[p.name].read_bytes() == p.read_bytes(), (
            f"notebooks/{p.name} differs from src/evalkit/notebooks/{p.name} (the packaged copy `evalkit run` "
            "executes): copy the edited one over the other")


def _no_errors(nb_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(nb_path, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return nb


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, params",
    [
        ("explore_data", {}),
        ("design_pilot", {"sims": 40, "effects_pct": [0, 10, 20], "n_treated": [5, 10]}),
    ],
)
def test_notebook_runs_under_papermill(demo_warehouse, tmp_path, name, params):
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(PACKAGED / f"{name}.ipynb"), str(out),
                        parameters={"warehouse": str(demo_warehouse), **params},
                        kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    nb = _no_errors(out)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the notebook shows its charts"


@pytest.mark.slow
def test_pilot_station_notebook_via_evalkit_run(demo_warehouse, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evalkit", "run", str(ROOT / "params" / "station_pilot.yaml"),
                           "--warehouse", str(demo_warehouse), "--outputs", str(tmp_path), "--no-pdf"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = _no_errors(tmp_path / "station_pilot" / "executed.ipynb")
    html = (tmp_path / "station_pilot" / "brief.html").read_text(encoding="utf-8")
    assert "合成双重差分" in html and "合成对照" in html
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
