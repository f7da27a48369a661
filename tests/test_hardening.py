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


# ------------------------------------------------------------------------------ batch workers
POOL_SCRIPT = r"""
import multiprocessing as mp, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from evalkit.batch.local import _worker_init

def task(_):
    import subprocess
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands in for the kernel
    os.write(1, f"{os.getpid()} {kid.pid}\n".encode())  # one write: atomic on a pipe (two workers print at once)
    time.sleep(120)

if __name__ == "__main__":
    ex = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(None, os.getpid()))
    futs = [ex.submit(task, i) for i in range(2)]
    time.sleep(120)
"""


def _gone(pids: list[int], timeout: float) -> list[int]:
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


@pytest.mark.slow  # ~12 s: two spawned interpreters import evalkit.batch
def test_pool_workers_and_their_children_die_with_a_killed_parent(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(x) for _ in range(2) for x in parent.stdout.readline().split()]
        assert len(pids) == 4
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _gone(pids, timeout=5) == []
    finally:
        if parent.poll() is None:
            parent.kill()


def _is_kernel(proc) -> bool:
    import psutil

    try:
        return "kernel_launcher" in " ".join(proc.cmdline())
    except psutil.Error:  # ended meanwhile
        return False


@pytest.mark.slow
@pytest.mark.e2e
def test_killed_batch_leaves_no_process_and_kernels_open_no_tcp_listener(demo_warehouse, tmp_path):
    """``kill -9`` of a running ``evalkit batch``: workers and kernels are gone within seconds; while it
    ran, no notebook kernel listened on a TCP port (kernels talk over IPC sockets)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil
    import yaml

    src = tmp_path / "params"
    src.mkdir()
    for name, reform, outcome in (("k_fights", "两队一室", "incidents_fight"),
                                  ("k_disputes", "一村一辅警", "dispute_escalation_rate")):
        d = {"evaluation_id": name, "reform": reform, "outcomes": [outcome], "estimators": ["naive_yoy", "twfe"],
             "lang": "en", "warehouse": str(demo_warehouse)}
        (src / f"{name}.yaml").write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    batch = subprocess.Popen([sys.executable, "-m", "evalkit", "batch", str(src), "--workers", "2", "--outputs",
                              str(tmp_path / "out"), "--no-pdf"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    try:
        deadline, kernels = time.monotonic() + 120, []
        while time.monotonic() < deadline and not kernels:
            time.sleep(0.5)
            assert batch.poll() is None, "the batch ended before a kernel was seen"
            kernels = [p for p in psutil.Process(batch.pid).children(recursive=True) if _is_kernel(p)]
        assert kernels, "no notebook kernel started within 120 s"
        time.sleep(1.0)  # let the kernel bind its sockets
        for k in kernels:
            listening = [c for c in k.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
            assert listening == [], listening
        family = [p.pid for p in psutil.Process(batch.pid).children(recursive=True)]
        assert len(family) >= 2
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
        assert _gone(family, timeout=8) == []
    finally:
        if batch.poll() is None:
            batch.kill()


@pytest.mark.skipif(__import__("os").name != "posix", reason="IPC transport is POSIX only")
def test_kernel_opens_no_tcp_listener_and_forked_output_still_arrives(tmp_path):
    """ipykernel binds its IOPub pipe (output of forked subprocesses) to TCP 127.0.0.1; evalkit's kernel
    launcher moves it to an IPC socket: no listener, and a forked child's print still reaches the notebook."""
    import tempfile

    import nbformat
    import papermill as pm

    from evalkit.runner import _kernel_config

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, sys, psutil\n"
        "print(len([c for c in psutil.Process().net_connections('tcp') if c.status == psutil.CONN_LISTEN]))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('from-the-child'); sys.stdout.flush(); os._exit(0)\n"
        "os.waitpid(pid, 0)")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    with tempfile.TemporaryDirectory(prefix="evalkit-kernel-") as sockets:
        pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                            config=_kernel_config(sockets))
    text = "".join(o.get("text", "") for o in nbformat.read(out, as_version=4).cells[0].outputs)
    assert text.splitlines()[0] == "0"  # TCP listeners in the kernel process
    assert "from-the-child" in text


@pytest.mark.slow
@pytest.mark.e2e
def test_run_outputs_follow_the_umask(demo_warehouse, tmp_path):
    """``evalkit run`` under umask 027: executed notebook, results and brief are 0640 (were 0600)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(root / "params" / "two_teams_fights_en.yaml"), "--outputs",
         str(tmp_path), "--warehouse", str(demo_warehouse), "--no-pdf"],
        capture_output=True, text=True, env=env, cwd=root, preexec_fn=lambda: os.umask(0o027))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "two_teams_fights_en"
    for name in ("executed.ipynb", "results.json", "brief.html"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name


@pytest.mark.parametrize(("command", "code"), [("run", 2), ("validate", 1)])
def test_params_errors_print_as_one_unwrapped_line(tmp_path, command, code):
    p = _write(tmp_path, "# 两队一室 评估\n" + BASE, name="a_long_params_file_name_that_would_wrap_at_80.yaml",
               encoding="gbk")
    res = _cli(command, str(p), *(["--outputs", str(tmp_path / "out")] if command == "run" else []))
    assert res.exit_code == code
    assert res.stderr == f"params file {p} is not UTF-8: save it as UTF-8\n"
    assert not (tmp_path / "out").exists()
