"""The notebook kernel starts ahead of the runner's work and pre-imports (evalkit.kernel_start, kernel_launcher)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nbformat
import psutil
import pytest

from _notebooks import tiny_notebook
from evalkit import kernel_start

pytestmark = pytest.mark.skipif(os.name != "posix", reason="IPC transport is POSIX only")
ROOT = Path(__file__).resolve().parents[1]


_notebook = tiny_notebook


def _texts(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    own = [c for c in nb.cells if not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    return ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in own]


def _run(tmp_path, monkeypatch, notebook: str, *cells: str):
    """``runner._execute`` of a small notebook on a kernel started for ``notebook``; (kernel, cell texts)."""
    from evalkit import runner
    from evalkit.params import load_params

    nb = _notebook(tmp_path / "nb.ipynb", *cells,
                   "import json\nopen(results_path, 'w').write(json.dumps({'ok': True}))")
    monkeypatch.setattr(runner, "notebook_path", lambda _name: nb)
    params = load_params(ROOT / "params" / "two_teams_fights.yaml")
    kernel = kernel_start.start(notebook)
    try:
        res = runner._execute(params, tmp_path / "out", kernel, pdf=False, brief=False, on_step=None)
    finally:
        kernel.close()
    return kernel, _texts(res.executed)


def test_adopted_kernel_talks_over_ipc_in_its_private_folder_which_is_removed(tmp_path, monkeypatch):
    kernel = kernel_start.start("tiny")
    try:
        assert stat.S_IMODE(os.stat(kernel.folder).st_mode) == 0o700  # only this user reaches the sockets
        assert stat.S_IMODE(os.stat(kernel.connection_file).st_mode) == 0o600
    finally:
        kernel.close()
    kernel, texts = _run(tmp_path, monkeypatch, "tiny",
                         "import os\nfrom ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\n"
                         "print(app.transport, app.ip, os.environ['EVALKIT_KERNEL_DIR'],\n"
                         "      get_ipython().history_manager.hist_file, os.getpid())")
    transport, ip, folder, history, pid = texts[0].split()
    assert transport == "ipc" and ip == os.path.join(kernel.folder, "kernel") and folder == kernel.folder
    assert int(pid) == kernel.process.pid  # the kernel started first ran the notebook
    assert history == ":memory:"  # as when nbclient starts a kernel: no history file in $HOME
    assert not kernel.alive() and not Path(kernel.folder).exists()


def test_kernel_pre_imports_its_notebooks_modules_and_binds_no_name(tmp_path, monkeypatch):
    monkeypatch.setitem(kernel_start.NOTEBOOK_IMPORTS, "probe", ("evalkit.kernel_start", "no_such_module_xyz"))
    _, texts = _run(tmp_path, monkeypatch, "probe",
                    "import sys\nprint('evalkit.kernel_start' in sys.modules, 'no_such_module_xyz' in sys.modules,\n"
                    "      'evalkit' in dir(), 'EVALKIT_KERNEL_PREIMPORT' in __import__('os').environ)")
    # imported before the first cell; the failing one did not stop the kernel; nothing in the namespace,
    # and the variable is not inherited by the notebook's subprocesses
    assert texts[0].split() == ["True", "False", "False", "False"]


def test_without_the_variable_the_kernel_imports_nothing_of_evalkit(tmp_path, monkeypatch):
    _, texts = _run(tmp_path, monkeypatch, "tiny",
                    "import sys\nprint(sorted(m for m in sys.modules if m.startswith('evalkit')))")
    # the launcher itself runs as __main__; malloc_tuning (stdlib only) sets glibc's thresholds first;
    # kernel_start (stdlib only) names the kernel's environment variables
    assert texts[0].strip() == "['evalkit', 'evalkit.kernel_start', 'evalkit.malloc_tuning']"


def test_preimport_never_raises_and_reports_what_imported():
    from evalkit.kernel_launcher import preimport

    assert preimport("json, no_such_module_xyz,,os") == ["json", "os"]


def _params(tmp_path, warehouse: str):
    from evalkit.params import load_params

    return load_params(ROOT / "params" / "two_teams_fights.yaml").model_copy(update={"warehouse": warehouse})


def _recording_start(monkeypatch) -> list:
    started = []
    real = kernel_start.start

    def start(notebook, **kw):
        started.append(real(notebook, **kw))
        return started[-1]

    monkeypatch.setattr(kernel_start, "start", start)
    return started


def test_failed_preflight_kills_the_kernel_and_removes_its_folder(tmp_path, monkeypatch):
    from evalkit import runner

    started = _recording_start(monkeypatch)
    with pytest.raises(runner.RunError, match="not found"):
        runner.run_params(_params(tmp_path, str(tmp_path / "missing.duckdb")), tmp_path / "out", brief=False)
    assert len(started) == 1  # started before the preflight …
    assert not started[0].alive() and not Path(started[0].folder).exists()  # … and killed by its failure


def test_interrupt_while_the_notebook_runs_kills_the_kernel(tmp_path, monkeypatch):
    import papermill as pm

    from evalkit import runner

    started = _recording_start(monkeypatch)
    monkeypatch.setattr(runner, "preflight", lambda _p: None)

    def interrupted(*_a, km, **_k):
        assert km.has_kernel and km.prestarted is started[0]  # the kernel started first was handed over
        raise KeyboardInterrupt

    monkeypatch.setattr(pm, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_params(_params(tmp_path, str(tmp_path / "w.duckdb")), tmp_path / "out", brief=False)
    assert not started[0].alive() and not Path(started[0].folder).exists()
    assert not [p for p in psutil.Process().children(recursive=True) if p.pid == started[0].process.pid]


def test_cells_computed_ahead_are_the_kernels_own_and_gone_after_an_interrupt(tmp_path, monkeypatch, demo_warehouse):
    """`evalkit run` computes the panel's cells in the kernel's private folder while the kernel starts
    (evalkit.cells_cache.start_ahead); aggregates only, removed with the kernel's folder however the run ends."""
    import time

    import papermill as pm

    from evalkit import runner
    from evalkit.cells_cache import AHEAD_MARK, CACHE_ENV

    monkeypatch.delenv(CACHE_ENV, raising=False)
    started = _recording_start(monkeypatch)
    seen = {}

    def interrupted(*_a, km, **_k):
        cells = Path(started[0].cells)
        assert cells.parent == Path(started[0].folder)  # inside the kernel's 0700 folder
        for _ in range(1200):
            if list(cells.glob("cells-*.parquet")):
                break
            time.sleep(0.05)
        seen["files"] = sorted(AHEAD_MARK if p.name == AHEAD_MARK else p.suffix for p in cells.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(pm, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_params(_params(tmp_path, str(demo_warehouse)), tmp_path / "out", brief=False)
    assert seen["files"] == sorted([AHEAD_MARK, ".lock", ".parquet"])  # the mark, the lock, the cells: no more
    assert not started[0].alive() and not Path(started[0].folder).exists()


def test_the_kernel_is_told_its_cells_folder_unless_a_batch_named_one(tmp_path, monkeypatch):
    from evalkit.cells_cache import CACHE_ENV

    monkeypatch.delenv(CACHE_ENV, raising=False)
    kernel, texts = _run(tmp_path, monkeypatch, "tiny", f"import os\nprint(os.environ['{CACHE_ENV}'])")
    assert texts[0].strip() == os.path.join(kernel.folder, "cells") == kernel.cells
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # a batch's shared folder: the kernel uses that one
    kernel, texts = _run(tmp_path, monkeypatch, "tiny", f"import os\nprint(os.environ['{CACHE_ENV}'])")
    assert texts[0].strip() == str(tmp_path) and kernel.cells is None


def test_take_uses_the_kernel_started_ahead_only_if_it_fits(monkeypatch):
    for name, modules in (("evaluate_reform", ("json",)), ("pilot_station", ("json",)), ("prevention_index", ("os",))):
        monkeypatch.setitem(kernel_start.NOTEBOOK_IMPORTS, name, modules)  # light imports: the test is cheap
    started = _recording_start(monkeypatch)
    kernel_start.prestart("evaluate_reform")
    ahead = started[-1]
    got = kernel_start.take("pilot_station")  # the same imports: adopted
    assert got is ahead
    got.close()
    kernel_start.prestart("evaluate_reform")
    ahead = started[-1]
    got = kernel_start.take("prevention_index")  # other imports: the one ahead is closed, a new one starts
    try:
        assert got is not ahead and got is started[-1]
        assert not ahead.alive() and not Path(ahead.folder).exists()
    finally:
        got.close()
    kernel_start.prestart("tiny")
    ahead = started[-1]
    kernel_start.discard()  # as at exit: nothing left behind
    assert not ahead.alive() and not Path(ahead.folder).exists()


@pytest.mark.parametrize(("argv", "expected"), [
    (["/v/bin/evalkit", "run", "{p}"], "evaluate_reform"),
    (["/src/evalkit/__main__.py", "run", "--warehouse", "w.duckdb", "{p}", "-q"], "evaluate_reform"),
    (["/v/bin/evalkit", "run", "{p}", "{p}", "--jobs=1"], "evaluate_reform"),
    (["/v/bin/evalkit", "run", "{p}", "{p}", "-j2"], None),  # worker processes start their own
    (["/v/bin/evalkit", "run", "{p}", "--jobs", "2"], "evaluate_reform"),  # one file runs here
    (["/v/bin/evalkit", "run", "--help"], None),
    (["/v/bin/evalkit", "validate", "{p}"], None),
    (["/v/lib/pytest/__main__.py", "run", "{p}"], None),  # a test importing the CLI
    (["/v/bin/evalkit", "run", "missing.yaml"], None),
])
def test_evalkit_run_starts_its_kernel_at_once_and_nothing_else_does(tmp_path, monkeypatch, argv, expected):
    p = tmp_path / "index.yaml"
    p.write_text("evaluation_id: a\n")
    calls, paused = [], []
    monkeypatch.setattr(kernel_start, "prestart", calls.append)
    monkeypatch.setattr(kernel_start, "pause_collector", lambda: paused.append(True))
    monkeypatch.setattr(kernel_start.atexit, "register", lambda _f: None)
    kernel_start.start_for_command_line([a.replace("{p}", str(p)) for a in argv])
    assert calls == ([expected] if expected else [])
    assert paused == ([True] if expected else [])  # the imports of a run in this process: no collection


def test_collector_paused_for_the_imports_then_frozen_and_resumed(monkeypatch):
    import gc

    monkeypatch.setattr(kernel_start, "_paused", False)
    frozen = gc.get_freeze_count()
    try:
        kernel_start.resume_collector()  # not paused: nothing
        assert gc.isenabled() and gc.get_freeze_count() == frozen
        kernel_start.pause_collector()
        assert not gc.isenabled()
        made = [[i] for i in range(10_000)]
        kernel_start.resume_collector()
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(made)
        kernel_start.resume_collector()  # once only
        assert gc.isenabled()
        gc.disable()
        kernel_start.pause_collector()  # a collector already off is not ours to resume
        kernel_start.resume_collector()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_notebook_of_reads_the_key_without_a_yaml_parser(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("evaluation_id: x\n# notebook: design_pilot\nnotebook: 'prevention_index'  # the index\n")
    assert kernel_start.notebook_of(str(p)) == "prevention_index"
    assert kernel_start.notebook_of(str(tmp_path / "missing.yaml")) == "evaluate_reform"


def test_output_of_a_kernel_started_ahead_reaches_stderr_when_it_closes(tmp_path, monkeypatch, capfd):
    """A batch worker's next kernel starts while the current evaluation's stderr goes to its log: the
    kernel's own output goes to a file in its folder (not this process's stderr of the moment) and is
    written out when the kernel is closed."""
    from evalkit import runner

    nb = _notebook(tmp_path / "nb.ipynb", "import os\nos.write(2, b'from-the-kernel-process\\n')",
                   "import json\nopen(results_path, 'w').write(json.dumps({'ok': True}))")
    monkeypatch.setattr(runner, "notebook_path", lambda _name: nb)
    params = _params(tmp_path, "w.duckdb")
    capfd.readouterr()
    kernel = kernel_start.start("tiny", output_to_file=True)
    try:
        runner._execute(params, tmp_path / "out", kernel, pdf=False, brief=False, on_step=None)
        assert "from-the-kernel-process" not in capfd.readouterr().err
        assert "from-the-kernel-process" in Path(kernel.output).read_text()
    finally:
        kernel.close()
    assert "from-the-kernel-process" in capfd.readouterr().err
    assert not Path(kernel.folder).exists()


def test_run_jobs_hints_the_next_file_only_when_the_worker_will_probably_get_one(monkeypatch):
    from evalkit.runner import next_file_hint

    monkeypatch.delenv("EVALKIT_BATCH_PRESTART", raising=False)
    assert next_file_hint([(2, Path("c.yaml")), (3, Path("d.yaml"))], 2) is None  # off by default
    monkeypatch.setenv("EVALKIT_BATCH_PRESTART", "1")
    assert next_file_hint([(2, Path("c.yaml")), (3, Path("d.yaml"))], 2) == "c.yaml"
    assert next_file_hint([(3, Path("d.yaml"))], 2) is None
    assert next_file_hint([], 1) is None


def test_collector_paused_runs_no_collection_and_freezes_what_was_made():
    import gc

    from evalkit.kernel_start import collector_paused

    runs: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            runs.append(info["generation"])

    assert gc.isenabled()
    gc.callbacks.append(count)
    frozen = gc.get_freeze_count()
    try:
        with collector_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(100_000)]  # would trigger collections with the collector on
            gc.collect(0)  # an explicit collection still runs: only the automatic ones are paused
            runs.remove(0)
        assert gc.isenabled() and runs == []
        assert gc.get_freeze_count() >= frozen + len(made)
        gc.disable()
        with collector_paused():  # a collector that was off stays off
            pass
        assert not gc.isenabled()
    finally:
        gc.callbacks.remove(count)
        gc.enable()
        gc.unfreeze()


@pytest.mark.parametrize(("argv", "frozen"), [
    (["/v/bin/evalkit", "run", "{p}"], True),
    (["/v/bin/evalkit", "run", "{p}", "{p}", "-j2"], True),  # several workers: still this process's exit
    (["/src/evalkit/__main__.py", "run", "{p}", "-q"], True),
    (["/v/bin/evalkit", "validate", "{p}"], False),
    (["/v/lib/pytest/__main__.py", "run", "{p}"], False),  # a test importing the CLI
])
def test_evalkit_run_freezes_its_objects_at_exit_and_nothing_else_does(tmp_path, monkeypatch, argv, frozen):
    import gc

    p = tmp_path / "index.yaml"
    p.write_text("evaluation_id: a\n")
    registered = []
    monkeypatch.setattr(kernel_start, "prestart", lambda _nb: None)
    monkeypatch.setattr(kernel_start, "pause_collector", lambda: None)
    monkeypatch.setattr(kernel_start.atexit, "register", registered.append)
    monkeypatch.setenv("EVALKIT_KERNEL_EARLY", "0")  # the freeze does not depend on the early kernel
    kernel_start.start_for_command_line([a.replace("{p}", str(p)) for a in argv])
    assert registered == ([gc.freeze] if frozen else [])


@pytest.mark.parametrize("name, ahead", [("two_teams_fights", True), ("station_pilot", True),
                                         ("two_teams_index", True), ("index_bureau", False)])
def test_cells_are_computed_ahead_for_the_panel_evaluate_builds_from_the_warehouse(tmp_path, monkeypatch, name,
                                                                                    ahead, demo_warehouse):
    from types import SimpleNamespace

    from evalkit import cells_cache, runner
    from evalkit.index.outcome import cells_span
    from evalkit.panel import PanelSpec
    from evalkit.params import load_params
    from evalkit.warehouse import open_db

    calls = []
    monkeypatch.setattr(cells_cache, "start_ahead", lambda *a, threads: calls.append(a) or "ahead")
    kernel = SimpleNamespace(cells=str(tmp_path / "cells"))
    params = load_params(ROOT / "params" / f"{name}.yaml")
    assert runner.cells_ahead(params, kernel) == ("ahead" if ahead else None)
    if ahead:  # the region and months as evaluate() reads the cells (the window, or the index's span)
        [(folder, warehouse, region, months)] = calls
        assert (folder, warehouse, region) == (kernel.cells, params.warehouse, params.region.as_filter())
        spec = PanelSpec("", params.window.start, params.window.end)
        with open_db(demo_warehouse, read_only=True) as con:
            want = cells_span(con, params) or (spec.first_period, spec.last_period)
            assert months(con) == want
            assert (cells_span(con, params) is not None) == (name == "two_teams_index")  # the index's span
    assert runner.cells_ahead(params, SimpleNamespace(cells=None)) is None  # a batch's folder: not ahead
    monkeypatch.setenv(runner.CELLS_AHEAD_ENV, "0")
    assert runner.cells_ahead(params, kernel) is None


def test_cells_ahead_use_all_cores_only_for_a_large_warehouse(tmp_path, monkeypatch):
    from evalkit import runner

    small, large = tmp_path / "small.duckdb", tmp_path / "large.duckdb"
    small.write_bytes(b"x")
    with open(large, "wb") as fh:
        fh.truncate(runner.AHEAD_ALL_CORES_BYTES)  # sparse: no disk used
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert runner._ahead_threads(str(small)) == 1
    assert runner._ahead_threads(str(large)) == 4
    assert runner._ahead_threads(str(tmp_path / "missing.duckdb")) == 1


def test_the_briefs_export_gets_ready_after_the_cells_ahead_and_the_kernels_start(monkeypatch):
    """The kernel needs the cells within a second and both cores until it answers; the brief's Chromium and
    nbconvert are needed seconds later: they start after both."""
    import threading
    from types import SimpleNamespace

    from evalkit import runner

    order = []
    monkeypatch.setattr(runner, "warm_html", lambda: order.append("warm"))
    monkeypatch.setattr(runner, "prestart_browser", lambda: order.append("chromium"))
    ready = threading.Event()
    prep = threading.Thread(target=runner._prepare_brief,
                            args=(SimpleNamespace(wait=lambda: order.append("cells")), ready, True))
    prep.start()
    prep.join(0.3)
    assert prep.is_alive() and order == ["cells"]  # waits for the kernel to answer
    ready.set()
    prep.join(30)
    assert order == ["cells", "chromium", "warm"]
    order.clear()
    runner._prepare_brief(None, ready, False)  # no PDF: no Chromium
    assert order == ["warm"]


def test_the_kernel_managers_clients_tell_it_when_the_kernel_answers():
    from evalkit import runner

    km = runner.IPCKernelManager()
    km.on_ready = calls = []
    assert km.client().on_ready is calls and km.clients
