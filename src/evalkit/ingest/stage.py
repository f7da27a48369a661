"""The parse-and-check pass of a CSV read straight from the file (a *direct view*, see
:func:`evalkit.ingest.sources.load_raw`) into the stage table ``_ek_stage``.

Rows must be numbered as in the file. ``row_number() OVER ()`` does that, but a window makes the
whole pass run on one thread, and the hash joins to the value maps stop DuckDB from writing the
rows in file order. So when it can, the pass is built without either:

- each value map (a small table ``(v, m, …)`` of a column's distinct values) becomes a look-up by
  ENUM cast — ``[m₁, m₂, …][enum_code(TRY_CAST(v AS ENUM(v₁, v₂, …))) + 1]``, NULL for a value not
  in the map, as the LEFT JOIN gives; a value mapped to itself (a station code) needs no list;
- the candidates for the duplicate check (key hashes) are tested in a bitmap of the hashes (a
  superset: a few other rows keep their raw text too; the duplicate steps compare exact keys);

and DuckDB runs it in parallel as a *batch* insert, which writes the rows in file order: the
stage's rowid then gives the file row. The plan is checked first (``EXPLAIN``): anything but a
batch insert (one thread, ``preserve_insertion_order`` off, a large map whose lists would be
copied for every 2,048-row chunk) takes the numbered serial pass instead — order is never
assumed. ``EVALKIT_INGEST_PARALLEL=0`` always takes the serial pass.
"""

from __future__ import annotations

import os
import re

import duckdb
import numpy as np
import pandas as pd

from evalkit.ingest import sql as S
from evalkit.ingest.sources import _rowid_base, csv_read_error, direct_view_sql

CASE_MAX = 16  # a map of at most this many values is a CASE (cheaper than an ENUM cast for a few values)
LIST_MAX = 4096  # list entries of all look-ups together (a list constant is rebuilt for every chunk)
ENUM_MAX = 50_000  # labels of one ENUM type (its binding grows with them, and happens twice: EXPLAIN and run)
BITMAP_BITS = (1 << 12, 1 << 21)  # bitmap size bounds (also rebuilt for every chunk)
# more duplicate candidates than this: the serial pass (its exact IN list). The bitmap then has ≥ 64
# bits a candidate, so it passes ≤ 1 - e^(-1/64) ≈ 1.6 % of the other rows (at 8 bits: 12 %)
CAND_MAX = BITMAP_BITS[1] // 64
_JOIN_RE = re.compile(r"LEFT JOIN (\w+)(?: (\w+))? ON (\w+)\.v = (.+)")


def _enum(labels: list[str]) -> str:
    return "ENUM(" + ", ".join(S.q(v) for v in labels) + ")"


def _lit(x, sql_type: str) -> str:
    return S.q(x) if sql_type == "VARCHAR" else ("TRUE" if x else "FALSE")


def _list_lookup(vv: str, pairs: list[tuple[str, object]], sql_type: str) -> str:
    """``out`` for ``vv`` from ``pairs`` (label, out): NULL for any other value."""
    if not pairs:
        return f"CAST(NULL AS {sql_type})"
    lst = "[" + ", ".join(_lit(o, sql_type) for _, o in pairs) + "]"
    return f"CAST({lst}[enum_code(TRY_CAST({vv} AS {_enum([v for v, _ in pairs])})) + 1] AS {sql_type})"


def map_join(join: str) -> tuple[str, str, str] | None:
    """(table, alias, value expression) of a LEFT JOIN to a value map (``LEFT JOIN t [alias] ON alias.v
    = vv``), None for any other join."""
    m = _JOIN_RE.fullmatch(join)
    if m is None or m.group(3) != (m.group(2) or m.group(1)):
        return None
    return m.group(1), m.group(2) or m.group(1), m.group(4)


def map_lookups(con, joins: list[str]) -> dict[str, str] | None:
    """``{"alias.column": expression}`` replacing each LEFT JOIN to a value map by ENUM look-ups
    of the same values (NULL where the join finds no row or the map holds NULL); None when a join
    is not a value map or the look-ups would be too large (see :data:`LIST_MAX`, :data:`ENUM_MAX`)."""
    subs: dict[str, str] = {}
    entries = 0
    for join in joins:
        parts = map_join(join)
        if parts is None:
            return None
        table, alias, vv = parts
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        if types.pop("v", None) != "VARCHAR" or any(t not in ("VARCHAR", "BOOLEAN") for t in types.values()):
            return None
        frame = con.execute(f"SELECT * FROM {table}").df()
        if len(frame) > ENUM_MAX or frame["v"].isna().any() or frame["v"].duplicated().any():
            return None
        # the value itself where the map holds it, else NULL (as the join's v): what a sampled map
        # misses (see evalkit.ingest.sampled.missed_sql)
        labels = frame["v"].tolist()
        subs[f"{alias}.v"] = ("CAST(NULL AS VARCHAR)" if not labels else
                              f"CASE WHEN {vv} IN ({', '.join(S.q(v) for v in labels)}) THEN {vv} END"
                              if len(labels) <= CASE_MAX else
                              f"CASE WHEN TRY_CAST({vv} AS {_enum(labels)}) IS NOT NULL THEN {vv} END")
        for col, sql_type in types.items():
            rows = [(v, o) for v, o in zip(frame["v"], frame[col], strict=True) if not pd.isna(o)]
            same = [v for v, o in rows if sql_type == "VARCHAR" and o == v]  # mapped to itself
            rest = [(v, o) for v, o in rows if not (sql_type == "VARCHAR" and o == v)]
            if len(rows) <= CASE_MAX:
                subs[f"{alias}.{col}"] = (f"CAST(CASE {vv} " + " ".join(
                    f"WHEN {S.q(v)} THEN {_lit(o, sql_type)}" for v, o in rows) + f" END AS {sql_type})"
                    if rows else f"CAST(NULL AS {sql_type})")
                continue
            entries += len(rest)
            expr = _list_lookup(vv, rest, sql_type)
            if same:
                expr = (f"CASE WHEN TRY_CAST({vv} AS {_enum(same)}) IS NOT NULL THEN {vv} "
                        + (f"ELSE {expr} END" if rest else "END"))
            subs[f"{alias}.{col}"] = expr
    return subs if entries <= LIST_MAX else None


def substitute(expr: str, subs: dict[str, str]) -> str:
    """``expr`` with each ``alias.column`` of ``subs`` replaced by its look-up."""
    if not subs:
        return expr
    pat = re.compile(r"(?<![\w.\"'])(" + "|".join(map(re.escape, sorted(subs, key=len, reverse=True))) + r")(?!\w)")
    return pat.sub(lambda m: f"({subs[m.group(1)]})", expr)


def bitmap_sql(hashes: np.ndarray, keycols: str) -> str | None:
    """A test that is TRUE for every row whose ``hash(keycols)`` is in ``hashes`` (and for a few
    others: one bit per hash modulo a power of two); None when there are too many hashes."""
    if len(hashes) > CAND_MAX:
        return None
    if not len(hashes):
        return "FALSE"  # no candidate (or they are found after the pass: evalkit.ingest.late_dups)
    size = int(min(max(1 << int(64 * max(len(hashes), 1) - 1).bit_length(), BITMAP_BITS[0]), BITMAP_BITS[1]))
    bits = np.full(size, ord("0"), dtype=np.uint8)
    bits[(np.asarray(hashes, dtype=np.uint64) % np.uint64(size)).astype(np.int64)] = ord("1")
    return f"get_bit('{bits.tobytes().decode()}'::BIT, CAST(hash({keycols}) % {size} AS INTEGER)) = 1"


def is_batch_insert(con, sql: str) -> bool:
    """Whether DuckDB plans ``sql`` (a CREATE TABLE … AS) as a batch insert, which writes the rows
    in the order its source produces them."""
    plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN " + sql).fetchall())
    return "BATCH_CREATE_TABLE_AS" in plan.upper().replace(" ", "_")


def join_alias_left(sql: str, joins: list[str]) -> bool:
    """Whether ``sql`` still names a column of a join in ``joins`` (``ms.m``, ``_ek_map_w_x.known``):
    a check condition or kept column the look-ups did not replace (the pass would need the join)."""
    aliases = [m.group(2) or m.group(1) for m in map(_JOIN_RE.fullmatch, joins) if m is not None]  # any LEFT JOIN
    return bool(aliases) and re.search(r"(?<![\w.])(" + "|".join(map(re.escape, aliases)) + r")\.", sql) is not None


def rowids_kept(con, src, off: int | None) -> None:
    """Assert that ``_ek_stage``'s rowids are still those the parallel pass wrote (``off``, see
    :func:`direct_stage`; still contiguous from the same first rowid), as ``rowid - off`` is the file
    row; after the UPDATEs of the duplicate steps (DuckDB updates in place; this checks it)."""
    if off is not None and _rowid_base(con, "_ek_stage") - src.skip_lines - 1 != off:
        raise AssertionError(f"{src.name}: the stage's rowids changed after its pass; cannot number rows")


def direct_stage(con, src, hm, lead: frozenset[str], parsed: dict[str, str], joins: list[str], chk_case: str,
                 stage_cols: list[str], raw_list: str | None, keycols: str, cand: np.ndarray, out: str | None = None) -> int | None:
    """:func:`_direct_stage`, a CSV error of the file (DuckDB reads it here) given as the one-line
    error naming the file and row (as the first scan's, see :func:`evalkit.ingest.sources.csv_read_error`)."""
    try:
        return _direct_stage(con, src, hm, lead, parsed, joins, chk_case, stage_cols, raw_list, keycols, cand, out)
    except duckdb.InvalidInputException as e:
        raise csv_read_error(e, src) from None


_BODY = ("SELECT {cols}, _chk, _cand{out_col}{raw_col} "
         "FROM (SELECT *, {chk} AS _chk, {cand} AS _cand FROM (SELECT {sel}{out_sel} FROM _ek_v {joins}) p) c")


def _body(cols: str, raw: str | None, chk: str, cand: str, sel: str, joins: str, out: str | None) -> str:
    """The stage query: ``out`` (a condition over the joins, see
    :func:`evalkit.ingest.sampled.missed_sql`) adds the column ``_out`` and keeps those rows' raw text;
    ``raw`` None: no raw text (``_raw``) at all (read back from the lines, see :mod:`evalkit.ingest.late_dups`)."""
    raw_col = "" if raw is None else \
        f", CASE WHEN _chk IS NOT NULL OR _cand{' OR _out' if out else ''} THEN {raw} END AS _raw"
    return _BODY.format(cols=cols, raw_col=raw_col, chk=chk, cand=cand, sel=sel, joins=joins,
                        out_col=", _out" if out else "",
                        out_sel=f", COALESCE({out}, FALSE) AS _out" if out else "")


def _direct_stage(con, src, hm, lead: frozenset[str], parsed: dict[str, str], joins: list[str], chk_case: str,
                  stage_cols: list[str], raw_list: str | None, keycols: str, cand: np.ndarray, out: str | None) -> int | None:
    """Create ``_ek_stage`` from the direct view ``_ek_v``: the columns ``stage_cols`` (their
    parsed values as ``p_<name>`` from ``parsed``), ``_chk`` (first failing check), ``_cand``
    (duplicate candidate: key hash in ``cand``), with ``out`` ``_out`` (a word value its map misses)
    and ``_raw`` (``raw_list``, on rejected, candidate and ``_out`` rows only; none when None). Returns None when the
    stage has the file row number as column ``_row`` (the serial pass), else the offset ``off`` that
    gives it as ``rowid - off`` (the parallel pass)."""
    # EVALKIT_INGEST_PARALLEL=0: always the serial pass (it costs less CPU; the parallel one less wall
    # time when a core is free)
    subs = map_lookups(con, joins) if os.environ.get("EVALKIT_INGEST_PARALLEL", "1") != "0" else None
    bitmap = bitmap_sql(cand, keycols) if subs is not None else None
    if bitmap is not None:
        con.execute(f"CREATE OR REPLACE TEMP VIEW _ek_v AS {direct_view_sql(src, hm.positions, lead, numbered=False)}")
        p_cols = ", ".join(f"{substitute(e, subs)} AS p_{n}" for n, e in parsed.items())
        sql = "CREATE TEMP TABLE _ek_stage AS " + _body(
            ", ".join(c for c in stage_cols if c != "_row"), raw_list, chk_case, bitmap,
            f"_ek_v.*, {p_cols}", "", substitute(out, subs) if out else None)
        # the check conditions and kept columns go in unchanged: one naming a join column needs the join
        if not join_alias_left(sql, joins) and is_batch_insert(con, sql):
            con.execute(sql)
            return _rowid_base(con, "_ek_stage") - src.skip_lines - 1
        con.execute(f"CREATE OR REPLACE TEMP VIEW _ek_v AS {direct_view_sql(src, hm.positions, lead)}")
    serial_stage(con, "_ek_stage", parsed, joins, chk_case, stage_cols, raw_list, keycols, cand, out)
    return None


def cand_table(con, hashes: np.ndarray) -> None:
    """Temp table ``_ek_cand(h UBIGINT)``: the duplicate candidates' key hashes (replacing an earlier one)."""
    con.execute("DROP TABLE IF EXISTS _ek_cand")
    S.frame_to_temp_table(con, "_ek_cand", pd.DataFrame({"h": np.asarray(hashes, dtype=np.uint64)}),
                          "CAST(h AS UBIGINT) AS h")


def serial_stage(con, target: str, parsed: dict[str, str], joins: list[str], chk_case: str, stage_cols: list[str],
                 raw_list: str | None, keycols: str, cand: np.ndarray, out: str | None = None) -> None:
    """The serial pass: temp table ``target`` from the numbered view ``_ek_v`` (column ``_row``) with
    the joins to the value maps, candidates from a table (see :func:`_direct_stage`)."""
    cand_table(con, cand)
    p_cols = ", ".join(f"{e} AS p_{n}" for n, e in parsed.items())
    # DuckDB cannot estimate the rows of a file; left to itself it may build a hash table of the
    # whole file to probe a small map with, so the joins keep their written sides here
    old_opt = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute("SET disabled_optimizers = " + S.q(",".join(filter(None, [old_opt, "build_side_probe_side"]))))
    try:
        con.execute(f"CREATE TEMP TABLE {target} AS " + _body(
            ", ".join(stage_cols), raw_list, chk_case, f"hash({keycols}) IN (SELECT h FROM _ek_cand)",
            f"_ek_v._row AS _row, _ek_v.* EXCLUDE (_row), {p_cols}", " ".join(joins), out))
    except duckdb.Error:
        try:  # the error aborted the transaction, which refuses the SET: raise the error, not that
            con.execute(f"SET disabled_optimizers = {S.q(old_opt)}")
        except duckdb.TransactionException:
            pass
        raise
    con.execute(f"SET disabled_optimizers = {S.q(old_opt)}")
