"""Header mapping: finding the header row, canonical names, aliases, units, user mappings, personal data.

Bureau exports put title and note rows above the header, merge title cells, split headers over
two rows (时间 over 接警/到达), number their rows (序号) and write brackets and letters full-width.
:func:`find_header` picks the header row(s) by how many cells name a known column;
:func:`map_headers` maps them to the canonical columns of :mod:`evalkit.schema`.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from dataclasses import dataclass, field

from evalkit.ingest.errors import IngestError
from evalkit.ingest.mapping import Mapping, load_mapping
from evalkit.schema import IGNORED_HEADERS, PERSONAL_DATA_HEADERS, Table

# Substrings that mark a header as personal data even when it is not listed verbatim.
_PERSONAL_TOKENS = ("身份证", "手机", "电话", "姓名", "住址", "证件号", "身份号码", "联系方式", "报警人", "当事人",
                    "联系人", "申请人", "求助人", "受害人", "户籍地")
HEADER_SCAN_ROWS = 30  # rows looked at for the header (title and note rows come first)

# A unit written in the header: 人口（万人）, 到场用时(分钟), 人口(单位:万人)
_UNIT_RE = re.compile(r"[(（\[【]\s*(?:单位\s*[:：]\s*)?(万人|万元|万|元|人|分钟|分|小时|时|秒|个|名|户|公里|千米|km)\s*[)）\]】]\s*$")
UNIT_FACTORS = {"万人": 10000, "万": 10000}


def norm_header(h: object) -> str:
    """Normalise a header: NFKC (full-width → half-width), drop spaces/underscores/brackets, lower."""
    s = unicodedata.normalize("NFKC", str(h if h is not None else "")).strip().lower()
    s = s.replace("\ufeff", "")
    return re.sub(r"[\s_\-（）()【】\[\]:：*/、]+", "", s)


def split_unit(h: object) -> tuple[str, str | None]:
    """``'人口（万人）'`` → ``('人口', '万人')``; headers without a unit come back unchanged."""
    s = unicodedata.normalize("NFKC", str(h if h is not None else "")).strip()
    m = _UNIT_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), m.group(1)
    return s, None


_PERSONAL_NORM = {norm_header(h) for h in PERSONAL_DATA_HEADERS}
_IGNORED_NORM = {norm_header(h) for h in IGNORED_HEADERS}


def is_personal(header: str) -> bool:
    n = norm_header(header)
    if n in _PERSONAL_NORM:
        return True
    return any(tok in n for tok in _PERSONAL_TOKENS)


def is_ignored(header: str) -> bool:
    return norm_header(header) in _IGNORED_NORM


# Durations read instead of a missing timestamp: incidents' arrival as minutes (or hours, by the
# unit in the header or value) after the call — arrived_at = received_at + duration.
DURATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "incidents": {"response_duration": ("到场用时", "到达用时", "出警用时", "到场时长", "出警时长", "到场耗时",
                                        "响应时长", "响应用时", "到场时间间隔")},
}


def alias_lookup(spec: Table, user: Mapping | None = None) -> dict[str, str]:
    """Normalised header → canonical column (user mapping wins; ``ignore`` drops a header)."""
    lookup: dict[str, str] = {}
    for c in spec.columns:
        for a in (c.name, *c.aliases):
            lookup.setdefault(norm_header(a), c.name)
    for name, aliases in DURATIONS.get(spec.name, {}).items():
        for a in (name, *aliases):
            lookup.setdefault(norm_header(a), name)
    if user is not None:
        for alias, canonical in user.columns.items():
            lookup[norm_header(alias)] = canonical
    return lookup


def resolve(header: object, lookup: dict[str, str]) -> str | None:
    """Canonical column for one header (``None`` if unknown); a unit in brackets is ignored."""
    if header is None or str(header).strip() == "":
        return None
    hit = lookup.get(norm_header(header))
    if hit is None:
        base, unit = split_unit(header)
        if unit is not None:
            hit = lookup.get(norm_header(base))
    return hit


# ------------------------------------------------------------------------------ header rows
def _cell(v) -> str:
    return "" if v is None else str(v).strip()


def _score(cells: list[str], lookup: dict[str, str]) -> int:
    return len({c for c in (resolve(x, lookup) for x in cells) if c and c != "ignore"})


def _combine(upper: list[str], lower: list[str], lookup: dict[str, str]) -> list[str]:
    """Merge a two-row header: the upper row's group titles are carried right over merged cells."""
    n = max(len(upper), len(lower))
    up = [_cell(upper[i]) if i < len(upper) else "" for i in range(n)]
    lo = [_cell(lower[i]) if i < len(lower) else "" for i in range(n)]
    filled, last = [], ""
    for u, low in zip(up, lo, strict=False):
        if u:
            last = u
        filled.append(u if u else (last if low else ""))
    out = []
    for u, low in zip(filled, lo, strict=False):
        if not low:
            out.append(u)
            continue
        cands = [low, low + u, u + low] if u else [low]
        out.append(next((c for c in cands if resolve(c, lookup)), low if not u else low + u))
    return out


@dataclass
class HeaderRows:
    index: int  # 0-based index of the (first) header row among the rows looked at
    count: int  # 1, or 2 for a two-row header
    headers: list[str]


def find_header(rows: list[list], spec: Table, user: Mapping | None = None) -> HeaderRows:
    """Pick the header row(s) among the first rows of a file (title/note rows above are skipped).

    The row naming the most known columns wins; a two-row header wins over its lower row when
    combining the two names more columns. Falls back to the first non-empty row.
    """
    lookup = alias_lookup(spec, user)
    best: HeaderRows | None = None
    best_score = 0
    first_nonempty = None
    scan = rows[:HEADER_SCAN_ROWS]
    for i, row in enumerate(scan):
        cells = [_cell(c) for c in row]
        if not any(cells):
            continue
        if first_nonempty is None:
            first_nonempty = i
        s1 = _score(cells, lookup)
        if s1 > best_score:
            best, best_score = HeaderRows(i, 1, cells), s1
        if i + 1 < len(scan):
            combined = _combine(row, scan[i + 1], lookup)
            s2 = _score(combined, lookup)
            lower = _score([_cell(c) for c in scan[i + 1]], lookup)
            if s2 > max(s1, lower) and s2 > best_score:
                best, best_score = HeaderRows(i, 2, combined), s2
    if best is None:
        if first_nonempty is None:
            raise IngestError("file is empty (no header row)")
        best = HeaderRows(first_nonempty, 1, [_cell(c) for c in rows[first_nonempty]])
    while best.headers and best.headers[-1] == "":
        best.headers.pop()
    return best


# ------------------------------------------------------------------------------ mapping
@dataclass
class HeaderMap:
    positions: dict[str, int] = field(default_factory=dict)  # canonical → 0-based column position
    original: dict[str, str] = field(default_factory=dict)  # canonical → header as in the file
    unknown: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # 序号 and headers mapped to "ignore"
    suggestions: dict[str, str] = field(default_factory=dict)  # unknown header → "alias → canonical"
    missing: list[str] = field(default_factory=list)  # optional columns absent from the file (stored NULL)
    units: dict[str, str] = field(default_factory=dict)  # canonical → unit read off the header
    defaults: dict[str, str] = field(default_factory=dict)  # canonical → value for a column not in the file
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical → {raw value: mapped}


def did_you_mean(header: str, spec: Table, lookup: dict[str, str] | None = None) -> str | None:
    """The closest known header (``'到场时间 → arrived_at'``) for an unmatched one, or None."""
    lookup = lookup or alias_lookup(spec)
    names: dict[str, str] = {}
    for c in spec.columns:
        for a in (c.name, *c.aliases):
            names.setdefault(norm_header(a), a)
    base = norm_header(split_unit(header)[0])
    scored = []
    for n in names:
        r = difflib.SequenceMatcher(None, base, n).ratio()
        if r >= 0.6:  # ties go to the candidate sharing the longer start (报警时刻点 → 报警时间)
            scored.append((r, len(os.path.commonprefix([base, n])), n))
    hit = [max(scored)[2]] if scored else []
    if not hit:  # a known header inside a longer one (报警时间点 ⊃ 报警时间)
        inside = sorted((n for n in names if len(n) >= 2 and n in base), key=len, reverse=True)
        hit = inside[:1]
    return f"{names[hit[0]]} → {lookup[hit[0]]}" if hit else None


def _missing_message(spec: Table, missing: list[str], hm: HeaderMap) -> str:
    parts = []
    for name in missing:
        c = spec.column(name)
        parts.append(f"{name} (e.g. {', '.join(c.aliases[:3])})")
    hint = ""
    if hm.suggestions:
        hint = "; unmatched headers: " + ", ".join(f"{h} (did you mean {s}?)" for h, s in hm.suggestions.items())
    return (f"missing required column{'s' if len(missing) > 1 else ''} {'; '.join(parts)}{hint} — rename the "
            f"header, map it with --mapping (see --suggest-mapping) or give one value with --set COLUMN=VALUE")


def map_headers(headers: list[str], spec: Table, user: Mapping | dict | None, file: str,
                header_row: int = 1, strict: bool = True) -> HeaderMap:
    """Map file headers to canonical columns; raise IngestError on duplicated/ambiguous/missing ones.

    ``header_row`` is the file row of the header (for messages). All missing required columns are
    named in one message; a stations register needs only its key (code or name). With
    ``strict=False`` (for suggesting a mapping) missing required columns are listed in ``missing``.
    """
    if not isinstance(user, Mapping):
        user = load_mapping(user, spec.name)
    lookup = alias_lookup(spec, user)
    seen: dict[str, int] = {}
    for i, h in enumerate(headers):
        raw = str(h if h is not None else "").strip()
        if raw == "":
            continue
        if raw in seen:
            raise IngestError(f"duplicated header {raw!r} (columns {seen[raw] + 1} and {i + 1})", file=file,
                              row=header_row, column=raw)
        seen[raw] = i

    hm = HeaderMap(defaults=dict(user.defaults), values={k: dict(v) for k, v in user.values.items()})
    for i, h in enumerate(headers):
        raw = str(h if h is not None else "").strip()
        if raw == "":
            hm.unknown.append(f"<empty header in column {i + 1}>")
            continue
        canonical = resolve(raw, lookup)
        if canonical == "ignore" or (canonical is None and is_ignored(raw)):
            hm.ignored.append(raw)
            continue
        if canonical is None:
            if is_personal(raw):
                hm.personal.append(raw)
            else:
                hm.unknown.append(raw)
                s = did_you_mean(raw, spec, lookup)
                if s:
                    hm.suggestions[raw] = s
            continue
        if canonical in hm.positions:
            first = hm.original[canonical]
            raise IngestError(
                f"duplicated header: {first!r} and {raw!r} both map to {canonical!r}; keep one of them "
                "or map one elsewhere with a mapping file",
                file=file, row=header_row, column=raw,
            )
        hm.positions[canonical] = i
        hm.original[canonical] = raw
        unit = split_unit(raw)[1]
        if unit:
            hm.units[canonical] = unit

    if spec.name == "stations" and "station_id" not in hm.positions and "name" in hm.positions:
        hm.positions["station_id"] = hm.positions["name"]  # a register keyed by name: the name is the key
        hm.original["station_id"] = hm.original["name"]
    missing_req = [c.name for c in spec.columns
                   if c.required and c.name not in hm.positions and c.name not in hm.defaults]
    if missing_req and strict:
        if spec.name == "stations" and "station_id" in missing_req:
            missing_req = ["station_id"]  # only the key is needed; name it alone
        raise IngestError(_missing_message(spec, missing_req, hm), file=file, row=header_row)
    hm.missing = [c.name for c in spec.columns if c.name not in hm.positions and c.name not in hm.defaults
                  and not (c.name == "arrived_at" and "response_duration" in hm.positions)]
    for k in list(hm.defaults):
        if k in hm.positions:
            del hm.defaults[k]  # the file's own column wins over a default
    return hm
