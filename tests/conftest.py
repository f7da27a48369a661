"""Shared test fixtures: one small demo warehouse per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    """The small demo world (seed 7) generated and ingested once per session.

    Set ``EVALKIT_TEST_WAREHOUSE`` to an existing demo warehouse to skip generating one.
    Tests must open it read-only.
    """
    env = os.environ.get("EVALKIT_TEST_WAREHOUSE")
    if env and Path(env).is_file():
        return Path(env)
    root = tmp_path_factory.mktemp("demo")
    wh = root / "warehouse.duckdb"
    proc = subprocess.run([sys.executable, "-m", "evalkit", "demo-data", "--size", "small", "--seed", "7",
                           "--out", str(root / "world"), "--warehouse", str(wh)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return wh
