"""Duplicate keys of a large plain CSV found after the stage pass, their raw text read back by line.

Before the stage pass, the duplicate candidates (keys written twice, or already stored) are found
by a scan of the file's key column (:func:`evalkit.ingest.sampled.key_candidates`), so that the
pass can keep the raw text of those rows: a rejected row is quarantined with it. For a file whose
words come from a sample (:mod:`evalkit.ingest.sampled`) and which holds one record a line — no
quote, no blank line, one kind of line end (:func:`evalkit.ingest.csvrows.risky` is False) — that
scan is saved:

- the stage already holds every row's key: :func:`mark_candidates` hashes them there (the rows that
  passed every other check, the only ones that can be duplicates), sorts the hashes in numpy and
  marks the rows whose hash repeats or is stored (``_cand``, a scalar update: rowids stay);
- the stage keeps no raw text at all (building it costs the pass ~0.3 s at 10 M rows, however few
  rows hold it): :func:`raw_text` reads the rejected rows' lines back by number, and
  :func:`evalkit.ingest.sampled.settle_missed` those of the rows a sampled map missed (the file row
  is the line: :class:`evalkit.ingest.filehash.BackgroundFileScan` noted where every line ends while
  it hashed the file). DuckDB splits them at the delimiter as its reader did (no quote in the file)
  and cleans them as the direct view does (:func:`lines_table`); each rejected row's key is checked
  against the stage's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from evalkit.ingest.sampled import repeated, stored_hashes
from evalkit.ingest.sources import _cleaner
from evalkit.ingest.sql import ident, q
from evalkit.ingest.stage import cand_table


def mark_candidates(con, table: str, keys: tuple[str, ...], stored: bool) -> int:
    """Set ``_cand`` on the stage rows that passed every check and whose key hash (the stage's ``_h``)
    is repeated among them or held by ``table`` (``stored``: it holds rows); returns the number of
    candidate hashes."""
    h = np.sort(con.sql("SELECT _h FROM _ek_stage WHERE _chk IS NULL").fetchnumpy()["_h"])
    cand = np.union1d(repeated(h), stored_hashes(con, table, ", ".join(keys), h) if stored else h[:0])
    if len(cand):
        cand_table(con, cand)
        con.execute("UPDATE _ek_stage SET _cand = TRUE WHERE _chk IS NULL AND _h IN (SELECT h FROM _ek_cand)")
    return len(cand)


def raw_text(con, src, scan, srow: Callable[[str], str], raw_cols: list[str], positions: dict[str, int],
             lead: frozenset[str], keys: tuple[str, ...]) -> int:
    """Temp table ``_ek_rawfix(_row, _raw)``: the raw text (``raw_cols``, as the stage's ``_raw`` would
    hold it) of the rejected stage rows (``_chk`` set), read back from their lines (:func:`lines_table`);
    ``srow``: the stage's file row. Each line's key (``keys``: the table's, ``v_`` columns) must be the
    stage's (the key is stored as read). Returns the rows read."""
    rows = con.execute(f"SELECT {srow('')} AS r FROM _ek_stage WHERE _chk IS NOT NULL ORDER BY r").fetchnumpy()["r"]
    lines_table(con, src, scan, rows, "_ek_rawfix", raw_cols, positions, lead, as_list=True)
    differ = " OR ".join(f"f._raw[{raw_cols.index('v_' + k) + 1}] IS DISTINCT FROM s.p_{k}" for k in keys)
    bad = con.execute(f"SELECT count(*) FROM _ek_rawfix f JOIN (SELECT *, {srow('')} AS _srow FROM _ek_stage "
                      f"WHERE _chk IS NOT NULL) s ON s._srow = f._row WHERE {differ}").fetchall()[0][0]
    if bad:
        raise AssertionError(f"{src.name}: {bad} lines read back hold another key than their stage rows")
    return len(rows)


def lines_table(con, src, scan, rows, target: str, raw_cols: list[str], positions: dict[str, int],
                lead: frozenset[str], as_list: bool) -> None:
    """Temp table ``target``: ``_row`` (the file rows ``rows``, ascending) and their raw text of
    ``raw_cols`` (``v_`` names) cleaned as the direct view cleans them, as one list ``_raw`` (the
    stage's order) or as columns. The lines come from ``scan`` (:meth:`BackgroundFileScan.text`)
    and DuckDB splits them at the delimiter, as its reader split them: the file holds one record a
    line and no quote (``src.plain``), and every line has as many fields as the header (a strict read)."""
    if not src.plain:
        raise AssertionError(f"{src.name}: lines are read back only from a file of one record a line")
    n = len(src.headers)
    con.register("_ek_lines", pa.table({"_row": pa.array(np.asarray(rows, dtype=np.int64)), "_line": scan.text(rows)}))
    try:
        split = f"string_split(_line, {q(src.delimiter)})"
        odd = con.execute(f"SELECT count(*) FROM _ek_lines WHERE len({split}) <> {n}").fetchall()[0][0]
        if odd:
            raise AssertionError(f"{src.name}: {odd} lines read back have not {n} fields; cannot take their raw text")
        cells = [(_cleaner(c[2:], lead)(f"_f[{positions[c[2:]] + 1}]"), c) for c in raw_cols]
        sel = ("[" + ", ".join(x for x, _ in cells) + "] AS _raw" if as_list
               else ", ".join(f"{x} AS {ident(c)}" for x, c in cells))
        con.execute(f"CREATE TEMP TABLE {target} AS SELECT _row, {sel or 'NULL AS _none'} FROM "
                    f"(SELECT _row, {split} AS _f FROM _ek_lines) ORDER BY _row")
    finally:
        con.unregister("_ek_lines")
