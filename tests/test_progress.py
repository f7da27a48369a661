"""Progress of a running evaluation (evalkit.progress, evalkit run's live line) and the kernel shutdown."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from evalkit import progress
from evalkit.runner import _kernel_config


def test_report_reaches_the_callback_of_its_context_only(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    seen: list[str] = []
    with progress.listening(seen.append):
        progress.report("build_panel")
        progress.report("estimators")
    progress.report("sensitivity")  # nobody listens any more
    assert seen == ["build_panel", "estimators"]


def test_a_failing_listener_never_fails_the_evaluation(monkeypatch, tmp_path):
    def boom(step):
        raise RuntimeError(step)

    monkeypatch.setenv(progress.ENV, str(tmp_path / "missing-folder" / "status.json"))  # unwritable
    with progress.listening(boom):
        progress.report("estimators")  # no exception


def test_status_file_is_polled_and_each_change_reported_once(monkeypatch, tmp_path):
    status = tmp_path / "status.json"
    monkeypatch.setenv(progress.ENV, str(status))
    seen: list[str] = []
    with progress.StatusPoller(status, seen.append, interval=0.02):
        for step in ("build_panel", "estimators", "pretrend_test"):
            progress.report(step)
            time.sleep(0.15)
        progress.report(progress.DONE)  # written just before the end: caught by the last poll
    assert seen == ["build_panel", "estimators", "pretrend_test", progress.DONE]
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_labels_cover_the_evaluation_steps():
    assert progress.label("pretrend_test") == "pre-trend test"
    assert progress.label("headline_se") == "headline SE"
    assert progress.label("brief_pdf") == "PDF"
    assert progress.label("some_new_step") == "some new step"


@pytest.mark.skipif(os.name != "posix", reason="IPC kernel manager is POSIX only")
def test_steps_cross_the_kernel_boundary_and_stay_out_of_the_notebook(tmp_path, capfd):
    """A kernel started with the runner's configuration reports to the parent's poller; the notebook's
    outputs carry no trace of it, and the shutdown prints no 'KeyboardInterrupt caught in kernel'."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import time\nfrom evalkit import progress\n"
        "for s in ('build_panel', 'estimators', 'sensitivity'):\n"
        "    progress.report(s); time.sleep(0.5)\n"
        "progress.report(progress.DONE)\nprint('cell ran')")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    seen: list[str] = []
    with tempfile.TemporaryDirectory(prefix="evalkit-kernel-") as sockets:
        status = Path(sockets) / "progress.json"
        with progress.StatusPoller(status, seen.append, interval=0.05):
            pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                                config=_kernel_config(sockets, progress_file=str(status)),
                                shutdown_kernel="graceful")
    assert seen == ["build_panel", "estimators", "sensitivity", progress.DONE]
    outputs = nbformat.read(out, as_version=4).cells[0].outputs
    assert [o.get("text") for o in outputs] == ["cell ran\n"]
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def _fake_run_file(calls):
    from evalkit.runner import RunOutputs

    def run_file(path, outputs, *, warehouse=None, lang=None, pdf=True, on_step=None, next_file=None):
        calls.append(on_step)
        if on_step:
            for step in ("preflight", "start_kernel", "pretrend_test", "brief_pdf"):
                on_step(step)
                time.sleep(0.15)
        return RunOutputs("x", Path(outputs), Path(outputs) / "executed.ipynb", Path(outputs) / "results.json",
                          None)

    return run_file


def _params_file(tmp_path: Path) -> Path:
    p = tmp_path / "two_teams_fights.yaml"
    p.write_text("evaluation_id: two_teams_fights\nreform: 两队一室\noutcomes: [incidents_fight]\n", encoding="utf-8")
    return p


def test_run_shows_steps_on_a_terminal_and_nothing_with_quiet_or_without_tty(tmp_path, monkeypatch):
    import io

    from rich.console import Console
    from typer.testing import CliRunner

    from evalkit import cli, runner

    params = _params_file(tmp_path)
    calls: list = []
    monkeypatch.setattr(runner, "run_file", _fake_run_file(calls))
    args = ["run", str(params), "--outputs", str(tmp_path / "out"), "--no-pdf"]

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=True, width=120))
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    assert calls[-1] is not None
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    assert "1/1 two_teams_fights" in shown and "pre-trend test" in shown and "PDF" in shown

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=True, width=120))
    res = CliRunner().invoke(cli.app, [*args, "--quiet"])
    assert res.exit_code == 0 and calls[-1] is None and "pre-trend test" not in buf.getvalue()

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=False, width=120))
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0 and calls[-1] is None and "pre-trend test" not in buf.getvalue()
    assert "done" in buf.getvalue()  # the one line per finished evaluation stays


@pytest.mark.skipif(os.name != "posix", reason="IPC kernel manager is POSIX only")
def test_kernel_manager_sends_no_interrupt_when_shutting_down(monkeypatch):
    """jupyter_client interrupts (SIGINT) a kernel before every shutdown; a kernel busy at that instant
    printed 'KeyboardInterrupt caught in kernel' on the terminal of `make demo`. evalkit's manager skips
    that interrupt; an interrupt asked for while the kernel runs is still sent."""
    import asyncio

    from evalkit import runner

    km = runner.IPCKernelManager(kernel_name="python3")
    sent: list[str] = []

    async def fake_super_interrupt(self):
        sent.append("SIGINT")

    parent = runner.IPCKernelManager.__mro__[1]
    monkeypatch.setattr(parent, "_async_interrupt_kernel", fake_super_interrupt)
    km.shutting_down = True
    asyncio.run(km._async_interrupt_kernel())
    assert sent == []
    km.shutting_down = False
    asyncio.run(km._async_interrupt_kernel())
    assert sent == ["SIGINT"]


def test_batch_display_shows_the_step_each_running_evaluation_is_in(tmp_path):
    import io

    from rich.console import Console

    from evalkit.batch.core import _Display
    from evalkit.batch.execute import step_file

    buf = io.StringIO()
    display = _Display(2, 0, Console(file=buf, force_terminal=True, width=150), True, "batch b")
    display.batch_dir = tmp_path
    (tmp_path / "logs").mkdir()
    with display:
        display.start({"evaluation_id": "alpha"})
        display.start({"evaluation_id": "beta"})
        progress.write_status(step_file(tmp_path, "alpha"), "pretrend_test")
        display.tick()
        display.progress.refresh()
        display.done({"evaluation_id": "alpha", "status": "ok", "seconds_total": 1.0})
        display.tick()
        display.progress.refresh()
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    assert "alpha · pre-trend test" in shown and "beta · …" in shown
    assert display.inflight.keys() == {"beta"}


def test_run_jobs_runs_files_in_worker_processes_and_reports_each(tmp_path):
    """`evalkit run --jobs 2`: each file in a worker; a failing file is one line naming it, exit 1."""
    import subprocess
    import sys

    files = []
    for name in ("two_teams_fights", "two_teams_fights_en"):
        p = tmp_path / f"{name}.yaml"
        p.write_text(f"evaluation_id: {name}\nreform: 两队一室\noutcomes: [incidents_fight]\n", encoding="utf-8")
        files.append(str(p))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", *files, "--jobs", "2", "--warehouse",
                             str(tmp_path / "missing.duckdb"), "--outputs", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 1
    failed = [line for line in err.splitlines() if line.startswith("failed ")]
    assert len(failed) == 2 and all("missing.duckdb not found" in line for line in failed)
    assert {Path(f).name for f in files} == {line.split()[1].split("/")[-1].rstrip(":") for line in failed}
