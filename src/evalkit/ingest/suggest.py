"""``evalkit ingest TABLE FILE --suggest-mapping OUT.yaml``: write an editable mapping without loading.

The file lists every header of the export with the column it was matched to (or ``null`` and a
"did you mean"), the columns the export lacks (to fill under ``defaults:``), and for the columns
holding words — categories, outcome text, yes/no words, area types, reform names — each distinct
value with what ingest will make of it (``null`` where it is not understood). Values are masked
like everything else evalkit prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from evalkit import registry
from evalkit.ingest import sql as S
from evalkit.ingest import values as V
from evalkit.ingest import vocab
from evalkit.ingest.headers import map_headers
from evalkit.ingest.mapping import load_mapping
from evalkit.ingest.privacy import mask_py
from evalkit.ingest.sources import expand_paths, load_raw, make_tmpdir, open_source
from evalkit.schema import TABLES

MAX_VALUES = 200  # distinct values listed per column


def _y(s) -> str:
    """A YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(str(s), ensure_ascii=False)


def _value_columns(table: str) -> dict[str, tuple[object, str]]:
    """column → (raw value → mapped or None, the allowed targets for the comment)."""
    def reform(v, u=None):
        try:
            return registry.reform_id(v)
        except KeyError:
            return None

    out: dict[str, tuple[object, str]] = {}
    if table == "incidents":
        out["category"] = (lambda v: _known(vocab.incident_category(v)), ", ".join(registry.CATEGORIES))
        out["handled_by"] = (V.word_lookup(S.HANDLED_BY), "station, patrol, diverted")
        out["is_case"] = (V.word_lookup(V.bool_words()), "true, false")
    elif table == "disputes":
        out["category"] = (lambda v: _known(vocab.dispute_category(v)), ", ".join(registry.DISPUTE_CATEGORIES))
        out["resolved"] = (V.word_lookup(V.resolved_words()), "true, false, open (still being mediated)")
        out["escalated"] = (V.word_lookup(V.bool_words()), "true, false")
    elif table == "stations":
        out["area_type"] = (V.word_lookup(S.AREA_TYPES), "urban, rural, mixed")
    elif table == "reforms":
        out["reform"] = (reform, ", ".join(registry.REFORMS))
    return out


def _known(res: tuple[str, bool]) -> str | None:
    cid, known = res
    return cid if known else None


def suggest_mapping(table: str, path, *, sheet=None, mapping=None, defaults=None) -> str:
    """The suggested mapping (YAML text) for one export of ``table``."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}")
    spec = TABLES[table]
    user = load_mapping(mapping, table, defaults)
    f = expand_paths(path, table, spec.zh)[0]
    tmp = make_tmpdir()
    con = duckdb.connect()
    try:
        src = open_source(f, tmp.name, table_zh=spec.zh, table=table, sheet=sheet, user=user)
        hm = map_headers(src.headers, spec, user, src.name, header_row=src.header_row, strict=False)
        vcols = {c: fn for c, fn in _value_columns(table).items() if c in hm.positions}
        found: dict[str, list[tuple[str, int]]] = {}
        if vcols:
            load_raw(con, src, {c: hm.positions[c] for c in vcols}, "_ek_v")
            for c in vcols:
                found[c] = con.execute(f"SELECT v_{c}, count(*) FROM _ek_v WHERE v_{c} IS NOT NULL GROUP BY 1 "
                                       f"ORDER BY 2 DESC, 1 LIMIT {MAX_VALUES}").fetchall()
    finally:
        con.close()
        tmp.cleanup()

    where = f"sheet {src.sheet!r}, " if src.sheet else ""
    lines = [
        f"# evalkit mapping for {table}, suggested from {mask_py(Path(f).name)} ({where}header on row {src.header_row})",
        f"# Edit it, then load with: evalkit ingest {table} FILE --mapping THIS_FILE",
        "# null = not understood: write the canonical column/value, or leave null (header ignored, value",
        "# stored as unknown/other). 'ignore' drops a header silently.",
        f"table: {table}",
        "columns:",
    ]
    by_pos = {pos: c for c, pos in hm.positions.items() if not (c == "station_id" and table == "stations"
                                                                and hm.original.get("name") == hm.original[c])}
    for i, h in enumerate(src.headers):
        if not str(h).strip():
            continue
        h = str(h).strip()
        if i in by_pos:
            lines.append(f"  {_y(h)}: {by_pos[i]}")
        elif h in hm.ignored:
            lines.append(f"  {_y(h)}: ignore")
        elif h in hm.personal:
            lines.append(f"  {_y(h)}: ignore  # personal data: never loaded")
        else:
            hint = f"  # did you mean {hm.suggestions[h]}?" if h in hm.suggestions else "  # unknown header"
            lines.append(f"  {_y(mask_py(h))}: null{hint}")
    lines.append("defaults:  # a value for columns the file does not have (else they are unknown)")
    required = {c.name for c in spec.columns if c.required}
    for c in hm.missing:
        if c == "name" and table == "stations":
            continue
        need = "required" if c in required else "optional"
        lines.append(f"  # {c}: VALUE  # {need}; not in the file")
    for c, val in user.defaults.items():
        lines.append(f"  {c}: {_y(val)}")
    lines.append("values:")
    for c, rows in found.items():
        look, allowed = vcols[c]
        lines.append(f"  {c}:  # one of: {allowed}")
        for raw, n in rows:
            got = look(raw)
            shown = _y(mask_py(raw))
            if got is None:
                lines.append(f"    {shown}: null  # not understood ({n:,} rows)")
            else:
                lines.append(f"    {shown}: {got}  # {n:,} rows")
    return "\n".join(lines) + "\n"


def write_suggestion(table: str, path, out, **kw) -> Path:
    """Write :func:`suggest_mapping` to ``out`` (UTF-8)."""
    text = suggest_mapping(table, path, **kw)
    out = Path(out)
    out.write_text(text, encoding="utf-8")
    return out
