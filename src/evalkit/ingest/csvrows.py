"""CSV records read line by line: stray quotes, quoted fields spanning lines, blank lines.

DuckDB's reader is the fast path; :func:`risky` decides in one pass over the bytes which files it
may misread (see docs/ingest.md, "What happens to a file"), and :func:`records` is the Python
reader's record splitter for those: a stray quote never merges or drops rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from evalkit.ingest.errors import IngestError

CHUNK_BYTES = 1 << 19  # bytes scanned at a time by :func:`risky` (512 KiB: its buffer stays in cache)


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


# a line holding an odd number of double quotes (a quoted field spanning lines, or a stray quote) is
# looked for in the text reduced to its quotes and line feeds (C-speed translate): there each line is
# a run of quotes, and removing the pairs ``""`` (left to right, as bytes.replace does) leaves one
# quote of each odd run and nothing of the even ones
_NOT_QUOTE_OR_LF = bytes(b for b in range(256) if b not in b'"\n')


def _odd_run(reduced: bytes | bytearray) -> bool:
    """Whether a line of ``reduced`` (text holding only ``"`` and ``\\n``) has an odd number of quotes."""
    return b'"' in reduced.replace(b'""', b"")


# two bytes read as one native uint16, for the numpy pre-check of a blank line in a chunk
_LF_LF = int(np.frombuffer(b"\n\n", np.uint16)[0])
_LF_CR = int(np.frombuffer(b"\n\r", np.uint16)[0])
_CR_LF = int(np.frombuffer(b"\r\n", np.uint16)[0])


def _pairs(a: np.ndarray, pair: int, out: np.ndarray, count: bool = False) -> int:
    """How many neighbouring bytes of ``a`` (uint8) read as ``pair`` (one uint16), at an even or an
    odd offset; with ``count`` False only whether any do (``out``: bool scratch, half ``a``'s length)."""
    n = a.shape[0]
    even = a[:n & ~1].view(np.uint16)
    odd = a[1:1 + ((n - 1) & ~1)].view(np.uint16)
    found = 0
    for half in (even, odd):
        hits = np.equal(half, pair, out=out[:half.shape[0]])
        found += int(np.count_nonzero(hits)) if count else int(hits.any())
        if found and not count:
            break
    return found


def _bytes(a: np.ndarray, byte: int, out: np.ndarray) -> int:
    """How many bytes of ``a`` (uint8) equal ``byte`` (``out``: bool scratch, ``a``'s length)."""
    return int(np.count_nonzero(np.equal(a, byte, out=out[:a.shape[0]])))


def _first_blank(b: bytes | bytearray, lo: int, hi: int) -> tuple[int, int] | None:
    """Start and end (indices into ``b``) of the first ``\\n\\r?\\n`` in ``b[lo:hi]``, or None."""
    i, j = b.find(b"\n\n", lo, hi), b.find(b"\n\r\n", lo, hi)
    if i < 0 and j < 0:
        return None
    return (i, i + 2) if j < 0 or 0 <= i < j else (j, j + 3)


def _has_text(b: bytearray, lo: int, hi: int) -> bool:
    return bool(b[lo:hi].strip())


class _BlankScan:
    """A blank line (``\\n\\n`` or ``\\n\\r\\n``) with text somewhere after it, in the stretches of a
    file fed in order. A blank line may lie across stretches: the last two bytes fed are kept."""

    def __init__(self, out: np.ndarray) -> None:
        self.edge = b""  # the last (up to) two bytes fed
        self.seen = False  # a blank line was fed: any text from here on decides
        self.out = out  # scratch for :func:`_pairs`

    def feed(self, buf: bytearray, arr: np.ndarray, lo: int, hi: int, has_cr: bool) -> bool:
        """Feed ``buf[lo:hi]`` (``arr``: ``buf`` as uint8; ``has_cr``: False if it holds no ``\\r``);
        True once a blank line with text after it has been fed."""
        if self.seen:
            return _has_text(buf, lo, hi)
        found = None
        if self.edge:  # a blank line starting in the bytes fed before
            w = self.edge + bytes(buf[lo:lo + 2])
            m = _first_blank(w, 0, len(w))
            if m is not None and m[0] < len(self.edge):
                found = lo + max(m[1] - len(self.edge), 0)
        # numpy pre-check first (far faster than bytes.find on a 2-byte needle): every ``\n\r?\n``
        # holds the pair ``\n\n`` or ``\n\r``
        if found is None and hi - lo >= 2 and (_pairs(arr[lo:hi], _LF_LF, self.out) or (
                has_cr and _pairs(arr[lo:hi], _LF_CR, self.out))):
            m = _first_blank(buf, lo, hi)
            found = None if m is None else m[1]
        if found is not None:
            self.seen = True
            return _has_text(buf, found, hi)
        self.edge = bytes(buf[hi - 2:hi]) if hi - lo >= 2 else (self.edge + bytes(buf[lo:hi]))[-2:]
        return False


def risky(path: Path, skip_lines: int = 1) -> bool | str:
    """How to read a CSV, in one pass over its bytes: ``"python"`` if a blank line lies between rows
    (DuckDB skips it, which would shift row numbers) or a line holds an odd number of double quotes
    (a field spanning lines or a stray quote: DuckDB would silently merge rows a stray quote opens,
    so the Python reader, which checks each line, reads it); ``True`` if the file holds a quote or
    mixes line endings (test-read by DuckDB first); ``False`` when DuckDB reads it directly.

    Exactly: ``"python"`` if ``\\n\\r?\\n`` occurs at or after the ``\\n`` ending line
    ``skip_lines`` (anywhere when the file has fewer lines) with a non-whitespace byte after it, or
    a line (split at ``\\n``) holds an odd number of ``"``; else True if the file holds a ``"``, a
    ``\\r`` not followed by ``\\n``, or both a ``\\r\\n`` and a ``\\n`` without ``\\r``; else False.
    The answer does not depend on :data:`CHUNK_BYTES` (the bytes read at a time into one buffer)."""
    size = max(CHUNK_BYTES, 1)
    buf = bytearray(size)
    arr = np.frombuffer(buf, np.uint8)
    out = np.empty(size, bool)  # scratch for the numpy comparisons
    blank = _BlankScan(out)  # from the end of the header line on
    head = _BlankScan(out)  # from the file's start, used only if the file has < skip_lines lines
    head_blank = False
    need = skip_lines  # line ends still to pass before ``blank`` starts
    crlf = cr = 0
    bare_lf = prev_cr = quote = False
    qtail = b""  # the quotes of the unfinished last line so far (text reduced to quotes and \n)
    with open(path, "rb", buffering=0) as fh:
        while k := fh.readinto(buf):
            has_cr = buf.find(b"\r", 0, k) >= 0  # memchr: most files hold no \r
            lo = 0
            if need > 0:
                j = -1
                while need > 0 and (j := buf.find(b"\n", j + 1, k)) >= 0:
                    need -= 1
                if need > 0:
                    head_blank = head_blank or head.feed(buf, arr, 0, k, has_cr)
                lo = j  # the \n ending line ``skip_lines``: a blank line may start there
            if need == 0 and blank.feed(buf, arr, lo, k, has_cr):
                return "python"
            has_quote = buf.find(b'"', 0, k) >= 0
            quote = quote or has_quote
            if has_quote or qtail:
                t = qtail + (buf if k == size else buf[:k]).translate(None, _NOT_QUOTE_OR_LF)
                cut = t.rfind(b"\n") + 1
                if _odd_run(t[:cut]):
                    return "python"
                qtail = bytes(t[cut:])
            if has_cr:  # count both; a \n without \r is a \n the \r\n pairs do not account for
                n_crlf = _pairs(arr[:k], _CR_LF, out, count=True) + (1 if prev_cr and buf[0] == 10 else 0)
                cr += _bytes(arr[:k], 13, out)
                crlf += n_crlf
                bare_lf = bare_lf or _bytes(arr[:k], 10, out) > n_crlf
            else:  # no \r: any \n is bare but one right after a \r ending the previous chunk
                crlf += 1 if prev_cr and buf[0] == 10 else 0
                bare_lf = bare_lf or buf.find(b"\n", 1 if prev_cr else 0, k) >= 0
            prev_cr = buf[k - 1] == 13
    if (need > 0 and head_blank) or len(qtail) % 2:
        return "python"
    return quote or cr > crlf or (crlf > 0 and bare_lf)
