"""End to end: demo world → warehouse → `evalkit run` (papermill) → results.json → PDF brief.

The PDF pages are kept as PNG artefacts under ``tests/artifacts/`` for a visual check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
EVALKIT = [sys.executable, "-m", "evalkit"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

needs_pdf_tools = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdffonts") and shutil.which("pdftoppm")),
    reason="poppler-utils not installed (make setup installs it)",
)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _run(params: str, wh: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*EVALKIT, "run", str(ROOT / "params" / params), "--warehouse", str(wh),
                           "--outputs", str(out)], capture_output=True, text=True, cwd=ROOT)


def _pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _page_text(pdf: Path, page: int) -> str:
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


def _raw_text(pdf: Path) -> str:
    """Text in content order: the diagonal watermark cannot split a heading as in the layout mode."""
    return subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _keep_pngs(pdf: Path, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "70", str(pdf), str(ARTIFACTS / name)], check=True)


@needs_pdf_tools
@pytest.mark.parametrize(
    "params, lang, notice",
    [("two_teams_fights.yaml", "zh", "合成演示数据"), ("two_teams_fights_en.yaml", "en", "SYNTHETIC DEMO DATA")],
)
def test_run_writes_notebook_results_and_brief(demo_warehouse, tmp_path, params, lang, notice):
    proc = _run(params, demo_warehouse, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    eid = params.removesuffix(".yaml")
    out = tmp_path / eid

    nb = nbformat.read(out / "executed.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors

    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    head = res["headline"]["incidents_fight"]
    assert res["synthetic"] is True and res["params"]["lang"] == lang
    assert head["estimate"] is not None and head["ci_low"] < head["estimate"] < head["ci_high"]
    twfe = res["results"]["incidents_fight"]["twfe"]
    assert twfe["estimates"][0]["std_error"] > 0

    pdf = out / "brief.pdf"
    n_pages = _pdf_pages(pdf)
    assert n_pages >= 2
    texts = [_page_text(pdf, i) for i in range(1, n_pages + 1)]
    full = "\n".join(texts)
    words = res["text"]["headline"]["incidents_fight"]  # the sentences rendered from the numbers (brief_text)
    assert _squash(words["sentence"]) in _squash(full)
    assert _squash(words["question"]) in _squash(full)
    for i, page in enumerate(texts, start=1):
        assert notice in page, f"synthetic notice missing on page {i}"
        assert eid in page, f"evaluation id missing on page {i}"
    for forbidden in ("import evalkit", "report.show", "Traceback", "Error", "evaluate(params)"):
        assert forbidden not in full
    raw = _raw_text(pdf)
    if lang == "zh":
        assert "证据评级" in raw and "同比口径" in raw
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        cjk = [ln for ln in fonts.splitlines() if re.search(r"WenQuanYi|Noto.*CJK|CJK", ln)]
        assert cjk and all(" yes " in ln for ln in cjk), fonts
    else:
        assert "Strength of evidence" in raw and "year-on-year" in raw
    _keep_pngs(pdf, eid)
    html = (out / "brief.html").read_text(encoding="utf-8")
    assert html.count("<img") >= 2, "event-study and trends charts are in the brief"
    assert "import evalkit" not in html and 'class="jp-InputArea' not in html


@needs_pdf_tools
def test_brief_reexport_without_rerun(demo_warehouse, tmp_path):
    proc = _run("village_auxiliary_disputes.yaml", demo_warehouse, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "village_auxiliary_disputes"
    (out / "brief.pdf").unlink()
    re_out = tmp_path / "again"
    proc = subprocess.run([*EVALKIT, "brief", str(out / "executed.ipynb"), "--out-dir", str(re_out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert _pdf_pages(re_out / "brief.pdf") >= 1
    assert "纠纷化解率" in _page_text(re_out / "brief.pdf", 1)


def test_invalid_params_fail_before_any_notebook(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("reform: 两队一室\noutcomes: [incidents_fight]\nwindw: {start: 2019-01}\n", encoding="utf-8")
    proc = subprocess.run([*EVALKIT, "run", str(bad), "--outputs", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "windw: unknown key" in proc.stderr and str(bad) in proc.stderr
    assert not (tmp_path / "out").exists()
