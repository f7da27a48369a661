"""Load a demo-world folder (stations, reforms, incidents, disputes) in dependency order."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.ingest.core import ingest
from evalkit.ingest.errors import IngestError
from evalkit.ingest.report import IngestReport
from evalkit.ingest.sources import SUPPORTED
from evalkit.schema import REPORT_TABLES
from evalkit.warehouse import transaction

# the monthly report tables (prevention index) are optional: a world without them loads as before
ORDER = ("stations", "reforms", "incidents", "disputes", *REPORT_TABLES, "adjacency")


def _files_for(root: Path, table: str) -> list[Path]:
    out = []
    sub = root / table  # e.g. incidents/year=2024/part-00000.parquet (national world)
    if sub.is_dir():
        out += sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED)
    for f in sorted(root.iterdir()):
        if not f.is_file() or f.suffix.lower() not in SUPPORTED:
            continue
        stem = f.stem.lower()
        if stem == table or stem.startswith(table + "_") or stem.startswith(table + "-"):
            out.append(f)
    return out


def ingest_world(world_root, *, warehouse=None) -> list[IngestReport]:
    """Ingest a demo world: stations → reforms → incidents → disputes (→ report tables → adjacency).

    The study window is the manifest's ``start``..``end`` (months, inclusive). When the manifest
    says ``synthetic``, meta ``synthetic`` is set to ``'true'`` and the manifest facts are copied
    into meta (each top-level key, plus ``manifest`` = the whole JSON, ``study_start``/``study_end``)
    and the world's ``truth_cells.parquet`` (if any) becomes table ``demo_truth_cells``.
    """
    from evalkit.warehouse import connect, set_meta

    root = Path(world_root)
    if not root.is_dir():
        raise IngestError("world folder not found", file=str(root))
    manifest = {}
    mpath = root / "manifest.json"
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except ValueError as e:
            raise IngestError(f"manifest.json is not valid JSON: {e}", file=str(mpath)) from None
    window = None
    if manifest.get("start") and manifest.get("end"):
        window = (str(manifest["start"]), str(manifest["end"]))
    con = connect(warehouse)
    reports: list[IngestReport] = []
    try:
        with transaction(con):
            if window:
                set_meta(con, "study_start", window[0])
                set_meta(con, "study_end", window[1])
            if manifest.get("synthetic"):
                for k, v in manifest.items():
                    if k not in ("synthetic",) and isinstance(v, (str, int, float, bool)):
                        set_meta(con, k, v if isinstance(v, str) else json.dumps(v))
                set_meta(con, "manifest", manifest)
                set_meta(con, "synthetic", "true")
        for table in ORDER:
            files = _files_for(root, table)
            if not files:
                if table in ("stations", "incidents"):
                    raise IngestError(f"no {table} file in the world folder", file=str(root))
                continue
            reports.append(ingest(table, files, con=con, study_window=window, allow_demo=True))
        if manifest.get("synthetic"):  # the planted truth per treated station-month (evalkit.demo.truth)
            from evalkit.demo.truth import load_truth_cells

            load_truth_cells(con, root)
    finally:
        con.close()
    return reports
