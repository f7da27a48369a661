"""A notebook's charts rendered ahead, in a forked child, while its other cells run (scheduling only).

After ``evaluate()`` the brief's cells draw three to five charts (~0.1–0.3 s CPU each) between tables and
sentences that need no chart, and the process that waits for the kernel leaves a core idle. :func:`start`
forks a child that renders the charts the notebook will show (given in the order it shows them) from
the last one backwards and sends each as PNG bytes (:func:`evalkit.viz.style.png_bytes`) through a
pipe; :func:`png` gives the notebook a chart's bytes — the child's when it has taken that chart, else
drawn here. The two meet in the middle: this process claims a chart when the notebook reaches it (a
shared counter the child reads before each chart), the child stops at the first chart already
claimed, so a chart is drawn once and neither side waits longer than one chart for the other. The
counters are plain stores and loads in shared memory with no fence between them, so in a rare race
both sides may see the other's old value and draw the same chart: the bytes are identical, only CPU
is spent twice. A child that does not answer within :data:`DEADLINE` seconds for a chart (stuck, e.g.
on a lock copied at the fork) is killed and the chart drawn here: the same bytes, later.

The child draws the same charts from the same state (a fork is a copy of this process): the bytes are
the ones this process would make. Whenever the child does not deliver a chart (no fork, a chart that
failed or is absent in the child, a killed child), :func:`png` draws it here, so an exception a chart
raises is raised here as without the child. The child writes nothing else: its streams go to
``/dev/null`` (this process's belong to the notebook kernel), its warnings are ignored.

Only in kernels that ``evalkit run`` started (:data:`evalkit.progress.ENV` set: the notebook runs top to
bottom, nobody changes the evaluation between its cells) and when a second core looks free
(``EVALKIT_STEP_AHEAD``, as :mod:`evalkit.step_ahead`: ``auto``, ``1``, ``0``).
"""

from __future__ import annotations

import mmap
import os
import select
import struct
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any

_ATTR = "_charts_ahead"  # where an owner (the evaluation) keeps its handle
_HEAD = struct.Struct("<iq")  # chart index, PNG length (-1: not delivered, draw it in the parent)
_CLAIM = struct.Struct("<i")  # the highest chart index the parent has claimed (-1: none yet)
#: seconds the notebook waits for one chart from the child before it kills the child and draws the chart itself
#: (~0.1-0.3 s of CPU each: generous, for a loaded host; scheduling only, the bytes are the same either way)
DEADLINE = 30.0


class Ahead:
    """The child of :func:`start`: which charts it has, and what the parent has claimed."""

    def __init__(self, keys: list[Hashable], pid: int, fd: int, shared: mmap.mmap) -> None:
        self.keys, self.pid, self.fd, self.shared = keys, pid, fd, shared
        self.got: dict[int, bytes | None] = {}
        self.done = False  # the pipe reached its end: nothing more will come

    def claim(self, i: int) -> None:
        if i > _CLAIM.unpack_from(self.shared, 0)[0]:
            _CLAIM.pack_into(self.shared, 0, i)

    def child_low(self) -> int:
        """The lowest chart index the child has taken (len(keys): none yet)."""
        return _CLAIM.unpack_from(self.shared, _CLAIM.size)[0]

    def _read(self, n: int, deadline: float) -> bytes | None:
        """``n`` bytes from the child's pipe, or ``None`` when it ended or nothing came by ``deadline``
        (:func:`time.monotonic`)."""
        chunks, left = [], n
        while left:
            try:
                ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:  # the child is stuck: the caller kills it and draws the chart itself
                    return None
                part = os.read(self.fd, left)
            except OSError:
                return None
            if not part:
                return None
            chunks.append(part)
            left -= len(part)
        return b"".join(chunks)

    def wait_for(self, i: int) -> bytes | None:
        """Read the child's charts until chart ``i`` came (its bytes) or the pipe ended or :data:`DEADLINE`
        seconds passed (``None``; the child is then killed)."""
        deadline = time.monotonic() + DEADLINE
        while i not in self.got and not self.done:
            head = self._read(_HEAD.size, deadline)
            if head is None:
                self.finish()
                break
            j, n = _HEAD.unpack(head)
            data = None if n < 0 else self._read(n, deadline)
            if n >= 0 and data is None:
                self.finish()
                break
            self.got[j] = data
        return self.got.pop(i, None)

    def finish(self) -> None:
        """Close the pipe and reap the child (killed if still running)."""
        from evalkit.step_ahead import end_child

        self.done = True
        fd, self.fd = self.fd, None
        pid, self.pid = self.pid, None
        end_child(pid, fd)


def _enabled() -> bool:
    from evalkit.progress import ENV
    from evalkit.step_ahead import _may_fork

    return bool(os.environ.get(ENV)) and _may_fork()


def start(owner: Any, charts: Sequence[tuple[Hashable, Callable[[], Any]]], dpi: int = 130) -> bool:
    """Fork a child drawing ``charts`` (key, builder returning a figure or axes or ``None``), given in the
    order the notebook shows them, when allowed (module docstring); the handle is kept on ``owner``.
    Returns whether a child was started."""
    finish(owner)
    keys = [k for k, _ in charts]
    if len(keys) < 2 or not _enabled():  # one chart: nothing to draw beside the parent
        return False
    try:
        weakref.ref(owner)
        vars(owner)
    except TypeError:  # the handle could not be kept on it (nor its child reaped with it)
        return False
    shared = mmap.mmap(-1, 2 * _CLAIM.size)
    _CLAIM.pack_into(shared, 0, -1)
    _CLAIM.pack_into(shared, _CLAIM.size, len(keys))
    from evalkit.step_ahead import fork_child

    # the child draws from the last chart backwards; the pipe holds its charts, so it never waits to write
    child = fork_child(lambda w: _child(charts, w, shared, dpi), pipe_size=1 << 20)
    if child is None:
        return False
    handle = Ahead(keys, *child, shared)
    owner.__dict__[_ATTR] = handle
    weakref.finalize(owner, handle.finish)  # never asked (another notebook): the child is reaped with its owner
    return True


def _child(charts: Sequence[tuple[Hashable, Callable[[], Any]]], w: int, shared: mmap.mmap, dpi: int) -> None:
    from evalkit.viz.style import png_of

    with os.fdopen(w, "wb") as out:
        for i in range(len(charts) - 1, -1, -1):
            _CLAIM.pack_into(shared, _CLAIM.size, i)
            if _CLAIM.unpack_from(shared, 0)[0] >= i:  # the parent has reached this chart: the rest is its own
                return
            data = None
            try:
                data = png_of(charts[i][1](), dpi)
            except Exception:  # noqa: BLE001, S110 - the parent draws it and meets the error itself
                data = None
            out.write(_HEAD.pack(i, -1 if data is None else len(data)) + (data or b""))
            out.flush()


def png(owner: Any, key: Hashable, build: Callable[[], Any], dpi: int = 130) -> bytes | None:
    """The PNG bytes of chart ``key``: the child's (:func:`start`) when it drew it, else ``build()`` drawn
    here (``None`` when the builder returns ``None``: no chart). The figure drawn here is closed."""
    handle: Ahead | None = getattr(owner, "__dict__", {}).get(_ATTR)
    if handle is not None and key in handle.keys:
        i = handle.keys.index(key)
        handle.claim(i)
        # taken by the child (or where it stopped: then the pipe ends without it), else drawn here
        data = handle.wait_for(i) if handle.child_low() <= i else None
        if handle.done or i == len(handle.keys) - 1:  # the last chart: nothing more to come
            finish(owner)
        if data is not None:
            return data
    from evalkit.viz.style import png_of

    return png_of(build(), dpi)


def finish(owner: Any) -> None:
    """Stop and reap the child of ``owner``, if any (its charts not yet taken are drawn here when asked)."""
    handle = getattr(owner, "__dict__", {}).pop(_ATTR, None)
    if handle is not None:
        handle.finish()


__all__ = ["finish", "png", "start"]
