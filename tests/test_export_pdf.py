"""The brief's PDF: one CJK typeface for every font weight (evalkit-cjk in the brief template)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import nbformat
import pytest

from _pages import PAGE
from _pages import pdf_text as _pdf_text
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
    text = _pdf_text(pdf)
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


def test_the_page_opened_while_the_notebook_runs_prints_the_brief_with_scripts_off(tmp_path):
    """prestart_browser opens the next PDF's page ahead (in a thread); the PDF is printed in that page, with
    scripts off as in a page opened at print time; the page is kept, and the next PDF of the session (the next
    evaluation) is printed in it: its own text only, scripts still off, no other tab opened."""
    for name in ("one", "two"):
        (tmp_path / f"{name}.html").write_text(PAGE.format(text=f"PAGE {name.upper()}"), encoding="utf-8")
    with export.browser_session():
        export.prestart_browser()
        browser = export.session_browser()
        browser._preparing.join()
        first = browser._page
        assert first is not None
        export.html_to_pdf(tmp_path / "one.html", tmp_path / "one.pdf")
        assert browser._page == first  # printed in that page, which stays open for the next PDF
        export.prestart_browser()  # nothing to open: the kept page is ready
        assert browser._page == first
        pages = {t["targetId"] for t in browser._call("Target.getTargets")["targetInfos"] if t["type"] == "page"}
        export.html_to_pdf(tmp_path / "two.html", tmp_path / "two.pdf")
        assert export.session_browser() is browser and browser._page == first
        assert {t["targetId"] for t in browser._call("Target.getTargets")["targetInfos"]
                if t["type"] == "page"} == pages
    for name, other in (("one", "TWO"), ("two", "ONE")):
        text = _pdf_text(tmp_path / f"{name}.pdf")
        assert f"PAGE {name.upper()}" in text and "两队一室" in text and "SCRIPT RAN" not in text
        assert f"PAGE {other}" not in text


def test_a_page_that_could_not_be_opened_ahead_is_opened_at_print_time(tmp_path, monkeypatch):
    (tmp_path / "p.html").write_text(PAGE.format(text="LATE"), encoding="utf-8")
    with export.Browser() as browser:
        real = browser._open_page
        calls = []

        def fails_once(*args):
            calls.append(1)
            if len(calls) == 1:
                raise export.BriefError("no page")
            return real(*args)

        monkeypatch.setattr(browser, "_open_page", fails_once)
        browser.prepare_page()
        browser._preparing.join()
        assert browser._page is None
        browser.print_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
        assert len(calls) == 2
    assert "LATE" in _pdf_text(tmp_path / "p.pdf")


def test_a_prepared_page_that_died_meanwhile_is_replaced_by_a_new_one(tmp_path):
    """The page opened while the notebook ran may be gone by the time the brief prints (here: its target
    closed): the PDF is printed in a page opened then, and the dead page's error is not the brief's."""
    (tmp_path / "p.html").write_text(PAGE.format(text="REOPENED"), encoding="utf-8")
    with export.Browser() as browser:
        browser.prepare_page()
        browser._preparing.join()
        target, _ = browser._page
        browser._call("Target.closeTarget", {"targetId": target})
        for _ in range(100):  # gone (closeTarget answers before the target list drops it; a page caught while
            # closing may accept the navigation and never load: the timeout's case, not this test's)
            if target not in [t["targetId"] for t in browser._call("Target.getTargets")["targetInfos"]]:
                break
            time.sleep(0.05)
        browser.print_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
        assert browser._page is not None and browser._page[0] != target  # the new page, kept
    assert "REOPENED" in _pdf_text(tmp_path / "p.pdf")


def test_a_hung_browser_is_waited_for_once_not_for_the_page_and_again_for_a_new_one(tmp_path):
    """Chromium stops answering while the page is opened ahead: print_pdf gives up within one timeout, not
    one for the page being opened and another for a new page."""
    import threading

    (tmp_path / "p.html").write_text(PAGE.format(text="HUNG"), encoding="utf-8")
    with export.Browser(timeout=3) as browser:
        browser._call("Browser.getVersion")  # started and answering
        real, opened_at_print_time = browser._open_page, []

        def spy(*args, **kwargs):
            if threading.current_thread() is threading.main_thread():  # not the thread opening it ahead
                opened_at_print_time.append(args)
            return real(*args, **kwargs)

        browser._open_page = spy
        os.killpg(browser.proc.pid, signal.SIGSTOP)
        try:
            browser.prepare_page()
            with pytest.raises(export.BriefError, match="did not answer within 3 s"):
                browser.print_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
        finally:
            os.killpg(browser.proc.pid, signal.SIGCONT)
    # one wait: a page opened at print time (when the thread gave up just as the wait ended) gets what is left
    # of the same deadline, never a timeout of its own
    assert all(args and args[0] is not None for args in opened_at_print_time)
    assert not (tmp_path / "p.pdf").exists()


def test_closing_while_the_page_is_being_opened_leaves_nothing_behind():
    browser = export.Browser()
    browser.prepare_page()  # Chromium is still starting: the thread waits for its first answer
    browser.close()
    assert not browser._preparing.is_alive()
    assert not browser.alive() and not os.path.exists(browser._profile)
