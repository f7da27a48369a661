"""Single-station pilot chart: the treated station against its synthetic counterpart (SDID / SC)."""

from __future__ import annotations

from evalkit.results import EstimationResult
from evalkit.viz.style import CONTROL_COLOR, TREATED_COLOR, plt, use_cjk_font

_DEFAULT_LABELS = {
    "zh": {"treated": "处理组", "synthetic": "合成对照", "adoption": "改革实施", "x": "期", "y": ""},
    "en": {"treated": "Treated", "synthetic": "Synthetic control", "adoption": "Adoption", "x": "Period", "y": ""},
}


def plot_synthetic(result: EstimationResult, ax=None, labels: dict | None = None, *, lang: str = "zh",
                   adjusted: bool | None = None, show_time_weights: bool = True, title: str = ""):
    """Treated trajectory vs its synthetic counterpart, with the adoption line.

    ``adjusted`` (default: True for SDID/DiD, which fit an intercept) shifts the synthetic path by
    the λ-weighted pre-period gap, so the post-period vertical distance averages to the estimate.
    ``labels`` overrides ``treated``, ``synthetic``, ``adoption``, ``x``, ``y``. Time weights λ
    are drawn as a shaded area under the pre-period when ``show_time_weights``.
    """
    use_cjk_font()
    lab = dict(_DEFAULT_LABELS.get(lang, _DEFAULT_LABELS["en"]))
    lab.update(labels or {})
    traj = result.tables["trajectory"]
    if adjusted is None:
        adjusted = result.meta.get("method") != "sc"
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    x = traj["time"].to_numpy()
    ax.plot(x, traj["treated"], color=TREATED_COLOR, lw=2, label=lab["treated"])
    syn = traj["synthetic_adjusted"] if adjusted else traj["synthetic"]
    ax.plot(x, syn, color=CONTROL_COLOR, lw=2, ls="--", label=lab["synthetic"])
    adoption = result.meta.get("adoption")
    if adoption is not None:
        ax.axvline(adoption - 0.5, color="grey", ls=":", lw=1.2, label=lab["adoption"])
    tw = result.tables.get("time_weights")
    if show_time_weights and tw is not None and len(tw) and tw["weight"].max() > 0:
        lo, hi = ax.get_ylim()
        h = 0.15 * (hi - lo)
        ax.fill_between(tw["time"].to_numpy(), lo, lo + h * tw["weight"].to_numpy() / tw["weight"].max(),
                        color=CONTROL_COLOR, alpha=0.2, step="mid", linewidth=0)
        ax.set_ylim(lo, hi)
    ax.set_xlabel(lab["x"])
    if lab.get("y"):
        ax.set_ylabel(lab["y"])
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return ax


__all__ = ["plot_synthetic"]
