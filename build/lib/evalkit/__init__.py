"""evalkit — evaluate police-station reforms with modern difference-in-differences."""

__version__ = "0.1.0"

from evalkit.evaluation import Evaluation, evaluate  # noqa: E402
from evalkit.params import EvaluationParams, load_params  # noqa: E402
from evalkit.results import EstimationResult  # noqa: E402

__all__ = ["EstimationResult", "Evaluation", "EvaluationParams", "evaluate", "load_params", "__version__"]
