"""Charts of notebooks and briefs, one module per chart family (matplotlib, CJK fonts).

* :mod:`evalkit.viz.style` — backend, CJK font, colours, :func:`show` (PNG into the notebook)
* :mod:`evalkit.viz.event_study` — :func:`event_study_plot`
* :mod:`evalkit.viz.trends` — :func:`trends_plot`
* :mod:`evalkit.viz.synthetic` — :func:`plot_synthetic` (single-station pilot, SDID / SC)
* :mod:`evalkit.viz.placebo` — :func:`plot_placebo` (randomization inference)
* :mod:`evalkit.viz.sensitivity` — :func:`plot_sensitivity` (Rambachan–Roth)
* :mod:`evalkit.viz.power` — :func:`plot_power` (pilot design)
* :mod:`evalkit.viz.heterogeneity` — :func:`plot_subgroups` (subgroup effects, forest plot)
* :mod:`evalkit.viz.dose` — :func:`plot_dose` (ATT(d), ACRT(d) with uniform bands)
* :mod:`evalkit.viz.switching` — :func:`plot_switching` (switching on / off, placebos)
* :mod:`evalkit.viz.spillover` — :func:`plot_spillover` (direct and neighbours' effects)

Statistics modules never import this package; names are resolved lazily, so
``import evalkit.viz`` does not load matplotlib until a chart is drawn.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "use_cjk_font": "style", "show": "style", "plt": "style",
    "event_study_plot": "event_study", "trends_plot": "trends", "plot_synthetic": "synthetic",
    "plot_placebo": "placebo", "plot_sensitivity": "sensitivity", "plot_power": "power",
    "plot_subgroups": "heterogeneity", "plot_dose": "dose", "plot_switching": "switching",
    "plot_spillover": "spillover",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"evalkit.viz.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'evalkit.viz' has no attribute {name!r}")


__all__ = sorted(_WHERE)
