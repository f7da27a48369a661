"""Byte-level writers: CSV the way Excel/WPS and bureau systems save it, and XLSX with layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

Row = Sequence[object]


def _field(v: object) -> str:
    s = "" if v is None else str(v)
    if any(ch in s for ch in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_line(row: Row) -> str:
    """One CSV record, quoted only where needed (as Excel writes it)."""
    return ",".join(_field(v) for v in row)


def write_csv(path: Path, rows: Sequence[Row | str], *, encoding: str = "utf-8",
              endings: Sequence[str] = ("\r\n",)) -> Path:
    """Write records; a ``str`` row is written verbatim (for stray quotes). Line endings cycle
    through ``endings`` (e.g. ``("\\r\\n", "\\n")`` for a file edited on two systems)."""
    parts = []
    for i, r in enumerate(rows):
        line = r if isinstance(r, str) else csv_line(r)
        parts.append(line + endings[i % len(endings)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(parts).encode(encoding))
    return path


@dataclass
class Sheet:
    """One worksheet: rows from A1, merged ranges (``"A1:G1"``), hidden or not."""

    name: str
    rows: list[list[object]]
    merged: list[str] = field(default_factory=list)
    hidden: bool = False


def write_xlsx(path: Path, sheets: Sequence[Sheet]) -> Path:
    """Write a workbook with openpyxl. Strings starting with ``=`` become formulas; openpyxl never
    stores cached values, exactly like a file produced by a script and never opened in Excel."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sh in sheets:
        ws = wb.create_sheet(sh.name)
        for r in sh.rows:
            ws.append(list(r))
        for rng in sh.merged:
            ws.merge_cells(rng)
        if sh.hidden:
            ws.sheet_state = "hidden"
    # the active (selected) sheet must be a visible one, as in any workbook saved by Excel
    visible = [i for i, sh in enumerate(sheets) if not sh.hidden]
    wb.active = visible[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
