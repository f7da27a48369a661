"""The prevention index definition (主防指数): capabilities → indicators, read from YAML.

Validated like params (:mod:`evalkit.params`): a repeated key, an unknown key, a value of the wrong
type (``weight: "2"``, ``lo: true``) or an unknown source column is refused with one message that
names the file and the key. The format is documented in ``docs/prevention-index.md``.

Every indicator value is a ratio of sums over the months of a period (month, quarter, year)::

    value = scale × Σ numerator / Σ denominator     (months where both are known)

``denominator`` is a column of the same table, ``population`` (residents / 10,000 per month: a
rate per 10,000 residents per month), ``officers`` (民警 per month) or ``months`` (1 per month: a
monthly mean). A station-month without a row in a report table is missing, never zero.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.panel import DISPUTE_COUNTS, INCIDENT_COUNTS
from evalkit.params import ParamsError, read_params_yaml
from evalkit.schema import REPORT_TABLES, TABLES

SInt = Annotated[int, Field(strict=True)]
SFloat = Annotated[float, Field(strict=True)]
SBool = Annotated[bool, Field(strict=True)]
Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]

# panel outcomes usable as numerators/denominators (counts summed over the period's months)
PANEL_COLUMNS = (*INCIDENT_COUNTS, *DISPUTE_COUNTS)
SPECIAL_DENOMINATORS = ("population", "officers", "months")
PEER_GROUPS = ("all", "county", "city", "province", "area_type")


class IndexDefinitionError(ParamsError):
    """Invalid index definition (the message names the file and the key)."""


def source_columns(table: str) -> tuple[str, ...]:
    """The numeric columns an indicator may sum from ``table`` (``panel`` or a report table)."""
    if table == "panel":
        return PANEL_COLUMNS
    return tuple(c.name for c in TABLES[table].columns if c.sql_type in ("INTEGER", "DOUBLE"))


class Source(BaseModel):
    """Where the value comes from: ``scale × Σ numerator / Σ denominator`` over the period's months."""

    model_config = ConfigDict(extra="forbid")
    table: Literal["panel", "cases", "visits", "hazards", "patrols", "surveys", "complaints"]
    numerator: str
    denominator: str = "months"
    scale: SFloat = 1.0

    @model_validator(mode="after")
    def _columns(self) -> Source:
        cols = source_columns(self.table)
        if self.numerator not in cols:
            raise ValueError(f"numerator {self.numerator!r} is not a column of {self.table} (one of: {', '.join(cols)})")
        if self.denominator not in (*SPECIAL_DENOMINATORS, *cols):
            raise ValueError(f"denominator {self.denominator!r} is not one of {', '.join(SPECIAL_DENOMINATORS)} "
                             f"or a column of {self.table} ({', '.join(cols)})")
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        return self


class Scoring(BaseModel):
    """How a value becomes 0–100 points (see docs/prevention-index.md § Scoring rules).

    - ``linear``: ``lo``→0 and ``hi``→100 points (reversed when lower is better), clamped.
    - ``thresholds``: ``steps`` = [[bound, points], …] ascending bounds; higher-better: the points of
      the largest bound ≤ value; lower-better: the points of the smallest bound ≥ value; else ``below``.
    - ``rank``: 100 × percent rank among the peer stations of the period (best = 100; alone = 50).
    - ``zscore``: 50 + 50 × z / ``cap`` clamped to 0–100, z against the peers (sign by direction).
    - ``yoy``: the change against the same period a year earlier (``relative``: in %), scored
      ``linear`` between ``lo`` and ``hi`` (the direction applies to the change).
    """

    model_config = ConfigDict(extra="forbid")
    rule: Literal["linear", "thresholds", "rank", "zscore", "yoy"]
    lo: SFloat | None = None
    hi: SFloat | None = None
    steps: list[tuple[SFloat, SFloat]] | None = None
    below: SFloat = 0.0
    cap: SFloat = 2.0
    relative: SBool = False
    peers: Literal["all", "county", "city", "province", "area_type"] = "all"

    @model_validator(mode="after")
    def _complete(self) -> Scoring:
        if self.rule in ("linear", "yoy"):
            if self.lo is None or self.hi is None:
                raise ValueError(f"rule {self.rule} needs lo and hi")
            if not self.hi > self.lo:
                raise ValueError(f"hi ({self.hi}) must be greater than lo ({self.lo})")
        if self.rule == "thresholds":
            if not self.steps:
                raise ValueError("rule thresholds needs steps: [[bound, points], …]")
            bounds = [b for b, _ in self.steps]
            if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise ValueError("thresholds steps must have strictly ascending bounds")
            if not all(0 <= pts <= 100 for _, pts in self.steps) or not 0 <= self.below <= 100:
                raise ValueError("thresholds points must lie between 0 and 100")
        if self.rule == "zscore" and self.cap <= 0:
            raise ValueError("cap must be positive")
        return self


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    label: Label
    source: Source
    unit: str = Field(min_length=1)
    direction: Literal["higher_better", "lower_better"]
    scoring: Scoring
    weight: SFloat = Field(1.0, gt=0)
    # skip: leave the score out (weights renormalised); zero: 0 points; carry: the last known value
    # of up to carry_periods earlier periods
    missing: Literal["skip", "zero", "carry"] = "skip"
    carry_periods: SInt = Field(3, ge=1, le=24)


class Capability(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    label: Label
    weight: SFloat = Field(1.0, gt=0)
    indicators: list[Indicator] = Field(min_length=1)


class IndexDefinition(BaseModel):
    """A whole index: its capabilities (sub-scores) and their indicators."""

    model_config = ConfigDict(extra="forbid")
    index_id: Id
    label: Label
    capabilities: list[Capability] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> IndexDefinition:
        ids = [c.id for c in self.capabilities] + [i.id for c in self.capabilities for i in c.indicators]
        dup = sorted({x for x in ids if ids.count(x) > 1})
        if dup:
            raise ValueError(f"ids must be unique across capabilities and indicators; repeated: {', '.join(dup)}")
        clash = sorted(set(ids) & {"station_id", "period", "index", "rank"})
        if clash:
            raise ValueError(f"reserved id(s): {', '.join(clash)}")
        return self

    @property
    def indicators(self) -> list[tuple[Capability, Indicator]]:
        return [(c, i) for c in self.capabilities for i in c.indicators]

    def capability(self, key: str) -> Capability:
        """A capability by id or Chinese/English label (``防警情``)."""
        for c in self.capabilities:
            if key in (c.id, c.label.zh, c.label.en):
                return c
        raise KeyError(key)

    def tables(self) -> list[str]:
        return sorted({i.source.table for _, i in self.indicators})


def _format(err: ValidationError, source: str, data: dict) -> str:
    lines = [f"invalid index definition in {source}:"]
    for e in err.errors():
        loc = _named_loc(e["loc"], data)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def _named_loc(loc: tuple, data: Any) -> str:
    """``capabilities.0.indicators.2.weight`` → ``capabilities[prevent_incidents].indicators[fights].weight``."""
    out, node = [], data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            name = node.get("id") if isinstance(node, dict) else None
            out[-1] = f"{out[-1]}[{name if name else part}]" if out else f"[{part}]"
            continue
        out.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(out) or "(top level)"


def validate_definition(data: Any, source: str = "<dict>") -> IndexDefinition:
    """Validate a definition dict; raise :class:`IndexDefinitionError` with every problem listed."""
    if not isinstance(data, dict):
        raise IndexDefinitionError(f"invalid index definition in {source}: expected a mapping, "
                                   f"got {type(data).__name__}")
    try:
        return IndexDefinition.model_validate(data)
    except ValidationError as err:
        raise IndexDefinitionError(_format(err, source, data)) from None


def load_definition(path: str | Path) -> IndexDefinition:
    """Read and validate an index definition YAML file (UTF-8, repeated keys refused)."""
    p = Path(path)
    if not p.is_file():
        raise IndexDefinitionError(f"index definition not found: {p}")
    try:
        data = read_params_yaml(p)
    except ParamsError as e:  # same wording, named as an index definition
        raise IndexDefinitionError(re.sub(r"^params file", "index definition", str(e))) from None
    return validate_definition(data, source=str(p))


__all__ = ["Capability", "IndexDefinition", "IndexDefinitionError", "Indicator", "PANEL_COLUMNS", "REPORT_TABLES",
           "Scoring", "Source", "load_definition", "source_columns", "validate_definition"]
