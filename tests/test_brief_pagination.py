"""The brief's pages: an output taller than the space left on a page breaks between its lines instead of
moving whole to the next page (JupyterLab's print CSS keeps every output in one piece, which left page 1
of longer English briefs with the title only)."""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest

from evalkit import export
from evalkit.brief_marker import BRIEF_MIME

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("pdftotext")),
                                reason="needs chromium and pdftotext")


def _brief(lines: int) -> nbformat.NotebookNode:
    """A title output, then one text output of ``lines`` paragraphs (about 1.6 A4 pages for 40)."""
    v4 = nbformat.v4
    marker = {"evaluation_id": "pages", "lang": "en", "synthetic": False, "title": "Pagination"}
    title = '<div class="ek-title"><h1>Evaluation of a reform</h1><div class="ek-sub">pages</div></div>'
    body = "".join(f"<p>Paragraph {i:02d}: the answer and its interval, in words a leader reads.</p>"
                   for i in range(lines))
    outputs = [v4.new_output("display_data", {BRIEF_MIME: marker, "text/plain": ""}),
               v4.new_output("display_data", {"text/html": title}),
               v4.new_output("display_data", {"text/html": f'<div class="ek-block"><h2>The answer</h2>{body}</div>'})]
    return v4.new_notebook(cells=[v4.new_code_cell("", outputs=outputs)])


def _page(pdf, n: int) -> str:
    return subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_a_long_output_starts_on_the_page_of_the_title(tmp_path):
    html, pdf = tmp_path / "brief.html", tmp_path / "brief.pdf"
    html.write_text(export.render_html(_brief(40)), encoding="utf-8")
    export.html_to_pdf(html, pdf)
    first, second = _page(pdf, 1), _page(pdf, 2)
    assert "Evaluation of a reform" in first
    assert "The answer" in first and "Paragraph 00" in first  # not moved whole to page 2
    assert "Paragraph 39" not in first and "Paragraph 39" in second  # the rest follows on the next page
