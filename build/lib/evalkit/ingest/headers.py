"""Header mapping: canonical English names, Chinese aliases, user mappings, personal data."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.ingest.errors import IngestError
from evalkit.schema import PERSONAL_DATA_HEADERS, TABLES, Table

# Substrings that mark a header as personal data even when it is not listed verbatim.
_PERSONAL_TOKENS = ("身份证", "手机", "电话", "姓名", "住址", "证件号", "身份号码")


def norm_header(h: object) -> str:
    """Normalise a header: NFKC (full-width → half-width), drop spaces/underscores/brackets, lower."""
    s = unicodedata.normalize("NFKC", str(h if h is not None else "")).strip().lower()
    s = s.replace("\ufeff", "")
    return re.sub(r"[\s_\-（）()【】\[\]:：]+", "", s)


_PERSONAL_NORM = {norm_header(h) for h in PERSONAL_DATA_HEADERS}


def is_personal(header: str) -> bool:
    n = norm_header(header)
    if n in _PERSONAL_NORM:
        return True
    return any(tok in n for tok in _PERSONAL_TOKENS)


def load_mapping(mapping: str | Path | dict | None, table: str) -> dict[str, str]:
    """User header aliases for ``table`` from a YAML file or dict ``{table: {alias: canonical}}``.

    A flat ``{alias: canonical}`` dict is accepted too.
    """
    if mapping is None:
        return {}
    if isinstance(mapping, (str, Path)):
        import yaml

        p = Path(mapping)
        if not p.exists():
            raise IngestError("mapping file not found", file=str(p))
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise IngestError(f"mapping file is not valid YAML: {e}", file=str(p)) from None
    else:
        data = dict(mapping)
    if not isinstance(data, dict):
        raise IngestError("mapping must be {table: {alias: canonical}}", file=str(mapping))
    if table in data and isinstance(data[table], dict):
        data = data[table]
    elif any(isinstance(v, dict) for v in data.values()):
        data = {}
    spec = TABLES[table]
    out = {}
    for alias, canonical in data.items():
        if canonical not in spec.column_names:
            raise IngestError(
                f"mapping {alias!r} → {canonical!r}: {canonical!r} is not a column of {table} "
                f"(columns: {', '.join(spec.column_names)})"
            )
        out[str(alias)] = str(canonical)
    return out


@dataclass
class HeaderMap:
    positions: dict[str, int] = field(default_factory=dict)  # canonical → 0-based column position
    original: dict[str, str] = field(default_factory=dict)  # canonical → header as in the file
    unknown: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)


def map_headers(headers: list[str], spec: Table, user: dict[str, str], file: str) -> HeaderMap:
    """Map file headers to canonical columns; raise IngestError on duplicated/ambiguous/missing ones."""
    lookup: dict[str, str] = {}
    for c in spec.columns:
        for a in (c.name, *c.aliases):
            lookup.setdefault(norm_header(a), c.name)
    for alias, canonical in user.items():
        lookup[norm_header(alias)] = canonical  # user mapping wins

    seen: dict[str, int] = {}
    for i, h in enumerate(headers):
        raw = str(h if h is not None else "").strip()
        if raw == "":
            continue
        if raw in seen:
            raise IngestError(
                f"duplicated header {raw!r} (columns {seen[raw] + 1} and {i + 1})", file=file, row=1, column=raw
            )
        seen[raw] = i

    hm = HeaderMap()
    for i, h in enumerate(headers):
        raw = str(h if h is not None else "").strip()
        if raw == "":
            hm.unknown.append(f"<empty header in column {i + 1}>")
            continue
        canonical = lookup.get(norm_header(raw))
        if canonical is None:
            if is_personal(raw):
                hm.personal.append(raw)
            else:
                hm.unknown.append(raw)
            continue
        if canonical in hm.positions:
            first = hm.original[canonical]
            raise IngestError(
                f"duplicated header: {first!r} and {raw!r} both map to {canonical!r}; keep one of them "
                "or map one elsewhere with a mapping file",
                file=file, row=1, column=raw,
            )
        hm.positions[canonical] = i
        hm.original[canonical] = raw

    for c in spec.columns:
        if c.required and c.name not in hm.positions:
            accepted = ", ".join([c.name, *c.aliases])
            raise IngestError(
                f"missing required column {c.name!r} (accepted headers: {accepted})",
                file=file, row=1, column=c.name,
            )
    return hm
