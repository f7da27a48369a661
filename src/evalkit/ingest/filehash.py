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
import pyarrow as pa

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

    def spans(self, numbers) -> tuple[np.ndarray, np.ndarray]:
        """(start, stop) byte offsets (int64) of the lines numbered ``numbers`` (1 = the file's first;
        ascending, each at most once), each line up to its ``\\n`` (a ``\\r`` before it included)."""
        if not self.keeps_lines:
            raise AssertionError("this scan does not note line ends")
        self._finish()
        n = np.asarray(numbers, dtype=np.int64)
        ended = np.cumsum([len(e) for e in self._ends], dtype=np.int64)  # lines ended by the end of each chunk
        total = int(ended[-1]) if len(ended) else 0
        if len(n) and (n[0] < 1 or n[-1] > total + 1 or np.any(np.diff(n) <= 0)):
            raise AssertionError("line numbers must be ascending, within the file")
        start = np.zeros(len(n), dtype=np.int64)
        later = n > 1
        start[later] = self._newlines(n[later] - 1, ended) + 1
        stop = np.full(len(n), self._offset, dtype=np.int64)  # the last line may lack a \n
        ends = n <= total
        stop[ends] = self._newlines(n[ends], ended)
        return start, stop

    def _newlines(self, k: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """The byte offsets of the ``k``-th line ends of the file (1-based, ascending; ``ended``: lines
        ended by the end of each chunk), looked up in the chunks holding them."""
        chunk = np.searchsorted(ended, k)  # the chunk holding each
        within = k - np.concatenate([[0], ended])[chunk] - 1
        out = np.empty(len(k), dtype=np.int64)
        cuts = np.flatnonzero(np.diff(chunk)) + 1  # k ascending: each chunk's entries are a run
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(k)], strict=True):
            if hi > lo:
                c = int(chunk[lo])
                out[lo:hi] = self._ends[c][within[lo:hi]].astype(np.int64) + self._starts[c]
        return out

    def lines(self, numbers) -> list[bytes]:
        """The lines numbered ``numbers`` (1 = the file's first; ascending, each at most once), as
        bytes without their line end (``\\n``, ``\\r\\n``). Read one by one (not mapped: the pages
        a map touches count as the process's memory)."""
        start, stop = self.spans(numbers)
        out: list[bytes] = []
        with open(self.path, "rb", buffering=0) as fh:
            pread = getattr(os, "pread", None)  # (not on Windows)
            for a, b in zip(start.tolist(), stop.tolist(), strict=True):
                if pread is not None:
                    line = pread(fh.fileno(), b - a, a)
                else:
                    fh.seek(a)
                    line = fh.read(b - a)
                out.append(line[:-1] if line.endswith(b"\r") else line)
        return out

    def text(self, numbers) -> pa.Array:
        """:meth:`lines` as an Arrow array of strings, for DuckDB to split in bulk (see
        :mod:`evalkit.ingest.late_dups`). The bytes are passed as they are: DuckDB has checked the
        UTF-8 of the columns it read, and only those are taken from the lines."""
        lines = self.lines(numbers)
        offsets = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)), out=offsets[1:])
        return pa.LargeStringArray.from_buffers(len(lines), pa.py_buffer(offsets), pa.py_buffer(b"".join(lines)))

    def close(self) -> None:
        """Stop the thread (after its current step) and close the file; nothing more is needed."""
        with self._lock:
            self._stop = True
            self._fh.close()
            self._ends.clear()  # (40 MB for 10 M lines)
