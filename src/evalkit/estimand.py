"""The headline estimand, once: the average effect over the adopting stations' months 0..H after
adoption, every adopter-month with an observed outcome weighted equally.

``H`` is the last event time of the params' ``event_window`` (default 24: months 0–24). This is
Callaway–Sant'Anna's "simple" aggregation trimmed to the window (cohort-size weights per cell) and
the imputation estimator's overall ATT restricted to ``0 ≤ e ≤ H`` (equal weights per treated
observation); written as a combination of event-time effects it is ``Σ_e w_e θ(e)`` with ``w_e``
the share of adopter-months at event time ``e`` (:func:`event_time_weights`). The sensitivity
analysis bounds this combination and the demo world's truth is computed for it, so page 1, the
robustness table, the sensitivity analysis and the planted truth answer the same question.
"""

from __future__ import annotations

import pandas as pd

from evalkit.registry import NEVER_TREATED

#: ``result.meta["estimand"]`` of every estimator whose overall row is the headline estimand
HEADLINE_ESTIMAND = "att_adopter_months_0_H"


def horizon(event_window: tuple[int, int]) -> tuple[int, int]:
    """(0, H): the event times the headline estimand averages, from ``event_window = (lo, H)``."""
    return 0, int(event_window[1])


def event_time_weights(panel: pd.DataFrame, outcome: str, last: int, *, unit: str = "station_id",
                       time: str = "period", cohort: str = "first_treat") -> pd.Series:
    """Share of adopter-months at each event time ``e = 0..last`` (index ``e``, sums to 1).

    Adopter-months: rows of stations that adopt inside the panel (``first_treat`` neither
    :data:`NEVER_TREATED` nor after the last period) with ``0 ≤ period − first_treat ≤ last`` and
    a non-missing ``outcome``. Event times with no such row get weight 0. Raises ``ValueError``
    when there is no adopter-month at all.
    """
    g = panel[cohort]
    t = panel[time]
    adopts = (g != NEVER_TREATED) & (g <= t.max())
    e = t - g
    keep = adopts & (e >= 0) & (e <= last) & panel[outcome].notna()
    counts = e[keep].astype(int).value_counts().reindex(range(0, last + 1), fill_value=0).sort_index()
    total = int(counts.sum())
    if total == 0:
        raise ValueError(f"no adopting station-month with an observed {outcome} in months 0–{last} after adoption")
    out = counts / total
    out.index.name = "event_time"
    return out


__all__ = ["HEADLINE_ESTIMAND", "event_time_weights", "horizon"]
