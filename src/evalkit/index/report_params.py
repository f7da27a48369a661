"""Parameters of a bureau's prevention-index report (``notebook: prevention_index``).

A params file of its own kind, validated like evaluation params (unknown keys, wrong types refused
with one message naming the file and the key) but with its own small model: a report is not an
evaluation (no reform, no outcomes). :func:`evalkit.params.load_params` returns this model when the
file says ``notebook: prevention_index``; ``evalkit run`` runs it like an evaluation.

Example (``params/index_bureau.yaml``)::

    evaluation_id: index_bureau
    notebook: prevention_index
    region: {county: 秋柳区}
    period: quarter          # month | quarter | year
    at: 2025-Q4              # the reported period (default: the last one with data)
    lang: zh
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalkit.params import MAX_ID_LENGTH, ParamsError, Region, SInt

_PERIOD_RE = {"month": r"\d{4}-(0[1-9]|1[0-2])", "quarter": r"\d{4}-Q[1-4]", "year": r"\d{4}"}


class IndexReportParams(BaseModel):
    """All settings of one index report. Keys map 1:1 to the notebook's parameters cell."""

    model_config = ConfigDict(extra="forbid")

    evaluation_id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=MAX_ID_LENGTH)
    title: str | None = None
    notebook: Literal["prevention_index"] = "prevention_index"
    index_definition: str = "params/index/prevention_index.yaml"
    region: Region = Field(default_factory=Region)
    period: Literal["month", "quarter", "year"] = "quarter"
    at: str | None = None  # the reported period label (2025-12, 2025-Q4, 2025); None: the last one
    radar_max: SInt = Field(12, ge=1, le=60)  # radar charts: at most this many stations (best first)
    lang: Literal["zh", "en"] = "zh"
    warehouse: str = "data/warehouse.duckdb"

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> str | None:
        return None if v is None else str(v)

    @model_validator(mode="after")
    def _at_matches_period(self) -> IndexReportParams:
        if self.at is not None and not re.fullmatch(_PERIOD_RE[self.period], self.at):
            raise ValueError(f"at: {self.at!r} is not a {self.period} label (e.g. "
                             f"{ {'month': '2025-12', 'quarter': '2025-Q4', 'year': '2025'}[self.period]})")
        return self

    def notebook_parameters(self) -> dict[str, Any]:
        """Flat dict injected into the notebook's ``parameters`` cell by papermill."""
        d = self.model_dump(mode="json")
        d["region"] = self.region.as_filter()
        return d

    @classmethod
    def from_notebook(cls, values: dict[str, Any]) -> IndexReportParams:
        """Rebuild from the notebook's parameter variables."""
        return validate_report_params({k: values[k] for k in cls.model_fields if k in values}, "notebook parameters")


def validate_report_params(data: dict[str, Any], source: str = "<dict>") -> IndexReportParams:
    """Validate; :class:`ParamsError` listing every problem (file and key named)."""
    try:
        return IndexReportParams.model_validate(data)
    except ValidationError as err:
        lines = [f"invalid index report parameters in {source}:"]
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = f"unknown key (allowed: {', '.join(IndexReportParams.model_fields)})"
            lines.append(f"  - {loc}: {msg}")
        raise ParamsError("\n".join(lines)) from None


__all__ = ["IndexReportParams", "validate_report_params"]
