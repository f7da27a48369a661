"""Charts for notebooks and briefs (matplotlib), with CJK fonts that render."""

from __future__ import annotations

import warnings
from functools import lru_cache

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://", "inline")) else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei")
TREATED_COLOR, CONTROL_COLOR, BAND_COLOR = "#c0392b", "#34495e", "#e8a39b"


@lru_cache(maxsize=1)
def use_cjk_font() -> str | None:
    """Configure matplotlib to use an installed CJK font; rebuild the font cache if needed.

    Returns the family used, or ``None`` if no CJK font is installed (Chinese labels would
    then render as boxes; ``make setup`` installs ``fonts-noto-cjk``).
    """
    def find() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((fam for fam in CJK_FAMILIES if fam in names), None)

    family = find()
    if family is None:  # the cache may predate the font installation
        font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)  # noqa: SLF001
        family = find()
    if family is not None:
        plt.rcParams["font.family"] = "sans-serif"
        plt.rcParams["font.sans-serif"] = [family, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    else:
        warnings.warn("no CJK font found: install fonts-noto-cjk", stacklevel=2)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3})
    return family


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
    ax.figure.tight_layout()
    return ax


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
    ax.figure.tight_layout()
    return ax


def show(obj, dpi: int = 130) -> None:
    """Display a figure (or the figure of an Axes) as a PNG in the notebook, whatever the backend.

    Rendering explicitly to PNG keeps charts in executed notebooks and briefs even when the
    kernel runs a non-inline backend (e.g. ``MPLBACKEND=Agg`` in batch jobs).
    """
    import io

    from IPython.display import Image, display

    fig = getattr(obj, "figure", obj)
    if isinstance(fig, np.ndarray):  # an array of Axes
        fig = fig.flat[0].figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))
