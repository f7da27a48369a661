"""Start the notebook kernel with no TCP listener at all (``python -m evalkit.kernel_launcher -f …``).

The runner already puts the kernel's five channels on Unix-domain sockets (IPC transport, see
:func:`evalkit.runner._kernel_config`), but ipykernel also binds the IOPub "pipe" — which carries
the output of forked subprocesses — to a random TCP port on 127.0.0.1, whatever the transport.
Here that pipe is bound to an IPC socket in a private (0700) folder instead — the runner's kernel folder
(``EVALKIT_KERNEL_DIR``, removed by the runner even when the kernel is killed) or a new temporary
folder removed at exit — then the
kernel starts exactly as ``python -m ipykernel_launcher`` would. If ipykernel's internals differ
from what this expects, the kernel starts unpatched (never fails because of this module).

With ``EVALKIT_KERNEL_PREIMPORT`` set (comma-separated module names, :mod:`evalkit.kernel_start`), the
kernel imports those modules after its initialisation (shell, sockets, matplotlib's inline backend
chosen: the imports see what a notebook cell would see) and before it answers its first request, so
a kernel started early does evalkit's heavy imports while the runner is still busy with its own. Nothing
is bound in the notebook's namespace and nothing is printed; a module that fails to import is left
alone (the notebook's cell imports it as usual and shows the error there). Without the variable the
kernel is the plain one (the floor of ``benchmarks/bench_evaluation.py``). With ``EVALKIT_KERNEL_ISOLATE=1``
(a batch worker's kept kernel) it then records its state (:func:`evalkit.kernel_isolation.snapshot`), which
every later evaluation in it starts from.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

from evalkit.kernel_start import ISOLATE_ENV, KERNEL_DIR_ENV, PREIMPORT_ENV, collector_paused


def _patch_iopub_pipe() -> None:
    import zmq
    from ipykernel import iostream

    cls = iostream.IOPubThread
    needed = ("_setup_pipe_in", "_setup_pipe_out", "_handle_pipe_msg")
    if not all(hasattr(cls, name) for name in needed) or not hasattr(iostream, "ZMQStream"):
        return
    given = os.environ.get(KERNEL_DIR_ENV)  # the run's private folder, removed by the runner
    if given and os.path.isdir(given):
        folder = given
    else:
        folder = tempfile.mkdtemp(prefix="evalkit-iopub-")  # 0700: only this user reaches the pipe
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    address = "ipc://" + os.path.join(folder, "iopub-pipe")

    def _setup_pipe_in(self) -> None:
        """Listening pipe for IOPub from forked subprocesses, on an IPC socket (ipykernel: TCP)."""
        pipe_in = self.socket.context.socket(zmq.PULL)
        pipe_in.linger = 0
        self._pipe_uuid = os.urandom(16)  # authenticates pipe messages, as in ipykernel
        try:
            pipe_in.bind(address)
        except zmq.ZMQError:
            self._pipe_flag = False  # as ipykernel does: forked subprocesses' output is then lost
            pipe_in.close()
            return
        self._pipe_in = iostream.ZMQStream(pipe_in, self.io_loop)
        self._pipe_in.on_recv(self._handle_pipe_msg)

    def _setup_pipe_out(self):
        ctx = zmq.Context()  # a new context after fork
        pipe_out = ctx.socket(zmq.PUSH)
        pipe_out.linger = 3000
        pipe_out.connect(address)
        return ctx, pipe_out

    cls._setup_pipe_in = _setup_pipe_in
    cls._setup_pipe_out = _setup_pipe_out




def preimport(names: str) -> list[str]:
    """Import the comma-separated modules ``names``; the ones that imported. Never raises, prints nothing
    (output and warnings of the imports go nowhere: no cell is running to receive them)."""
    import importlib

    done = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                importlib.import_module(name)
        except BaseException:  # noqa: BLE001, S110 - never fail the kernel: the cell imports it as usual
            continue
        done.append(name)
    return done


#: numpy submodules loaded only because a module lists numpy's whole namespace (below)
_NUMPY_UNUSED = ("f2py", "testing")


@contextlib.contextmanager
def numpy_namespace_without_unused() -> Iterator[None]:
    """Inside: numpy's ``__all__`` and ``dir()`` leave out :data:`_NUMPY_UNUSED` (those not imported yet).

    SciPy's vendored array-API namespace (``scipy._lib.array_api_compat.numpy``, imported by
    ``scipy.special``) copies numpy's whole namespace (``from numpy import *``, then every name of
    ``dir(numpy)``), which imports each lazily loaded numpy submodule named there: ``numpy.f2py``
    (Fortran wrapper generator) and ``numpy.testing`` (with ``unittest``) cost ~0.07 s of the kernel's
    pre-import, on ``evalkit run``'s critical path, and SciPy reads neither through that namespace
    (only for CuPy and PyTorch arrays). Still importable as usual (``numpy.testing`` works)."""
    import numpy as np

    hide = {n for n in _NUMPY_UNUSED if f"numpy.{n}" not in sys.modules}
    names, listing = np.__all__, np.__dict__.get("__dir__")
    if not hide or not isinstance(names, list) or not callable(listing):
        yield
        return
    np.__all__ = [n for n in names if n not in hide]
    np.__dir__ = lambda: [n for n in listing() if n not in hide]
    try:
        yield
    finally:
        np.__all__, np.__dir__ = names, listing


@contextlib.contextmanager
def without_debugpy() -> Iterator[None]:
    """Inside: ``import debugpy`` fails, so the kernel initialises without the Jupyter debugger (ipykernel
    then leaves ``debugger`` out of its supported features). Importing debugpy and pydevd cost ~0.05 s of
    an early kernel's start; nothing debugs the kernel of a notebook papermill runs. After the block
    ``import debugpy`` works again (a cell may still use it)."""
    if "debugpy" in sys.modules:
        yield
        return
    sys.modules["debugpy"] = None  # type: ignore[assignment] - the import system's "not importable"
    try:
        yield
    finally:
        if sys.modules.get("debugpy", 0) is None:
            del sys.modules["debugpy"]


def main() -> None:
    if sys.path and sys.path[0] == "":  # as ipykernel_launcher: not the working directory's modules
        del sys.path[0]
    modules = os.environ.pop(PREIMPORT_ENV, "")  # not inherited by the notebook's own subprocesses
    isolate = os.environ.get(ISOLATE_ENV) == "1"
    if not modules and not isolate:  # the plain kernel (the floor of benchmarks/bench_evaluation.py)
        _start_kernel(None, isolate)
        return
    # the kernel's start and pre-imports, up to app.start(): their objects live as long as the kernel (frozen)
    with collector_paused():
        app = _start_kernel(modules, isolate)
    app.start()


def _start_kernel(modules: str | None, isolate: bool):  # noqa: ANN202 - ipykernel's IPKernelApp
    """Start the plain kernel (``modules`` None: it runs until shut down), or initialise one, import
    ``modules`` in it, take the isolation snapshot if asked, and return the app, not yet serving."""
    from evalkit.malloc_tuning import retain_freed_memory

    retain_freed_memory()  # freed national-size arrays reused, not re-mapped and faulted in (-70 s system time)
    if os.name == "posix":
        try:
            _patch_iopub_pipe()
        except Exception:  # noqa: BLE001 - an unexpected ipykernel: start it as it is
            pass
    from ipykernel import kernelapp

    if modules is None:
        kernelapp.launch_new_instance()
        return None
    # kernelapp.launch_new_instance() is IPKernelApp.launch_instance: instance(), initialize(), start()
    app = kernelapp.IPKernelApp.instance()
    with without_debugpy():
        app.initialize()
    with numpy_namespace_without_unused():
        preimport(modules)
    if isolate:  # a kernel kept for several evaluations: its state now is what each of them starts from
        try:
            from evalkit import kernel_isolation

            kernel_isolation.take_snapshot_if_asked()
        except Exception:  # noqa: BLE001, S110 - no snapshot: the worker's first restore fails, it starts a
            pass           # fresh kernel for every evaluation (never fail the kernel because of this)
    return app


if __name__ == "__main__":
    main()
