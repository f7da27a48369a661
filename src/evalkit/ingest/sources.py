"""Reading raw files (CSV in UTF-8/UTF-8-BOM/GB18030, XLSX, Parquet) into a DuckDB temp table.

Every source becomes a temp table whose columns are the *mapped canonical* columns only
(raw text, VARCHAR) — personal-data and unknown columns are never loaded into the database —
plus an expression giving the 1-based row number as in the file (CSV/XLSX: header = row 1,
first data row = 2; Parquet: first row = 1).
"""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from evalkit.ingest.csvrows import fields_message, records, risky
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


class Transcoder:
    """Stream a GB18030 file as UTF-8 through a named pipe (FIFO) for DuckDB's CSV reader.

    The transcoded text only passes through the kernel's pipe buffer: no plain copy of the file is
    ever written to disk, so a killed or failing ingest leaves nothing behind but an empty FIFO
    node in its temp directory (removed on exit, or at the next start, see :func:`make_tmpdir`).
    """

    def __init__(self, path: Path, encoding: str, out_dir: str):
        self.path, self.encoding = path, encoding
        self.fifo = Path(out_dir) / f"stream-{os.getpid()}-{id(self)}.csv"
        self.error: IngestError | None = None
        self._thread = None

    def __enter__(self) -> Path:
        import threading

        if self.fifo.exists():
            self.fifo.unlink()
        os.mkfifo(self.fifo, 0o600)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self.fifo

    def _run(self) -> None:
        dec = codecs.getincrementaldecoder(self.encoding)("strict")
        lines = offset = 0
        try:
            fd = os.open(self.fifo, os.O_WRONLY)
        except OSError:
            return
        try:
            with open(self.path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while True:
                    chunk = src.read(CHUNK_BYTES)
                    final = chunk == b""
                    try:
                        text = dec.decode(chunk, final=final)
                    except UnicodeDecodeError as e:
                        start = max(0, min(e.start, len(chunk)))
                        self.error = IngestError(
                            f"undecodable bytes (file detected as {self.encoding.upper()} from its first bytes; "
                            f"mixed or wrong encoding near byte {offset + start})",
                            file=str(self.path), row=lines + chunk[:start].count(b"\n") + 1)
                        return
                    dst.write(text.encode("utf-8"))
                    lines += chunk.count(b"\n")
                    offset += len(chunk)
                    if final:
                        return
        except (BrokenPipeError, OSError):
            return  # the reader stopped early (a parse error); reported by the reader

    def __exit__(self, *exc) -> None:
        if self._thread is not None and self._thread.is_alive():
            try:  # unblock a writer still waiting for (or writing to) a reader that has gone
                fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
            self._thread.join(timeout=10)
        try:
            self.fifo.unlink()
        except FileNotFoundError:
            pass


# ------------------------------------------------------------------------------ sources
@dataclass
class Source:
    path: Path
    kind: str  # csv | xlsx | parquet
    headers: list[str]
    encoding: str | None = None
    read_path: Path | None = None  # unused (kept for callers); GB18030 is streamed, see Transcoder
    delimiter: str = ","
    sheet: str | None = None
    _xlsx_rows: list | None = None  # (row number, values, {column index: formula}) for XLSX
    header_row: int = 1  # file row of the (last) header row; data starts on the next row
    skip_lines: int = 1  # CSV: physical lines before the first data row
    plain: bool = False  # CSV read by DuckDB with one record a line (no quote, no blank line, one line end)
    tmpdir: str | None = None

    @property
    def name(self) -> str:
        return str(self.path)


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _spec(table: str):
    from evalkit.schema import TABLES

    return TABLES.get(table)


def _head_lines(path: Path, enc: str, n: int) -> list[str]:
    """The first ``n`` lines of a CSV, decoded (a sample: nothing is written anywhere)."""
    out = []
    with open(path, encoding="utf-8-sig" if enc.startswith("utf-8") else enc, errors="replace", newline="") as fh:
        for line in fh:
            out.append(line)
            if len(out) >= n:
                break
    return out


def open_source(path: Path, tmpdir: str, *, table_zh: str = "", table: str = "",
                sheet: str | int | None = None, user=None) -> Source:
    """Open a file, find its header row(s) (title/note rows above are skipped) and return a Source."""
    from evalkit.ingest.headers import HEADER_SCAN_ROWS, find_header

    ext = path.suffix.lower()
    if path.stat().st_size == 0:
        raise IngestError("file is empty", file=str(path))
    if ext in XLSX_EXT:
        from evalkit.ingest.xlsx import open_xlsx

        return open_xlsx(path, sheet, table, table_zh, user)
    if ext in PARQUET_EXT:
        return _open_parquet(path)
    if ext not in CSV_EXT and ext != "":
        raise IngestError(f"unsupported file type {ext!r} (use CSV, XLSX or Parquet)", file=str(path))
    enc = detect_encoding(path)
    lines = _head_lines(path, enc, HEADER_SCAN_ROWS + 1)
    if not "".join(lines).strip():
        raise IngestError("file is empty (no header row)", file=str(path), row=1)
    # the delimiter from the line with the most delimiters (a title row has none)
    delim = _sniff_delimiter(max(lines, key=lambda s: max(s.count(d) for d in ",\t;|")))
    rows = list(csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delim))
    spec = _spec(table)
    if spec is None:
        first = next(r for r in rows if any(c.strip() for c in r))
        return Source(path, "csv", [h.strip() for h in first], enc, path, delim, tmpdir=tmpdir)
    try:
        hr = find_header(rows, spec, user)
    except IngestError as e:
        raise IngestError(e.reason, file=str(path), row=1) from None
    # physical lines up to the end of the header (records in the title area hold no line breaks)
    skip = hr.index + hr.count
    return Source(path, "csv", hr.headers, enc, path, delim, header_row=skip, skip_lines=skip, tmpdir=tmpdir)


def _open_parquet(path: Path) -> Source:
    try:
        con = duckdb.connect()
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({q(str(path))})").fetchall()]
        con.close()
    except duckdb.Error as e:
        raise IngestError("not a readable Parquet file (truncated or corrupt)", file=str(path)) from e
    return Source(path, "parquet", cols, header_row=0)


_LINE_RE = re.compile(r"CSV Error on Line: (\d+)")
_COLS_RE = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_error(e: duckdb.Error, src: Source) -> IngestError | None:
    """A one-line error with the row for DuckDB's CSV errors; None when the Python reader should retry."""
    msg = str(e)
    m = _LINE_RE.search(msg)
    row = int(m.group(1)) if m else None
    c = _COLS_RE.search(msg)
    if c:
        what = fields_message(int(c.group(1)), int(c.group(2)))
    elif "unterminated quote" in msg:
        what = "unterminated quote (truncated file?)"
    elif "Invalid unicode" in msg or "byte sequence" in msg:
        what = ("invalid UTF-8 byte sequence (file detected as UTF-8 from its first bytes; mixed or wrong "
                "encoding?)")
    else:
        return None  # strict-mode trouble (mixed line endings, stray quotes): read it row by row
    # never echo DuckDB's "Original Line" — it may contain personal data
    return IngestError(what, file=src.name, row=row)


BLANKS = " \t\r\n\u3000"  # what is trimmed from both ends of a value (incl. the full-width space)


def clean_sql(x: str) -> str:
    """Trim blanks (incl. the full-width space) and turn empty strings into NULL (cheap path first).

    The test for a blank at either end is made of byte comparisons, no character decoding: a first
    character below ``!`` (space, tab, CR, LF, other controls, or the empty string) or U+3000 (its
    UTF-8 bytes sort between ``\u3000`` and ``\u3001``), a last character below ``!`` or U+3000.
    Values that fail it (nearly all) are kept as they are."""
    return (f"CASE WHEN {x} < '!' OR ({x} >= '\u3000' AND {x} < '\u3001') OR substring({x}, -1, 1) < '!' "
            f"OR suffix({x}, '\u3000') THEN NULLIF(trim({x}, {q(BLANKS)}), '') ELSE {x} END")


def lead_clean_sql(x: str) -> str:
    """:func:`clean_sql` for the leading end only (the cheap half of the test): NULL exactly where
    :func:`clean_sql` gives NULL (a blank-only value starts with a blank), trimmed where the value
    starts with a blank, else the value as read — possibly with trailing blanks. For columns whose
    use tolerates those (values mapped through a join table built from their distinct values, which
    trims them; timestamps, whose cast ignores them and whose slow path trims in full)."""
    return f"CASE WHEN {x} < '!' OR ({x} >= '\u3000' AND {x} < '\u3001') THEN NULLIF(trim({x}, {q(BLANKS)}), '') ELSE {x} END"


def trim_py(v: str) -> str:
    """Python twin of the trimming in :func:`clean_sql` (for distinct values read half-cleaned)."""
    return v.strip(BLANKS)


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


def _load_arrow(con, tmp: str, rownums: list[int], positions: dict[str, int], rows: list[list],
                extra: dict[str, list] | None = None) -> None:
    import pyarrow as pa

    data = {"_row": pa.array(rownums, pa.int64())}
    for name, pos in positions.items():
        data["v_" + name] = pa.array([(r[pos] if pos < len(r) else None) for r in rows], pa.string())
    for name, vals in (extra or {}).items():
        data[name] = pa.array(vals, pa.string())
    con.register("_ek_arrow", pa.table(data))
    try:
        sel = ", ".join(["_row"] + [f"{clean_sql(ident('v_' + n))} AS {ident('v_' + n)}" for n in positions]
                        + [ident(n) for n in (extra or {})])
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary",
                             [tmp]).fetchall()[0][0]
        if exists:
            con.execute(f"INSERT INTO {tmp} SELECT {sel} FROM _ek_arrow ORDER BY _row")
        else:
            con.execute(f"CREATE TEMP TABLE {tmp} AS SELECT {sel} FROM _ek_arrow ORDER BY _row")
    finally:
        con.unregister("_ek_arrow")


def _load_csv_python(con, src: Source, positions: dict[str, int], tmp: str, batch: int = 200_000) -> str:
    """Read a CSV DuckDB's strict parser refuses or that it would misread (mixed line endings, blank
    lines, quotes inside fields, quoted fields spanning lines, stray quotes) with Python's csv
    module, streamed in batches (see :func:`evalkit.ingest.csvrows.records`); adds ``_quote`` (problem text or NULL).
    Decodes from the original file: no copy is written."""
    n = len(src.headers)
    enc = "utf-8-sig" if (src.encoding or "utf-8").startswith("utf-8") else src.encoding
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    rownums: list[int] = []
    rows: list[list] = []
    problems: list[str | None] = []
    created = False
    row = 0
    with open(src.path, encoding=enc, newline="") as fh:
        try:
            for row, rec, problem in records(fh, src.delimiter, n, src.skip_lines):
                rownums.append(row)
                rows.append(rec)
                problems.append(problem)
                if len(rows) >= batch:
                    _load_arrow(con, tmp, rownums, positions, rows, {"_quote": problems})
                    created = True
                    rownums, rows, problems = [], [], []
        except IngestError as e:
            raise IngestError(e.reason, file=src.name, row=e.row) from None
        except csv.Error as e:
            raise IngestError(f"malformed CSV ({e})", file=src.name, row=row + 1) from None
        except UnicodeDecodeError:
            raise IngestError("undecodable bytes (mixed or wrong encoding)", file=src.name, row=row + 1) from None
    if rows or not created:
        _load_arrow(con, tmp, rownums, positions, rows, {"_quote": problems})
    return f"{tmp}._row"


def direct_view(src: Source) -> bool:
    """Whether the raw rows of ``src`` can be a view over the file itself (:func:`load_raw` with
    ``direct=True``): a CSV that DuckDB reads, not GB18030 (streamed once through a FIFO)."""
    return src.kind == "csv" and src.encoding != "gb18030"


def load_raw(con: duckdb.DuckDBPyConnection, src: Source, positions: dict[str, int], tmp: str,
             lead: frozenset[str] = frozenset(), direct: bool = False) -> str:
    """Create temp table (or view) ``tmp`` with the mapped columns only (``v_<canonical>``: trimmed
    VARCHAR, empty → NULL), in file order, and return the SQL expression for the file row number
    over it. CSV files read by DuckDB become table ``<tmp>_raw`` (the text as read) and view ``tmp``
    (trimmed, with the raw table's rowid as ``_rid``); drop them with :func:`drop_raw`.
    XLSX sources add ``_problem`` (text naming formula cells without a saved value, else NULL).
    ``lead``: columns the CSV view cleans at the leading end only (:func:`lead_clean_sql`).
    ``direct`` (a CSV with :func:`direct_view`): ``tmp`` is a view over the file itself — each query
    reading it reads the file, nothing is stored — with ``_row`` from ``row_number() OVER ()`` (the
    one clause DuckDB guarantees to number rows in file order); its first reader turns CSV errors into
    :func:`csv_read_error`. A file the Python reader must read is loaded into a table as without it."""
    if src.kind == "csv":
        sel = ", ".join(f"{clean_sql('c' + str(pos))} AS {ident('v_' + name)}" for name, pos in positions.items())
        sql = f"SELECT {sel} FROM {_read_csv_sql(src)}"
        # A failing statement would abort the ingest's transaction, so a file that may trouble the
        # strict parser (quotes, mixed line ends) is test-read on a throwaway connection first.
        risk = risky(src.path, src.skip_lines)
        src.plain = risk is False
        if risk == "python":
            return _load_csv_python(con, src, positions, tmp)
        if risk:
            probe = duckdb.connect()
            try:
                err, retry = _read_csv(probe, src, f"SELECT count(*) FROM ({sql})")
            finally:
                probe.close()
            if retry:
                return _load_csv_python(con, src, positions, tmp)
            if err is not None:
                raise err
        if direct and direct_view(src):
            con.execute(f"CREATE TEMP VIEW {tmp} AS {direct_view_sql(src, positions, lead)}")
            return f"{tmp}._row"
        # The file's text is stored as read (file order: rowid = row); blanks are trimmed by a view
        # over it, evaluated where the values are used — cheaper than storing a cleaned copy.
        raw_sel = ", ".join(f"c{pos} AS {ident('r_' + name)}" for name, pos in positions.items())
        raw_sql = sql.replace(f"SELECT {sel} FROM", f"SELECT {raw_sel} FROM", 1)
        err, _ = _read_csv(con, src, f"CREATE TEMP TABLE {tmp}_raw AS {raw_sql}")
        if err is not None:
            raise err
        view = ", ".join(["rowid AS _rid"] + [f"{_cleaner(name, lead)(ident('r_' + name))} AS {ident('v_' + name)}"
                                              for name in positions])
        con.execute(f"CREATE TEMP VIEW {tmp} AS SELECT {view} FROM {tmp}_raw")
        return f"{tmp}._rid - {_rowid_base(con, tmp + '_raw')} + {src.skip_lines + 1}"
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
    rows = src._xlsx_rows or []
    problems = []
    for rownum, _cells, formulas in rows:
        bad = [f"{_col_letter(pos)}{rownum}" for pos in sorted(formulas) if pos in positions.values()]
        problems.append(f"formula cell {', '.join(bad)} has no saved value (open the file in Excel/WPS, "
                        f"save it, and ingest again)" if bad else None)
    _load_arrow(con, tmp, [r for r, _, _ in rows], positions, [c for _, c, _ in rows], {"_problem": problems})
    return f"{tmp}._row"


def _read_csv_sql(src: Source) -> str:
    """DuckDB's strict ``read_csv`` of ``src`` (path left as ``{path}``): every field VARCHAR,
    named ``c0``, ``c1``, …, the title and header lines skipped."""
    cols = "{" + ", ".join(f"{q('c' + str(i))}: 'VARCHAR'" for i in range(len(src.headers))) + "}"
    return (f"read_csv({{path}}, header=false, skip={src.skip_lines}, auto_detect=false, columns={cols}, "
            f"delim={q(src.delimiter)}, quote='\"', escape='\"', strict_mode=true)")


def direct_view_sql(src: Source, positions: dict[str, int], lead: frozenset[str] = frozenset(),
                    numbered: bool = True) -> str:
    """The query of a direct view of a CSV (see :func:`load_raw`): the mapped columns cleaned, and
    with ``numbered`` the file row ``_row`` from ``row_number() OVER ()`` (a window: whatever reads
    it runs on one thread). Unnumbered, a parallel reader numbers rows otherwise (see
    :mod:`evalkit.ingest.stage`)."""
    view = ([f"row_number() OVER () + {src.skip_lines} AS _row"] if numbered else []) + [
        f"{_cleaner(name, lead)('c' + str(pos))} AS {ident('v_' + name)}" for name, pos in positions.items()]
    return f"SELECT {', '.join(view)} FROM {_read_csv_sql(src)}".replace("{path}", q(str(src.path)))


def _cleaner(name: str, lead: frozenset[str]):
    return lead_clean_sql if name in lead else clean_sql


def raw_lookup(row_expr: str, tmp: str, cols: list[str], lead: frozenset[str] = frozenset()) -> tuple[str, str, str]:
    """(FROM item, its row-number expression, select list of ``cols``) to join rows of ``tmp`` back
    by file row number. For a CSV view this reads the raw table and cleans only the joined rows
    (fully, or at the leading end for the columns in ``lead``, as the view does)."""
    if not row_expr.startswith(f"{tmp}._rid"):
        return tmp, row_expr, ", ".join(cols)
    sel = ", ".join(f"{_cleaner(c[2:], lead)(ident('r_' + c[2:]))} AS {ident(c)}" if c.startswith("v_") else c
                    for c in cols)
    return f"{tmp}_raw", row_expr.replace(f"{tmp}._rid", f"{tmp}_raw.rowid", 1), sel


def drop_raw(con, tmp: str) -> None:
    """Drop what :func:`load_raw` created for ``tmp`` (a view over ``<tmp>_raw``, or a table)."""
    kinds = dict(con.execute("SELECT table_name, 'table' FROM duckdb_tables() WHERE temporary AND table_name = ? "
                             "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE temporary "
                             "AND view_name = ?", [tmp, tmp]).fetchall())
    if kinds.get(tmp) == "view":
        con.execute(f"DROP VIEW {tmp}")
    elif kinds.get(tmp) == "table":
        con.execute(f"DROP TABLE {tmp}")
    con.execute(f"DROP TABLE IF EXISTS {tmp}_raw")


def csv_read_error(e: duckdb.Error, src: Source) -> IngestError:
    """The one-line :class:`IngestError` (with the row) for a CSV error raised by the first query
    reading a direct view of ``src`` (see :func:`load_raw`)."""
    return _csv_error(e, src) or IngestError(f"could not read CSV: {str(e).splitlines()[0]}", file=src.name)


def _read_csv(con, src: Source, sql: str) -> tuple[IngestError | None, bool]:
    """Run ``sql`` (with ``{path}``) over the CSV, streamed through a FIFO when it is GB18030.
    Returns (error, retry with the Python reader)."""
    stream = (Transcoder(src.path, src.encoding, src.tmpdir or tempfile.gettempdir())
              if src.encoding == "gb18030" else None)
    err: IngestError | None = None
    retry = False
    with (stream if stream is not None else _Plain(src.path)) as read_path:
        try:
            con.execute(sql.replace("{path}", q(str(read_path))))
        except duckdb.InvalidInputException as e:
            err = _csv_error(e, src)
            retry = err is None
        except duckdb.Error as e:
            err = IngestError(f"could not read CSV: {str(e).splitlines()[0]}", file=src.name)
    if stream is not None and stream.error is not None:
        return stream.error, False
    return err, retry


class _Plain:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        return None


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


TMP_PREFIX = "evalkit-ingest-"


def make_tmpdir() -> tempfile.TemporaryDirectory:
    """A private temp directory for this ingest (it holds only FIFOs); stale ones left by killed
    ingests (their process is gone) are removed first."""
    base = Path(tempfile.gettempdir())
    for d in base.glob(TMP_PREFIX + "*"):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", d.name)
        if m and d.is_dir() and not _alive(int(m.group(1))):
            import shutil

            shutil.rmtree(d, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
