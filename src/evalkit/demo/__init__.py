"""Synthetic demo world with planted, known effects (``evalkit demo-data``).

Names are resolved lazily from :mod:`evalkit.demo.world` (PEP 562), so that importing a light
submodule — the brief's planted truth reads :mod:`evalkit.demo.truth` — does not load the world
generator and its exporters (pyarrow.parquet, the spreadsheet writers).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "SIZES",
    "World",
    "WorldFiles",
    "build_world",
    "compute_truth",
    "expected_outcomes",
    "generate_world",
    "load_truth",
    "read_manifest",
    "station_month_params",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("evalkit.demo.world"), name)
    raise AttributeError(f"module 'evalkit.demo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
