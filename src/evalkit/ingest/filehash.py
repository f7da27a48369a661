"""A file's SHA-256 (logged with each load, see :mod:`evalkit.ingest.loads`) hashed in the background.

The hash of a 1 GB export costs about a second of CPU. It is only written to ``ingest_log`` at the
end, so a thread hashes it while DuckDB loads the file. At normal priority that thread takes a core
from DuckDB, which runs its statements on every core; at the least priority (Linux: per thread) it
runs in the gaps, when DuckDB runs a one-thread statement or Python works between statements. A
thread that low may get almost no CPU on a busy machine, so :meth:`BackgroundSha256.result` does not
wait for it: it takes over the hash object and finishes the file in the calling thread.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

CHUNK_BYTES = 1 << 20  # hashed per step (~1 ms): the longest the caller waits for the thread's step


def lower_priority() -> None:
    """Give the calling thread the least CPU priority (nice 19; Linux only, where it applies to the
    thread alone; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


class BackgroundSha256:
    """The SHA-256 of ``path``, hashed by a low-priority thread from the start; :meth:`result`
    (hex digest) finishes it in the caller's thread. :meth:`close` stops it unused."""

    def __init__(self, path: Path | str) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115  (closed by result() or close())
        self._h = hashlib.sha256()
        self._lock = threading.Lock()
        self._stop = self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evalkit-sha256", daemon=True)
        self._thread.start()

    def _step(self) -> bool:
        chunk = self._fh.read(CHUNK_BYTES)
        if not chunk:
            self._done = True
            return False
        self._h.update(chunk)  # releases the GIL
        return True

    def _run(self) -> None:
        lower_priority()
        try:
            while True:
                with self._lock:
                    if self._stop or self._done or not self._step():
                        return
        except BaseException as e:  # noqa: BLE001  (re-raised by result())
            self._error = e

    def result(self) -> str:
        """The hex digest (the rest of the file hashed here, at the caller's priority)."""
        with self._lock:
            self._stop = True
            if self._error is not None:
                raise self._error
            while not self._done and self._step():
                pass
            self._fh.close()
        return self._h.hexdigest()

    def close(self) -> None:
        """Stop the thread (after its current step) and close the file; the digest is not needed."""
        with self._lock:
            self._stop = True
            self._fh.close()
