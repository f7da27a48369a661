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
- the rows the duplicate steps then reject have no raw text in the stage; :func:`raw_text` reads
  their lines back by number (the file row is the line: :class:`evalkit.ingest.filehash.BackgroundFileScan`
  noted where every line ends while it hashed the file), parses them as DuckDB parsed the file and
  cleans them as the direct view does, into ``_ek_rawfix``, checking each one's key against the
  stage's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from evalkit.ingest.csvrows import parse_line
from evalkit.ingest.sampled import repeated, stored_hashes
from evalkit.ingest.sources import _cleaner
from evalkit.ingest.sql import frame_to_temp_table, ident
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


def raw_text(con, src, scan, srow: Callable[[str], str], dup_idx: int, raw_cols: list[str],
             positions: dict[str, int], lead: frozenset[str], keys: tuple[str, ...]) -> int:
    """Temp table ``_ek_rawfix(_row, _raw)``: the raw text (``raw_cols``, as the direct view gives them)
    of the stage rows rejected as duplicates (check ``dup_idx``) that hold none, read back from their
    lines by ``scan`` (:class:`evalkit.ingest.filehash.BackgroundFileScan`); ``srow``: the stage's file
    row; ``positions``: the file column of each mapped column. Each line's key (``keys``: the
    table's, ``v_`` columns) must be the stage's. Returns the rows read."""
    rows = [r[0] for r in con.execute(f"SELECT {srow('')} AS r FROM _ek_stage WHERE _chk = {dup_idx} "
                                      f"AND _raw IS NULL ORDER BY r").fetchall()]
    if not rows:
        con.execute("CREATE TEMP TABLE _ek_rawfix (_row BIGINT, _raw VARCHAR[])")
        return 0
    n = len(src.headers)
    recs = [parse_line(ln.decode("utf-8", errors="replace"), src.delimiter)
            for ln in scan.lines(rows)]
    if any(len(r) != n for r in recs):
        raise AssertionError(f"{src.name}: a line read back has not {n} fields; cannot take its raw text")
    names = [c[2:] for c in raw_cols]
    pos = {nm: positions[nm] for nm in names}
    frame = pd.DataFrame({"_row": pd.Series(rows, dtype="int64"),
                          **{f"c{p}": pd.Series([r[p] for r in recs], dtype=object) for p in pos.values()}})
    raw = "[" + ", ".join(_cleaner(nm, lead)(ident(f"c{pos[nm]}")) for nm in names) + "]"
    frame_to_temp_table(con, "_ek_rawfix", frame, f"_row, {raw} AS _raw")
    differ = " OR ".join(f"f._raw[{raw_cols.index('v_' + k) + 1}] IS DISTINCT FROM s.p_{k}" for k in keys)
    bad = con.execute(f"SELECT count(*) FROM _ek_rawfix f JOIN (SELECT *, {srow('')} AS _srow FROM _ek_stage "
                      f"WHERE _chk = {dup_idx}) s ON s._srow = f._row WHERE {differ}").fetchall()[0][0]
    if bad:
        raise AssertionError(f"{src.name}: {bad} lines read back hold another key than their stage rows")
    return len(rows)

