"""What `evalkit run` does to start faster (issue 15) keeps its behaviour: the nbformat import without
jsonschema's IRI grammar, the nbconvert warm-up, and the Chromium started before the notebook runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from evalkit import export, runner

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_runner_import_skips_the_iri_grammar_but_leaves_it_importable():
    out = _python(
        "import sys, importlib.util\n"
        "import evalkit.runner\n"
        "print('nbformat' in sys.modules, 'jsonschema' in sys.modules, 'rfc3987_syntax' in sys.modules)\n"
        "print(importlib.util.find_spec('rfc3987_syntax') is not None)\n"
        "if importlib.util.find_spec('rfc3987_syntax'):\n"
        "    import rfc3987_syntax  # not left blocked for the rest of the process\n"
        "import jsonschema\n"
        "jsonschema.validate({'a': 1}, {'type': 'object', 'properties': {'a': {'type': 'integer'}}})\n"
        "print('ok')\n"
    ).split()
    assert out[:3] == ["True", "True", "False"]
    assert out[-1] == "ok"


def test_nbformat_already_imported_is_left_as_it_is():
    out = _python("import sys, nbformat\nimport evalkit.export\nprint(sys.modules.get('rfc3987_syntax', 0) is None)\n")
    assert out.strip() == "False"  # nothing is blocked when nbformat came first


def _brief_notebook() -> nbformat.NotebookNode:
    nb = export._warm_notebook()
    nb.cells[0].outputs[0]["data"][export.BRIEF_MIME]["evaluation_id"] = "speed_test"
    nb.cells[0].outputs.append(nbformat.v4.new_output("display_data", {"text/html": "<p>两队一室 0.123</p>"}))
    return nb


def test_warm_html_writes_nothing_and_changes_no_brief(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    nb = _brief_notebook()
    before = export.render_html(nb)
    caplog.clear()
    export.warm_html()
    assert list(tmp_path.iterdir()) == []
    assert not caplog.records  # the warm-up logs nothing of its own
    assert export.render_html(nb) == before
    assert "两队一室 0.123" in before and "speed_test" in before


def test_warm_html_never_raises(monkeypatch):
    def broken(_nb):
        raise RuntimeError("no nbconvert")

    monkeypatch.setattr(export, "render_html", broken)
    export.warm_html()  # the real export reports the problem later, not the warm-up


def test_prestart_outside_a_session_starts_nothing():
    assert not export.in_browser_session()
    export.prestart_browser()
    assert export.session_browser() is None


def test_prestart_without_chromium_is_silent(monkeypatch):
    monkeypatch.setattr(export, "find_chromium", lambda: (_ for _ in ()).throw(export.BriefError("no Chromium")))
    with export.browser_session():
        export.prestart_browser()
        assert export.session_browser() is None
        with pytest.raises(export.BriefError, match="no Chromium"):  # the PDF still says why
            export.html_to_pdf(Path("x.html"), Path("x.pdf"))


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium")
def test_prestarted_browser_is_the_one_that_prints_and_is_gone_after(tmp_path):
    (tmp_path / "p.html").write_text("<!DOCTYPE html><html><body><p>两队一室</p></body></html>", encoding="utf-8")
    with export.browser_session():
        export.prestart_browser()
        first = export.session_browser()
        assert first is not None and first.alive()
        export.prestart_browser()  # idempotent
        assert export.session_browser() is first
        export.html_to_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
        assert export.session_browser() is first
        profile = Path(first._profile)
    assert (tmp_path / "p.pdf").stat().st_size > 0
    assert not first.alive() and not profile.exists()
    assert not [p for p in psutil.Process().children() if p.pid == first.proc.pid]


def _tiny_notebook(path: Path, last: str) -> Path:
    cells = [nbformat.v4.new_code_cell("results_path = None", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("print('first cell ran')"), nbformat.v4.new_code_cell(last)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("fails", [False, True])
def test_notebook_written_once_still_gives_executed_or_failed_notebook(tmp_path, monkeypatch, fails):
    """The executed notebook is written at the end only (not after every cell): a failing cell still
    leaves failed.ipynb with the outputs so far and the error, and no hidden temp file remains."""
    from evalkit import kernel_start, runner
    from evalkit.params import load_params

    last = ("raise ValueError('boom in the last cell')" if fails else
            "import json\nopen(results_path, 'w').write(json.dumps({'ok': True}))")
    nb_path = _tiny_notebook(tmp_path / "tiny.ipynb", last)
    monkeypatch.setattr(runner, "notebook_path", lambda _name: nb_path)
    params = load_params(Path(__file__).resolve().parents[1] / "params" / "two_teams_fights.yaml")
    out = tmp_path / "out"
    kernel = kernel_start.start("tiny")  # a notebook without pre-imports
    try:
        if fails:
            with pytest.raises(runner.RunError, match="boom in the last cell"):
                runner._execute(params, out, kernel, pdf=False, brief=False, on_step=None)
            written = out / params.evaluation_id / "failed.ipynb"
        else:
            runner._execute(params, out, kernel, pdf=False, brief=False, on_step=None)
            written = out / params.evaluation_id / "executed.ipynb"
        assert not kernel.alive()  # shut down after the last cell (EVALKIT_KERNEL_SHUTDOWN=immediate)
    finally:
        kernel.close()
    nb = nbformat.read(written, as_version=4)
    texts = [o.get("text", "") for c in nb.cells for o in c.get("outputs", [])]
    assert "first cell ran\n" in texts
    assert any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", [])) is fails
    assert sorted(p.name for p in (out / params.evaluation_id).iterdir()) == (
        ["failed.ipynb"] if fails else ["executed.ipynb", "results.json"])


def test_kernel_clients_stop_flushing_iopub_at_the_idle_status_of_the_answered_request():
    from jupyter_client.asynchronous import AsyncKernelClient

    km = runner.IPCKernelManager(kernel_name="python3")
    kc = km.client()
    assert isinstance(kc, AsyncKernelClient) and type(kc).__name__ == "ReadyClient"

    def status(state: str, parent: str | None) -> dict:
        return {"msg_type": "status", "content": {"execution_state": state},
                "parent_header": {"msg_id": parent} if parent else {}}

    assert runner._idle_for(status("idle", "a"), "a")
    assert not runner._idle_for(status("busy", "a"), "a")
    assert not runner._idle_for(status("idle", "b"), "a")  # an earlier request's idle: go on flushing
    assert not runner._idle_for(status("idle", None), "a")
    assert not runner._idle_for(status("idle", "a"), None)
    assert not runner._idle_for({"msg_type": "stream", "content": {}, "parent_header": {"msg_id": "a"}}, "a")


def test_prepare_brief_starts_nothing_once_cancelled(monkeypatch):
    """A failed or interrupted run sets ``cancelled`` before ``ready``: the brief's thread then starts no
    Chromium (it could outlive the run) and warms nothing, also when cancelled while it waits for the cells."""
    import threading

    calls: list[str] = []
    monkeypatch.setattr(runner, "prestart_browser", lambda: calls.append("chromium"))
    monkeypatch.setattr(runner, "warm_html", lambda: calls.append("nbconvert"))
    ready, cancelled = threading.Event(), threading.Event()
    cancelled.set()
    ready.set()
    runner._prepare_brief(None, ready, True, cancelled)

    class Cells:  # cancelled while the cells ahead were still computing
        def wait(self) -> None:
            cancelled.set()

    cancelled.clear()
    runner._prepare_brief(Cells(), ready, True, cancelled)
    assert calls == []
    cancelled.clear()
    runner._prepare_brief(None, ready, True, cancelled)
    assert calls == ["chromium", "nbconvert"]


def _run_tiny(tmp_path, monkeypatch, last: str, calls: list[str]):  # noqa: ANN202 - runner._execute's outcome
    """``runner._execute`` of a tiny notebook (real kernel, brief with PDF) with Chromium, nbconvert's
    warm-up and the export replaced by recorders; papermill's ``execute_notebook`` records when it returns."""
    import papermill as pm

    from evalkit import kernel_start
    from evalkit.params import load_params

    nb_path = _tiny_notebook(tmp_path / "tiny.ipynb", last)
    monkeypatch.setattr(runner, "notebook_path", lambda _name: nb_path)
    monkeypatch.setenv(runner.CELLS_AHEAD_ENV, "0")
    flag = tmp_path / "chromium-asked"

    def prestart() -> None:
        calls.append("chromium")
        flag.touch()

    real = pm.execute_notebook

    def execute(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return real(*args, **kwargs)
        finally:
            calls.append("notebook done")

    monkeypatch.setattr(runner, "prestart_browser", prestart)
    monkeypatch.setattr(runner, "warm_html", lambda: calls.append("nbconvert"))
    monkeypatch.setattr(runner, "export_brief", lambda *a, **k: None)
    monkeypatch.setattr(pm, "execute_notebook", execute)
    params = load_params(Path(__file__).resolve().parents[1] / "params" / "two_teams_fights.yaml")
    kernel = kernel_start.start("tiny")
    try:
        return runner._execute(params, tmp_path / "out", kernel, pdf=True, brief=True, on_step=None)
    finally:
        kernel.close()


def test_chromium_is_asked_for_once_the_kernel_answers_not_after_the_notebook(tmp_path, monkeypatch):
    """The kernel manager's clients call ``on_ready`` in a real run (``ReadyClient.wait_for_ready``): the
    brief's Chromium is asked for while the notebook still runs (its last cell waits for it, 20 s at most),
    not when the notebook is over (``ready`` set in the finally)."""
    calls: list[str] = []
    wait = (f"import json, os, time\nt = time.time() + 20\n"
            f"while not os.path.exists({str(tmp_path / 'chromium-asked')!r}) and time.time() < t:\n"
            f"    time.sleep(0.05)\nopen(results_path, 'w').write(json.dumps({{'ok': True}}))")
    _run_tiny(tmp_path, monkeypatch, wait, calls)
    assert "nbconvert" in calls
    assert calls.index("chromium") < calls.index("notebook done")


def test_a_failed_notebook_starts_no_chromium(tmp_path, monkeypatch):
    """A notebook that fails while the brief's thread still waits (here for the cells ahead, released only by
    their ``close()`` after ``ready`` is set) leaves no Chromium started and nbconvert not warmed: the thread
    is told the run is cancelled before ``ready`` releases it."""
    import threading

    class Cells:  # the cells ahead, still computing until the run closes them
        def __init__(self) -> None:
            self.closed = threading.Event()

        def wait(self) -> None:
            self.closed.wait(20)

        def close(self) -> None:
            self.closed.set()

    calls: list[str] = []
    monkeypatch.setattr(runner, "cells_ahead", lambda *_a: Cells())
    with pytest.raises(runner.RunError, match="boom"):
        _run_tiny(tmp_path, monkeypatch, "raise ValueError('boom')", calls)
    assert calls == ["notebook done"]
