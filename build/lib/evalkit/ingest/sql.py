"""SQL expression builders used by the vectorised validation (DuckDB)."""

from __future__ import annotations

import re

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

TRUE_WORDS = ("是", "1", "true", "t", "yes", "y", "对", "√", "已立案", "已化解")
FALSE_WORDS = ("否", "0", "false", "f", "no", "n", "不", "×", "未立案", "未化解")

AREA_TYPES = {"城区": "urban", "城市": "urban", "urban": "urban", "农村": "rural", "乡村": "rural",
              "rural": "rural", "城乡结合": "mixed", "城乡结合部": "mixed", "mixed": "mixed"}
HANDLED_BY = {"派出所": "station", "所内": "station", "station": "station", "巡逻": "patrol",
              "巡逻队": "patrol", "巡处": "patrol", "patrol": "patrol", "分流": "diverted",
              "diverted": "diverted", "12345": "diverted"}

ID_MASK = "[身份证号已遮蔽]"
PHONE_MASK = "[手机号已遮蔽]"
# Standalone 18-character ID numbers (17 digits + digit/X) and 11-digit mobile numbers (optionally
# written 138-0013-8000 or 138 0013 8000, optionally +86).
ID_RE = r"(^|[^0-9])([0-9]{17}[0-9Xx])($|[^0-9A-Za-z])"
PHONE_RE = r"(^|[^0-9])((?:\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4})($|[^0-9])"
_ID_PY = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_PHONE_PY = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}(?![0-9])")


def q(s: str) -> str:
    """SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def ident(s: str) -> str:
    return '"' + str(s).replace('"', '""') + '"'


def mask_py(text: str) -> str:
    """Python twin of :func:`mask_sql` (used for report text)."""
    return _PHONE_PY.sub(PHONE_MASK, _ID_PY.sub(ID_MASK, str(text)))


def needs_mask_sql(expr: str) -> str:
    return f"(regexp_matches({expr}, {q(ID_RE)}) OR regexp_matches({expr}, {q(PHONE_RE)}))"


def mask_sql(expr: str) -> str:
    """Mask ID and mobile numbers inside a VARCHAR expression (applied twice for adjacent hits)."""
    out = expr
    for pattern, repl in ((ID_RE, ID_MASK), (ID_RE, ID_MASK), (PHONE_RE, PHONE_MASK), (PHONE_RE, PHONE_MASK)):
        out = f"regexp_replace({out}, {q(pattern)}, {q(chr(92) + '1' + repl + chr(92) + '3')}, 'g')"
    return out


def datetime_sql(v: str) -> str:
    """Parse a trimmed VARCHAR into TIMESTAMP: known formats, else Excel serial numbers; NULL if bad."""
    fmts = "[" + ", ".join(q(f) for f in DATETIME_FORMATS) + "]"
    serial = (
        f"CASE WHEN regexp_full_match({v}, '[1-9][0-9]{{4}}(\\.[0-9]+)?') THEN "
        f"TIMESTAMP '1899-12-30' + to_milliseconds(CAST(round(CAST({v} AS DOUBLE) * 86400000) AS BIGINT)) END"
    )
    # the fast ISO cast first; then the Chinese/slash formats; then Excel serial numbers
    return f"COALESCE(TRY_CAST({v} AS TIMESTAMP), try_strptime({v}, {fmts}), {serial})"


def integer_sql(v: str) -> str:
    """Parse a trimmed VARCHAR into BIGINT (thousands separators allowed, integral floats ok)."""
    d = f"TRY_CAST(replace(replace({v}, ',', ''), '，', '') AS DOUBLE)"
    return f"CASE WHEN {d} = floor({d}) AND abs({d}) < 2e9 THEN CAST({d} AS BIGINT) END"


def bool_sql(v: str) -> str:
    t = ", ".join(q(x) for x in TRUE_WORDS)
    f = ", ".join(q(x) for x in FALSE_WORDS)
    return f"CASE WHEN lower({v}) IN ({t}) THEN TRUE WHEN lower({v}) IN ({f}) THEN FALSE END"


def enum_sql(v: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {q(k)} THEN {q(val)}" for k, val in mapping.items())
    return f"CASE lower({v}) {whens} END"
