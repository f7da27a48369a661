"""Reading raw files (CSV in UTF-8/UTF-8-BOM/GB18030, XLSX, Parquet) into a DuckDB temp table.

Every source becomes a temp table whose columns are the *mapped canonical* columns only
(raw text, VARCHAR) — personal-data and unknown columns are never loaded into the database —
plus an expression giving the 1-based row number as in the file (CSV/XLSX: header = row 1,
first data row = 2; Parquet: first row = 1).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import glob
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from evalkit.ingest.errors import IngestError
from evalkit.ingest.sql import ident, q

CSV_EXT = {".csv", ".txt", ".tsv"}
XLSX_EXT = {".xlsx", ".xlsm"}
PARQUET_EXT = {".parquet", ".pq"}
SUPPORTED = CSV_EXT | XLSX_EXT | PARQUET_EXT
SAMPLE_BYTES = 1 << 16
CHUNK_BYTES = 1 << 23


# ------------------------------------------------------------------------------ file lists
def expand_paths(paths, table: str | None = None, table_zh: str | None = None) -> list[Path]:
    """Files from paths, directories (supported files inside) and glob patterns; order kept, deduped.

    In a directory holding files for several tables, only those whose name starts with the
    table name (or its Chinese name) are taken when there are any.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        s = str(p)
        path = Path(s)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED)
            if table:
                pref = [f for f in files if f.name.lower().startswith(table) or (table_zh and f.name.startswith(table_zh))]
                files = pref or files
            if not files:
                raise IngestError("directory holds no CSV/XLSX/Parquet files", file=s)
            out.extend(files)
        elif path.exists():
            out.append(path)
        elif any(ch in s for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(s, recursive=True) if Path(m).is_file())
            if not matched:
                raise IngestError("no file matches this pattern", file=s)
            out.extend(matched)
        else:
            raise IngestError("file not found", file=s)
    seen: set[str] = set()
    uniq = []
    for f in out:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            uniq.append(f)
    return uniq


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------ encodings
def detect_encoding(path: Path) -> str:
    """``utf-8`` / ``utf-8-sig`` / ``gb18030`` from a byte sample (never from the file name)."""
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
        at_end = fh.read(1) == b""
    name = str(path)
    if not sample.strip():
        raise IngestError("file is empty", file=name)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (b"\x00" in sample[:4096]):
        raise IngestError(
            "file is UTF-16 or binary, not a text CSV; save it as UTF-8 or GB18030 CSV", file=name, row=1
        )
    enc = "utf-8-sig" if sample.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        codecs.getincrementaldecoder(enc)("strict").decode(sample, final=at_end)
        return enc
    except UnicodeDecodeError as e:
        utf8_error = e
    try:
        codecs.getincrementaldecoder("gb18030")("strict").decode(sample, final=at_end)
        return "gb18030"
    except UnicodeDecodeError:
        pos = utf8_error.start
        row = sample[:pos].count(b"\n") + 1
        raise IngestError(
            f"undecodable bytes at byte {pos}: the file is neither UTF-8 nor GB18030/GBK", file=name, row=row
        ) from None


def transcode_to_utf8(path: Path, encoding: str, out_dir: str) -> Path:
    """Stream-transcode a GB18030 file to a UTF-8 temp file (chunked; constant memory)."""
    target = Path(out_dir) / (path.stem + ".utf8.csv")
    dec = codecs.getincrementaldecoder(encoding)("strict")
    lines = 0
    offset = 0
    with open(path, "rb") as src, open(target, "wb") as dst:
        while True:
            chunk = src.read(CHUNK_BYTES)
            final = chunk == b""
            try:
                text = dec.decode(chunk, final=final)
            except UnicodeDecodeError as e:
                # e.start indexes into (pending bytes + chunk); approximate via the chunk
                start = max(0, min(e.start, len(chunk)))
                row = lines + chunk[:start].count(b"\n") + 1
                raise IngestError(
                    f"undecodable bytes (file detected as {encoding.upper()} from its first bytes; "
                    f"mixed or wrong encoding near byte {offset + start})",
                    file=str(path), row=row,
                ) from None
            dst.write(text.encode("utf-8"))
            lines += chunk.count(b"\n")
            offset += len(chunk)
            if final:
                break
    return target


# ------------------------------------------------------------------------------ sources
@dataclass
class Source:
    path: Path
    kind: str  # csv | xlsx | parquet
    headers: list[str]
    encoding: str | None = None
    read_path: Path | None = None  # transcoded copy for GB18030
    delimiter: str = ","
    sheet: str | None = None
    _xlsx_rows: list | None = None  # (row number, values) for XLSX

    @property
    def name(self) -> str:
        return str(self.path)


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def open_source(path: Path, tmpdir: str, *, table_zh: str = "", table: str = "",
                sheet: str | int | None = None) -> Source:
    ext = path.suffix.lower()
    if path.stat().st_size == 0:
        raise IngestError("file is empty", file=str(path))
    if ext in XLSX_EXT:
        return _open_xlsx(path, sheet, table, table_zh)
    if ext in PARQUET_EXT:
        return _open_parquet(path)
    if ext not in CSV_EXT and ext != "":
        raise IngestError(f"unsupported file type {ext!r} (use CSV, XLSX or Parquet)", file=str(path))
    enc = detect_encoding(path)
    read_path = path
    if enc == "gb18030":
        read_path = transcode_to_utf8(path, enc, tmpdir)
    with open(read_path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
    first = first.rstrip("\r\n")
    if not first.strip():
        raise IngestError("file is empty (no header row)", file=str(path), row=1)
    delim = _sniff_delimiter(first)
    headers = next(csv.reader(io.StringIO(first), delimiter=delim))
    return Source(path, "csv", [h.strip() for h in headers], enc, read_path, delim)


def _xlsx_cell(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    s = str(v)
    return s


def _open_xlsx(path: Path, sheet, table: str, table_zh: str) -> Source:
    import zipfile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
        raise IngestError(f"not a readable XLSX workbook (truncated or corrupt: {type(e).__name__})",
                          file=str(path)) from None
    try:
        names = wb.sheetnames
        if sheet is None:
            if len(names) == 1:
                chosen = names[0]
            else:
                wanted = [n for n in names if n.strip() in (table_zh, table)]
                chosen = wanted[0] if wanted else names[0]
        elif isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
            i = int(sheet)
            if not 0 <= i < len(names):
                raise IngestError(f"sheet index {i} out of range; sheets: {', '.join(names)}", file=str(path))
            chosen = names[i]
        else:
            if sheet not in names:
                raise IngestError(f"no sheet {sheet!r}; sheets: {', '.join(names)}", file=str(path))
            chosen = sheet
        ws = wb[chosen]
        header = None
        rows = []
        for rownum, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_xlsx_cell(v) for v in values]
            if all(c is None or str(c).strip() == "" for c in cells):
                continue
            if header is None:
                header = [("" if c is None else str(c)).strip() for c in cells]
                continue
            rows.append((rownum, cells))
    except IngestError:
        raise
    except Exception as e:  # openpyxl raises many things on damaged files
        raise IngestError(f"not a readable XLSX workbook ({type(e).__name__})", file=str(path)) from None
    finally:
        wb.close()
    if header is None:
        raise IngestError(f"sheet {chosen!r} is empty", file=str(path))
    while header and header[-1] == "":
        header.pop()
    return Source(path, "xlsx", header, sheet=chosen, _xlsx_rows=rows)


def _open_parquet(path: Path) -> Source:
    try:
        con = duckdb.connect()
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({q(str(path))})").fetchall()]
        con.close()
    except duckdb.Error as e:
        raise IngestError("not a readable Parquet file (truncated or corrupt)", file=str(path)) from e
    return Source(path, "parquet", cols)


_LINE_RE = re.compile(r"CSV Error on Line: (\d+)")
_COLS_RE = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_error(e: duckdb.Error, src: Source) -> IngestError:
    msg = str(e)
    m = _LINE_RE.search(msg)
    row = int(m.group(1)) if m else None
    c = _COLS_RE.search(msg)
    if c:
        what = (f"expected {c.group(1)} fields, found {c.group(2)} "
                f"({'truncated file or row' if int(c.group(2)) < int(c.group(1)) else 'extra delimiter in row'})")
    elif "unterminated quote" in msg:
        what = "unterminated quote (truncated file?)"
    elif "Invalid unicode" in msg or "byte sequence" in msg:
        what = ("invalid UTF-8 byte sequence (file detected as UTF-8 from its first bytes; mixed or wrong "
                "encoding?)")
    else:
        what = "malformed CSV (" + msg.splitlines()[0].replace("Invalid Input Error: ", "") + ")"
    # never echo DuckDB's "Original Line" — it may contain personal data
    return IngestError(what, file=src.name, row=row)


def clean_sql(x: str) -> str:
    """Trim blanks (incl. the full-width space) and turn empty strings into NULL (cheap path first)."""
    cps = "(32, 9, 10, 13, 12288)"
    return (f"CASE WHEN {x} = '' THEN NULL WHEN ascii({x}) IN {cps} OR ascii(right({x}, 1)) IN {cps} "
            f"THEN NULLIF(trim({x}, ' \t\r\n\u3000'), '') ELSE {x} END")


def _rowid_base(con, tmp: str) -> int:
    """Smallest rowid of a freshly filled temp table (rowids inside a transaction start at 2**55).

    Rows keep file order (DuckDB preserves insertion order), so row number = rowid - base + offset;
    contiguity is checked.
    """
    lo, hi, n = con.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {tmp}").fetchall()[0]
    if n == 0:
        return 0
    if hi - lo + 1 != n:
        raise AssertionError(f"rowids of {tmp} are not contiguous; cannot number rows")
    return int(lo)


def load_raw(con: duckdb.DuckDBPyConnection, src: Source, positions: dict[str, int], tmp: str) -> str:
    """Create temp table ``tmp`` with the mapped columns only (``v_<canonical>``: trimmed VARCHAR,
    empty → NULL), in file order, and return the SQL expression for the file row number over it."""
    if src.kind == "csv":
        n = len(src.headers)
        cols = "{" + ", ".join(f"{q('c' + str(i))}: 'VARCHAR'" for i in range(n)) + "}"
        sel = ", ".join(f"{clean_sql('c' + str(pos))} AS {ident('v_' + name)}" for name, pos in positions.items())
        sql = (
            f"CREATE TEMP TABLE {tmp} AS SELECT {sel} FROM read_csv({q(str(src.read_path))}, header=false, "
            f"skip=1, auto_detect=false, columns={cols}, delim={q(src.delimiter)}, quote='\"', escape='\"', "
            f"strict_mode=true)"
        )
        try:
            con.execute(sql)
        except duckdb.InvalidInputException as e:
            raise _csv_error(e, src) from None
        except duckdb.Error as e:
            raise IngestError(f"could not read CSV: {str(e).splitlines()[0]}", file=src.name) from None
        return f"{tmp}.rowid - {_rowid_base(con, tmp)} + 2"
    if src.kind == "parquet":
        sel = ", ".join(
            f"{clean_sql('CAST(' + ident(src.headers[pos]) + ' AS VARCHAR)')} AS {ident('v_' + name)}"
            for name, pos in positions.items()
        )
        try:
            con.execute(f"CREATE TEMP TABLE {tmp} AS SELECT {sel} FROM read_parquet({q(str(src.path))})")
        except duckdb.Error as e:
            raise IngestError(f"could not read Parquet: {str(e).splitlines()[0]}", file=src.name) from None
        return f"{tmp}.rowid - {_rowid_base(con, tmp)} + 1"
    # xlsx
    import pyarrow as pa

    rows = src._xlsx_rows or []
    data = {"_row": pa.array([r for r, _ in rows], pa.int64())}
    for name, pos in positions.items():
        vals = [(cells[pos] if pos < len(cells) else None) for _, cells in rows]
        data["v_" + name] = pa.array(vals, pa.string())
    arrow = pa.table(data)  # noqa: F841  (referenced by name in SQL)
    con.register("_ek_arrow", arrow)
    try:
        sel = ", ".join(["_row"] + [f"{clean_sql(ident('v_' + n))} AS {ident('v_' + n)}" for n in positions])
        con.execute(f"CREATE TEMP TABLE {tmp} AS SELECT {sel} FROM _ek_arrow ORDER BY _row")
    finally:
        con.unregister("_ek_arrow")
    return f"{tmp}._row"


def make_tmpdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="evalkit-ingest-")
