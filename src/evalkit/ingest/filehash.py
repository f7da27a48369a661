"""A file's SHA-256 (logged with each load, see :mod:`evalkit.ingest.loads`) and the byte offsets of
its line ends, read in the background.

The hash of a 1 GB export costs about a second of CPU. It is only written to ``ingest_log`` at the
end, so a thread reads the file while DuckDB loads it. At normal priority that thread takes a core
from DuckDB, which runs its statements on every core; at the least priority (Linux: per thread) it
runs in the gaps, when DuckDB runs a one-thread statement or Python works between statements. A
thread that low may get almost no CPU on a busy machine, so :meth:`BackgroundFileScan.result` does
not wait for it: it takes over and finishes the file in the calling thread.

The same pass notes where each line ends (4 bytes a line), so that a few lines can be read back by
number without reading the file again (:meth:`BackgroundFileScan.lines`; see
:mod:`evalkit.ingest.late_dups`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

CHUNK_BYTES = 1 << 20  # read per step (~1 ms of hashing): the longest the caller waits for the thread's step


def lower_priority() -> None:
    """Give the calling thread the least CPU priority (nice 19; Linux only, where it applies to the
    thread alone; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


class BackgroundFileScan:
    """The SHA-256 of ``path`` and its line ends, read by a low-priority thread from the start;
    :meth:`result` (hex digest) and :meth:`lines` finish the file in the caller's thread.
    :meth:`close` stops it unused."""

    def __init__(self, path: Path | str, lines: bool = True) -> None:
        self.path = Path(path)
        self.keeps_lines = lines  # whether the line ends are noted (4 bytes a line; see lines())
        self._fh = open(path, "rb")  # noqa: SIM115  (closed by _finish() or close())
        self._h = hashlib.sha256()
        self._ends: list[np.ndarray] = []  # per chunk: its line ends (\n), relative to the chunk (uint32)
        self._starts: list[int] = []  # per chunk: its first byte's offset in the file
        self._offset = 0
        self._lock = threading.Lock()
        self._stop = self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evalkit-filescan", daemon=True)
        self._thread.start()

    def _step(self) -> bool:
        chunk = self._fh.read(CHUNK_BYTES)
        if not chunk:
            self._done = True
            self._fh.close()
            return False
        self._h.update(chunk)  # releases the GIL
        if self.keeps_lines:
            self._ends.append(np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10).astype(np.uint32))
            self._starts.append(self._offset)
        self._offset += len(chunk)
        return True

    def _run(self) -> None:
        lower_priority()
        try:
            while True:
                with self._lock:
                    if self._stop or self._done or not self._step():
                        return
        except BaseException as e:  # noqa: BLE001  (re-raised by _finish())
            self._error = e

    def _finish(self) -> None:
        with self._lock:
            self._stop = True
            if self._error is not None:
                raise self._error
            try:
                while not self._done and self._step():
                    pass
            except BaseException as e:  # noqa: BLE001  (kept for the next caller too)
                self._error = e
                raise

    def hurry(self) -> None:
        """Finish the file in a thread of normal priority (when its line ends will soon be needed:
        it then runs beside the caller's work rather than in it)."""
        if not self._done:
            threading.Thread(target=self._finish_quietly, name="evalkit-filescan-hurry", daemon=True).start()

    def _finish_quietly(self) -> None:
        try:
            self._finish()
        except BaseException:  # noqa: BLE001  (raised again by the caller's result() or lines())
            pass

    def result(self) -> str:
        """The hex digest of the file (the rest of it read here, at the caller's priority)."""
        self._finish()
        return self._h.hexdigest()

    def lines(self, numbers) -> list[bytes]:
        """The lines numbered ``numbers`` (1 = the file's first; ascending, each at most once), as
        bytes without their line end (``\\n``, ``\\r\\n``)."""
        if not self.keeps_lines:
            raise AssertionError("this scan does not note line ends")
        self._finish()
        counts = np.array([len(e) for e in self._ends], dtype=np.int64)
        ends = np.cumsum(counts)  # lines ended by the end of each chunk
        ended = int(ends[-1]) if len(ends) else 0
        out: list[bytes] = []
        with open(self.path, "rb") as fh:
            for n in numbers:
                start = 0 if n == 1 else self._end(n - 1, ends) + 1
                stop = self._end(n, ends) if n <= ended else self._offset  # the last line may lack a \n
                fh.seek(start)
                line = fh.read(stop - start)
                out.append(line[:-1] if line.endswith(b"\r") else line)
        return out

    def _end(self, n: int, ends: np.ndarray) -> int:
        """The byte offset of the ``\\n`` ending line ``n``."""
        i = int(np.searchsorted(ends, n))  # the chunk holding it
        before = int(ends[i - 1]) if i else 0
        return self._starts[i] + int(self._ends[i][n - before - 1])

    def close(self) -> None:
        """Stop the thread (after its current step) and close the file; nothing more is needed."""
        with self._lock:
            self._stop = True
            self._fh.close()
            self._ends.clear()  # (40 MB for 10 M lines)
