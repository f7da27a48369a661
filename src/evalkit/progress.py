"""Which step of an evaluation is running, reported to whoever listens (``evalkit run``, batch display).

The evaluation calls :func:`report` at the start of each step (the keys of ``Evaluation.timings`` plus
``build_panel``, and :data:`DONE` when ``evaluate()`` returns). Two listeners, both optional:

* in the same process, a callback set with :func:`listening` (context-local, so two evaluations in two
  threads do not see each other's steps);
* across the papermill kernel boundary, a *status file*: the parent puts its path in the kernel's
  environment (:data:`ENV`, inside the run's private temporary folder) and polls it with
  :class:`StatusPoller`; the kernel overwrites it atomically with one JSON object per step.

Progress never reaches a notebook output or ``results.json`` (nothing is printed), and a failing
listener never fails an evaluation. With no listener, :func:`report` costs one ``os.environ`` lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from evalkit.kernel_start import PROGRESS_ENV

#: environment variable holding the status file's path (set by the parent for the kernel)
ENV = PROGRESS_ENV
#: step reported when ``evaluate()`` has returned (the notebook goes on with tables and charts)
DONE = "done"

#: words shown for the evaluation's step keys; an unknown key is shown with ``_`` as spaces
LABELS = {
    "preflight": "check params and warehouse",
    "start_kernel": "notebook: start kernel, import evalkit",
    "build_panel": "build panel",
    "estimators": "estimators",
    "pretrend_test": "pre-trend test",
    "headline_se": "headline SE",
    "robustness": "robustness",
    "sensitivity": "sensitivity",
    "multiple_testing": "multiple testing",
    DONE: "notebook: tables and charts",
    "brief_html": "brief HTML",
    "brief_pdf": "PDF",
}

Callback = Callable[[str], None]
_callback: contextvars.ContextVar[Callback | None] = contextvars.ContextVar("evalkit_progress", default=None)


def label(step: str) -> str:
    """The words shown for a step key (``pretrend_test`` → ``pre-trend test``)."""
    return LABELS.get(step, step.replace("_", " "))


def report(step: str) -> None:
    """Tell the listeners that ``step`` starts now (never raises)."""
    cb = _callback.get()
    if cb is not None:
        try:
            cb(step)
        except Exception:  # noqa: BLE001 - progress must never fail an evaluation
            pass
    path = os.environ.get(ENV)
    if path:
        write_status(Path(path), step)


def write_status(path: Path, step: str) -> None:
    """Atomically replace the status file with ``{"step", "pid", "time"}`` (best effort, never raises)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"step": step, "pid": os.getpid(), "time": time.time()}, fh)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(Exception):
            os.unlink(tmp)  # type: ignore[possibly-undefined]


def read_status(path: Path) -> str | None:
    """The step last written to ``path``, or ``None`` (no file yet, or unreadable)."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def listening(callback: Callback) -> Iterator[None]:
    """Call ``callback(step)`` for every :func:`report` in this context (thread/async-task local)."""
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


class StatusPoller:
    """Poll a status file from a daemon thread and call ``on_step(step)`` each time the step changes.

    Use as a context manager around the papermill call; ``on_step`` runs in the polling thread.
    """

    def __init__(self, path: Path, on_step: Callback, interval: float = 0.2) -> None:
        self.path, self.on_step, self.interval = Path(path), on_step, interval
        self._stop = threading.Event()
        self._last: str | None = None
        self._thread = threading.Thread(target=self._run, name="evalkit-progress", daemon=True)

    def _poll(self) -> None:
        step = read_status(self.path)
        if step is not None and step != self._last:
            self._last = step
            try:
                self.on_step(step)
            except Exception:  # noqa: BLE001 - a display error must not stop the run
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._poll()  # a last step written just before the notebook ended
