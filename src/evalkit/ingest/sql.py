"""SQL expression builders used by the vectorised validation (DuckDB)."""

from __future__ import annotations

from evalkit.ingest.privacy import ID_MASK, PHONE_MASK, mask_py, mask_sql, needs_mask_sql, q  # noqa: F401  (re-exported: masking and quoting live in privacy)

# Date/time formats seen in Chinese police exports, tried in order by DuckDB's try_strptime.
DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y年%m月%d日%H时%M分%S秒",
    "%Y年%m月%d日%H时%M分",
    "%Y年%m月%d日%H时",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日 %H时%M分%S秒",
    "%Y年%m月%d日 %H时%M分",
    "%Y年%m月%d日",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
)


AREA_TYPES = {"城区": "urban", "城市": "urban", "urban": "urban", "农村": "rural", "乡村": "rural",
              "rural": "rural", "城乡结合": "mixed", "城乡结合部": "mixed", "mixed": "mixed"}
HANDLED_BY = {"派出所": "station", "所内": "station", "station": "station", "巡逻": "patrol",
              "巡逻队": "patrol", "巡处": "patrol", "patrol": "patrol", "分流": "diverted",
              "diverted": "diverted", "12345": "diverted"}

def ident(s: str) -> str:
    return '"' + str(s).replace('"', '""') + '"'


def datetime_sql(v: str) -> str:
    """Parse a trimmed VARCHAR into TIMESTAMP: known formats, else Excel serial numbers; NULL if bad."""
    fmts = "[" + ", ".join(q(f) for f in DATETIME_FORMATS) + "]"
    serial = (
        f"CASE WHEN regexp_full_match({v}, '[1-9][0-9]{{4}}(\\.[0-9]+)?') THEN "
        f"TIMESTAMP '1899-12-30' + to_milliseconds(CAST(round(CAST({v} AS DOUBLE) * 86400000) AS BIGINT)) END"
    )
    # the fast ISO cast first; then the Chinese/slash formats; then Excel serial numbers
    return f"COALESCE(TRY_CAST({v} AS TIMESTAMP), try_strptime({v}, {fmts}), {serial})"


def frame_to_temp_table(con, name: str, frame, select: str) -> None:
    """Create temp table ``name`` as ``SELECT {select}`` over a pandas ``frame`` (the small value
    maps built in Python from a column's distinct values), unregistering the frame afterwards."""
    con.register("_ek_frame", frame)
    try:
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT {select} FROM _ek_frame")
    finally:
        con.unregister("_ek_frame")
