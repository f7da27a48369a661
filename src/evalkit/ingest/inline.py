"""Join-free lookups for the stage pass of an ingest, so that DuckDB fills the stage in parallel.

DuckDB keeps a table's insertion order (the file order the row numbers come from) by writing it in
batches from all threads — unless the pipeline holds a join: then one thread does the whole pass
(the parse-and-check pass over a 10 M-row CSV was single-threaded for this reason). So the small
value maps (station references, categories, reforms, codes, yes/no words; a few hundred rows) are
written into the SQL as constant lists indexed through an ENUM cast of the value (a hash lookup),
and the duplicate-key candidates become a bit array tested by the key's hash (a Bloom filter with
one hash: false positives only, which merely keep a few more rows' raw text for the exact check).
"""

from __future__ import annotations

import re

import numpy as np

from evalkit.ingest.sql import ident, q

MAX_INLINE = 20_000  # map rows above which a lookup stays a hash join (one thread, same result)
_JOIN = re.compile(r"LEFT JOIN (\w+)(?: (\w+))? ON (\w+)\.v = (.+)", re.S)


def _lit(x) -> str:
    if x is None:
        return "NULL"
    if isinstance(x, bool):
        return "true" if x else "false"
    return q(str(x))


def inline_maps(con, source: str, joins: list[str], with_rowid: bool = False) -> tuple[str, list[str]]:
    """(FROM item replacing ``source``, joins still needed) for the ``LEFT JOIN map alias ON
    alias.v = expr`` joins of :func:`evalkit.ingest.core._plan`: each map becomes a STRUCT column
    named like the alias (so ``alias.m`` reads its field), looked up by
    ``list[enum_code(TRY_CAST(expr AS ENUM(values))) + 1]`` — NULL for a value not in the map or
    NULL, as the LEFT JOIN gives. Maps with duplicate, NULL or too many values keep their join.
    ``with_rowid``: ``source`` is a table whose rowid the caller reads (kept as column ``rowid``)."""
    cols, kept = [], []
    for j in joins:
        m = _JOIN.fullmatch(j.strip())
        if not m or m.group(3) != (m.group(2) or m.group(1)):
            kept.append(j)
            continue
        table, alias, expr = m.group(1), m.group(2) or m.group(1), m.group(4)
        desc = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]
        rows = con.execute(f"SELECT * FROM {table}").fetchall()
        vi = [c for c, _ in desc].index("v")
        vals = [r[vi] for r in rows]
        if len(rows) > MAX_INLINE or None in vals or len(set(vals)) != len(vals):
            kept.append(j)
            continue
        fields = [(c, t) for c, t in desc if c != "v"]
        stype = "STRUCT(" + ", ".join(f"{ident(c)} {t}" for c, t in fields) + ")"
        if not rows:
            cols.append(f"CAST(NULL AS {stype}) AS {ident(alias)}")
            continue
        names = [c for c, _ in desc]
        structs = ", ".join("{" + ", ".join(f"{q(c)}: {_lit(r[names.index(c)])}" for c, _ in fields) + "}"
                            for r in rows)
        enum = "ENUM(" + ", ".join(q(v) for v in vals) + ")"
        cols.append(f"CAST([{structs}] AS {stype}[])[enum_code(TRY_CAST({expr} AS {enum})) + 1] AS {ident(alias)}")
    if not cols:
        return source, kept
    return f"(SELECT *, {'rowid AS rowid, ' if with_rowid else ''}{', '.join(cols)} FROM {source}) {source}", kept


def bloom(con, query: str, expr: str) -> tuple[str, str]:
    """(SQL condition, its parameter): whether ``expr`` (a UBIGINT hash) may be one of the values of
    ``query``'s column ``h`` — true for every one of them, and for about 1/16 of the others at most
    (16 bits per value, up to 2**26 bits)."""
    h = con.execute(query).fetchnumpy()["h"]
    h = np.asarray(h, dtype=np.uint64)
    n_bits = 1 << 16
    while n_bits < 16 * len(h) and n_bits < 1 << 26:
        n_bits <<= 1
    bits = np.full(n_bits, ord("0"), dtype=np.uint8)
    bits[(h % np.uint64(n_bits)).astype(np.int64)] = ord("1")
    return f"get_bit(CAST($1 AS BIT), CAST({expr} % {n_bits} AS INTEGER)) = 1", bits.tobytes().decode("ascii")


__all__ = ["MAX_INLINE", "bloom", "inline_maps"]
