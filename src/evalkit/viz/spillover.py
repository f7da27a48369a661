"""Spillover chart (:func:`evalkit.estimators.spillover.estimate_spillover`): the direct effect at
adopting stations and the effect at untreated neighbours, by months since (their neighbour's) adoption."""

from __future__ import annotations

from typing import Any

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def plot_spillover(result: Any, *, labels: dict[str, str], scale: float = 1.0, ax=None):
    """Two series with pointwise 95% intervals: direct (rows ``event``) and neighbours (rows
    ``spillover`` with an event time), each with its average over the window as a dotted line.
    ``labels``: ``direct``, ``neighbours``, ``x``, ``y``, ``title``."""
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    est = result.estimates
    series = ((est[est["kind"] == "event"], est[est["kind"] == "overall"], TREATED_COLOR, "o", -0.12, labels["direct"]),
              (est[(est["kind"] == "spillover") & est["event_time"].notna()],
               est[(est["kind"] == "spillover") & est["event_time"].isna()], CONTROL_COLOR, "s", 0.12,
               labels["neighbours"]))
    for rows, avg, color, marker, off, label in series:
        rows = rows.sort_values("event_time")
        x = rows["event_time"].astype(float).to_numpy() + off
        y = rows["estimate"].to_numpy(dtype=float) * scale
        lo, hi = rows["ci_low"].to_numpy(dtype=float) * scale, rows["ci_high"].to_numpy(dtype=float) * scale
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt=marker, color=color, ms=3.5, lw=1, capsize=0, label=label)
        if not avg.empty:
            ax.axhline(float(avg["estimate"].iloc[0]) * scale, color=color, lw=1, ls=":")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(labels.get("title", ""), fontsize=11)
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    ax.legend(frameon=False, fontsize=8)
    tight_layout(ax.figure)
    return ax


__all__ = ["plot_spillover"]
