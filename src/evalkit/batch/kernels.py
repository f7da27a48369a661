"""A worker's notebook kernel (`evalkit batch`, `run --jobs`): started once, reused, isolated between uses.

Each evaluation used to start its own kernel (start, then the pre-import of evalkit: 0.5–2 s of every
evaluation on a busy machine) and paid matplotlib's and the estimators' first-use costs again. A worker
now keeps one kernel (:class:`KeptKernel`): the first evaluation starts it (with the usual pre-imports,
and ``EVALKIT_KERNEL_ISOLATE=1`` so that it records its state, :mod:`evalkit.kernel_isolation`); after
an evaluation *succeeds*, the worker sends the kernel :func:`evalkit.kernel_isolation.restore` at once (a
silent request: it runs while the worker exports the brief) and the next evaluation waits for its reply.
The kernel is replaced by a fresh one when:

* the evaluation failed in any way (a cell error, the kernel died, a timeout): the failure is that
  evaluation's only (``run_params`` raises as before) and the next one starts a new kernel;
* the restore failed or did not answer within :data:`RESET_TIMEOUT` seconds, or the kernel is not alive;
* the worker's working folder or environment changed since the kernel started (a fresh kernel would
  inherit the new ones).

Local batch workers and the workers of ``evalkit run --jobs N`` keep a kernel (both call
:func:`keep_kernels_in_this_process` in their initializer). ``EVALKIT_KERNEL_REUSE=0`` (:data:`REUSE_ENV`;
the older name ``EVALKIT_BATCH_KERNEL_REUSE=0`` still works) gives every evaluation a fresh kernel, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from typing import Any

from evalkit import kernel_start
from evalkit.kernel_isolation import RESTORE_CODE

#: ``0``: a fresh kernel per evaluation (no reuse); anything else or unset: reuse
REUSE_ENV = "EVALKIT_KERNEL_REUSE"
#: the same switch's first name (batches only, session 22): ``0`` still turns reuse off
OLD_REUSE_ENV = "EVALKIT_BATCH_KERNEL_REUSE"
#: seconds a kept kernel may take to restore its state before it is replaced (not an evaluation's limit)
RESET_TIMEOUT = 120.0


def reuse_enabled() -> bool:
    """Whether worker processes keep their kernel (neither :data:`REUSE_ENV` nor :data:`OLD_REUSE_ENV` is ``0``)."""
    return "0" not in (os.environ.get(REUSE_ENV, "1"), os.environ.get(OLD_REUSE_ENV, "1"))


class KeptKernel:
    """The kernel one process keeps for its evaluations (use one per worker process).

    ``runner.run_params(..., keeper=k)`` asks :meth:`take` for a kernel and its jupyter_client manager
    (``None`` until the first notebook ran in it), sets :attr:`km` when it makes one, and after the
    notebook calls :meth:`keep` (success) or :meth:`discard` (any failure)."""

    def __init__(self) -> None:
        self.kernel: kernel_start.StartedKernel | None = None
        self.km: Any = None
        self.started = 0  # kernels started by this keeper
        self.uses = 0  # evaluations run in the current kernel
        self._env: dict[str, str] | None = None
        self._reset: tuple[Any, str] | None = None  # (client, msg_id) of the restore sent, not yet answered

    def take(self, notebook: str) -> tuple[kernel_start.StartedKernel, Any]:
        """The kept kernel with its state restored, or a new kernel started for ``notebook`` (manager ``None``)."""
        k = self.kernel
        if k is not None:
            if k.alive() and k.cwd == os.getcwd() and self._env == dict(os.environ) and self._await_reset():
                with contextlib.suppress(OSError):  # the last evaluation's final step: not this one's
                    os.unlink(k.progress_file)
                self.uses += 1
                return k, self.km
            self.discard()
        return self._start(notebook, uses=1), None

    def start_ahead(self, notebook: str) -> None:
        """Start the kernel now, before this process has an evaluation (a batch's workers, while the batch
        fingerprints its warehouses): the first :meth:`take` then finds it started, as if it had kept it."""
        if self.kernel is None:
            self._start(notebook, uses=0)

    def _start(self, notebook: str, *, uses: int) -> kernel_start.StartedKernel:
        """Start a new kernel for ``notebook`` as the kept one (it records its state for the restores; its
        output goes to a file shown in the log of the evaluation running when it closes or is kept)."""
        self.kernel = kernel_start.start(notebook, output_to_file=True, isolate=True)
        self.km, self._env, self.uses = None, dict(os.environ), uses
        self.started += 1
        return self.kernel

    def keep(self) -> None:
        """The evaluation succeeded: stop its clients' channels, keep the kernel and send it the restore now
        (it runs while this process exports the brief). A kernel that cannot take it is discarded."""
        if self.kernel is None:
            return
        self.kernel.flush_output()
        try:
            _stop_clients(self.km)
            self._reset = _send(self.kernel.connection, RESTORE_CODE)
        except Exception:  # noqa: BLE001 - a kernel that cannot be reset is replaced
            self.discard()

    def discard(self) -> None:
        """Shut the kept kernel down and remove its folder (the next :meth:`take` starts a fresh one)."""
        kernel, km, reset = self.kernel, self.km, self._reset
        self.kernel, self.km, self._reset, self._env = None, None, None, None
        if reset is not None:
            with contextlib.suppress(Exception):
                reset[0].stop_channels()
        if km is not None:
            from evalkit.runner import _shutdown

            with contextlib.suppress(Exception):
                _shutdown(km, "immediate")
        if kernel is not None:
            kernel.close()

    def _await_reset(self) -> bool:
        """Wait for the restore's reply: ``True`` if the kernel restored its state (or had nothing to restore)."""
        if self._reset is None:
            return True
        client, msg_id = self._reset
        self._reset = None
        try:
            while True:
                msg = client.get_shell_msg(timeout=RESET_TIMEOUT)
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return msg["content"].get("status") == "ok"
        except Exception:  # noqa: BLE001 - no answer (queue.Empty), dead kernel, broken channel
            return False
        finally:
            with contextlib.suppress(Exception):
                client.stop_channels()


def _send(connection: dict, code: str) -> tuple[Any, str]:
    """Send ``code`` as a silent request (no history, no output) on a new shell-only client."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_info(connection)
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
    except BaseException:
        client.stop_channels()
        raise
    return client, msg_id


def _stop_clients(km: Any) -> None:
    """Stop the channels of the clients papermill made on ``km`` (nbclient does not: it did not make ``km``)."""
    if km is None:
        return
    from jupyter_core.utils import ensure_async, run_sync

    async def stop() -> None:
        for kc in km.clients:
            await ensure_async(kc.stop_channels())
        km.clients.clear()

    run_sync(stop)()


_kept: KeptKernel | None = None


def keep_kernels_in_this_process() -> None:
    """Called by a local batch worker or an ``evalkit run --jobs N`` worker at its start
    (:func:`evalkit.batch.local._worker_init`): its evaluations share one kept kernel (unless reuse is off,
    :func:`reuse_enabled`). Dask workers do not call it (a fresh kernel per evaluation there)."""
    global _kept
    if reuse_enabled() and _kept is None:
        _kept = KeptKernel()


def process_keeper() -> KeptKernel | None:
    """This process's :class:`KeptKernel`, or ``None`` (not a local worker, or reuse is off)."""
    return _kept


def close_process_keeper() -> None:
    """Kill this process's kept kernel, if any, and remove its folder (at exit, or when the worker is told to
    stop: possibly inside a signal handler, so no jupyter_client call, which might wait for its event loop)."""
    if _kept is not None:
        kernel, _kept.kernel, _kept.km, _kept._reset = _kept.kernel, None, None, None
        if kernel is not None:
            kernel.close()


atexit.register(close_process_keeper)
