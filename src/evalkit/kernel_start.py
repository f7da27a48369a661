"""Start a notebook's kernel early, so its start and evalkit's imports overlap the runner's own work.

``evalkit run`` used to do everything in series: the parent's imports and the preflight, then
papermill started the kernel, whose first cell imported evalkit (scipy, matplotlib, pandas…). Here the
kernel process is launched first — by ``evalkit run`` before the CLI's imports
(:func:`start_for_command_line`), by :func:`evalkit.runner.run_params` before its preflight otherwise —
and imports its notebook's heavy modules before it answers (:data:`NOTEBOOK_IMPORTS`,
:mod:`evalkit.kernel_launcher`), while the parent goes on. The runner then hands the running process to
jupyter_client (``evalkit.runner.IPCKernelManager`` adopts it) and papermill through ``km=``.

The kernel is the one papermill would start: the kernel spec's command (``python -m
evalkit.kernel_launcher -f …``), the environment of this process plus the kernel's variables, its own
session and ``JPY_PARENT_PID`` as jupyter_client's launcher sets them, channels on Unix-domain sockets
in a private (0700) folder that also holds the connection file and the progress status file.
:meth:`StartedKernel.close` kills it and removes that folder; a kernel never taken is closed at exit.

Only the standard library is imported here: this module runs before anything else of ``evalkit run``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

# The kernel's environment variables, spelled here once (this module imports nothing of evalkit's; the
# kernel's modules import them from here).
#: the private folder of one kernel (its IOPub pipe socket goes there)
KERNEL_DIR_ENV = "EVALKIT_KERNEL_DIR"
#: the kernel's progress status file (:mod:`evalkit.progress`)
PROGRESS_ENV = "EVALKIT_PROGRESS_FILE"
#: modules the kernel imports before it serves requests, comma-separated (:mod:`evalkit.kernel_launcher`)
PREIMPORT_ENV = "EVALKIT_KERNEL_PREIMPORT"
#: ``1``: the kernel is kept for several evaluations and records its state (:mod:`evalkit.kernel_isolation`)
ISOLATE_ENV = "EVALKIT_KERNEL_ISOLATE"
#: the folder of shared station-month cells (:mod:`evalkit.cells_cache`)
CELLS_CACHE_ENV = "EVALKIT_CELLS_CACHE"
KERNEL_NAME = "python3"
#: the modules each notebook's first code cell imports (the kernel imports them before serving)
NOTEBOOK_IMPORTS: dict[str, tuple[str, ...]] = {
    "evaluate_reform": ("evalkit.evaluation", "evalkit.report"),
    "pilot_station": ("evalkit.evaluation", "evalkit.report"),
    "prevention_index": ("evalkit.index.brief",),
    "design_pilot": ("evalkit.design", "evalkit.evaluation", "evalkit.panel", "evalkit.viz"),
    "explore_data": ("evalkit.explore", "evalkit.evaluation", "evalkit.panel", "evalkit.viz"),
}
PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
#: what nbclient adds when it starts a kernel itself: IPython's history in memory, no SQLite file in $HOME
HISTORY_ARG = "--HistoryManager.hist_file=:memory:"


@dataclass
class StartedKernel:
    """A kernel process launched ahead of its notebook, with its private folder."""

    notebook: str
    folder: str
    connection_file: str
    connection: dict
    cmd: list[str]
    cwd: str
    process: subprocess.Popen = field(repr=False)
    output: str | None = None  # the kernel's stdout/stderr file, if not inherited (see start)
    cells: str | None = None  # the kernel's own cells folder (made ahead by the runner), if it reads one
    _shown: int = field(default=0, repr=False)  # bytes of ``output`` already written to stderr

    @property
    def progress_file(self) -> str:
        """Where the kernel writes the step it is in (:mod:`evalkit.progress`)."""
        return os.path.join(self.folder, "progress.json")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the kernel's process group (it runs in its own session), as jupyter_client does."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                try:
                    self.process.kill()
                except OSError:
                    pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.process.stdin is not None:
            self.process.stdin.close()

    def flush_output(self) -> None:
        """Write what the kernel printed to its output file since the last call to this process's stderr
        (a kept kernel's output goes to the log of the evaluation that made it). Never raises."""
        if not self.output:
            return
        try:
            with open(self.output, "rb") as fh:
                fh.seek(self._shown)
                text = fh.read()
            self._shown += len(text)
            if text:
                os.write(2, text)
        except OSError:
            pass

    def close(self) -> None:
        """Kill the kernel if it still runs and remove its folder (sockets, connection and status files);
        the kernel's own output, if it went to a file, is written to this process's stderr first."""
        try:
            self.kill()
            self.flush_output()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start(notebook: str, *, cwd: str | None = None, output_to_file: bool = False,
          isolate: bool = False) -> StartedKernel:
    """Launch the kernel for ``notebook`` (one of :data:`NOTEBOOK_IMPORTS`; another name: no pre-import).

    Returns at once: the kernel initialises and imports in its own process. Its stdout/stderr are this
    process's, or with ``output_to_file`` a file in its folder, written to this process's stderr when it
    closes (a batch worker sends each evaluation's stderr to that evaluation's log: a kernel started
    for the next evaluation must not write into the log of the current one). ``isolate``: the kernel will
    run several evaluations and records its state after the pre-imports (:mod:`evalkit.kernel_isolation`).
    Unless this process names a cells folder already (a batch's), the kernel's is ``cells`` in its own folder,
    not made yet: the runner may compute the panel's cells there ahead (:func:`evalkit.cells_cache.start_ahead`)."""
    # 0700: only this user reaches the sockets; the real path, as jupyter_client formats the kernel command
    folder = os.path.realpath(tempfile.mkdtemp(prefix="evalkit-kernel-"))
    try:
        # the connection file jupyter_client would write for the IPC transport (ports = socket file suffixes)
        info = {**dict(zip(PORTS, range(1, 6), strict=True)), "ip": os.path.join(folder, "kernel"),
                "key": secrets.token_hex(16), "transport": "ipc", "signature_scheme": "hmac-sha256",
                "kernel_name": KERNEL_NAME}
        conn = os.path.join(folder, f"kernel-{secrets.token_hex(8)}.json")
        fd = os.open(conn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=1)
        cmd = [sys.executable, "-m", "evalkit.kernel_launcher", "-f", conn, HISTORY_ARG]
        env = dict(os.environ)
        env.pop("PYTHONEXECUTABLE", None)  # as jupyter_client does for Python kernels
        env.update({KERNEL_DIR_ENV: folder, PROGRESS_ENV: os.path.join(folder, "progress.json"),
                    "JPY_PARENT_PID": str(os.getpid())})
        env.pop(ISOLATE_ENV, None)
        if isolate:
            env[ISOLATE_ENV] = "1"
        cells = None
        if not env.get(CELLS_CACHE_ENV):
            cells = env[CELLS_CACHE_ENV] = os.path.join(folder, "cells")
        modules = NOTEBOOK_IMPORTS.get(notebook, ())
        if modules:
            env[PREIMPORT_ENV] = ",".join(modules)
        else:
            env.pop(PREIMPORT_ENV, None)
        cwd = cwd or os.getcwd()
        output = os.path.join(folder, "output.log") if output_to_file else None
        with open(output or os.devnull, "wb") as sink:
            std = sink if output else None
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=std, stderr=std, cwd=cwd, env=env,
                                    start_new_session=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StartedKernel(notebook, folder, conn, info, cmd, cwd, proc, output, cells)


_waiting: StartedKernel | None = None  # started ahead, not yet taken


def prestart(notebook: str, *, output_to_file: bool = False) -> None:
    """Start the kernel of the next notebook this process will run (replaces one still waiting)."""
    global _waiting
    discard()
    _waiting = start(notebook, output_to_file=output_to_file)


def discard() -> None:
    """Close the kernel started ahead, if any (nothing will use it)."""
    global _waiting
    kernel, _waiting = _waiting, None
    if kernel is not None:
        kernel.close()


def take(notebook: str) -> StartedKernel:
    """The kernel started ahead if it fits ``notebook`` (same imports, same working folder, alive), else a
    new one (the one started ahead is closed)."""
    global _waiting
    kernel, _waiting = _waiting, None
    if kernel is not None:
        fits = (NOTEBOOK_IMPORTS.get(kernel.notebook) == NOTEBOOK_IMPORTS.get(notebook)
                and kernel.cwd == os.getcwd() and kernel.alive())
        if fits:
            return kernel
        kernel.close()
    return start(notebook)


atexit.register(discard)


# ----------------------------------------------------------------------------- `evalkit run` command line
_VALUE_OPTIONS = {"--outputs", "--warehouse", "--lang", "--jobs", "-j"}
_NOTEBOOK_KEY = re.compile(r"^notebook:\s*['\"]?([A-Za-z_]+)['\"]?\s*(?:#.*)?$", re.MULTILINE)


def _run_files(args: list[str]) -> tuple[list[str], int] | None:
    """The params files and ``--jobs`` of ``evalkit run ARGS`` (``None``: help asked or unreadable)."""
    files, jobs, i = [], 1, 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a in ("--help", "--"):
            return None
        if a.startswith("-j") and a[2:].isdigit():  # -j2
            jobs = int(a[2:])
        elif name in _VALUE_OPTIONS:
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            if name in ("--jobs", "-j"):
                jobs = int(value) if value.isdigit() else 1
        elif not a.startswith("-"):
            files.append(a)
        i += 1
    return files, jobs


def notebook_of(path: str) -> str:
    """The ``notebook:`` of a params file at a glance (no YAML parser yet): ``evaluate_reform`` by default."""
    try:
        with open(path, encoding="utf-8") as fh:
            m = _NOTEBOOK_KEY.search(fh.read(65536))
    except (OSError, UnicodeDecodeError):
        return "evaluate_reform"
    return m.group(1) if m else "evaluate_reform"


def start_for_command_line(argv: list[str]) -> None:
    """For ``evalkit run FILE …`` run in this process (not ``--jobs N`` over several files): start the
    first file's kernel now, before the CLI's imports. Anything else (other commands, tests importing the
    CLI, ``EVALKIT_KERNEL_EARLY=0``): nothing. Never raises: the runner starts the kernel itself then.
    For every ``evalkit run``, the process's objects are frozen at exit (:func:`_no_collection_at_exit`)."""
    try:
        prog = os.path.basename(argv[0]) if argv else ""
        parent = os.path.basename(os.path.dirname(argv[0])) if argv else ""
        if not (prog == "evalkit" or (prog == "__main__.py" and parent == "evalkit")) or argv[1:2] != ["run"]:
            return
        _no_collection_at_exit()
        if os.environ.get("EVALKIT_KERNEL_EARLY", "1") == "0":
            return
        parsed = _run_files(argv[2:])
        if parsed is None or not parsed[0] or (parsed[1] > 1 and len(parsed[0]) > 1):
            return
        if os.path.isfile(parsed[0][0]):
            prestart(notebook_of(parsed[0][0]))
            pause_collector()
    except Exception:  # noqa: BLE001, S110 - an early start is an optimisation only
        pass


_paused = False  # automatic garbage collection paused by pause_collector(), not yet resumed


def pause_collector() -> None:
    """Pause automatic garbage collection while a process makes objects that live as long as it does: ``evalkit
    run``'s imports (CLI, params, runner, papermill: ~1,600 modules, three full collections of 0.1 s each and
    ~400 younger ones), a kernel's start and pre-imports (~210k objects, ~190 collections, 0.1–0.2 s CPU of the
    ~0.8 s pre-import). :func:`resume_collector` freezes what was made and resumes it. A collector already off
    is left alone (not ours to resume)."""
    global _paused
    import gc

    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """After :func:`pause_collector`: freeze every object made so far (``gc.freeze``: out of later collections'
    way; a full collection over evalkit's imports takes ~0.1 s, frozen ~0.015 s) and resume automatic
    collection. Otherwise nothing. The cyclic garbage the imports left (small) is frozen with them instead of
    collected. :func:`evalkit.runner._execute` calls it once papermill is imported, before the notebook runs."""
    global _paused
    import gc

    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """:func:`pause_collector` inside the block, :func:`resume_collector` at its end (a kernel's start and
    pre-imports, :mod:`evalkit.kernel_launcher`)."""
    pause_collector()
    try:
        yield
    finally:
        resume_collector()


def _no_collection_at_exit() -> None:
    """At this process's exit, before the interpreter's own clean-up, freeze every object (``gc.freeze``).

    Python's finalisation runs full garbage collections over everything still alive while it tears the
    modules down: with ``evalkit run``'s imports (papermill, nbconvert, pandas, pydantic…, ~1,600 modules)
    that took 0.6–1.1 s on a loaded host (0.1–0.4 s frozen), after the last brief was written. Frozen
    objects are not collected; those reachable from modules are still released as the modules are
    cleared, and Python never promised to finalise cyclic garbage at exit. Registered last, so it runs
    first of the exit handlers."""
    import gc

    atexit.register(gc.freeze)
