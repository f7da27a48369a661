"""Run one step of an evaluation ahead, in a forked child, on a free second core (scheduling only, no statistics).

Some steps of an evaluation depend only on the estimators' fits — the Romano–Wolf permutation draws of the
headline fits (:func:`evalkit.inference.multiple.romano_wolf`) do not read anything the pre-trend test, the
jackknife, the robustness variants or the sensitivity analysis produce. :func:`run_ahead` starts such a
step in a forked child while this process goes on with the others; :meth:`Ahead.result` collects the
child's value (pickled through a pipe) when the evaluation reaches the step.

The child computes the same function on the same inputs (a fork is a copy of this process), so the value
does not depend on where it ran. Whenever the child cannot deliver — no ``fork`` here, an exception in
the step, a value that does not pickle, a killed child — :meth:`Ahead.result` calls the function in this
process instead (an exception the step raises is then raised here, as without the child). The child
writes nothing: its output streams go to ``/dev/null`` (the parent's belong to the notebook kernel) and
its warnings are ignored.

A child only helps when a core is idle (``evalkit run`` of one file: the CLI waits while the kernel
computes). ``EVALKIT_STEP_AHEAD``: ``auto`` (default) forks when a second core looks free right now
(:func:`evalkit.estimators._cs_schedule.second_core_free`, the test of the CS helper thread), ``1``
always (where ``fork`` exists), ``0`` never.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

ENV = "EVALKIT_STEP_AHEAD"


class Ahead:
    """A step started by :func:`run_ahead`: :meth:`result` returns its value (or runs it here)."""

    def __init__(self, fn: Callable[[], Any], pid: int | None = None, fd: int | None = None) -> None:
        self.fn, self.pid, self.fd = fn, pid, fd
        self.forked = pid is not None  # the step was started in a child (``False``: result() computes it here)
        self._value: tuple[bool, Any] = (False, None)  # (delivered, value): the child is read once

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()  # after result(): nothing left to stop

    def result(self) -> Any:
        """The step's value: the child's, or ``fn()`` computed here when the child did not deliver (a
        forked step's value is kept: asking again returns it; an unforked step is computed each time)."""
        if self._value[0]:
            return self._value[1]
        if self.pid is None:
            return self.fn()
        data = b""
        try:
            with os.fdopen(self.fd, "rb") as f:
                data = f.read()
        except OSError:
            pass
        finally:
            self.fd = None
            self._reap()
        try:
            ok, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - nothing (or a broken value) came through: compute it here
            ok, value = False, None
        value = value if ok else self.fn()
        self._value = (True, value)
        return value

    def cancel(self) -> None:
        """Stop the child, if any (the evaluation failed before it needed the step)."""
        fd, self.fd = self.fd, None
        pid, self.pid = self.pid, None
        end_child(pid, fd)

    def _reap(self) -> None:
        pid, self.pid = self.pid, None
        end_child(pid, None, kill=False)


def end_child(pid: int | None, fd: int | None, *, kill: bool = True) -> None:
    """Close the pipe ``fd`` and reap the child ``pid`` (killed first unless ``kill`` is false); either may be
    ``None``."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    if pid is None:
        return
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def fork_child(body: Callable[[int], None], pipe_size: int | None = None) -> tuple[int, int] | None:
    """Fork a child that runs ``body(w)`` (``w``: the write end of a pipe to this process) and leaves without
    this process's exit handlers, its stdout and stderr on ``/dev/null``, its warnings ignored, killed when
    this process dies. Returns ``(pid, read end)``, or ``None`` when no pipe or fork could be made.
    ``pipe_size``: bytes the pipe should hold (best effort), so the child need not wait to write."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    if pipe_size:
        try:
            import fcntl

            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, pipe_size)
        except (OSError, AttributeError, ImportError):
            pass
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns about forking a threaded process (the kernel's
            warnings.simplefilter("ignore", DeprecationWarning)  # I/O threads): the child touches none of them
            pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:
        try:
            os.close(r)
            _die_with_parent()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the kernel's streams are the parent's
            warnings.simplefilter("ignore")
            body(w)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _die_with_parent() -> None:
    """Best effort: the kernel killed mid-evaluation takes its child along (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG (linux/prctl.h)
    except Exception:  # noqa: BLE001, S110 - without it the child ends at its next write to the closed pipe
        pass


def _may_fork() -> bool:
    mode = os.environ.get(ENV, "auto")
    if mode == "0" or not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    if mode == "1":
        return True
    from evalkit.estimators._cs_schedule import second_core_free

    return second_core_free()


def run_ahead(fn: Callable[[], Any]) -> Ahead:
    """Start ``fn()`` in a forked child when a second core is free (module docstring), else return a
    handle that computes it when asked. Call :meth:`Ahead.result` once, and :meth:`Ahead.cancel` (or leave
    its ``with`` block) in any case: a child whose result is never read would wait on its pipe."""
    if not _may_fork():
        return Ahead(fn)

    def send(w: int) -> None:  # in the child: compute, send
        try:
            payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - the parent computes the step itself (and meets the error)
            payload = pickle.dumps((False, None))
        with os.fdopen(w, "wb") as f:
            f.write(payload)

    child = fork_child(send)
    return Ahead(fn) if child is None else Ahead(fn, *child)


__all__ = ["ENV", "Ahead", "end_child", "fork_child", "run_ahead"]
