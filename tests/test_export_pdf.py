"""The brief's PDF: one CJK typeface for every font weight (evalkit-cjk in the brief template)."""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest

from evalkit import export
from evalkit.brief_marker import BRIEF_MIME

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("pdffonts")
                                     and shutil.which("pdftotext")),
                                reason="needs chromium and poppler-utils")


def _has_wqy() -> bool:
    fc = shutil.which("fc-list")
    return bool(fc) and "WenQuanYi Zen Hei" in subprocess.run([fc], capture_output=True, text=True).stdout


def _weights_brief() -> nbformat.NotebookNode:
    """Text at every weight a brief uses: regular paragraphs, weight-500 headings, bold sentence, badge,
    synthetic notice and table headers, and the page furniture in the margin boxes."""
    v4 = nbformat.v4
    marker = {"evaluation_id": "fonts", "lang": "zh", "synthetic": True, "title": "字体"}
    html = ('<div class="ek-title"><h1>两队一室改革效果评估</h1><div class="ek-sub">评估编号</div></div>'
            '<div class="ek-synthetic">合成演示数据</div>'
            '<div class="ek-block"><h2>结论</h2><p class="ek-sentence">打架斗殴警情下降 10.2%。</p>'
            '<p><span class="ek-badge">证据有限</span> 正文文字。</p>'
            '<table class="ek-table"><tr><th>方法</th><th>估计值</th></tr><tr><td>插补</td><td>-1.0</td></tr>'
            '</table><p><strong>粗体</strong> 与 <b>加粗</b></p></div>')
    outputs = [v4.new_output("display_data", {BRIEF_MIME: marker, "text/plain": ""}),
               v4.new_output("display_data", {"text/html": html})]
    return v4.new_notebook(cells=[v4.new_code_cell("", outputs=outputs)])


@pytest.mark.skipif(not _has_wqy(), reason="needs the WenQuanYi Zen Hei font")
def test_every_weight_prints_with_one_cjk_typeface(tmp_path):
    """fontconfig answers each weight of a regular-only font with another typeface of the same 17 MB file,
    and Chromium's print path copies every typeface's whole file (three copies for a brief before): the
    template's evalkit-cjk face serves all weights, so the PDF embeds the font once, and keeps its text."""
    html, pdf = tmp_path / "brief.html", tmp_path / "brief.pdf"
    html.write_text(export.render_html(_weights_brief()), encoding="utf-8")
    export.html_to_pdf(html, pdf)
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    wqy = [ln for ln in fonts.splitlines() if "WenQuanYi" in ln]
    assert len(wqy) == 1 and " yes " in wqy[0], fonts  # embedded once, as a named CID TrueType font
    assert len(fonts.splitlines()) == 3, fonts  # header, rule, that one font: nothing else
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for words in ("两队一室改革效果评估", "合成演示数据", "证据有限", "估计值", "粗体", "评估编号: fonts", "第1页/1"):
        assert words in text


def test_the_one_typeface_is_print_only_and_falls_back_where_the_font_is_missing():
    """On a screen brief.html keeps the plain font stack; in print the evalkit-cjk face comes first and the
    same stack follows it (local() matches nothing where WenQuanYi is not installed)."""
    page = export.render_html(_weights_brief())
    assert '@font-face { font-family: "evalkit-cjk"; src: local("WenQuanYi Zen Hei")' in page
    screen, _, rest = page.partition("@media print { body, .jp-Notebook, .jp-RenderedHTMLCommon {")
    assert 'body, .jp-Notebook, .jp-RenderedHTMLCommon { font-family: "WenQuanYi Zen Hei"' in screen
    assert rest.lstrip().startswith('font-family: "evalkit-cjk", "WenQuanYi Zen Hei", "Noto Sans CJK SC"')
