"""Mapping files: header aliases, value mappings and defaults a user gives for one table.

A mapping file (YAML) reads::

    table: disputes            # optional when the file is passed for one table
    columns:                   # header in the file → canonical column (or ignore)
      登记单位: station_id
      备注: ignore
    defaults:                  # a value for a column the file does not have
      province: 浙江省
    values:                    # raw value → canonical value, per column
      category: {婚恋纠纷: family, 宅基地纠纷: property}
      resolved: {调解终止: false, 待回访: open}

The older forms ``{table: {alias: canonical}}`` and a flat ``{alias: canonical}`` are read too.
``--set COLUMN=VALUE`` on the command line adds defaults (and wins over the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalkit.ingest.errors import IngestError
from evalkit.schema import TABLES

SECTIONS = ("columns", "defaults", "values")


@dataclass
class Mapping:
    columns: dict[str, str] = field(default_factory=dict)  # header → canonical column or "ignore"
    defaults: dict[str, str] = field(default_factory=dict)  # canonical column → raw value
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical column → {raw: mapped}


def _value_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).strip()


def _read(mapping, table: str) -> tuple[dict, str]:
    if isinstance(mapping, (str, Path)):
        import yaml

        p = Path(mapping)
        if not p.exists():
            raise IngestError("mapping file not found", file=str(p))
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise IngestError(f"mapping file is not valid YAML: {first}", file=str(p)) from None
        return data, str(p)
    return dict(mapping), "mapping"


def load_mapping(mapping, table: str, defaults: dict[str, str] | list[str] | None = None) -> Mapping:
    """Read a mapping (YAML path, dict, :class:`Mapping` or None) for ``table``; add ``defaults``."""
    if isinstance(mapping, Mapping):
        out = Mapping(dict(mapping.columns), dict(mapping.defaults), {k: dict(v) for k, v in mapping.values.items()})
    elif mapping is None:
        out = Mapping()
    else:
        data, where = _read(mapping, table)
        if not isinstance(data, dict):
            raise IngestError("mapping must be a YAML mapping with columns:/defaults:/values:", file=where)
        declared = data.get("table")
        if declared is not None and declared != table and not isinstance(data.get(table), dict):
            raise IngestError(f"mapping is for table {declared!r}, not {table!r}", file=where)
        if isinstance(data.get(table), dict):
            data = data[table]
        elif not any(k in data for k in SECTIONS) and any(isinstance(v, dict) for v in data.values()):
            data = {}  # a mapping for other tables only
        if any(k in data for k in SECTIONS):
            cols, dfl, vals = data.get("columns") or {}, data.get("defaults") or {}, data.get("values") or {}
        else:
            cols, dfl, vals = {k: v for k, v in data.items() if k != "table"}, {}, {}
        out = Mapping({str(k): str(v) for k, v in cols.items() if v is not None},
                      {str(k): _value_text(v) for k, v in dfl.items() if v is not None},
                      {str(c): {_value_text(k): _value_text(v) for k, v in (m or {}).items() if v is not None}
                       for c, m in vals.items()})
    if defaults:
        out.defaults.update(parse_set(defaults) if isinstance(defaults, list) else
                            {str(k): _value_text(v) for k, v in defaults.items()})
    _validate(out, table)
    return out


def parse_set(items: list[str]) -> dict[str, str]:
    """``['province=浙江省', 'city=杭州市']`` → dict (the ``--set`` option)."""
    out = {}
    for it in items:
        if "=" not in it:
            raise IngestError(f"--set {it!r}: write COLUMN=VALUE (for example --set province=浙江省)")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _validate(m: Mapping, table: str) -> None:
    from evalkit.ingest.headers import DURATIONS

    cols = TABLES[table].column_names + list(DURATIONS.get(table, {}))
    for alias, canonical in m.columns.items():
        if canonical not in cols and canonical != "ignore":
            raise IngestError(f"mapping {alias!r} → {canonical!r}: {canonical!r} is not a column of {table} "
                              f"(columns: {', '.join(cols)}, or ignore)")
    for name in (*m.defaults, *m.values):
        if name not in cols:
            raise IngestError(f"mapping: {name!r} is not a column of {table} (columns: {', '.join(cols)})")
