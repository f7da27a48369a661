"""Charts of the prevention-index report: capability radars per station, the index over time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def radar_grid(values: pd.DataFrame, labels: list[str], *, reference: pd.Series | None = None,
               reference_label: str = "", titles: list[str] | None = None, ncols: int = 4):
    """One radar per row of ``values`` (columns = capabilities, 0–100 points), the ``reference``
    profile (e.g. the region's mean) dashed on each; a missing sub-score is drawn at 0 and marked
    with an open circle. Returns the figure."""
    use_cjk_font()
    n = len(values)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    k = values.shape[1]
    angles = np.linspace(0, 2 * np.pi, k, endpoint=False)
    closed = np.append(angles, angles[0])
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), subplot_kw={"polar": True},
                             squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= n:
            ax.set_visible(False)
            continue
        row = values.iloc[j].to_numpy(dtype=float)
        missing = np.isnan(row)
        y = np.where(missing, 0.0, row)
        if reference is not None:
            ref = reference.to_numpy(dtype=float)
            ax.plot(closed, np.append(ref, ref[0]), color=CONTROL_COLOR, lw=1, ls="--", label=reference_label)
        ax.plot(closed, np.append(y, y[0]), color=TREATED_COLOR, lw=1.4)
        ax.fill(closed, np.append(y, y[0]), color=TREATED_COLOR, alpha=0.2)
        if missing.any():
            ax.plot(angles[missing], y[missing], "o", mfc="white", mec=TREATED_COLOR, ms=4)
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75, 100])
        ax.set_yticklabels([])
        ax.set_xticks(angles)
        ax.set_xticklabels(labels, fontsize=6.5)
        ax.tick_params(pad=0)
        ax.grid(alpha=0.4)
        if titles:
            ax.set_title(titles[j], fontsize=8.5, pad=10)
    if reference is not None and n:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", frameon=False, fontsize=8,
                   ncol=1)
    tight_layout(fig, rect=(0, 0.04 if reference is not None else 0, 1, 1))
    return fig


def index_trend(trend: pd.DataFrame, lines: dict[str, pd.Series] | None = None, *, mean_label: str,
                band_label: str, title: str = "", ylabel: str = "", mark: str | None = None, ax=None):
    """The region's mean index per period with its 10–90 % band over stations, plus ``lines`` (label →
    series indexed by period label, e.g. the best and the worst station); ``mark``: a period label
    drawn as a dotted vertical line (the reported period). x: the period labels."""
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    x = np.arange(len(trend))
    ax.fill_between(x, trend["p10"], trend["p90"], color=CONTROL_COLOR, alpha=0.15, label=band_label)
    ax.plot(x, trend["mean"], color=CONTROL_COLOR, lw=1.8, label=mean_label)
    pos = {p: i for i, p in enumerate(trend["period"])}
    colors = (TREATED_COLOR, "#2e86c1", "#2ca02c", "#9467bd")
    for (label, s), color in zip((lines or {}).items(), colors, strict=False):
        s = s[s.index.isin(pos)]
        ax.plot([pos[p] for p in s.index], s.to_numpy(dtype=float), lw=1.2, color=color, label=label)
    if mark in pos:
        ax.axvline(pos[mark], color="grey", ls=":", lw=1)
    step = max(1, len(x) // 8)
    ax.set_xticks(x[::step])
    ax.set_xticklabels(list(trend["period"])[::step], fontsize=8)
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, fontsize=8, loc="lower left", ncol=2)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    tight_layout(ax.figure)
    return ax


__all__ = ["index_trend", "radar_grid"]
