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
only those asked for (run by :mod:`evalkit.analyses_run`). ``results.json`` holds
``"analyses": {kind: {outcome: section.to_dict()}}`` (``docs/results-schema.md``).
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``kind``, ``outcome``, ``ok``, ``error``, ``facts`` and ``result`` — the
        :meth:`EstimationResult.to_dict` (the same JSON as ``evalkit estimate --json``) or, for
        ``heterogeneity``, ``{by: subgroup_dict(...)}``; ``None`` when it could not run."""
        from evalkit.results import _clean

        if self.result is None:
            res = None
        elif self.kind == "heterogeneity":
            res = {str(by): subgroup_dict(sg) for by, sg in self.result.items()}
        elif isinstance(self.result, dict):  # switching by direction: {"in": fit, "out": fit}
            res = {str(d): r.to_dict() for d, r in self.result.items()}
        else:
            res = self.result.to_dict()
        return {"kind": self.kind, "outcome": self.outcome, "ok": self.ok, "error": self.error,
                "facts": _clean(self.facts), "result": res}


def subgroup_dict(sg: Any) -> dict[str, Any]:
    """A :class:`evalkit.heterogeneity.SubgroupResult` as JSON: ``by``, ``estimator``, ``table`` (one
    record per subgroup: group, estimate, std_error, ci_low, ci_high, p_value, pct…, n_adopters,
    n_comparison, n_adopter_months, verdict, caps), ``overall``, ``equality`` (stat, df, p_value,
    status, reason), ``vcov`` (terms, matrix) and ``notes``."""
    from evalkit.results import _clean, _frame_records

    return {"by": sg.by, "estimator": sg.estimator, "table": _frame_records(sg.table), "overall": _clean(sg.overall),
            "equality": _clean(sg.equality), "vcov": {"terms": [str(t) for t in sg.vcov.index],
                                                      "matrix": _clean(sg.vcov.to_numpy())},
            "notes": list(sg.notes)}
