"""evalkit.malloc_tuning: freed large arrays are reused instead of being mapped (and faulted in) again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from evalkit import malloc_tuning

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# 60 fresh 38 MiB arrays (a national column): minor page faults of the loop
PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "1":
    from evalkit.malloc_tuning import retain_freed_memory
    assert retain_freed_memory()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(60):
    x = np.empty(4_800_000)
    x.fill(1.0)
    del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(tuned: bool) -> int:
    env = dict(os.environ, EVALKIT_MALLOC_TUNING="1")
    out = subprocess.run([sys.executable, "-c", PROBE, "1" if tuned else "0"], capture_output=True, text=True,
                         env=env, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_arrays_are_reused() -> None:
    plain, tuned = _faults(False), _faults(True)
    # without tuning every array is a new mapping, faulted in again: at least one fault each (about 690 with
    # 4 KiB pages, ~20 where transparent huge pages back it); with it the heap is reused
    assert plain >= 60
    assert tuned < plain / 5


def test_switched_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(malloc_tuning.ENV, "0")
    assert malloc_tuning.retain_freed_memory() is False
