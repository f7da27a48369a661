"""Word columns of an ingest: their distinct values in one scan of the raw table, and the small
join tables that map them (reforms, incident and dispute categories, station references)."""

from __future__ import annotations

import pandas as pd

from evalkit import registry
from evalkit.ingest import sql as S
from evalkit.ingest import vocab
from evalkit.ingest.errors import IngestError
from evalkit.ingest.headers import HeaderMap
from evalkit.ingest.sources import raw_lookup, trim_py
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


WORDS = "_ek_words"  # the distinct values of the raw table's word columns (one pass), see _word_values


def _words_source(con, column: str) -> str:
    """The table holding the distinct values of ``column``: ``_ek_words`` for the word columns of
    the file, the raw table for a constant (a default given with --set)."""
    return WORDS if column in {r[0] for r in con.execute(f"DESCRIBE {WORDS}").fetchall()} else "_ek_v"


def _word_values(con, spec: Table, hm: HeaderMap, lead: frozenset[str] = frozenset()) -> None:
    """``_ek_words``: the distinct values of every column mapped through a small join table
    (station references, reforms, categories, codes, yes/no words), in one scan of the raw table;
    cleaned as the raw view cleans them (``lead``: at the leading end only)."""
    t = spec.name
    cols = [f"v_{c.name}" for c in spec.columns if c.name in hm.positions and (
        (c.name in ("station_id", "neighbor_id") and t in STATION_REF_TABLES) or c.sql_type == "BOOLEAN"
        or c.name in ("reform", "category", "area_type", "handled_by", "resolved"))]
    if not cols:
        con.execute(f"CREATE TEMP TABLE {WORDS} AS SELECT NULL AS _none")
        return
    # a CSV read by DuckDB: group its text as read, and trim only the distinct values
    csv_view = "_rid" in {r[0] for r in con.execute("DESCRIBE _ek_v").fetchall()}
    src, sel = raw_lookup("_ek_v._rid" if csv_view else "", "_ek_v", cols, lead)[::2]
    raw = [ident("r_" + c[2:]) if csv_view else c for c in cols]
    sets = ", ".join(f"({c})" for c in raw)
    con.execute(f"CREATE TEMP TABLE {WORDS} AS SELECT {sel} FROM (SELECT {', '.join(raw)} FROM {src} "
                f"GROUP BY GROUPING SETS ({sets})) {src}")


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
