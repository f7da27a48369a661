"""The brief marker: a small machine-readable output of the executed notebook.

:func:`evalkit.report.show_header` emits it; :mod:`evalkit.export` reads it to put the evaluation
id, page numbers and the synthetic-data notice on every page. Kept apart so that the exporter
(``evalkit brief``) does not import the evaluation, the estimators or matplotlib.
"""

from __future__ import annotations

BRIEF_MIME = "application/vnd.evalkit.brief+json"

__all__ = ["BRIEF_MIME"]
