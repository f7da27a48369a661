"""Scheduling for the Callaway–Sant'Anna estimator: threads and BLAS, no statistics.

The statistics modules (:mod:`evalkit.estimators._cs_attgt`, :mod:`~evalkit.estimators._cs_boot`,
:mod:`evalkit.estimators.cs`) take an ``executor`` (anything with ``submit``) and run serially when it is
``None``; every result is the same either way (work is shared in stream order, each piece writing its own
output). This module decides whether a helper thread is worth having (:func:`helper_pool`), pins BLAS
(:func:`blas_pinned`), shares chunks of work between this thread and the helper (:func:`share`,
:func:`split_rows`), draws bootstrap multipliers ahead of use (:class:`BitsAhead`) and keeps the
stage timings (:class:`Laps`).
"""

from __future__ import annotations

import functools
import os
import threading
import time as _time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from evalkit.estimators._cs_blas import blas_threads
from evalkit.estimators._cs_design import MammenStream

_POOL: list[Any] = []


def helper_pool():
    """One helper thread for the bootstrap, or None.

    ``EVALKIT_CS_THREADS``: ``1`` = never, ``2`` = always, default ``auto`` = only when a second
    core looks free right now (Linux: at most ``cpus - 2`` other runnable tasks in
    ``/proc/loadavg``, fewest of 3 samples; elsewhere: 1-minute load average below ``cpus - 0.5``): on a busy machine
    the helper would only compete with the main thread. Which one is chosen changes timings only, never a number.
    """
    mode = os.environ.get("EVALKIT_CS_THREADS", "auto")
    ncpu = os.cpu_count() or 1
    if mode == "1" or ncpu < 2:
        return None
    if mode != "2" and not second_core_free():
        return None
    if not _POOL or _POOL[0][0] != os.getpid():  # (re)create after a fork: threads do not survive it
        from concurrent.futures import ThreadPoolExecutor

        _POOL[:] = [(os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-cs"))]
    return _POOL[0][1]


def second_core_free() -> bool:
    """Whether a second core looks free right now (Linux: at most ``cpus - 2`` other runnable tasks in
    ``/proc/loadavg``, fewest of 3 samples; elsewhere: 1-minute load average below ``cpus - 0.5``)."""
    ncpu = os.cpu_count() or 1
    if ncpu < 2:
        return False
    try:
        running = []
        for _ in range(3):  # a few samples: kernel threads are briefly runnable now and then
            with open("/proc/loadavg") as f:
                running.append(int(f.read().split()[3].split("/")[0]))  # includes this thread
        return not min(running) - 1 > ncpu - 2
    except (OSError, ValueError, IndexError):
        try:
            return not os.getloadavg()[0] > ncpu - 0.5
        except OSError:
            return False


def resolve_executor(executor: Any) -> Any:
    """``"auto"`` -> :func:`helper_pool` (None on a busy machine); ``None`` -> serial; else as given."""
    return helper_pool() if isinstance(executor, str) and executor == "auto" else executor


def blas_pinned(fn: Callable) -> Callable:
    """Run ``fn`` with BLAS threads pinned (``EVALKIT_BLAS_THREADS``: a number, or ``keep``; default 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        env = os.environ.get("EVALKIT_BLAS_THREADS", "1")
        with blas_threads(None if env == "keep" else int(env)):
            return fn(*args, **kwargs)

    return wrapper


def share(executor: Any, items: Iterable, work: Callable[[Any], None], take: Callable[[Any], Any] | None = None,
          parallel: bool = True) -> None:
    """Run ``work(take(item))`` for every item, from this thread and (if given) the executor's.

    Items are taken in order under a lock (``take`` runs under it too: e.g. drawing from a random
    stream, so the draws follow stream order whoever takes them); ``work`` runs outside it and must
    write only its own part of the output, so the result does not depend on who does which item.
    """
    lock = threading.Lock()
    todo = iter(items)

    def loop():
        while True:
            with lock:
                nxt = next(todo, None)
                if nxt is None:
                    return
                arg = take(nxt) if take is not None else nxt
            work(arg)

    fut = executor.submit(loop) if (executor is not None and parallel) else None
    loop()
    if fut is not None:
        fut.result()


def split_rows(executor: Any, fn: Callable[[np.ndarray], Any], a: Any, min_rows: int = 16) -> list[Any]:
    """``[fn(a[:h]), fn(a[h:])]`` with the first half on the executor when there is one and the
    halves are worth it (``h > min_rows``); ``[fn(a)]`` otherwise."""
    h = a.shape[0] // 2
    if executor is None or h <= min_rows:
        return [fn(a)]
    fut = executor.submit(fn, a[:h])
    lo = fn(a[h:])
    return [fut.result(), lo]


class Laps:
    """Stage timings (seconds, wall clock; reported in ``meta["timing"]``, never used in a computation)."""

    def __init__(self, progress: bool = False):
        self.timing: dict[str, float] = {}
        self.progress = progress
        self._t0 = _time.perf_counter()

    def __call__(self, name: str) -> None:
        t1 = _time.perf_counter()
        self.timing[name] = self.timing.get(name, 0.0) + t1 - self._t0
        self._t0 = t1
        if self.progress:
            print(f"[cs] {name}: {self.timing[name]:.3f}s", flush=True)


class BitsAhead:
    """Generates a :class:`MammenStream`'s raw draws (or, given ``dtype``, the Mammen multipliers
    in that dtype) for chunks of ``sizes`` rows ahead of use,
    in a daemon thread (numpy releases the GIL while generating), in stream order — so the draws
    are exactly those of calling ``stream.bits`` chunk by chunk. At most ``max_ahead`` chunks are
    held; an abandoned producer gives up after ``patience`` seconds without consumption.
    """

    def __init__(self, stream: MammenStream, sizes: list[int], m: int, max_ahead: int, patience: float = 30.0,
                 dtype: type | None = None):
        import queue
        import threading

        self.sizes, self.m, self.dtype = list(sizes), m, dtype
        self._q: Any = queue.Queue(maxsize=max(1, max_ahead))
        self._stop = threading.Event()
        self._patience = patience
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="evalkit-cs-bits", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        waited = 0.0
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                return True
            except queue.Full:
                waited += 0.05
                if waited > self._patience:
                    return False
        return False

    def _run(self) -> None:
        try:
            for b in self.sizes:
                u = self._stream.bits(b, self.m)
                if self.dtype is not None:  # the multipliers themselves
                    u = MammenStream.affine(MammenStream.indicators(u, dtype=self.dtype))
                if not self._put(u):
                    return
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def get(self) -> Any:
        import queue

        while True:
            try:
                item = self._q.get(timeout=0.05)
                break
            except queue.Empty:
                if self._stop.is_set() or not self._thread.is_alive():
                    if self._q.empty():
                        raise RuntimeError("bootstrap draws stopped") from None
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
