"""A real browser: JupyterLab on localhost (token required), evaluate_reform.ipynb opened in
headless Chromium (Debian's, driven by Playwright), Run All, and the result table must
appear with no error output. Skipped where no Chromium or Playwright is installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path, demo_warehouse):
    """JupyterLab serving a copy of the notebook whose parameters point at the test warehouse."""
    nb = nbformat.read(ROOT / "notebooks" / "evaluate_reform.ipynb", as_version=4)
    param_cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    param_cell.source = param_cell.source.replace('"data/warehouse.duckdb"', repr(str(demo_warehouse)))
    param_cell.source = param_cell.source.replace(
        'estimators = ["naive_yoy", "did2x2", "twfe", "event_twfe", "cs", "sa", "imputation", "bacon"]',
        'estimators = ["naive_yoy", "twfe", "event_twfe", "imputation"]')
    nbformat.write(nb, tmp_path / "evaluate_reform.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--ServerApp.open_browser=False", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + proc.stdout.read().decode()[-2000:])
    # the token is required: without it the API refuses
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}/api/contents", timeout=5)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (make setup installs Debian's chromium)")
def test_run_all_in_jupyterlab_shows_result_table(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token = lab
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/evaluate_reform.ipynb?token={token}", timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # wait for the kernel to be ready, then Run → Run All Cells
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-DebuggerBugButton",
                               timeout=120_000, state="attached")
        page.wait_for_timeout(2000)
        page.click(".lm-MenuBar-item:has-text('Run')", timeout=30_000)
        page.click(".lm-Menu-item:has-text('Run All Cells')", timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.wait_for_selector("table.ek-table", timeout=300_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab_run_all.png"), full_page=False)
        # let the remaining cells finish
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.jp-InputArea-prompt')).every(p => !p.textContent.includes('*'))",
            timeout=300_000,
        )
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_run_all.png"), full_page=False)
        errors = page.query_selector_all(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        error_text = [e.inner_text() for e in errors if "Traceback" in e.inner_text() or "Error" in e.inner_text()]
        table_text = page.inner_text("table.ek-table")
        browser.close()
    assert not error_text, error_text
    assert "imputation" in table_text.lower() or "插补" in table_text
    assert "双向固定效应" in table_text
