"""Word columns of an ingest: their distinct values in one scan of the raw table, and the small
join tables that map them (reforms, incident and dispute categories, station references)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from evalkit import registry
from evalkit.ingest import sampled, vocab
from evalkit.ingest import sql as S
from evalkit.ingest.errors import IngestError
from evalkit.ingest.headers import HeaderMap
from evalkit.ingest.sources import drop_raw, raw_lookup, trim_py
from evalkit.ingest.sql import ident
from evalkit.schema import REPORT_TABLES, Table

STATION_REF_TABLES = ("reforms", "incidents", "disputes", *REPORT_TABLES, "adjacency")


def _reform_map(v: str, user: dict[str, str] | None = None) -> str | None:
    key = vocab.fold(v)
    for k, val in (user or {}).items():
        if vocab.fold(k) == key:
            v = val
            break
    for cand in (v, key):
        try:
            return registry.reform_id(cand)
        except KeyError:
            continue
    return None


def _category_map(v: str, user: dict[str, str] | None = None) -> tuple[str, bool]:
    try:
        return vocab.incident_category(v, user)
    except ValueError as e:
        raise IngestError(str(e)) from None


def _dispute_category_map(v: str, user: dict[str, str] | None = None) -> tuple[str, bool]:
    try:
        return vocab.dispute_category(v, user)
    except ValueError as e:
        raise IngestError(str(e)) from None


def _text_keys(spec: Table, hm: HeaderMap, keys: tuple[str, ...]) -> bool:
    """Whether the table's key columns are all text stored as read (trimmed), not values mapped or
    parsed: their duplicates can then be found from the raw text (see :func:`evalkit.ingest.core._ingest_file`)."""
    t = spec.name
    mapped = {*WORD_COLUMNS, "neighbor_id", *(("station_id",) if t in STATION_REF_TABLES else ()),
              *(("month",) if t in REPORT_TABLES else ())}
    return all(k in hm.positions and k not in mapped and spec.column(k).sql_type == "VARCHAR" for k in keys)


WORD_COLUMNS = ("reform", "category", "area_type", "handled_by", "resolved")


def _lead_cols(spec: Table, hm: HeaderMap, keys: tuple[str, ...]) -> frozenset[str]:
    """Columns the raw CSV view may clean at the leading end only (see
    :func:`evalkit.ingest.sources.lead_clean_sql`; the trailing test is the costly half): the
    word columns mapped through a join table of their distinct values (trimmed there) and the
    timestamps (their cast ignores trailing blanks; the slow path trims in full). Never a key,
    the station reference or text stored as read."""
    skip = {*keys[:1], "station_id", "neighbor_id"}
    return frozenset(c.name for c in spec.columns if c.name in hm.positions and c.name not in skip and (
        c.name in WORD_COLUMNS or c.sql_type in ("BOOLEAN", "TIMESTAMP")))


WORDS = "_ek_words"  # the distinct values of the raw table's word columns (one pass), see _word_values


def _words_source(con, column: str) -> str:
    """The table holding the distinct values of ``column``: ``_ek_words`` for the word columns of
    the file; for a constant (a default given with --set) a one-row table (the raw rows may be a
    view over the file, not to be read for a constant)."""
    return WORDS if column in {r[0] for r in con.execute(f"DESCRIBE {WORDS}").fetchall()} else "(SELECT 1) _one"


def _word_values(con, spec: Table, hm: HeaderMap, lead: frozenset[str] = frozenset(),
                 key_cols: tuple[str, ...] = (), src=None, late_ok: bool = False) -> tuple[np.ndarray | None, bool, bool]:
    """``_ek_words``: the distinct values of every column mapped through a small join table
    (station references, reforms, categories, codes, yes/no words), in one scan of the raw rows;
    cleaned as the raw view cleans them (``lead``: at the leading end only).

    ``key_cols`` (text keys, as stored; the raw rows are then a direct view of the file): returns
    the candidates for the duplicate check, whose raw text the stage then keeps — the hashes
    (sorted, unique) of the keys written on more than one row of the file or already in the table
    ``spec`` names. Into an empty table: found in the same scan, as one more grouping set (the key
    hash) of which only the repeated hashes are kept (:data:`KEY_HASH`); else by a scan of the key
    column (:func:`evalkit.ingest.sampled.key_candidates`). Else None.

    With ``src`` (the file of the direct view) large enough (:func:`evalkit.ingest.sampled.usable`),
    the words come from a sample of the file and the candidates from a scan of the key column; the
    second value returned is then True (the stage must mark the rows the sample missed) — unless a
    word column is too varied for a sample (:func:`evalkit.ingest.sampled.sample_words`). With
    ``late_ok`` (the file's lines can be read back) and a file of one record a line (``src.plain``),
    the candidates are left to after the stage (:mod:`evalkit.ingest.late_dups`): none are returned
    and the third value is True."""
    t = spec.name
    cols = [f"v_{c.name}" for c in spec.columns if c.name in hm.positions and (
        (c.name in ("station_id", "neighbor_id") and t in STATION_REF_TABLES) or c.sql_type == "BOOLEAN"
        or c.name in WORD_COLUMNS)]
    if not cols and not key_cols:
        con.execute(f"CREATE TEMP TABLE {WORDS} AS SELECT NULL AS _none")
        return None, False, False
    # a table holding rows: the file's key hashes are intersected with its hashes (stored_hashes:
    # the file's side is the small one, built into the hash table)
    stored = bool(key_cols) and bool(con.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchall()[0][0])
    if cols and src is not None and sampled.usable(src, key_cols) and \
            sampled.sample_words(con, sampled.sample_rows(src), hm.positions, cols, lead, WORDS):
        if late_ok and src.plain:  # the candidates are found after the stage (late_dups)
            return np.empty(0, dtype=np.uint64), True, True
        return sampled.key_candidates(con, t, key_cols, src, stored), True, False
    # (else, and for a word column too varied for a sample: the whole file's words)
    if stored:
        _words_scan(con, cols, lead, ())
        return sampled.key_candidates(con, t, key_cols, src, stored), False, False
    _words_scan(con, cols, lead, key_cols)
    if not key_cols:
        return None, False, False
    return _scanned(con), False, False


def _scanned(con) -> np.ndarray:
    """The repeated key hashes the words scan kept (:data:`KEY_HASH`), sorted."""
    return np.sort(con.execute(f"SELECT {KEY_HASH} FROM {WORDS} WHERE {KEY_HASH} IS NOT NULL")
                   .fetchnumpy()[KEY_HASH]).astype(np.uint64)


def _words_scan(con, cols: list[str], lead: frozenset[str], key_cols: tuple[str, ...]) -> None:
    """``_ek_words`` from one scan of the raw rows ``_ek_v``: the distinct values of ``cols`` and,
    with ``key_cols``, the key hashes written on more than one row (column :data:`KEY_HASH`)."""
    # a CSV read by DuckDB: group its text as read, and trim only the distinct values
    csv_view = "_rid" in {r[0] for r in con.execute("DESCRIBE _ek_v").fetchall()}
    assert not (csv_view and key_cols), "key hashes are read from a direct view of the file only"
    src, sel = raw_lookup("_ek_v._rid" if csv_view else "", "_ek_v", cols, lead)[::2]
    raw = [ident("r_" + c[2:]) if csv_view else c for c in cols]
    sets = [f"({c})" for c in raw]
    inner, outer, having = list(raw), [sel] if cols else [], ""
    if key_cols:
        h = f"hash({', '.join('v_' + k for k in key_cols)})"
        sets.append(f"({h})")
        inner.append(f"{h} AS {KEY_HASH}")
        outer.append(KEY_HASH)
        # the key-hash set keeps the hashes seen twice; the word sets are kept whole (grouping() = 1)
        having = f" HAVING grouping({h}) = 1 OR count(*) > 1"
    con.execute(f"CREATE TEMP TABLE {WORDS} AS SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} "
                f"FROM {src} GROUP BY GROUPING SETS ({', '.join(sets)}){having}) {src}")


KEY_HASH = "_ek_key_hash"  # the column of _ek_words holding the duplicate candidates (see _word_values)


def _make_map(con, name: str, column: str, func) -> str:
    """Temp table ``name(v, m, known)`` for the distinct values of ``column`` in the raw table; ``func``
    sees each value trimmed (a value read with trailing blanks maps as its trimmed form)."""
    vals = [r[0] for r in con.execute(
        f"SELECT DISTINCT {column} FROM {_words_source(con, column)} WHERE {column} IS NOT NULL").fetchall()]
    out_v, out_m, out_k = [], [], []
    for v in vals:
        res = func(trim_py(v))
        if isinstance(res, tuple):
            m, known = res
        else:
            m, known = res, res is not None
        out_v.append(v)
        out_m.append(m)
        out_k.append(bool(known))
    frame = pd.DataFrame({"v": pd.Series(out_v, dtype=object), "m": pd.Series(out_m, dtype=object),
                          "known": pd.Series(out_k, dtype=bool)})
    S.frame_to_temp_table(con, name, frame, "CAST(v AS VARCHAR) AS v, CAST(m AS VARCHAR) AS m, known")
    return name


def _word_join(con, joins: list[str], col: str, vv: str, look) -> str:
    """Map a column's distinct values through ``look`` (a small join table); returns the SQL of the
    mapped word (NULL where not understood)."""
    name = f"_ek_map_w_{col}"
    _make_map(con, name, vv, look)
    joins.append(f"LEFT JOIN {name} ON {name}.v = {vv}")
    return f"{name}.m"


def drop_temps(con) -> None:
    """Drop the temp tables of one file (also before a file, after an earlier failure)."""
    drop_raw(con, "_ek_v")
    for name in ("_ek_p", "_ek_stage", "_ek_dup", "_ek_bad", "_ek_cand", "_ek_q", "_ek_fix", "_ek_missed", "_ek_rawfix", WORDS):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    drop_maps(con)


def drop_maps(con) -> None:
    """Drop the value maps of one file (built by :func:`evalkit.ingest.plan._plan`)."""
    for name in ("_ek_map_station", "_ek_map_neighbor", "_ek_map_reform", "_ek_map_category"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary "
                               "AND starts_with(table_name, '_ek_map_w_')").fetchall():
        con.execute(f"DROP TABLE IF EXISTS {name}")


def drop_temps_quietly(con) -> None:
    """:func:`drop_temps`, ignoring DuckDB errors (clean-up after a failure)."""
    try:
        drop_temps(con)
    except duckdb.Error:
        pass
