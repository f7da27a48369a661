"""Reading XLSX workbooks as bureaus keep them (openpyxl; DuckDB's excel extension is not available offline).

- The sheet: ``--sheet NAME|INDEX`` if given (hidden sheets only by explicit choice); else the
  visible sheet named like the table, else the visible sheet whose header names the most known
  columns. A hidden sheet is never read by default.
- The header: title rows and merged title cells above it are skipped (:func:`headers.find_header`).
- Formula cells: a workbook written by a program (not saved by Excel/WPS) has formulas without
  saved values; such cells are reported per row (quarantined as ``formula_without_value``) instead
  of being read as empty.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from evalkit.ingest.errors import IngestError


def _cell(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def _is_formula(v) -> bool:
    return (isinstance(v, str) and v.startswith("=")) or type(v).__name__ in ("ArrayFormula", "DataTableFormula")


def _open(path: Path, data_only: bool):
    import openpyxl

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
        raise IngestError(f"not a readable XLSX workbook (truncated or corrupt: {type(e).__name__})",
                          file=str(path)) from None


def _choose(wb, path: Path, sheet, table: str, table_zh: str, spec, user) -> str:
    names = wb.sheetnames
    if sheet is not None:
        if isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
            i = int(sheet)
            if not 0 <= i < len(names):
                raise IngestError(f"sheet index {i} out of range; sheets: {', '.join(names)}", file=str(path))
            return names[i]
        if sheet not in names:
            raise IngestError(f"no sheet {sheet!r}; sheets: {', '.join(names)}", file=str(path))
        return sheet
    visible = [ws.title for ws in wb.worksheets if ws.sheet_state == "visible"]
    if not visible:
        raise IngestError(f"no visible sheet (hidden: {', '.join(names)}); choose one with --sheet", file=str(path))
    if len(visible) == 1:
        return visible[0]
    wanted = [n for n in visible if n.strip() in (table_zh, table)]
    if wanted:
        return wanted[0]
    if spec is None:
        return visible[0]
    from evalkit.ingest.headers import HEADER_SCAN_ROWS, _score, alias_lookup, find_header

    lookup = alias_lookup(spec, user)
    best, best_score = visible[0], -1
    for n in visible:
        head = [list(r) for _, r in zip(range(HEADER_SCAN_ROWS), wb[n].iter_rows(values_only=True), strict=False)]
        if not head:
            continue
        try:
            score = _score(find_header(head, spec, user).headers, lookup)
        except IngestError:
            continue
        if score > best_score:
            best, best_score = n, score
    return best


def open_xlsx(path: Path, sheet, table: str, table_zh: str, user=None):
    """Source for one sheet: header found, data rows as (row number, cells, formula column indexes)."""
    from evalkit.ingest.headers import find_header
    from evalkit.ingest.sources import Source
    from evalkit.schema import TABLES

    spec = TABLES.get(table)
    wb = _open(path, data_only=True)
    wbf = None
    try:
        chosen = _choose(wb, path, sheet, table, table_zh, spec, user)
        sheet_names = list(wb.sheetnames)
        visible_names = [ws.title for ws in wb.worksheets if ws.sheet_state == "visible"]
        wbf = _open(path, data_only=False)
        values = wb[chosen].iter_rows(values_only=True)
        formulas = wbf[chosen].iter_rows(values_only=True)
        all_rows = []
        for rownum, (vals, fs) in enumerate(zip(values, formulas, strict=False), start=1):
            cells = [_cell(v) for v in vals]
            missing = {i for i, (v, f) in enumerate(zip(vals, fs, strict=False)) if v is None and _is_formula(f)}
            all_rows.append((rownum, cells, missing))
    except IngestError:
        raise
    except Exception as e:  # openpyxl raises many things on damaged files
        raise IngestError(f"not a readable XLSX workbook ({type(e).__name__})", file=str(path)) from None
    finally:
        wb.close()
        if wbf is not None:
            wbf.close()
    nonempty = [r for r in all_rows if any(c is not None and str(c).strip() != "" for c in r[1]) or r[2]]
    if not nonempty:
        raise IngestError(f"sheet {chosen!r} is empty", file=str(path))
    if spec is None:
        hdr_at, count, headers = 0, 1, [("" if c is None else str(c)).strip() for c in nonempty[0][1]]
    else:
        from evalkit.ingest.headers import _score, alias_lookup

        hr = find_header([r[1] for r in nonempty], spec, user)
        hdr_at, count, headers = hr.index, hr.count, hr.headers
        hidden = [n for n in sheet_names if n not in visible_names]
        if sheet is None and hidden and _score(headers, alias_lookup(spec, user)) == 0:
            raise IngestError(f"sheet {chosen!r} has no {table} header; hidden sheets (never read unless "
                              f"chosen): {', '.join(hidden)} — choose one with --sheet", file=str(path))
    header_row = nonempty[hdr_at + count - 1][0]
    rows = nonempty[hdr_at + count:]
    return Source(path, "xlsx", headers, sheet=chosen, _xlsx_rows=rows, header_row=header_row)
