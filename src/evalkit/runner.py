"""Run one evaluation: params file → papermill → executed notebook → results.json → brief.

``outputs/<evaluation_id>/`` receives ``executed.ipynb``, ``results.json``, ``brief.html``
and ``brief.pdf``. The notebook's kernel is launched first (:mod:`evalkit.kernel_start`: it starts and
imports evalkit while this process checks the params and the warehouse); a failed preflight kills it,
so mistakes cost milliseconds, not a notebook run.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit import kernel_start, progress
from evalkit.export import (
    BriefFiles,
    browser_session,
    export_brief,
    in_browser_session,
    prestart_browser,
    warm_html,
)
from evalkit.fileperm import public_mode
from evalkit.params import EvaluationParams, load_params, warehouse_problems
from evalkit.registry import REFORMS
from evalkit.warehouse import open_db

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from evalkit.batch.kernels import KeptKernel

NOTEBOOKS = ("evaluate_reform", "pilot_station", "design_pilot", "explore_data", "prevention_index")


class RunError(RuntimeError):
    """The evaluation could not run or its notebook failed (message says where)."""


@dataclass(frozen=True)
class RunOutputs:
    evaluation_id: str
    directory: Path
    executed: Path
    results: Path
    brief: BriefFiles | None


def notebook_path(name: str) -> Path:
    """The packaged notebook ``evalkit/notebooks/<name>.ipynb`` (importlib.resources, so it works
    from a wheel as from the source tree; the repository's ``notebooks/`` holds identical copies
    for JupyterLab, checked by ``tests/test_notebooks.py``)."""
    from importlib.resources import files

    p = Path(str(files("evalkit") / "notebooks" / f"{name}.ipynb"))
    if not p.is_file():
        raise RunError(f"notebook {name}.ipynb is not part of this evalkit installation ({p.parent}); "
                       f"choose one of {', '.join(NOTEBOOKS)}")
    return p


def preflight(params: EvaluationParams) -> None:
    """Check the warehouse exists, that some station adopted the reform, and the window against the data
    (:func:`evalkit.params.check_window`: inside the covered months, with a pre-period)."""
    wh = Path(params.warehouse)
    if not wh.is_file():
        raise RunError(f"{params.evaluation_id}: warehouse {wh} not found — run `evalkit ingest`, or for the demo "
                       f"`evalkit demo-data` and pass --warehouse data/demo/warehouse.duckdb")
    if params.notebook == "prevention_index":  # an index report: the definition must exist too
        if not Path(params.index_definition).is_file():
            raise RunError(f"{params.evaluation_id}: index_definition {params.index_definition} not found")
        return
    # one read-only connection for all the checks (opening the file is most of their cost: ~0.1–0.2 s each)
    with open_db(wh, read_only=True) as con:
        n = con.execute("SELECT count(DISTINCT station_id) FROM reforms WHERE reform = ?", [params.reform]).fetchone()[0]
        if n == 0:
            raise RunError(f"{params.evaluation_id}: no station in {wh} adopted reform {params.reform!r} "
                           f"({REFORMS[params.reform].zh})")
        problems = warehouse_problems(params, con, params.evaluation_id)  # check_against_warehouse's, on `con`
    if problems:  # a window beyond the data or without a pre-period is refused, never clipped
        raise RunError("; ".join(problems))


def check_outputs_writable(outputs: str | Path) -> Path:
    """Create ``outputs`` if needed and prove a file can be written there, before any notebook starts
    (a read-only folder would otherwise fail after minutes of computing). :class:`RunError`, one line."""
    out = Path(outputs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RunError(f"outputs folder {out} is not writable ({why}): choose another with --outputs "
                       f"or make it writable") from None
    return out


#: environment variable naming the private folder of one kernel (its IOPub pipe socket goes there)
KERNEL_DIR_ENV = kernel_start.KERNEL_DIR_ENV


def _kernel_config(sockets: str, *, progress_file: str | None = None):
    """Kernel over Unix-domain sockets in the private directory ``sockets`` (IPC transport), not
    TCP on localhost: other local users cannot reach or read the kernel's channels (police data),
    kernels started at the same time by batch workers cannot clash on ports, and ipykernel does
    not warn about unencrypted TCP. The kernel's environment names ``sockets`` (for the IOPub pipe,
    :mod:`evalkit.kernel_launcher`) and the progress status file (:mod:`evalkit.progress`)."""
    from traitlets.config import Config

    cfg = Config()
    if os.name == "posix":
        cfg.KernelManager.transport = "ipc"
        cfg.KernelManager.ip = os.path.join(sockets, "kernel")
        # ipykernel's IOPub pipe would still listen on 127.0.0.1: evalkit.kernel_launcher moves it to IPC
        cfg.NotebookClient.kernel_manager_class = "evalkit.runner.IPCKernelManager"
        env = {KERNEL_DIR_ENV: sockets}
        if progress_file:
            env[progress.ENV] = progress_file
        cfg.IPCKernelManager.extra_env = env
    return cfg


def _ready_client_class():
    """jupyter_client's asynchronous kernel client, whose ``wait_for_ready`` stops flushing IOPub at the
    kernel's ``idle`` status for the ``kernel_info`` request it answered, instead of after 0.2 s without any
    IOPub message (a fixed 0.2 s wait before every notebook's first cell). Everything else is
    jupyter_client's: the same requests, checks, timeouts and errors; without that ``idle`` in sight it
    flushes as jupyter_client does."""
    import time
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyClient(AsyncKernelClient):
        on_ready = None  # called once the kernel answered (its manager's ``on_ready``)

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            abs_timeout = time.time() + (float("inf") if timeout is None else timeout)
            while True:  # as jupyter_client: kernel_info until a reply, IOPub shown to be connected
                self.kernel_info()
                try:
                    msg = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    pass
                else:
                    if msg["msg_type"] == "kernel_info_reply":
                        try:
                            first = await self.iopub_channel.get_msg(timeout=0.2)
                        except Empty:
                            pass
                        else:
                            self._handle_kernel_info_reply(msg)
                            break
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.time() > abs_timeout:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
            # flush IOPub: the kernel's last message for the answered request is its `idle` status (on
            # IOPub the kernel's messages keep their order, so everything before it is flushed with it)
            answered = msg["parent_header"].get("msg_id")
            while not _idle_for(first, answered):
                try:
                    first = await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    break
            if self.on_ready is not None:  # the runner starts the brief's Chromium now (_prepare_brief)
                self.on_ready()

    return ReadyClient


def _idle_for(msg: dict, msg_id: str | None) -> bool:
    """Whether the IOPub message ``msg`` is the kernel's ``idle`` status after the request ``msg_id``."""
    return (msg_id is not None and msg.get("msg_type") == "status"
            and msg.get("content", {}).get("execution_state") == "idle"
            and msg.get("parent_header", {}).get("msg_id") == msg_id)


def _ipc_kernel_manager():
    from jupyter_client import AsyncKernelManager
    from traitlets import Any, Dict, List, default

    class IPCKernelManager(AsyncKernelManager):
        """Starts ``python -m evalkit.kernel_launcher`` where the kernel spec says ``ipykernel_launcher``,
        with ``extra_env`` added to the kernel's environment, and shuts it down without an interrupt.
        Its clients wait for the kernel without jupyter_client's fixed 0.2 s (:func:`_ready_client_class`)."""

        extra_env = Dict(config=True, help="variables added to the kernel's environment")
        clients = List(help="kernel clients made by this manager")

        @default("client_factory")
        def _ready_client(self):  # noqa: ANN202 - a class
            return _ready_client_class()

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return ["evalkit.kernel_launcher" if c == "ipykernel_launcher" else c for c in cmd]

        async def _async_pre_start_kernel(self, **kw):
            if self.extra_env:
                kw["env"] = {**kw.get("env", os.environ), **self.extra_env}
            return await super()._async_pre_start_kernel(**kw)

        prestarted = Any(None, allow_none=True, help="a kernel_start.StartedKernel this manager adopts")

        def write_connection_file(self, **kw):
            # an adopted kernel has read (or is reading) its connection file: never rewrite it
            if self.prestarted is None or not os.path.exists(self.connection_file):
                super().write_connection_file(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            started = self.prestarted
            if started is None or kernel_cmd != started.cmd or not started.alive():
                if started is not None:  # another kernel spec than evalkit's, or it died: start as usual
                    started.kill()
                    self.prestarted = None
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            prov = self.provisioner  # LocalProvisioner.launch_kernel's bookkeeping, for the running process
            prov.process, prov.pid, prov.cwd = started.process, started.process.pid, started.cwd
            try:
                prov.pgid = os.getpgid(started.process.pid)
            except OSError:
                prov.pgid = None

        on_ready = Any(None, allow_none=True, help="called when a client of this manager finds the kernel ready")

        def client(self, **kw):
            kc = super().client(**kw)
            kc.on_ready = self.on_ready
            self.clients.append(kc)  # nbclient does not stop the channels of a manager it did not create
            return kc

        async def _async_kill_kernel(self, restart: bool = False) -> None:
            # jupyter_client sleeps 0.1 s between checks that the killed kernel is gone (twice: the manager,
            # then the provisioner), after every `evalkit run`'s last cell; SIGKILLed, it is gone in
            # milliseconds: wait for the process itself, and the checks below find it gone at once
            proc = getattr(self.provisioner, "process", None)
            if self.has_kernel and proc is not None:
                await self.provisioner.kill(restart=restart)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            await super()._async_kill_kernel(restart=restart)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts (SIGINT) every kernel before shutting it down, and ipykernel then
            # prints "KeyboardInterrupt caught in kernel" on the terminal. evalkit shuts a kernel down only
            # after its last cell (idle, nothing to interrupt) or to kill it; a real interrupt still works.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def __getattr__(name: str):  # IPCKernelManager is built on first use: jupyter_client loads lazily
    if name == "IPCKernelManager":
        cls = _ipc_kernel_manager()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


#: ``immediate``: kill the kernel after the last cell (results.json is written by then); ``graceful``:
#: nbclient's default, which waits up to seconds for the kernel to exit on its own (docs/batch.md)
SHUTDOWN_ENV = "EVALKIT_KERNEL_SHUTDOWN"


def run_params(params: EvaluationParams, outputs: str | Path = "outputs", *, pdf: bool = True,
               brief: bool = True, on_step: progress.Callback | None = None,
               next_notebook: str | None = None, keeper: KeptKernel | None = None) -> RunOutputs:
    """Execute the evaluation's notebook with papermill and export its brief.

    ``on_step(step)`` is called as each step starts: ``preflight``, ``start_kernel``, the evaluation's
    own steps reported from inside the kernel (:mod:`evalkit.progress`, polled from a status file in
    the kernel's private folder), ``done`` (the notebook's tables and charts), ``brief_html``,
    ``brief_pdf``. Without it nothing is polled. ``next_notebook``: the notebook this process runs next,
    whose kernel starts as soon as this one's notebook has run (while the brief exports). ``keeper``: a batch
    worker's kept kernel (:mod:`evalkit.batch.kernels`), used instead of a new kernel, kept if this
    evaluation succeeds (its state is restored before the next) and replaced if it fails."""
    step = on_step or (lambda _s: None)
    step("preflight")
    # the kernel starts (or was started by `evalkit run`) before the preflight: it imports evalkit meanwhile; a
    # batch worker's kept kernel (with its manager, None until a notebook ran in it) is ready already
    kernel, km = keeper.take(params.notebook) if keeper is not None else (kernel_start.take(params.notebook), None)
    checked = False
    try:
        params = params.model_copy(update={"warehouse": str(Path(params.warehouse).resolve())})
        preflight(params)
        checked = True
        # the brief's Chromium starts while the notebook runs (one per run unless the caller holds a browser
        # session: `evalkit run` of several files, batch workers), once the kernel answers (_prepare_brief)
        with contextlib.nullcontext() if in_browser_session() else browser_session():
            return _execute(params, outputs, kernel, pdf=pdf, brief=brief, on_step=on_step,
                            next_notebook=next_notebook, keeper=keeper, km=km)
    except BaseException:
        if keeper is not None and checked:  # a failed preflight ran nothing in the kept kernel: kept
            keeper.discard()
        raise
    finally:
        if keeper is None:
            kernel.close()  # killed if still running (failed preflight, Ctrl-C), its folder removed


#: ``0``: the runner's process does not compute the panel's cells ahead of the kernel (:func:`cells_ahead`)
CELLS_AHEAD_ENV = "EVALKIT_CELLS_AHEAD"


def cells_ahead(params: EvaluationParams, kernel: kernel_start.StartedKernel):  # noqa: ANN201 - cells_cache.Ahead
    """While ``kernel`` imports, compute the station-month cells its evaluation's panel reads
    (:func:`evalkit.cells_cache.start_ahead`, in a thread of this process, which would only wait meanwhile), so
    the kernel's ``build_panel`` (or, with index outcomes reading the panel's counts, the panel cache of
    :func:`evalkit.index.outcome.panel_with_index`, over the index's span) reads them instead of aggregating the
    records on the critical path. Only for the notebooks that build the params' panel from the warehouse (no
    ``panel_file``); ``None`` otherwise, or when :data:`CELLS_AHEAD_ENV` is ``0``. The panel is the same bit for
    bit (Parquet keeps DuckDB's values, ``tests/test_cells_cache.py``)."""
    if (os.environ.get(CELLS_AHEAD_ENV, "1") == "0" or kernel.cells is None
            or params.notebook not in ("evaluate_reform", "pilot_station") or params.panel_file):
        return None
    from evalkit.cells_cache import start_ahead
    from evalkit.panel import PanelSpec

    spec = PanelSpec("", params.window.start, params.window.end)
    window = (spec.first_period, spec.last_period)

    def months(con) -> tuple[int, int]:  # noqa: ANN001 - the months evaluate() reads the cells of
        from evalkit.index.outcome import cells_span

        return cells_span(con, params) or window

    return start_ahead(kernel.cells, params.warehouse, params.region.as_filter(), months,
                       threads=_ahead_threads(params.warehouse))


#: warehouse files from this size (bytes) get all cores for the cells ahead (:func:`_ahead_threads`)
AHEAD_ALL_CORES_BYTES = 256 * 2**20


def _ahead_threads(warehouse: str) -> int:
    """DuckDB threads for the cells ahead: one while the kernel imports on the other core (small world, 44 MB:
    0.35 s of CPU, done long before the kernel is ready); all cores for a large warehouse, whose cells take
    longer than the kernel's start (medium world, 480 MB: 3–5 s of CPU, which the kernel would otherwise
    compute on both cores once ready)."""
    try:
        size = os.path.getsize(warehouse)
    except OSError:
        return 1
    return max(1, os.cpu_count() or 1) if size >= AHEAD_ALL_CORES_BYTES else 1


def _kernel_manager(kernel: kernel_start.StartedKernel, config):
    """The jupyter_client manager of ``kernel`` (adopted, already running), for papermill's ``km=``."""
    from jupyter_core.utils import run_sync

    cls = __getattr__("IPCKernelManager")  # built once, on first use
    km = cls(kernel_name=kernel_start.KERNEL_NAME, config=config, prestarted=kernel)
    km.connection_file = kernel.connection_file
    km.load_connection_file()
    run_sync(km.start_kernel)(cwd=kernel.cwd, extra_arguments=[kernel_start.HISTORY_ARG])
    return km


def _shutdown(km, mode: str) -> None:
    """What nbclient does with a kernel it started: ``immediate`` kills it, ``graceful`` asks it to exit
    (:data:`SHUTDOWN_ENV`); then the manager's resources and the clients' channels are released."""
    from jupyter_core.utils import ensure_async, run_sync

    async def shutdown() -> None:
        try:
            if await ensure_async(km.is_alive()):
                await ensure_async(km.shutdown_kernel(now=mode == "immediate"))
        except RuntimeError as exc:
            if "No kernel is running!" not in str(exc):
                raise
        finally:
            await ensure_async(km.cleanup_resources())
            for kc in km.clients:
                await ensure_async(kc.stop_channels())

    run_sync(shutdown)()


def _execute(params: EvaluationParams, outputs: str | Path, kernel: kernel_start.StartedKernel, *, pdf: bool,
             brief: bool, on_step: progress.Callback | None, next_notebook: str | None = None,
             keeper: KeptKernel | None = None, km=None) -> RunOutputs:
    """:func:`run_params` after the preflight: papermill on ``kernel``, then the brief. With ``keeper`` the
    kernel is left running (``km``: its manager from an earlier evaluation; a new one is stored on it) and
    told to restore its state (:meth:`KeptKernel.keep`) as soon as the notebook has run."""
    import papermill as pm  # here, after evalkit.export imported nbformat without the IRI grammar

    kernel_start.resume_collector()  # `evalkit run`'s imports are done: frozen, collections resume
    step = on_step or (lambda _s: None)
    out_dir = check_outputs_writable(Path(outputs) / params.evaluation_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / "executed.ipynb"
    results = out_dir / "results.json"
    injected = params.notebook_parameters() | {"results_path": str(results.resolve())}
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".executed-", suffix=".ipynb")
    os.close(fd)
    # the panel's cells computed meanwhile, now that this process's own imports are done: from here on it
    # mostly waits for the kernel (a kept kernel is ready: it has no start to overlap)
    ahead = cells_ahead(params, kernel) if keeper is None else None
    shutdown = os.environ.get(SHUTDOWN_ENV, "immediate")
    ready = threading.Event()  # set when the kernel answers, or when the notebook is over
    cancelled = threading.Event()  # set (before `ready`) when the run failed: nothing to warm up for
    warm = None
    try:
        status = Path(kernel.progress_file)
        step("start_kernel")
        poll = progress.StatusPoller(status, step) if on_step else contextlib.nullcontext()
        config = _kernel_config(kernel.folder, progress_file=str(status))
        if km is None:
            km = _kernel_manager(kernel, config)
        if keeper is not None:
            keeper.km = km
        if brief:  # Chromium and nbconvert get ready in a thread of this process, in the browser session's context
            km.on_ready = ready.set
            warm = threading.Thread(target=contextvars.copy_context().run,
                                    args=(_prepare_brief, ahead, ready, pdf, cancelled),
                                    name="evalkit-warm-brief", daemon=True)
            warm.start()
        try:
            with poll:
                pm.execute_notebook(
                    str(notebook_path(params.notebook)), tmp, parameters=injected, cwd=kernel.cwd,
                    kernel_name=kernel_start.KERNEL_NAME, progress_bar=False, log_output=False,
                    report_mode=False, config=config, km=km, shutdown_kernel=shutdown,
                    # the kernel answers once its pre-imports are done (matplotlib's first font-cache
                    # build can take a while); a kernel that dies is still noticed at once
                    start_timeout=300,
                    # written once at the end (and on a failing cell, for failed.ipynb), not before and
                    # after every cell: nobody reads the hidden temp file meanwhile, and each write
                    # validates the whole notebook while the kernel waits for its next cell
                    request_save_on_cell_execute=False,
                )
        except BaseException:  # a failed cell or Ctrl-C: the brief's thread starts no Chromium
            cancelled.set()
            raise
        finally:
            ready.set()
            if km is not None:
                km.on_ready = None
            if ahead is not None:  # stopped if still computing, removed (Ctrl-C too; also in the kernel's folder)
                ahead.close()
            if keeper is None:
                _shutdown(km, shutdown)
    except pm.PapermillExecutionError as exc:
        _join(warm)
        failed = out_dir / "failed.ipynb"
        public_mode(tmp)
        os.replace(tmp, failed)
        raise RunError(f"{params.evaluation_id}: notebook failed in cell {exc.exec_count}: "
                       f"{exc.ename}: {exc.evalue} (partial notebook: {failed})") from None
    except BaseException:
        cancelled.set()
        ready.set()
        if ahead is not None:  # a failure before the notebook ran
            ahead.close()
        _join(warm)  # no Chromium started after the browser session closes
        Path(tmp).unlink(missing_ok=True)
        raise
    if keeper is not None:  # the kept kernel restores its state while this brief exports
        keeper.keep()
    elif next_notebook:  # the next evaluation's kernel starts and imports while this brief exports; its
        kernel_start.prestart(next_notebook, output_to_file=True)  # output goes to the next one's stderr
    public_mode(tmp)  # mkstemp makes 0600; outputs follow the umask
    os.replace(tmp, executed)
    (out_dir / "failed.ipynb").unlink(missing_ok=True)
    if not results.is_file():
        cancelled.set()
        raise RunError(f"{params.evaluation_id}: the notebook did not write {results}")
    _join(warm)
    files = export_brief(executed, out_dir, pdf=pdf, on_step=on_step) if brief else None
    return RunOutputs(params.evaluation_id, out_dir, executed, results, files)


def _prepare_brief(ahead, ready: threading.Event, pdf: bool,  # noqa: ANN001 - cells_cache.Ahead or None
                   cancelled: threading.Event | None = None) -> None:
    """Get the brief's export ready while the notebook runs, without slowing the kernel's start: once the cells
    ahead are written (or given up) and the kernel has answered (``ready``; its pre-imports hold one core and
    this process's the other until then), start Chromium and open the PDF's page (:func:`prestart_browser`,
    ``pdf``; about 0.5 s of CPU, which on 2 cores delayed the kernel's first cell by ~0.5 s when it started
    with the kernel), then warm nbconvert up (:func:`evalkit.export.warm_html`). Starts nothing once
    ``cancelled`` is set (the run failed or was interrupted: a Chromium started then could outlive it)."""
    def stop() -> bool:
        return cancelled is not None and cancelled.is_set()

    if ahead is not None:
        ahead.wait()
    if stop():
        return
    ready.wait()
    if stop():
        return
    if pdf:
        prestart_browser()
    warm_html()


def _join(thread: threading.Thread | None) -> None:
    if thread is not None:
        thread.join()


def run_file(path: str | Path, outputs: str | Path = "outputs", *, warehouse: str | None = None,
             lang: str | None = None, pdf: bool = True, on_step: progress.Callback | None = None,
             next_file: str | Path | None = None, keeper: KeptKernel | None = None) -> RunOutputs:
    """Validate a params YAML file and run it (``warehouse``/``lang`` override the file); ``next_file``:
    the params file run next in this process (its kernel starts while this brief exports); ``keeper``: this
    worker's kept kernel (:func:`run_params`)."""
    params = load_params(path)
    update = {k: v for k, v in {"warehouse": warehouse, "lang": lang}.items() if v}
    if update:
        params = type(params).model_validate(params.model_dump() | update)
    nxt = kernel_start.notebook_of(str(next_file)) if next_file else None
    return run_params(params, outputs, pdf=pdf, on_step=on_step, next_notebook=nxt, keeper=keeper)


def run_file_job(path: str, outputs: str, warehouse: str | None, lang: str | None, pdf: bool,
                 status: str | None, next_file: str | None = None) -> tuple[bool, str]:
    """One file of ``evalkit run --jobs N``, in a worker process (:func:`job_pool`): ``(ok, brief path or
    error line)``. It runs in the worker's kept kernel (:mod:`evalkit.batch.kernels`; a fresh kernel when
    reuse is off, and after a failed evaluation: the failure is this file's only).

    Steps go to the status file ``status`` (:mod:`evalkit.progress`) for the parent's display;
    ``next_file``: the file this worker probably runs next (:func:`next_file_hint`; used only without a
    kept kernel)."""
    from evalkit.batch.kernels import process_keeper

    on_step = (lambda s: progress.write_status(Path(status), s)) if status else None
    try:
        res = run_file(path, outputs, warehouse=warehouse, lang=lang, pdf=pdf, on_step=on_step,
                       next_file=next_file, keeper=process_keeper())
    except RunError as exc:
        return False, str(exc)
    brief = res.brief.pdf or res.brief.html if res.brief else res.executed
    return True, str(brief)


def job_pool(workers: int, jobs: int) -> ProcessPoolExecutor:
    """The ``workers`` processes of ``evalkit run --jobs N`` (``jobs``: N), set up as local batch workers
    (:func:`evalkit.batch.local._worker_init`: spawned, one Chromium and one kept notebook kernel each, BLAS
    threads = cores // N, dying with this process)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from evalkit.batch.local import _threads_per_worker, _worker_init

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(_threads_per_worker(jobs), os.getpid()))


def next_file_hint(pending: list, jobs: int) -> str | None:
    """For ``evalkit run --jobs N``: the params file whose kernel a worker starts ahead (the first waiting
    ``(index, path)``), or ``None`` when fewer files wait than workers run (no kernel started in vain) or
    unless ``EVALKIT_BATCH_PRESTART=1`` (off by default, as for batches: :mod:`evalkit.batch.local`)."""
    if os.environ.get("EVALKIT_BATCH_PRESTART", "0") != "1":
        return None
    return str(pending[0][1]) if len(pending) >= jobs else None
