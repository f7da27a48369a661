"""Export an executed notebook to the brief: HTML (nbconvert, packaged template) and PDF.

Route (see docs/architecture.md): nbconvert renders HTML with the packaged ``brief``
template — code cells, prompts, stderr and the exporter marker removed — and headless
Chromium prints it to PDF. CSS paged media puts the evaluation id, page numbers and, for
synthetic data, the synthetic-data notice on every page. Files are written atomically.
"""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from evalkit.brief_marker import BRIEF_MIME
from evalkit.fileperm import public_mode
from evalkit.i18n import t


def templates_dir() -> Path:
    """The packaged nbconvert templates (``evalkit/templates``), found through importlib.resources."""
    from importlib.resources import files

    return Path(str(files("evalkit") / "templates"))


class BriefError(RuntimeError):
    """The notebook cannot be exported as a brief (errors in it, no marker, no browser)."""


@dataclass(frozen=True)
class BriefFiles:
    html: Path
    pdf: Path | None


def _marker(nb: nbformat.NotebookNode) -> dict:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if BRIEF_MIME in data:
                return dict(data[BRIEF_MIME])
    raise BriefError("the notebook has no evalkit brief marker: was it executed with evalkit (report.show_header)?")


def clean_for_brief(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of ``nb`` without code, stderr, markers, and with an error check."""
    nb = copy.deepcopy(nb)
    errors = []
    # the brief is the notebook's outputs only: markdown and raw cells are for the researcher
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(nb.cells):
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
                continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            if BRIEF_MIME in out.get("data", {}):
                continue
            if "application/javascript" in out.get("data", {}):  # a brief runs no script
                out = copy.deepcopy(out)
                del out["data"]["application/javascript"]
                if not out["data"]:
                    continue
            kept.append(out)
        cell["outputs"] = kept
        cell["source"] = ""
    if errors:
        raise BriefError("the executed notebook has errors; no brief is made from it:\n" + "\n".join(errors))
    return nb


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        public_mode(fd)  # mkstemp makes 0600; outputs follow the umask like any other file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_CSS_PLAIN = re.compile(r"[A-Za-z0-9 _.,:;()\-]")


def css_string(value: object) -> str:
    """``value`` escaped for the inside of a double-quoted CSS string (``content: "…"``): every ASCII
    character except letters, digits, space and ``_.,:;()-`` — and every control or separator
    character — becomes a 6-digit ``\\XXXXXX`` escape, so quotes, backslashes, newlines and ``</style>``
    stay text. Printable non-ASCII (Chinese) is kept as is."""
    out = []
    for ch in str(value):
        if _CSS_PLAIN.fullmatch(ch) or (ord(ch) > 0x7F and ch.isprintable()):
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06X}")
    return "".join(out)


def render_html(nb: nbformat.NotebookNode) -> str:
    marker = _marker(nb)
    lang = marker.get("lang", "zh")
    clean = clean_for_brief(nb)
    page_before, page_after = ("第 ", " 页") if lang == "zh" else ("Page ", "")
    furniture = {
        "synthetic": bool(marker.get("synthetic")),
        "top_left": t("synthetic_notice", lang) if marker.get("synthetic") else "",
        "top_right": marker.get("title", ""),
        "bottom_left": f"{t('eval_id', lang)}: {marker['evaluation_id']}",
        "page_word_before": page_before,
        "page_word_after": page_after,
        "watermark": "合成数据 SYNTHETIC" if marker.get("synthetic") else "",
    }
    exporter = HTMLExporter(template_name="brief", extra_template_basedirs=[str(templates_dir())],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    # params values (title, evaluation id) reach the page furniture: escaped per context in the template
    exporter.register_filter("css_string", css_string)
    exporter.register_filter("html_text", lambda v: html.escape(str(v), quote=True))
    body, _ = exporter.from_notebook_node(
        clean, resources={"evalkit": furniture, "language_code": "zh-CN" if lang == "zh" else "en",
                          "metadata": {"name": marker["evaluation_id"]}}
    )
    return body


def find_chromium() -> str:
    for cand in (os.environ.get("EVALKIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise BriefError("no Chromium found for PDF export: run `make setup` (installs Debian's chromium) "
                     "or set EVALKIT_CHROMIUM")


def html_to_pdf(html_path: Path, pdf_path: Path, timeout: int = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (no network, fresh profile).

    Scripts are off through the page itself: the brief template carries a Content-Security-Policy
    (``default-src 'none'``) that blocks every script, in this route and in any browser opening
    ``brief.html``. The command-line switch ``--blink-settings=scriptEnabled=false`` cannot be used:
    with it Chromium 156's headless ``--print-to-pdf`` exits 0 without writing the PDF."""
    chromium = find_chromium()
    pdf_path = pdf_path.resolve()
    with tempfile.TemporaryDirectory(prefix="evalkit-chromium-") as profile:
        tmp_pdf = Path(profile) / "out.pdf"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp_pdf}", html_path.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
            raise BriefError(f"Chromium could not print {html_path} (exit {proc.returncode}): {proc.stderr[-500:]}")
        _atomic_write(pdf_path, tmp_pdf.read_bytes())
    return pdf_path


def export_brief(executed: str | Path, out_dir: str | Path | None = None, *, pdf: bool = True) -> BriefFiles:
    """Re-export ``executed.ipynb`` to ``brief.html`` and ``brief.pdf`` (beside it by default)."""
    executed = Path(executed)
    if not executed.is_file():
        raise BriefError(f"executed notebook not found: {executed}")
    out = Path(out_dir) if out_dir else executed.parent
    nb = nbformat.read(executed, as_version=4)
    html_text = render_html(nb)
    html_path = out / "brief.html"
    _atomic_write(html_path, html_text.encode("utf-8"))
    pdf_path = html_to_pdf(html_path, out / "brief.pdf") if pdf else None
    return BriefFiles(html_path, pdf_path)
