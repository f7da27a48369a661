"""Event-study chart: effect by months since adoption, pointwise CIs and uniform bands."""

from __future__ import annotations

import pandas as pd

from evalkit.viz.style import BAND_COLOR, CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def event_study_plot(events: pd.DataFrame, *, title: str = "", xlabel: str = "", ylabel: str = "",
                     scale: float = 1.0, ax=None):
    """Event-study chart: point estimates with pointwise CIs, and uniform bands when present."""
    use_cjk_font()
    ev = events.sort_values("event_time")
    x = ev["event_time"].astype(float).to_numpy()
    y = ev["estimate"].to_numpy() * scale
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    if "band_low" in ev and ev["band_low"].notna().any():
        ax.fill_between(x, ev["band_low"] * scale, ev["band_high"] * scale, color=BAND_COLOR, alpha=0.35,
                        step=None, linewidth=0, label="uniform 95% band")
    lo, hi = ev["ci_low"].to_numpy() * scale, ev["ci_high"].to_numpy() * scale
    pre = x < 0
    ax.errorbar(x[pre], y[pre], yerr=[y[pre] - lo[pre], hi[pre] - y[pre]], fmt="o", color=CONTROL_COLOR,
                ms=3.5, lw=1, capsize=0)
    ax.errorbar(x[~pre], y[~pre], yerr=[y[~pre] - lo[~pre], hi[~pre] - y[~pre]], fmt="o", color=TREATED_COLOR,
                ms=3.5, lw=1, capsize=0)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", lw=0.8, ls="--")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    tight_layout(ax.figure)
    return ax


__all__ = ["event_study_plot"]
