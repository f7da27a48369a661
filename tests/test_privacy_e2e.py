"""Privacy end to end: canary personal data planted in an export never reaches the warehouse,
the executed notebook, results.json, the brief (HTML/PDF text) or any log/console output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
CANARY_ID = "11010119900307123X"
CANARY_PHONE = "13912345678"
CANARY_NAME = "张金丝雀"
CANARY_ADDRESS = "金丝雀路99号"
CANARIES = (CANARY_ID, CANARY_PHONE, CANARY_NAME, CANARY_ADDRESS)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _scan(path: Path) -> list[str]:
    """Canaries found in a file (as UTF-8, GB18030 or UTF-16 bytes)."""
    data = path.read_bytes()
    found = []
    for c in CANARIES:
        for enc in ("utf-8", "gb18030", "utf-16-le"):
            if c.encode(enc) in data:
                found.append(f"{c} ({enc}) in {path}")
    return found


def test_canaries_never_leave_ingest(demo_warehouse, tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        station = con.execute("SELECT station_id FROM stations ORDER BY station_id LIMIT 1").fetchone()[0]
        # real exports are refused by the demo world's warehouse: the copy stands in for a real one
        con.execute("UPDATE meta SET value = 'false' WHERE key = 'synthetic'")
    export = tmp_path / "incidents_canary.csv"
    rows = [
        "警情编号,所属派出所编码,接警时间,到场时间,警情类别,处置力量,是否立案,报警人姓名,身份证号,联系电话,住址",
        f"CANARY-1,{station},2024-05-01 10:00:00,2024-05-01 10:06:00,打架斗殴,派出所,否,{CANARY_NAME},{CANARY_ID},{CANARY_PHONE},{CANARY_ADDRESS}",
        f"CANARY-2,{station},2024-05-02 11:00:00,2024-05-02 10:00:00,盗窃,派出所,是,{CANARY_NAME},{CANARY_ID},{CANARY_PHONE},{CANARY_ADDRESS}",
        f"CANARY-3,{station},2024-05-03 12:00:00,2024-05-03 12:09:00,{CANARY_PHONE},派出所,否,{CANARY_NAME},{CANARY_ID},{CANARY_PHONE},{CANARY_ADDRESS}",
    ]
    export.write_text("\n".join(rows) + "\n", encoding="gb18030")
    ingest = subprocess.run([sys.executable, "-m", "evalkit", "ingest", "incidents", str(export), "--warehouse", str(wh)],
                            capture_output=True, text=True, cwd=ROOT)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "身份证号" in ingest.stdout + ingest.stderr  # the refused column is reported by its header name

    out = tmp_path / "outputs"
    run = subprocess.run([sys.executable, "-m", "evalkit", "run", str(ROOT / "params" / "two_teams_fights.yaml"),
                          "--warehouse", str(wh), "--outputs", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]

    console = ingest.stdout + ingest.stderr + run.stdout + run.stderr
    leaks = [c for c in CANARIES if c in console]
    for p in [wh, *wh.parent.glob("warehouse.duckdb*"), *out.rglob("*")]:
        if p.is_file():
            leaks += _scan(p)
    pdf_text = subprocess.run(["pdftotext", str(out / "two_teams_fights" / "brief.pdf"), "-"],
                              capture_output=True, text=True).stdout if shutil.which("pdftotext") else ""
    leaks += [c for c in CANARIES if c in pdf_text]
    assert not leaks, leaks
    # the canary rows themselves were handled: one accepted, the bad-arrival one quarantined
    with duckdb.connect(str(wh), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM incidents WHERE incident_id LIKE 'CANARY-%'").fetchone()[0]
        q = con.execute("SELECT count(*) FROM quarantine WHERE source_file LIKE '%incidents_canary.csv'").fetchone()[0]
    assert n + q == 3 and q >= 1
