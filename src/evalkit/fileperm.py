"""File modes of outputs: temp-file-then-rename writes get the mode a plain ``open()`` would give.

``tempfile.mkstemp`` creates files 0600 whatever the umask, so briefs and results renamed from
them were unreadable by the group. :func:`public_mode` applies ``0o666 & ~umask`` (group-readable
under umask 022 or 027, private under 077).
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where Linux exposes it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # fallback: read by setting and restoring (not thread-safe, hence last)
    os.umask(mask)
    return mask


def public_mode(target: int | str | Path) -> None:
    """Give a file (path or open descriptor) mode ``0o666 & ~umask``, as ``open()`` would create it."""
    mode = 0o666 & ~current_umask()
    if isinstance(target, int):
        os.fchmod(target, mode)
    else:
        os.chmod(target, mode)
