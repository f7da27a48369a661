"""Randomization-inference chart: the placebo distribution with the actual estimate marked."""

from __future__ import annotations

from evalkit.results import EstimationResult
from evalkit.viz.style import plt, use_cjk_font


def plot_placebo(result: EstimationResult, ax=None, *, lang: str = "en", bins: int = 40):
    """Histogram of the placebo estimates with the actual estimate marked (returns the axes)."""
    if lang == "zh":
        use_cjk_font()
    pl = result.tables["placebo"]["estimate"].dropna().to_numpy()
    actual = result.att
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    ax.hist(pl, bins=bins, color="#95a5a6", edgecolor="white")
    ax.axvline(actual, color="#c0392b", linewidth=2)
    p = result.overall["p_value"]
    zh = lang == "zh"
    scheme = result.meta.get("scheme", "permute")
    what = ({"permute": "随机置换实施改革的派出所", "placebo_dates": "安慰剂改革日期"} if zh
            else {"permute": "adopting stations reshuffled", "placebo_dates": "placebo adoption dates"})[scheme]
    ax.set_xlabel("安慰剂估计值" if zh else "placebo estimate")
    ax.set_ylabel("次数" if zh else "count")
    ax.set_title((f"随机化检验：{what}（{len(pl)} 次），实际估计 {actual:.3g}，p = {p:.3f}") if zh
                 else f"Randomization inference: {what} ({len(pl)} draws); actual {actual:.3g}, p = {p:.3f}")
    ax.annotate("实际估计" if zh else "actual", xy=(actual, ax.get_ylim()[1] * 0.9), color="#c0392b",
                ha="left", xytext=(4, 0), textcoords="offset points")
    return ax


__all__ = ["plot_placebo"]
