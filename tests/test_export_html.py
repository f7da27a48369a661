"""The brief's HTML without nbconvert's BeautifulSoup round trip of the whole page (export_html._finish_html): the
page, read into BeautifulSoup, is exactly nbconvert's HTMLExporter page; pages it cannot edit plainly go
through nbconvert's own pass."""

from __future__ import annotations

import base64
import html
import logging

import nbformat
import pytest
from bs4 import BeautifulSoup

from evalkit import export, export_html

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode()


def _notebook(*bodies: str) -> nbformat.NotebookNode:
    v4 = nbformat.v4
    marker = {"evaluation_id": "html", "lang": "zh", "synthetic": True, "title": "标题 <b>&</b>"}
    outputs = [v4.new_output("display_data", {export.BRIEF_MIME: marker, "text/plain": ""})]
    outputs += [v4.new_output("display_data", {"text/html": b}) for b in bodies]
    outputs += [v4.new_output("display_data", {"image/png": PNG, "text/plain": "<Figure>"}),
                v4.new_output("display_data", {"text/markdown": "## 小结\n\n*一段* `x < y` & [a](#b)"}),
                v4.new_output("stream", name="stdout", text="a < b & c\n")]
    return v4.new_notebook(cells=[v4.new_code_cell("x", outputs=outputs), v4.new_code_cell("y", outputs=[
        v4.new_output("display_data", {"text/html": '<div class="jp-OutputArea-output x">inner</div>'})])])


PLAIN = ('<div\nclass="ek-block"><h2>结论</h2><img\talt="tabbed" src="t.png"><table class="ek-table"><tr><th>方法</th></tr><tr><td>−1.0</td></tr>'
         '</table><img src="data:image/png;base64,' + PNG + '"><img alt=\'given\' src="x.png"/>'
         '<p>&nbsp;&lt;tag&gt; &amp; “引号”<br>next</p></div>')


def _nbconvert_page(nb: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch) -> str:
    """The page of nbconvert's own HTMLExporter with the brief template (the code before this module's)."""
    from nbconvert import HTMLExporter

    old = HTMLExporter(template_name="brief", extra_template_basedirs=[str(export.templates_dir())],
                       exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    old.register_filter("css_string", export.css_string)
    old.register_filter("html_text", lambda v: html.escape(str(v), quote=True))
    with monkeypatch.context() as m:
        m.setattr(export, "_EXPORTERS", [old])
        return export.render_html(nb)


def _fresh(nb: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """This module's page, and how many times nbconvert's own finishing pass ran for it."""
    from nbconvert import HTMLExporter

    calls = []
    real = HTMLExporter.from_notebook_node

    def counted(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(1)
        return real(self, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(export, "_EXPORTERS", [])
        m.setattr(HTMLExporter, "from_notebook_node", counted)
        return export.render_html(nb), len(calls)


def test_the_page_is_nbconvert_s_page_without_its_soup_pass(monkeypatch, caplog):
    nb = _notebook(PLAIN)
    want = _nbconvert_page(nb, monkeypatch)
    with caplog.at_level(logging.WARNING):
        page, soup_passes = _fresh(nb, monkeypatch)
    assert soup_passes == 0  # finished by _finish_html
    assert page != want and str(BeautifulSoup(page, features="html.parser")) == want
    assert page.count('tabindex="0"') == want.count('tabindex="0"') == 6  # 5 output areas + the inner div
    assert page.count(f'alt="{export_html._NO_ALT}"') == want.count(f'alt="{export_html._NO_ALT}"') == 2  # PLAIN's, the PNG's
    assert "alt='given'" in page
    warned = [r.getMessage() for r in caplog.records if r.pathname.endswith("export_html.py")]
    assert warned == ["Alternative text is missing on 2 image(s)."]  # nbconvert's warning, as before


@pytest.mark.parametrize(("body", "own_pass"), [
    ("<style>img { border: 0 }</style><p>styled</p>", True),  # text that is not markup
    ("<!-- <img src=x> --><p>commented</p>", True),
    ('<div class="jp-OutputArea-output" tabindex="-1">focus given</div>', True),  # nbconvert overwrites it
    ('<img src="a.png" alt="1" alt="2">', True),  # a repeated attribute
    ('<img src="a.png" title="a > b">', True),  # a ">" inside a value
    ('<div title="a > b" class="jp-OutputArea-output">focusable after a quoted ">"</div>', True),
    ('<p title="<div class=jp-OutputArea-output>">a tag inside a value</p>', True),
    ("<p title='x'>a quote left open: <span class='y>z</span></p>", True),
    ("<img src=x/>", False),  # not self-closing: the "/" is the unquoted value's (src="x/")
    ('<img src="y.png"/><img src=z.png />', False),  # self-closing
])
def test_pages_finished_here_or_by_nbconvert_s_own_pass_are_nbconvert_s_pages(body, own_pass, monkeypatch):
    nb = _notebook(body)
    want = _nbconvert_page(nb, monkeypatch)
    page, soup_passes = _fresh(nb, monkeypatch)
    assert soup_passes == own_pass
    assert (page if own_pass else str(BeautifulSoup(page, features="html.parser"))) == want


def test_a_page_whose_body_is_not_the_notebook_is_left_to_nbconvert():
    """Every output is inside the lab template's <body class="jp-Notebook">; the page's CSS, in its head,
    names .jp-Notebook whatever the body's class is."""
    head = "<html><head><style>.jp-Notebook { margin: 0 }</style></head>"
    div = '<div class="jp-OutputArea-output">x</div></body></html>'
    assert export_html._finish_html(head + "<body>" + div) is None
    assert export_html._finish_html(head + '<body class="jp-Notebook-x" title="jp-Notebook">' + div) is None
    finished = export_html._finish_html(head + '<body class="a jp-Notebook">' + div)
    assert finished is not None and '<div class="jp-OutputArea-output" tabindex="0">' in finished[0]
