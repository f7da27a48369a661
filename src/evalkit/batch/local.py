"""Local execution: a pool of worker processes, each running one papermill evaluation at a time.

At most ``workers`` evaluations are in flight (new ones are submitted as others finish), so
the progress display knows exactly what is running and an interrupt has no queue to drain.
A worker that dies (segfault, OOM kill) breaks a ``ProcessPoolExecutor``; the pool is then
rebuilt and the evaluations that were in flight are retried once before being recorded
as failed.

Workers never outlive the batch: a ``kill -9`` of ``evalkit batch`` gives its handlers no chance to
tear the pool down, so each worker watches its parent itself (:func:`_exit_with_parent`) and, when
the parent is gone, kills its own children (the notebook kernel) and exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from evalkit.batch.execute import now, run_item

Record = dict[str, Any]


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.5  # how often a worker checks that its parent is alive


def _kill_children_and_exit(code: int = 1) -> None:
    """Kill this worker's descendants (the notebook kernel), then leave at once."""
    import psutil

    from evalkit import kernel_start
    from evalkit.batch.kernels import close_process_keeper
    from evalkit.export import close_process_browser

    # a kernel started ahead or kept: killed, its folder removed; the worker's Chromium: its profile removed
    for close in (kernel_start.discard, close_process_keeper, close_process_browser):
        try:
            close()
        except Exception:  # noqa: BLE001, S110 - the kill below still runs
            pass
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        kids = []
    for k in kids:
        try:
            k.kill()
        except psutil.Error:
            pass
    os._exit(code)


def _exit_with_parent(parent: int) -> None:
    """Exit when the batch process ``parent`` dies, even by SIGKILL.

    Linux: the kernel sends SIGTERM on the parent's death (``prctl(PR_SET_PDEATHSIG)``). SIGTERM, from
    there or from the batch's own teardown, kills the worker's kernel too (the default action would
    orphan it). The signal is tied to the thread that started the worker: ``run_local`` submits from
    the calling thread, which outlives the pool. Everywhere: a daemon thread polls ``os.getppid()``
    every ``WATCH_SECONDS``, which also covers a parent that died before the prctl call.
    """
    def on_term(signum, frame):  # noqa: ARG001
        _kill_children_and_exit(128 + signum)

    if sys.platform.startswith("linux"):
        signal.signal(signal.SIGTERM, on_term)
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                _kill_children_and_exit()
            threading.Event().wait(WATCH_SECONDS)

    threading.Thread(target=watch, name="evalkit-parent-watch", daemon=True).start()


def _worker_init(threads: int | None = None, parent: int | None = None, cells: str | None = None) -> None:
    # the parent handles Ctrl-C / SIGTERM and tears the workers down itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _exit_with_parent(parent)
    os.environ.setdefault("MPLBACKEND", "Agg")
    if cells is not None:  # the batch's shared station-month cells (evalkit.cells_cache), read by the kernels
        from evalkit.cells_cache import CACHE_ENV

        os.environ[CACHE_ENV] = cells
    from evalkit.export import process_browser

    process_browser()  # one Chromium per worker for all its briefs' PDFs
    from evalkit.batch.kernels import keep_kernels_in_this_process

    keep_kernels_in_this_process()  # one notebook kernel per worker, its state restored between evaluations
    # N workers on C cores: each evaluation's kernel gets C // N BLAS/OpenMP threads (inherited by the
    # kernel process), so parallel evaluations do not oversubscribe the cores.
    if threads is not None:
        for var in THREAD_VARS:
            os.environ.setdefault(var, str(threads))


def _threads_per_worker(workers: int) -> int | None:
    return None if workers <= 1 else max(1, (os.cpu_count() or 1) // workers)


def failed_record(item: dict[str, Any], error: str) -> Record:
    return {"evaluation_id": item["evaluation_id"], "source": item["source"], "status": "failed",
            "error": error, "partial_notebook": None, "fingerprint": item.get("fingerprint"),
            "finished_at": now()}


#: ``EVALKIT_BATCH_PRESTART=1``: a worker starts its next evaluation's kernel while the brief exports. Off
#: by default: on the 6-evaluation medium batch (2 workers, loaded machine, alternating, min of 3) it gave
#: the same wall time (162 vs 163 s) for 4 s more CPU (70 vs 66 s): both cores are busy anyway
PRESTART_ENV = "EVALKIT_BATCH_PRESTART"


def _prestarts() -> bool:
    """Whether workers start their next evaluation's kernel ahead (:data:`PRESTART_ENV`): never while they
    keep their kernel (:func:`evalkit.batch.kernels.reuse_enabled`; the kept one serves the next evaluation)."""
    from evalkit.batch.kernels import reuse_enabled

    return os.environ.get(PRESTART_ENV, "0") == "1" and not reuse_enabled()


def _next_notebook(pending: list[dict[str, Any]], workers: int) -> str | None:
    """The notebook whose kernel a worker starts ahead for its next evaluation, or ``None`` when that
    worker will probably get none (fewer evaluations waiting than workers: no kernel started in vain), or
    when workers do not start kernels ahead (:func:`_prestarts`)."""
    if len(pending) < workers or not _prestarts():
        return None
    params = pending[0].get("params") or {}
    return str(params.get("notebook") or "evaluate_reform")


def _warm_up(notebook: str, pdf: bool) -> None:
    """Run in a new worker before it has an evaluation: start its kept kernel (and its Chromium for the PDFs)."""
    from evalkit.batch.kernels import process_keeper

    keeper = process_keeper()
    if keeper is not None:
        keeper.start_ahead(notebook)
    if pdf:
        from evalkit.export import prestart_browser

        prestart_browser()


def start_pool(workers: int, n_items: int, *, cells: str | None = None, warm: str | None = None,
               pdf: bool = True, warm_workers: int | None = None) -> ProcessPoolExecutor:
    """The pool of :func:`run_local` (``min(workers, n_items)`` processes; ``cells``: the folder of the batch's
    shared station-month cells, :mod:`evalkit.cells_cache`). ``warm``: a notebook; each worker starts its
    kernel for it (and its Chromium when ``pdf``) at once, while the batch is still planning (its warehouse
    fingerprints), instead of at its first evaluation; ``warm_workers``: at most this many (those surely needed)."""
    workers = max(1, int(workers))
    n = min(workers, max(1, n_items))
    ex = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"),  # fresh interpreters: no
                             initializer=_worker_init,                         # inherited threads, DuckDB
                             initargs=(_threads_per_worker(workers), os.getpid(), cells))  # handles or locks
    if warm is not None:
        for _ in range(min(n, n if warm_workers is None else warm_workers)):  # one per worker: each takes one
            ex.submit(_warm_up, warm, pdf)
    return ex


def run_local(items: list[dict[str, Any]], batch_dir: str, *, pdf: bool, workers: int,
              on_start: Callable[[dict[str, Any]], None], on_done: Callable[[Record], None],
              tick: Callable[[], None] = lambda: None, cells: str | None = None,
              pool: ProcessPoolExecutor | None = None, closing: list[threading.Thread] | None = None,
              on_tail: Callable[[], None] | None = None) -> None:
    """Run ``items`` (``BatchItem.to_dict()``) on ``workers`` processes; report through callbacks.
    ``cells``: the folder of the batch's shared station-month cells (:mod:`evalkit.cells_cache`). ``pool``: the
    processes, started earlier by :func:`start_pool` (with the same ``workers`` and ``cells``); shut down here.
    ``closing``: when every evaluation has finished, the pool is shut down in a thread appended to this list
    (the caller joins it) instead of being waited for here: the workers' exit (each closes its Chromium and
    kernel, ~0.5 s) overlaps what the caller does next (the portfolio). ``on_tail``: called once, as soon as a
    worker is free and no evaluation waits (the batch's last ones are running: a core is idle until they end);
    the caller gets ready for what follows then (the portfolio's Chromium starts)."""
    workers = max(1, int(workers))
    pending = list(items)
    attempts: dict[str, int] = {}
    ex = pool or start_pool(workers, len(items), cells=cells)
    inflight: dict[Any, dict[str, Any]] = {}
    hint = _prestarts()  # else no worker reads the next-notebook hint: not computed per evaluation

    def refill() -> None:
        while pending and len(inflight) < workers:
            it = pending.pop(0)
            attempts[it["evaluation_id"]] = attempts.get(it["evaluation_id"], 0) + 1
            inflight[ex.submit(run_item, it, batch_dir, pdf, _next_notebook(pending, workers) if hint else None)] = it
            on_start(it)

    try:
        while pending or inflight:
            refill()
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            finished: list[Record] = []
            for fut in done:
                it = inflight.pop(fut)
                try:
                    finished.append(fut.result())
                except BrokenProcessPool:
                    broken = True
                    if attempts[it["evaluation_id"]] < 2:
                        pending.insert(0, it)
                    else:
                        finished.append(failed_record(it, "worker process died twice while running this "
                                                          "evaluation (crash or out of memory); see its log"))
                except Exception as exc:  # noqa: BLE001 - e.g. unpicklable result: isolate it
                    finished.append(failed_record(it, f"{type(exc).__name__}: {exc}"))
            try:
                if broken:
                    for fut, it in list(inflight.items()):  # the rest of the pool went down with it
                        inflight.pop(fut)
                        pending.insert(0, it)
                    ex.shutdown(wait=False, cancel_futures=True)
                    ex = start_pool(workers, workers, cells=cells)
                else:  # the free workers get their next evaluation first; on_done (manifest, portfolio rows) then
                    refill()
            finally:  # also on a crash or Ctrl-C in between: what finished is recorded (a resume skips it)
                for rec in finished:
                    on_done(rec)
            if on_tail is not None and not pending and len(inflight) < workers:
                tail, on_tail = on_tail, None
                tail()
            tick()
    finally:
        if closing is not None and not inflight:
            closer = threading.Thread(target=ex.shutdown, kwargs={"wait": True, "cancel_futures": True},
                                      name="evalkit-pool-shutdown", daemon=True)
            closer.start()
            closing.append(closer)
        else:
            ex.shutdown(wait=not inflight, cancel_futures=True)
