"""Determinism: the same params and data give the same results.json, on an idle or a loaded machine.

One small evaluation (with the Rambachan–Roth sensitivity analysis, which used to stop at a
10-second wall-clock limit) runs twice in fresh processes, the second time with every core kept
busy by CPU-burning child processes. The two results.json files must be byte-identical apart from
the timing block (``timings``, ``seconds``), which ``Evaluation.to_dict`` writes last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.evaluation import TIMING_KEYS

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
import evalkit
from evalkit.params import validate_params
from evalkit.report import save_results

params = validate_params({
    "evaluation_id": "determinism", "reform": "两队一室", "outcomes": ["incidents_fight"],
    "region": {"area_type": "urban"}, "estimators": ["naive_yoy", "twfe", "event_twfe", "cs"],
    "sensitivity": True, "pretrend_test": "f", "headline_se": "analytic", "lang": "en",
    "warehouse": sys.argv[1],
})
save_results(evalkit.evaluate(params), sys.argv[2])
"""


def _run(warehouse: Path, out: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(warehouse), str(out)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(encoding="utf-8")


def _without_timings(text: str) -> tuple[str, dict]:
    """(the bytes before the timing block, the parsed file without the timing keys)."""
    data = json.loads(text)
    assert list(data)[-len(TIMING_KEYS):] == ["timings", "seconds"], "the timing block comes last"
    cut = text.index('\n  "timings": ')
    for k in TIMING_KEYS:
        data.pop(k)
    return text[:cut], data


def _no_clock_fields(obj, path="") -> list[str]:
    """Keys that look like clock readings anywhere outside the timing block."""
    bad = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("seconds", "timing", "timings", "created_at", "started_at", "finished_at", "elapsed"):
                bad.append(f"{path}/{k}")
            bad += _no_clock_fields(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad += _no_clock_fields(v, f"{path}[{i}]")
    return bad


def test_results_json_is_identical_on_an_idle_and_a_loaded_machine(demo_warehouse, tmp_path):
    idle = _run(demo_warehouse, tmp_path / "idle.json")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        loaded = _run(demo_warehouse, tmp_path / "loaded.json")
    finally:
        for b in burners:
            b.kill()
        for b in burners:
            b.wait()
    head_idle, data_idle = _without_timings(idle)
    head_loaded, data_loaded = _without_timings(loaded)
    assert data_idle["sensitivity"] is not None and data_idle["sensitivity"]["rm"], data_idle["sensitivity_error"]
    assert _no_clock_fields(data_idle) == []
    assert data_idle == data_loaded
    assert head_idle == head_loaded  # byte for byte
