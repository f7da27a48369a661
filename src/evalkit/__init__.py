"""evalkit — evaluate police-station reforms with modern difference-in-differences."""

from evalkit.results import EstimationResult

__all__ = ["EstimationResult"]
__version__ = "0.1.0"
