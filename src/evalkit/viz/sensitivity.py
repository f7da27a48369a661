"""Rambachan–Roth sensitivity chart: robust CIs against M̄ / M, the original CI on the left."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, use_cjk_font


def plot_sensitivity(df: pd.DataFrame, original_ci: Any = None, ax=None, lang: str = "zh", title: str = "",
                     bin_months: int | None = None):
    """Robust CIs against M̄ / M, with the original CI on the left (HonestDiD's sensitivity plot).

    ``bin_months``: width of the event study's bins (``Sensitivity.bin_months``); the smoothness
    axis then says that M bounds the change in slope between adjacent bins of that many months
    (M̄ is a ratio, the same whatever the bins)."""
    use_cjk_font()
    rm = (df["Delta"] == "DeltaRM").all() if "Delta" in df else True
    per = {"zh": "", "en": ""}
    if bin_months and not rm:
        per = {"zh": f"，每 {bin_months} 个月为一段" if bin_months > 1 else "，按月",
               "en": f", per {bin_months}-month bin" if bin_months > 1 else ", per month"}
    text = {
        "zh": {"orig": "原始", "x": "M̄（相对幅度）" if rm else f"M（平滑度{per['zh']}）", "y": "稳健置信区间"},
        "en": {"orig": "Original", "x": "M̄ (relative magnitude)" if rm else f"M (smoothness{per['en']})",
               "y": "Robust confidence interval"},
    }.get(lang, {})
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    m = df["M"].to_numpy(float)
    step = np.min(np.diff(np.unique(m))) if len(np.unique(m)) > 1 else 1.0
    mid = (df["lb"] + df["ub"]).to_numpy() / 2
    ax.errorbar(m, mid, yerr=[mid - df["lb"].to_numpy(), df["ub"].to_numpy() - mid], fmt="none",
                ecolor=TREATED_COLOR, capsize=4, lw=2, label=df["method"].iloc[0] if len(df) else None)
    if original_ci is not None:
        lo, hi = (original_ci["lb"], original_ci["ub"]) if isinstance(original_ci, dict) else original_ci
        x0 = m.min() - step
        ax.errorbar([x0], [(lo + hi) / 2], yerr=[[(hi - lo) / 2], [(hi - lo) / 2]], fmt="none",
                    ecolor=CONTROL_COLOR, capsize=4, lw=2, label=text.get("orig", "Original"))
    ax.axhline(0, color="grey", lw=1, ls=":")
    ax.set_xlabel(text.get("x", "M"))
    ax.set_ylabel(text.get("y", ""))
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return ax


__all__ = ["plot_sensitivity"]
