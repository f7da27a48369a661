"""Pilot-design chart: power curves by number of treated stations (:mod:`evalkit.design.power`)."""

from __future__ import annotations

import pandas as pd

from evalkit.design.power import _LABELS
from evalkit.viz.style import plt, use_cjk_font


def plot_power(df: pd.DataFrame, lang: str = "zh", ax=None):
    """Power curves (power vs effect, one line per number of treated stations)."""
    if lang == "zh":
        use_cjk_font()
    lab = _LABELS[lang]
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    keys = ["design", "n_treated", "n_months_post", "n_stations"]
    for (des, n_tr, months, n_st), g in df.groupby(keys, sort=True):
        g = g.sort_values("effect_pct")
        name = lab["single"] if des == "single" else lab["n"].format(n=n_tr)
        if df["n_months_post"].nunique() > 1:
            name += f", {months}m" if lang == "en" else f"，{months} 个月"
        if df["n_stations"].nunique() > 1:
            name += f", N={n_st}"
        ax.plot(g["effect_pct"], g["power"], marker="o", label=name)
    ax.axhline(0.8, color="#7f8c8d", linestyle="--", linewidth=1, label=lab["target"])
    ax.axhline(float(df["alpha"].iloc[0]), color="#bdc3c7", linestyle=":", linewidth=1, label=lab["alpha"])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(lab["x"])
    ax.set_ylabel(lab["y"])
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title(lab["title"].format(months=int(df["n_months_post"].iloc[0]), stations=int(df["n_stations"].iloc[0])))
    ax.legend(frameon=False, fontsize=9)
    return ax


__all__ = ["plot_power"]
