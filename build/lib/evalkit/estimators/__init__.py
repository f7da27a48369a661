"""Estimators. Every one has the signature

``estimate_x(panel, outcome, *, unit="station_id", time="period", cohort="first_treat",
cluster=None, alpha=0.05, **options) -> EstimationResult``

starts from :func:`evalkit.estimators._sample.build_sample`, and is described by one
:class:`EstimatorSpec` in :data:`SPECS` (see :mod:`evalkit.estimators.specs`). Reach it by short
name through :func:`get_estimator`, which rejects unknown options. Importing this package loads
no estimator module (they are imported on first use).
"""

from __future__ import annotations

from importlib import import_module

from evalkit.estimators._sample import PanelInputError, SampleInfo, StaggeredSample, build_sample
from evalkit.estimators.specs import (
    SPECS,
    EstimatorSpec,
    check_options,
    default_estimators,
    default_headline,
    get_estimator,
    get_spec,
    names,
)

__all__ = ["SPECS", "REGISTRY", "EstimatorSpec", "PanelInputError", "SampleInfo", "StaggeredSample", "available",
           "build_sample", "check_options", "default_estimators", "default_headline", "get_estimator", "get_spec",
           "names"]

#: short name -> (module, function); derived from :data:`SPECS`, kept for older callers
REGISTRY: dict[str, tuple[str, str]] = {n: tuple(s.function.split(":")) for n, s in SPECS.items()}  # type: ignore[misc]


def available() -> list[str]:
    """Names whose implementation is importable in this installation."""
    out = []
    for name, spec in SPECS.items():
        module, func = spec.function.split(":")
        try:
            getattr(import_module(module), func)
        except (ImportError, AttributeError):
            continue
        out.append(name)
    return out
