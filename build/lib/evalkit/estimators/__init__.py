"""Estimators. Every one has the signature

``estimate_x(panel, outcome, *, unit="station_id", time="period", cohort="first_treat",
cluster=None, alpha=0.05, **options) -> EstimationResult``

and is reachable by short name through :func:`get_estimator`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from evalkit.results import EstimationResult

# short name -> (module, function)
REGISTRY: dict[str, tuple[str, str]] = {
    "naive_yoy": ("evalkit.estimators.naive", "estimate_naive_yoy"),
    "did2x2": ("evalkit.estimators.did2x2", "estimate_did2x2"),
    "twfe": ("evalkit.estimators.twfe", "estimate_twfe"),
    "event_twfe": ("evalkit.estimators.twfe", "estimate_event_twfe"),
    "cs": ("evalkit.estimators.cs", "estimate_cs"),
    "sa": ("evalkit.estimators.sunab", "estimate_sunab"),
    "imputation": ("evalkit.estimators.imputation", "estimate_imputation"),
    "bacon": ("evalkit.estimators.bacon", "estimate_bacon"),
    "poisson": ("evalkit.estimators.poisson", "estimate_poisson"),
    "sdid": ("evalkit.estimators.sdid", "estimate_sdid"),
    "sc": ("evalkit.estimators.sdid", "estimate_sc"),
}


def get_estimator(name: str) -> Callable[..., EstimationResult]:
    """Return the estimator function registered under ``name``."""
    if name not in REGISTRY:
        raise KeyError(f"unknown estimator {name!r}; choose from {sorted(REGISTRY)}")
    module, func = REGISTRY[name]
    return getattr(import_module(module), func)


def available() -> list[str]:
    """Names whose implementation is importable in this installation."""
    out = []
    for name, (module, func) in REGISTRY.items():
        try:
            getattr(import_module(module), func)
        except (ImportError, AttributeError):
            continue
        out.append(name)
    return out
