"""Switching event study (:func:`evalkit.estimators.switching.estimate_switching`): effects after
switching on (or off) and the placebos before, with pointwise 95% intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font

_COLORS = {"in": TREATED_COLOR, "both": TREATED_COLOR, "out": "#2e86c1"}


def plot_switching(fits: dict[str, Any], *, labels: dict[str, str], scale: float = 1.0, signs: dict[str, float] | None = None,
                   ax=None):
    """Event study per direction (``fits``: ``in`` / ``out`` / ``both`` → result): effect rows
    (``event_time >= 0``, months since the switch) in colour, placebos (``< 0``) in grey; several
    directions are offset slightly. ``signs``: multiply a direction's estimates (−1 shows switching off
    with the sign of stopping). ``labels``: ``x``, ``y``, ``placebos`` and a label per direction."""
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    offsets = np.linspace(-0.15, 0.15, len(fits)) if len(fits) > 1 else [0.0]
    for off, (d, r) in zip(offsets, fits.items(), strict=True):
        ev = r.estimates[r.estimates["kind"] == "event"].sort_values("event_time")
        s = scale * (signs or {}).get(d, 1.0)
        x = ev["event_time"].astype(float).to_numpy() + off
        y = ev["estimate"].to_numpy(dtype=float) * s
        lo, hi = np.sort(np.c_[ev["ci_low"].to_numpy(dtype=float) * s, ev["ci_high"].to_numpy(dtype=float) * s], axis=1).T
        pre = x < 0
        ax.errorbar(x[~pre], y[~pre], yerr=[y[~pre] - lo[~pre], hi[~pre] - y[~pre]], fmt="o", color=_COLORS[d],
                    ms=3.5, lw=1, capsize=0, label=labels.get(d, d))
        if pre.any():
            ax.errorbar(x[pre], y[pre], yerr=[y[pre] - lo[pre], hi[pre] - y[pre]], fmt="s", color=CONTROL_COLOR,
                        mfc="white", ms=3.5, lw=1, capsize=0,
                        label=labels["placebos"] if d == next(iter(fits)) else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    ax.legend(frameon=False, fontsize=8)
    tight_layout(ax.figure)
    return ax


__all__ = ["plot_switching"]
