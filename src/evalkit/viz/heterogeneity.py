"""Forest plot of subgroup effects (:func:`evalkit.heterogeneity.subgroup_effects`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def plot_subgroups(sg: Any, *, title: str = "", xlabel: str = "", overall_label: str = "overall",
                   n_label: str = "n={n}", group_labels: dict[str, str] | None = None, ax=None):
    """Subgroup effects with their 95% intervals, one row per subgroup, in percent of the
    pre-adoption mean when the result has it (``pct`` columns; else outcome units), the overall
    effect as a vertical line and the adopting stations per group at the right (``n_label`` is
    formatted with ``n``, e.g. ``"n={n}"`` or ``"{n} 个派出所"``). Labels are passed in (zh or en);
    ``group_labels`` maps subgroup values to display names (e.g. ``{"urban": "城区"}``)."""
    use_cjk_font()
    t = sg.table
    pct = "pct" in t.columns
    est, lo, hi = (t["pct"], t["pct_low"], t["pct_high"]) if pct else (t["estimate"], t["ci_low"], t["ci_high"])
    est, lo, hi = (np.asarray(v, dtype=float) for v in (est, lo, hi))
    y = np.arange(len(t))[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.55 * len(t) + 1.6))
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=TREATED_COLOR, ms=5, lw=1.4, capsize=3)
    ov = sg.overall.get("estimate_pct" if pct else "estimate")
    if ov is not None:
        ax.axvline(ov, color=CONTROL_COLOR, lw=1, ls="--", label=overall_label)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    names = group_labels or {}
    ax.set_yticklabels([names.get(str(g), str(g)) for g in t["group"]])
    ax.set_ylim(-0.7, len(t) - 0.3)
    for yi, n in zip(y, t["n_adopters"], strict=True):
        ax.annotate(n_label.format(n=int(n)), (1.01, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8, color="grey")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    tight_layout(ax.figure)
    return ax


__all__ = ["plot_subgroups"]
