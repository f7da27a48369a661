"""Values as bureaus write them, parsed in DuckDB SQL (vectorised: 10 M rows stay fast).

- Dates: month-only forms (2023年1月, 2023-01, 2023.01, 2023/1) — the first of the month where a
  month is enough (``reforms.adopted_on``), a quarantine reason (``date_without_day``) where a day is
  required; Excel serial numbers; full-width digits; mixed formats within a column.
- Numbers with units: 万/万人 (× 10,000, rounded to whole persons), 人/名/个 (× 1); a unit in the
  header (人口（万人）) applies to bare numbers of that column.
- Yes/no words and dispute outcome text (调解成功 / 调解不成功 / 正在调解 …), extendable per column
  by the mapping file's ``values:`` section.
"""

from __future__ import annotations

from evalkit.ingest.privacy import fold_sql
from evalkit.ingest.sql import datetime_sql, q
from evalkit.ingest.vocab import fold

# 2023年1月 / 2023-01 / 2023.01 / 2023/1 (also 2023年01月份)
MONTH_ONLY_RE = r"(19|20)[0-9]{2}\s*(年\s*[0-9]{1,2}\s*月份?|[-./][0-9]{1,2})"


def month_only_sql(v: str) -> str:
    """TRUE where the value names a month without a day."""
    return f"regexp_full_match({fold_sql(v)}, {q(MONTH_ONLY_RE)})"


def month_start_sql(v: str) -> str:
    """The first day of a month-only value (DATE), else NULL."""
    f = fold_sql(v)
    y = f"TRY_CAST(regexp_extract({f}, '^((19|20)[0-9]{{2}})', 1) AS INTEGER)"
    m = f"TRY_CAST(regexp_extract({f}, '^[0-9]{{4}}\\s*[年./-]\\s*([0-9]{{1,2}})', 1) AS INTEGER)"
    return f"CASE WHEN {month_only_sql(v)} AND {m} BETWEEN 1 AND 12 THEN make_date({y}, {m}, 1) END"


def date_sql(v: str, month_ok: bool) -> str:
    """DATE from a trimmed VARCHAR; month-only values → first of the month when ``month_ok``."""
    full = f"CAST({timestamp_sql(v)} AS DATE)"
    return f"COALESCE({full}, {month_start_sql(v)})" if month_ok else full


def timestamp_sql(v: str) -> str:
    """TIMESTAMP from a trimmed VARCHAR (full-width digits folded on the slow path)."""
    return f"COALESCE({datetime_sql(v)}, {datetime_sql(fold_sql(v))})"


# ------------------------------------------------------------------------------ numbers
UNIT_FACTORS = {"万人": 10000, "万": 10000}
_UNIT_TAIL = r"\s*(万人|万|人|名|个|户)$"


def number_sql(v: str, header_unit: str | None = None) -> str:
    """BIGINT from a trimmed VARCHAR with an optional unit (thousands separators allowed).

    A 万 unit (in the value or, for bare numbers, in the header) multiplies by 10,000 and rounds to
    a whole number; otherwise the value must be integral.
    """
    f = fold_sql(v)
    digits = f"regexp_replace(replace(replace({f}, ',', ''), '，', ''), {q(_UNIT_TAIL)}, '')"
    d = f"TRY_CAST({digits} AS DOUBLE)"
    hf = UNIT_FACTORS.get(header_unit or "", 1)
    factor = (f"(CASE WHEN regexp_matches({f}, '万人?$') THEN 10000 "
              f"WHEN regexp_matches({f}, '(人|名|个|户)$') THEN 1 ELSE {hf} END)")
    x = f"({d} * {factor})"
    scaled = f"({factor} > 1)"
    return (f"CASE WHEN {scaled} AND abs({x}) < 2e9 THEN CAST(round({x}) AS BIGINT) "
            f"WHEN {x} = floor({x}) AND abs({x}) < 2e9 THEN CAST({x} AS BIGINT) END")


def decimal_sql(v: str, header_unit: str | None = None) -> str:
    """DOUBLE from a trimmed VARCHAR: yuan (元, 万元 × 10,000) or hours (小时/h), thousands separators
    allowed; a 万 in the value or (for bare numbers) in the header (案损（万元）) multiplies by 10,000."""
    f = fold_sql(v)
    digits = f"regexp_replace(replace(replace({f}, ',', ''), '，', ''), '\\s*(万元|万|元|小时|h)$', '')"
    hf = 10000 if (header_unit or "").startswith("万") else 1
    factor = f"(CASE WHEN regexp_matches({f}, '万元?$') THEN 10000 WHEN regexp_matches({f}, '(元|小时|h)$') THEN 1 ELSE {hf} END)"
    return f"(TRY_CAST({digits} AS DOUBLE) * {factor})"


def share_sql(v: str) -> str:
    """DOUBLE from a dose value (``reforms.intensity``): a plain number, or a percentage ("60%",
    "60 ％") read as a share (0.6); NULL if not a number."""
    f = f"replace({fold_sql(v)}, '％', '%')"
    num = f"TRY_CAST(trim(regexp_replace({f}, '\\s*%$', '')) AS DOUBLE)"
    return f"(CASE WHEN regexp_matches({f}, '%$') THEN {num} / 100.0 ELSE {num} END)"


_DURATION_UNITS = {"分钟": 60, "分": 60, "min": 60, "小时": 3600, "时": 3600, "h": 3600, "秒": 1, "s": 1}


def duration_sql(v: str, header_unit: str | None = None) -> str:
    """INTERVAL from a duration: a number with an optional unit (分钟/分/min, 小时/时/h, 秒/s); bare
    numbers take the header's unit (到场用时（分钟）), else minutes. NULL if not a number."""
    f = fold_sql(v)
    num = f"TRY_CAST(regexp_replace({f}, '\\s*(分钟|分|min|小时|时|h|秒|s)$', '') AS DOUBLE)"
    default = _DURATION_UNITS.get(header_unit or "", 60)
    unit = ("(CASE " + " ".join(f"WHEN suffix({f}, {q(u)}) THEN {sec}" for u, sec in _DURATION_UNITS.items())
            + f" ELSE {default} END)")
    return f"to_milliseconds(CAST(round({num} * {unit} * 1000) AS BIGINT))"


# ------------------------------------------------------------------------------ words
TRUE_WORDS = ("是", "1", "true", "t", "yes", "y", "对", "√", "✓", "有", "已立案", "立案", "已转", "已转刑事")
FALSE_WORDS = ("否", "0", "false", "f", "no", "n", "不", "×", "✗", "无", "没有", "未立案", "不立案", "未转")
# Dispute outcome text → resolved state. "open" = still being mediated: stored as resolved = FALSE
# with no closing date (a closing date on an open dispute is quarantined).
RESOLVED_WORDS: dict[str, str] = {
    **{w: "true" for w in ("是", "1", "true", "yes", "y", "√", "已化解", "化解", "调解成功", "成功", "已调解",
                           "调解成功结案", "达成协议", "已达成协议", "已解决", "解决", "化解成功", "调处成功",
                           "已调处", "息诉罢访")},
    **{w: "false" for w in ("否", "0", "false", "no", "n", "×", "未化解", "调解不成功", "调解失败", "不成功",
                            "失败", "未达成协议", "未解决", "调解终止", "终止调解", "化解失败", "调处不成功",
                            "调处失败", "未调解成功")},
    **{w: "open" for w in ("正在调解", "调解中", "处理中", "办理中", "在办", "未办结", "待调解", "跟踪中",
                           "正在化解", "化解中", "调处中", "正在调处", "待处理", "未结", "持续跟进")},
}


def _nfkc(k: str) -> str:
    return fold(k).lower()


def bool_words(user: dict[str, str] | None = None) -> dict[str, str]:
    return {**{w: "true" for w in TRUE_WORDS}, **{w: "false" for w in FALSE_WORDS},
            **{k: _truth(val) for k, val in (user or {}).items()}}


def _truth(val) -> str:
    s = str(val).strip().lower()
    return {"是": "true", "yes": "true", "1": "true", "否": "false", "no": "false", "0": "false"}.get(s, s)


def resolved_words() -> dict[str, str]:
    """Outcome text and yes/no words → 'true' / 'false' / 'open'."""
    return {**bool_words(), **RESOLVED_WORDS}


def word_lookup(words: dict[str, str], user: dict[str, str] | None = None):
    """A function raw value → mapped word (NFKC, spaces removed, lower-cased), user words first;
    used on the distinct values of a column (a small join table), not per row."""
    merged = {**{_nfkc(k): val for k, val in words.items()},
              **{_nfkc(k): _truth(val) for k, val in (user or {}).items()}}

    def look(raw: str) -> str | None:
        return merged.get(_nfkc(raw))

    return look


