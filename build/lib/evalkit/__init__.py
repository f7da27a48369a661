"""evalkit — evaluate police-station reforms with modern difference-in-differences.

``import evalkit`` is light: the names below are imported on first use (PEP 562), so the CLI
commands that need no statistics (``evalkit validate``, ``evalkit brief``) start without loading
scipy, the estimators or matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Evaluation": "evalkit.evaluation",
    "evaluate": "evalkit.evaluation",
    "EvaluationParams": "evalkit.params",
    "load_params": "evalkit.params",
    "EstimationResult": "evalkit.results",
}

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.evaluation import Evaluation, evaluate
    from evalkit.params import EvaluationParams, load_params
    from evalkit.results import EstimationResult


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")


__all__ = ["EstimationResult", "Evaluation", "EvaluationParams", "evaluate", "load_params", "__version__"]
