"""End to end on a county's own exports (issue 12): a register, an adoption list and five yearly
GB18030 incident exports written by ``tests/realistic/synthetic.py`` with a planted −25 % effect of
两队一室 on telecom fraud → ``evalkit ingest`` with only the mapping ``--suggest-mapping`` wrote →
a corrected export loaded with ``--replace`` → ``evalkit run`` → results.json whose headline
recovers the planted effect, and a data note that counts only live quarantine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from realistic.county import CITY, PROVINCE
from realistic.synthetic import REFORM, write_county

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def evalkit(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "500", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "evalkit", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


def _suggest_then_ingest(wh: Path, table: str, files: list[Path], mapping: Path, *extra) -> str:
    """Write the suggested mapping for the first file and load all files with it, unedited."""
    _ok(evalkit("ingest", table, files[0], "--warehouse", wh, "--suggest-mapping", mapping))
    assert mapping.is_file() and yaml.safe_load(mapping.read_text(encoding="utf-8")), "no mapping written"
    return _ok(evalkit("ingest", table, *files, "--warehouse", wh, "--mapping", mapping, *extra))


def _rewrite_with_bad_dates(f: Path, n_bad: int) -> None:
    """The first delivery of an export: ``n_bad`` 报警时间 cells not filled in yet."""
    lines = f.read_bytes().decode("gb18030").splitlines()
    for i in range(2, 2 + n_bad):  # after the title and header rows
        cells = lines[i].split(",")
        cells[2] = "待补录"
        lines[i] = ",".join(cells)
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))


def test_county_exports_to_results(tmp_path):
    county = write_county(tmp_path / "exports")
    wh = tmp_path / "county.duckdb"
    maps = tmp_path / "mappings"
    maps.mkdir()

    _suggest_then_ingest(wh, "stations", [county.register], maps / "stations.yaml",
                         "--set", f"city={CITY}", "--set", f"province={PROVINCE}")
    _suggest_then_ingest(wh, "reforms", [county.adoption_file], maps / "reforms.yaml")

    # 2025 is first delivered with 400 rows lacking a date, then corrected and replaced; three rows
    # of 2023 stay bad (live quarantine)
    final_2025 = county.incident_files[-1].read_bytes()
    _rewrite_with_bad_dates(county.incident_files[-1], 400)
    _rewrite_with_bad_dates(county.incident_files[2], 3)
    out = _suggest_then_ingest(wh, "incidents", county.incident_files, maps / "incidents.yaml")
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 403, out
    county.incident_files[-1].write_bytes(final_2025)
    _ok(evalkit("ingest", "incidents", county.incident_files[-1], "--warehouse", wh,
                "--mapping", maps / "incidents.yaml", "--replace"))

    with duckdb.connect(str(wh), read_only=True) as con:
        n = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("stations", "reforms", "incidents")}
        live = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        other = con.execute("SELECT count(*) FROM incidents WHERE category = 'other'").fetchone()[0]
        fraud = con.execute("SELECT count(*) FROM incidents WHERE category = 'fraud'").fetchone()[0]
        # the comparison station that did not export four months: those months are not covered
        gap = [int(m[:4]) * 12 + int(m[5:]) - 1 for m in county.gap_months]
        covered = con.execute("SELECT period FROM coverage WHERE table_name = 'incidents' AND station_id = ?",
                              [county.gap_station]).fetchall()
    assert len(covered) == 60 - len(gap) and not {p for (p,) in covered} & set(gap), covered
    assert n == {"stations": 30, "reforms": 12, "incidents": county.rows - 3}
    assert live == 3 and other == 0 and fraud > 0.5 * county.rows

    params = tmp_path / "county_fraud.yaml"
    params.write_text(yaml.safe_dump({
        "evaluation_id": "county_fraud", "reform": REFORM, "outcomes": ["incidents_fraud"],
        "window": {"start": "2021-01", "end": "2025-12"}, "estimators": ["cs", "twfe", "event_twfe"],
        "sensitivity": False, "lang": "en", "warehouse": str(wh), "seed": 7,
    }, allow_unicode=True), encoding="utf-8")
    _ok(evalkit("validate", params))
    _ok(evalkit("run", params, "--outputs", tmp_path / "out", "--no-pdf"))

    res = json.loads((tmp_path / "out" / "county_fraud" / "results.json").read_text(encoding="utf-8"))
    head = res["headline"]["incidents_fraud"]
    assert head["estimator"] == "cs"
    assert head["n_treated"] == 12 and head["n_control"] == 18
    assert head["pct_ci_low"] <= county.effect_pct <= head["pct_ci_high"], head
    assert head["pct_ci_high"] < 0, f"the planted effect was not detected: {head}"
    print(f"headline {head['estimator']}: {head['pct']:.1f} % [{head['pct_ci_low']:.1f}, {head['pct_ci_high']:.1f}]")
    assert res["quarantined_rows"] == live, "the data note counts stale quarantine of a replaced load"
    brief = re.sub(r"<[^>]+>", " ", (tmp_path / "out" / "county_fraud" / "brief.html").read_text(encoding="utf-8"))
    note = re.search(r"quarantined at ingest:\s*([\d,]+)", brief)
    assert note and note.group(1) == str(live), "the brief's data note counts stale quarantine"
    gaps = re.search(r"outside the coverage of the data:\s*(\d+)\s*\((\d+) station-months", brief)
    assert gaps and gaps.groups() == ("1", str(len(gap))), "the data note does not report the coverage gap"

