"""Further analyses of an evaluation beyond the headline (issue 17): the result type they share.

An evaluation's params may ask for any of these, each shown as its own brief section:

``dose``           dose–response DiD from the reforms' ``intensity`` (Callaway, Goodman-Bacon &
                   Sant'Anna), :func:`evalkit.estimators.dose.estimate_dose`;
``switching``      effects of switching the reform on and off from ``adopted_on``/``ended_on``
                   (de Chaisemartin & D'Haultfœuille), :func:`evalkit.estimators.switching.estimate_switching`;
``spillover``      the effect on untreated neighbouring stations (adjacency table) and the direct effect
                   without contaminated controls, :func:`evalkit.estimators.spillover.estimate_spillover`;
``heterogeneity``  effects by subgroup from the headline fit with an equality test,
                   :func:`evalkit.heterogeneity.subgroup_effects`.

``Evaluation.analyses`` maps kind → outcome → :class:`AnalysisSection`, kinds in :data:`KINDS` order,
only those asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the analysis kinds, in the order the brief shows them
KINDS: tuple[str, ...] = ("dose", "switching", "spillover", "heterogeneity")


@dataclass
class AnalysisSection:
    """One further analysis of one outcome.

    ``result``: an :class:`evalkit.results.EstimationResult` (dose, switching, spillover) or, for
    ``heterogeneity``, a dict ``{by: SubgroupResult}`` (one per grouping asked); ``None`` when it could
    not run, with ``error`` the one-line reason the brief shows as "not available: reason".
    ``facts``: the counts the brief states (e.g. ``n_stopped``, ``n_exposed``, ``n_dose_levels``),
    plain JSON values only.
    """

    kind: str
    outcome: str
    result: Any = None
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None
