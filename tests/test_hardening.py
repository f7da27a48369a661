"""Hardening of the run layer: params files, warehouse failures, outputs, escaping, batch workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.params import ParamsError, load_params

BASE = "reform: 两队一室\noutcomes: [incidents_fight]\n"


def _write(tmp_path: Path, text: str, name: str = "p.yaml", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_repeated_key_is_refused_with_key_and_lines(tmp_path):
    p = _write(tmp_path, BASE + "bootstrap: 0\nseed: 1\nbootstrap: 999\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value) == f"params file {p} repeats the key 'bootstrap' (line 3 and line 5): keep one"


def test_repeated_nested_key_is_refused(tmp_path):
    p = _write(tmp_path, BASE + "window:\n  start: 2019-01\n  start: 2020-01\n")
    with pytest.raises(ParamsError, match=r"repeats the key 'start' \(line 4 and line 5\)"):
        load_params(p)


@pytest.mark.parametrize(
    ("line", "key"),
    [("bootstrap: true", "bootstrap"), ("sensitivity: 1", "sensitivity"), ("seed: '7'", "seed"),
     ("alpha: true", "alpha"), ("wild_draws: 999.0", "wild_draws"), ("event_window: [-12, '24']", "event_window.1"),
     ("multiple_testing: 'yes'", "multiple_testing")],
)
def test_type_coercions_are_refused_with_key_named(tmp_path, line, key):
    p = _write(tmp_path, BASE + line + "\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    lines = str(exc.value).splitlines()
    assert lines[0] == f"invalid evaluation parameters in {p}:"
    assert len(lines) == 2 and lines[1].startswith(f"  - {key}: ")


def test_plain_values_still_load(tmp_path):
    p = _write(tmp_path, BASE + "bootstrap: 999\nalpha: 0.1\nsensitivity: false\nevent_window: [-6, 12]\n")
    params = load_params(p)
    assert (params.bootstrap, params.alpha, params.sensitivity, params.event_window) == (999, 0.1, False, (-6, 12))


def test_non_utf8_params_file_is_one_line(tmp_path):
    p = _write(tmp_path, "# 两队一室 评估\n" + BASE, encoding="gbk")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value) == f"params file {p} is not UTF-8: save it as UTF-8"


@pytest.mark.parametrize("bad", ["x" * 300, "a/b", "..", "a b", "名字", "a\\b"])
def test_unsafe_or_long_evaluation_id_is_refused(tmp_path, bad):
    p = _write(tmp_path, BASE + f"evaluation_id: '{bad}'\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    if len(bad) > 100:
        assert lines[1] == "  - evaluation_id: String should have at most 100 characters"
    else:
        assert lines[1].startswith("  - evaluation_id: String should match pattern")


def test_invalid_yaml_is_one_line(tmp_path):
    p = _write(tmp_path, BASE + "title: [unclosed\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value).startswith(f"params file {p} is not valid YAML at line ")
    assert "\n" not in str(exc.value)


def test_batch_plan_reads_params_with_the_same_rules(tmp_path):
    from evalkit.batch.plan import plan

    p = _write(tmp_path, BASE + "seed: 1\nseed: 2\n", name="dup.yaml")
    (item,) = plan([str(p)])
    assert item.error == f"params file {p} repeats the key 'seed' (line 3 and line 4): keep one"


# ------------------------------------------------------------------------------ warehouse failures
def _cli(*args: str):
    from typer.testing import CliRunner

    from evalkit.cli import app

    return CliRunner().invoke(app, list(args))


def _commands(wh: Path, tmp_path: Path) -> list[list[str]]:
    params = _write(tmp_path, BASE + f"warehouse: '{wh}'\n", name="wh_case.yaml")
    csv = tmp_path / "stations.csv"
    csv.write_text("station_id,name\nS1,a\n", encoding="utf-8")
    return [
        ["run", str(params), "--outputs", str(tmp_path / "out"), "--no-pdf"],
        ["validate", str(params)],
        ["panel", "--reform", "两队一室", "--out", str(tmp_path / "panel.csv"), "--warehouse", str(wh)],
        ["ingest", "stations", str(csv), "--warehouse", str(wh)],
        ["warehouse", "status", "--warehouse", str(wh)],
    ]


def _assert_one_line(res, expected: str) -> None:
    assert res.exit_code == 2, (res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert res.stderr == f"error: {expected}\n"


@pytest.fixture
def good_warehouse(tmp_path) -> Path:
    from evalkit.warehouse import connect

    wh = tmp_path / "wh.duckdb"
    connect(wh).close()
    return wh


def test_locked_warehouse_is_one_line_in_every_command(tmp_path, good_warehouse):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(60)", str(good_warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        expected = (f"warehouse {good_warehouse} is in use by another program (process {holder.pid}): close it "
                    f"(another evalkit command, a notebook kernel or a DuckDB session) and try again")
        for args in _commands(good_warehouse, tmp_path):
            _assert_one_line(_cli(*args), expected)
    finally:
        holder.kill()
        holder.wait()


def test_non_duckdb_warehouse_is_one_line_in_every_command(tmp_path):
    wh = tmp_path / "export.duckdb"
    wh.write_text("station_id,name\n" * 500, encoding="utf-8")
    expected = (f"warehouse {wh} is not a DuckDB database: set `warehouse:` to the .duckdb file written by "
                f"`evalkit ingest` or `evalkit demo-data`")
    for args in _commands(wh, tmp_path):
        _assert_one_line(_cli(*args), expected)


def test_corrupt_warehouse_is_one_line_in_every_command(tmp_path, good_warehouse):
    data = bytearray(good_warehouse.read_bytes())
    for i in range(4096, len(data), 7):  # keep the DuckDB header, scramble the blocks
        data[i] = 0xAB
    good_warehouse.write_bytes(bytes(data))
    for args in _commands(good_warehouse, tmp_path):
        res = _cli(*args)
        assert res.exit_code == 2, (args, res.output, res.exception)
        assert res.stderr.startswith(f"error: warehouse {good_warehouse} is corrupt or unreadable ("), res.stderr
        assert res.stderr.endswith("): restore it from a backup, or move it away and rebuild it with "
                                   "`evalkit ingest` (or `evalkit demo-data`)\n")
        assert res.stderr.count("\n") == 1


# ------------------------------------------------------------------------------ outputs
def test_unwritable_outputs_is_one_line_before_any_notebook(tmp_path):
    params = _write(tmp_path, BASE + f"warehouse: '{tmp_path / 'missing.duckdb'}'\n", name="out_case.yaml")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    res = _cli("run", str(params), "--outputs", str(blocker / "out"), "--no-pdf")
    assert res.exit_code == 2
    assert res.stderr == (f"error: outputs folder {blocker / 'out'} is not writable (Not a directory): choose "
                          f"another with --outputs or make it writable\n")


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_outputs_is_one_line(tmp_path):
    from evalkit.runner import RunError, check_outputs_writable

    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(RunError) as exc:
        check_outputs_writable(ro)
    assert str(exc.value) == (f"outputs folder {ro} is not writable (Permission denied): choose another with "
                              f"--outputs or make it writable")


def test_batch_refuses_unwritable_outputs(tmp_path):
    from evalkit.batch import PlanError, run_batch

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(PlanError, match=r"^outputs folder .*a_file/b is not writable \(Not a directory\)"):
        run_batch([str(_write(tmp_path, BASE))], blocker, name="b", workers=1, pdf=False)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    import os

    import pandas as pd

    from evalkit.batch.execute import atomic_write_text
    from evalkit.batch.portfolio import write_parquet_atomic
    from evalkit.export import _atomic_write

    old = os.umask(umask)
    try:
        _atomic_write(tmp_path / "brief.html", b"<p>x</p>")
        atomic_write_text(tmp_path / "done.json", "{}")
        write_parquet_atomic(pd.DataFrame({"a": [1]}), tmp_path / "summary.parquet")
    finally:
        os.umask(old)
    for name in ("brief.html", "done.json", "summary.parquet"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


# ------------------------------------------------------------------------------ escaping
EVIL_TITLE = "</style><script>document.title='x'</script> \"q\" 'a' back\\slash\nline2 </script><b>bold</b>"


def _brief_notebook(title: str):
    import html

    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from evalkit.brief_marker import BRIEF_MIME

    marker = new_output("display_data", data={BRIEF_MIME: {"evaluation_id": "esc_case", "lang": "en",
                                                            "synthetic": True, "title": title}})
    body = new_output("display_data", data={"text/html": f"<h1 id='t'>{html.escape(title)}</h1><p>ANSWER</p>"})
    js = new_output("display_data", data={"application/javascript": "document.title='js-output'"})
    return new_notebook(cells=[new_code_cell("x", outputs=[marker, body, js])],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})


def test_css_string_escapes_everything_that_could_end_the_string():
    from evalkit.export import css_string

    assert css_string('a"b\\c\nd</style>') == "a\\000022b\\00005Cc\\00000Ad\\00003C\\00002Fstyle\\00003E"
    assert css_string("两队一室 (2024)") == "两队一室 (2024)"


def test_title_is_text_in_every_context_of_brief_html(tmp_path):
    import re

    from evalkit.export import render_html

    page = render_html(_brief_notebook(EVIL_TITLE))
    assert "<script" not in page.lower()  # neither the title's nor the JS output
    assert "js-output" not in page  # application/javascript outputs are dropped
    style = page[page.index("<style type=\"text/css\">\n@page"):]
    style = style[:style.index("</style>")]
    top_right = re.search(r'@top-right \{ content: "([^"]*)";', style).group(1)
    assert "<" not in top_right and "\n" not in top_right and "\\00003C\\00002Fstyle\\00003E" in top_right
    assert "&lt;/style&gt;&lt;script&gt;" in page  # the HTML body shows the title as text
    assert 'content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'; font-src data:"' in page


@pytest.mark.skipif(not (__import__("shutil").which("chromium") and __import__("shutil").which("pdftotext")),
                    reason="needs chromium and pdftotext")
def test_title_prints_as_text_in_the_pdf_and_no_script_runs(tmp_path):
    import subprocess

    import nbformat

    from evalkit.export import export_brief

    nb_path = tmp_path / "executed.ipynb"
    nbformat.write(_brief_notebook(EVIL_TITLE), nb_path)
    files = export_brief(nb_path, tmp_path)
    text = subprocess.run(["pdftotext", "-layout", str(files.pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "ANSWER" in text  # the body was not replaced by a script
    assert "</style><script>document.title='x'</script>" in text  # printed as text (h1 and page header)
    assert "back\\slash" in text


@pytest.mark.skipif(not (__import__("shutil").which("chromium") and __import__("shutil").which("pdftotext")),
                    reason="needs chromium and pdftotext")
def test_a_script_that_reached_the_page_would_not_run_in_the_pdf_route(tmp_path):
    """Second layer behind the escaping: the template's CSP blocks scripts in Chromium's PDF route."""
    import subprocess

    from evalkit.export import html_to_pdf, render_html

    page = render_html(_brief_notebook("plain title"))
    page = page.replace("<p>ANSWER</p>", "<p id='a'>ANSWER</p><script>document.getElementById('a')"
                        ".textContent='PWNED'</script><img src=x onerror=\"document.body.textContent='PWNED'\">")
    (tmp_path / "brief.html").write_text(page, encoding="utf-8")
    pdf = html_to_pdf(tmp_path / "brief.html", tmp_path / "brief.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "ANSWER" in text and "PWNED" not in text
