"""CSV records read line by line: stray quotes, quoted fields spanning lines, blank lines.

DuckDB's reader is the fast path; :func:`risky` decides in one pass over the bytes which files it
may misread (see docs/ingest.md, "What happens to a file"), and :func:`records` is the Python
reader's record splitter for those: a stray quote never merges or drops rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from evalkit.ingest.errors import IngestError

CHUNK_BYTES = 1 << 23  # bytes scanned at a time by :func:`risky`


def fields_message(expected: int, found: int) -> str:
    """The error text for a row with the wrong number of fields."""
    return (f"expected {expected} fields, found {found} "
            f"({'truncated file or row' if found < expected else 'extra delimiter in row'})")


QUOTE_DETAIL = ("an odd number of double quotes in this line (a stray quote): the row is not read; "
                "correct the quote in the export and ingest it again with --replace")


def parse_line(line: str, delim: str) -> list[str]:
    """One physical line parsed on its own (an unclosed quote runs to the line's end)."""
    return next(csv.reader([line], delimiter=delim, quotechar='"', doublequote=True, strict=False), [])


def records(fh: Iterable[str], delim: str, n: int, skip: int = 0) -> Iterator[tuple[int, list, str | None]]:
    """``(file row, fields, quote problem or None)`` for each record of a CSV after its first ``skip``
    lines (title and header rows), blank lines skipped.

    A quoted field may span lines. But a record whose continuation line parses on its own as a
    complete record (``n`` fields) holds a stray quote that swallowed whole rows: each of its
    physical lines is then taken as its own record. A record (or line) with an odd number of
    double quotes is returned with a problem text (quarantined as ``unbalanced_quote``); a quote that
    never closes (a record spanning lines up to the end of the file, or a last line cut short
    inside a quote) is a truncated file (an error).
    """
    buf: list[str] = []
    it = iter(fh)
    ahead = next(it, None)  # one line of look-ahead: ``None`` once the record read is the last

    def lines():
        nonlocal ahead
        while ahead is not None:
            line, ahead = ahead, next(it, None)
            buf.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delim, quotechar='"', doublequote=True, strict=False)
    row = 0
    for rec in reader:
        span, start = buf[:], row + 1
        buf.clear()
        row += len(span)
        if len(span) > 1 and any(len(parse_line(ln, delim)) == n for ln in span[1:] if ln.strip()):
            parts = [(start + k, parse_line(ln, delim), ln) for k, ln in enumerate(span)]
        else:
            parts = [(start, rec, "".join(span))]
        for r, fields, text in parts:
            if r <= skip or not any(f.strip() for f in fields):
                continue  # title/header rows; a blank line
            odd = text.count('"') % 2 == 1
            if odd and len(parts) == 1 and ahead is None and (
                    len(span) > 1 or (len(fields) != n and not text.endswith(("\n", "\r")))):
                # the quote never closes: a field spanning lines up to the end of the file, or a
                # last line cut short inside a quote
                raise IngestError("unterminated quote (truncated file?)", file=None, row=r)
            if odd:
                yield r, (fields + [None] * n)[:n], QUOTE_DETAIL
            elif len(fields) != n:
                raise IngestError(fields_message(n, len(fields)), file=None, row=r)
            else:
                yield r, fields, None


# a line holding an odd number of double quotes (a quoted field spanning lines, or a stray quote),
# searched in the text reduced to its quotes and line feeds (C-speed translate, then a tiny regex)
_NOT_QUOTE_OR_LF = bytes(b for b in range(256) if b not in b'"\n')
_ODD_RUN = re.compile(rb'(?:^|\n)(?:"")*"(?=\n|$)')


def _odd_quote_line(data: bytes) -> bool:
    return b'"' in data and _ODD_RUN.search(data.translate(None, _NOT_QUOTE_OR_LF)) is not None


def risky(path: Path, skip_lines: int = 1) -> bool | str:
    """How to read a CSV, in one pass over its bytes: ``"python"`` if a blank line lies between rows
    (DuckDB skips it, which would shift row numbers) or a line holds an odd number of double quotes
    (a field spanning lines or a stray quote: DuckDB would silently merge rows a stray quote opens,
    so the Python reader, which checks each line, reads it); ``True`` if the file holds a quote or
    mixes line endings (test-read by DuckDB first); ``False`` when DuckDB reads it directly."""
    crlf = lf = cr = 0
    prev_cr = False
    quote = blank_pending = False
    blank = re.compile(rb"\n\r?\n")
    start = 0  # blank lines above the header (title rows) do not matter
    tail = b""  # the unfinished last line of the previous chunk
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            if start == 0 and lf == 0:
                for _ in range(skip_lines):
                    start = chunk.find(b"\n", start) + 1
                    if start == 0:
                        break
            if blank_pending and chunk.strip():
                return "python"
            m = blank.search(chunk, max(start - 1, 0))
            if m:
                if chunk[m.end():].strip():
                    return "python"
                blank_pending = True  # blank at the end of this chunk: interior if more text follows
            start = 0
            has_quote = b'"' in chunk
            quote = quote or has_quote
            if has_quote or b'"' in tail:
                data = tail + chunk if tail else chunk
                cut = data.rfind(b"\n") + 1
                if _odd_quote_line(data[:cut]):
                    return "python"
                tail = data[cut:]
            else:  # no quote to look at: only the unfinished last line is kept (no copy of the chunk)
                j = chunk.rfind(b"\n")
                tail = chunk[j + 1:] if j >= 0 else tail + chunk
            n_cr = chunk.count(b"\r") if b"\r" in chunk else 0  # memchr first: most files hold no \r
            crlf += (chunk.count(b"\r\n") if n_cr else 0) + (1 if prev_cr and chunk.startswith(b"\n") else 0)
            lf += chunk.count(b"\n")
            cr += n_cr
            prev_cr = chunk.endswith(b"\r")
    if _odd_quote_line(tail):
        return "python"
    return quote or cr > crlf or (crlf > 0 and lf > crlf)
