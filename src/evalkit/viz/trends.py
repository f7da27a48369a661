"""Trends chart: monthly means of adopting vs non-adopting stations."""

from __future__ import annotations

import pandas as pd

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def trends_plot(trends: pd.DataFrame, *, labels: tuple[str, str], adoption: tuple | None = None,
                adoption_label: str = "", title: str = "", xlabel: str = "", ylabel: str = "",
                scale: float = 1.0, ax=None):
    """Monthly means of adopters vs non-adopters; the adoption span shaded."""
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(trends.index, trends["treated"] * scale, color=TREATED_COLOR, lw=1.6, label=labels[0])
    ax.plot(trends.index, trends["control"] * scale, color=CONTROL_COLOR, lw=1.6, label=labels[1])
    if adoption is not None:
        a0, a1 = adoption
        if a0 == a1:
            ax.axvline(a0, color="grey", ls="--", lw=1, label=adoption_label)
        else:
            ax.axvspan(a0, a1, color="grey", alpha=0.12, label=adoption_label)
    ax.legend(frameon=False, fontsize=9, loc="best")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    tight_layout(ax.figure)
    return ax


__all__ = ["trends_plot"]
