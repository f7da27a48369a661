"""Dose–response chart (:func:`evalkit.estimators.dose.estimate_dose`): ATT(d) and ACRT(d) with
pointwise 95% intervals and uniform (sup-t) bands, the average marginal effect ACR^o marked."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.viz.style import BAND_COLOR, CONTROL_COLOR, TREATED_COLOR, plt, tight_layout, use_cjk_font


def _panel(ax, rows, scale: float, title: str, band_label: str) -> None:
    x = rows["dose"].to_numpy(dtype=float)
    y = rows["estimate"].to_numpy(dtype=float) * scale
    if rows["band_low"].notna().any():
        ax.fill_between(x, rows["band_low"] * scale, rows["band_high"] * scale, color=BAND_COLOR, alpha=0.35,
                        linewidth=0, label=band_label)
    lo, hi = rows["ci_low"].to_numpy(dtype=float) * scale, rows["ci_high"].to_numpy(dtype=float) * scale
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", color=TREATED_COLOR, ms=4, lw=1.2, capsize=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(title, fontsize=10.5)


def plot_dose(result: Any, *, labels: dict[str, str], scale: float = 1.0, dose_scale: float = 1.0,
              slope_scale: float = 1.0):
    """Two panels: ATT(d) (effect at dose d, outcome units × ``scale``) and ACRT(d) (its slope, per
    unit of dose), each with pointwise CIs and the uniform band, ACR^o as a dashed line. ``labels``:
    ``att_d``, ``acrt_d``, ``acr_o``, ``band``, ``x``, ``y``, ``y_slope`` (zh or en); ``dose_scale``
    multiplies the dose axis (100: a share shown in percent), ``slope_scale`` the slopes (0.1: per 10
    percentage points of a share). Returns the figure."""
    use_cjk_font()
    est = result.estimates
    att = est[est["kind"] == "dose"].sort_values("dose")
    acrt = est[est["kind"] == "dose_slope"].sort_values("dose")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, rows, title, sc, ylab in ((axes[0], att, labels["att_d"], scale, labels["y"]),
                                      (axes[1], acrt, labels["acrt_d"], scale * slope_scale,
                                       labels.get("y_slope", labels["y"]))):
        rows = rows.assign(dose=rows["dose"].astype(float) * dose_scale)
        _panel(ax, rows, sc, title, labels["band"])
        ax.set_xlabel(labels["x"])
        ax.set_ylabel(ylab)
    acr = est[est["kind"] == "aggregate"]
    if not acr.empty and np.isfinite(acr["estimate"].iloc[0]):
        axes[1].axhline(float(acr["estimate"].iloc[0]) * scale * slope_scale, color=CONTROL_COLOR, ls="--", lw=1,
                        label=labels["acr_o"])
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
    tight_layout(fig)
    return fig


__all__ = ["plot_dose"]
