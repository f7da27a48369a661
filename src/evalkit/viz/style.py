"""Shared chart style of :mod:`evalkit.viz`: the matplotlib backend, CJK fonts, colours and ``show``."""

from __future__ import annotations

import warnings
from functools import lru_cache

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://", "inline")) else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402

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


def month_axis(ax, axis: str = "x"):
    """Label an axis whose values are period indices (``year*12 + month-1``) as ``YYYY-MM`` months,
    ticks on whole months only (a chart's time axis is always in months, never raw integers)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from evalkit.registry import period_label

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(nbins=7, integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: period_label(int(round(v))) if v > 0 else ""))
    return ax


def tight_layout(fig, **kwargs) -> None:
    """``fig.tight_layout(**kwargs)`` measured by a :class:`~evalkit.viz._agg.SharedMetricsCanvas` renderer
    (the same numbers as the figure's own Agg canvas, its text metrics shared with the other charts);
    the figure keeps its own canvas."""
    from evalkit.viz._agg import SharedMetricsCanvas

    own = fig.canvas
    SharedMetricsCanvas(fig)
    try:
        fig.tight_layout(**kwargs)
    finally:
        fig.set_canvas(own)


def png_bytes(fig, dpi: int = 130) -> bytes:
    """The figure as PNG bytes, cropped like ``savefig(format="png", bbox_inches="tight")``.

    The same pixels as that call (the brief's pages stay identical), encoded faster: the tight
    crop is rendered once to raw RGBA by the same Agg pass, then written as RGB when every pixel
    is opaque (always, with the brief's white figures; any transparency keeps RGBA) at zlib level 1.
    matplotlib's own PNG (RGBA, zlib level 6) spent ~15 ms of a ~0.1 s chart in the encoder; this
    one ~8 ms, for files of about the same size. ``dpi``: pixels per inch of the image.
    """
    import io

    from PIL import Image

    from evalkit.viz._agg import SharedMetricsCanvas

    sizes: list[tuple[float, float]] = []  # the renderer of the last draw is the cropped one
    own = fig.canvas
    engine = fig.get_layout_engine()
    SharedMetricsCanvas(fig)  # the layout and saving passes (and other charts) share text metrics
    cid = fig.canvas.mpl_connect("draw_event", lambda e: sizes.append(e.renderer.get_canvas_width_height()))
    raw = io.BytesIO()
    try:
        bbox = _tight_bbox(fig, dpi) if isinstance(engine, (PlaceHolderLayoutEngine, type(None))) else "tight"
        if bbox != "tight":
            fig.set_layout_engine(None)  # a no-op placeholder (left by tight_layout) would make savefig lay out again
        fig.savefig(raw, format="rgba", dpi=dpi, bbox_inches=bbox)
    finally:
        fig.canvas.mpl_disconnect(cid)
        fig.set_canvas(own)
        if fig.get_layout_engine() is not engine:
            fig.set_layout_engine(engine)
    w, h = (int(round(x)) for x in sizes[-1]) if sizes else (0, 0)
    out = io.BytesIO()
    if w * h * 4 != raw.getbuffer().nbytes or w * h == 0:  # not an Agg raster: matplotlib's own PNG
        fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
        return out.getvalue()
    rgba = np.frombuffer(raw.getbuffer(), dtype=np.uint8).reshape(h, w, 4)
    opaque = bool(rgba[..., 3].min() == 255)
    img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]) if opaque else rgba, "RGB" if opaque else "RGBA")
    img.save(out, format="png", compress_level=1, dpi=(dpi, dpi))
    return out.getvalue()


def _tight_bbox(fig, dpi: float):
    """``savefig(bbox_inches="tight")``'s crop box (inches, padded by ``savefig.pad_inches``), measured on
    ``fig``'s canvas at ``dpi`` as savefig measures it, without the full layout pass savefig runs first
    (a draw with drawing disabled, then ``get_tightbbox`` lays every artist out again: the same
    numbers, one pass fewer)."""
    old = fig.dpi
    fig.dpi = dpi
    try:
        renderer = fig.canvas.get_renderer()
        bbox = fig.get_tightbbox(renderer)
    finally:
        fig.dpi = old
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return bbox.padded(pad, pad)


def show(obj, dpi: int = 130) -> None:
    """Display a figure (or the figure of an Axes) as a PNG in the notebook, whatever the backend.

    Rendering explicitly to PNG (:func:`png_bytes`) keeps charts in executed notebooks and briefs
    even when the kernel runs a non-inline backend (e.g. ``MPLBACKEND=Agg`` in batch jobs).
    """
    show_png(png_of(obj, dpi))


def png_of(obj, dpi: int = 130) -> bytes | None:
    """The PNG of a figure (or of the figure of an Axes), which is then closed; None for None."""
    if obj is None:
        return None
    fig = figure_of(obj)
    data = png_bytes(fig, dpi)
    plt.close(fig)
    return data


def figure_of(obj):
    """The figure of a figure, an Axes or an array of Axes."""
    fig = getattr(obj, "figure", obj)
    return fig.flat[0].figure if isinstance(fig, np.ndarray) else fig


def show_png(data: bytes | None) -> None:
    """Display PNG bytes in the notebook as :func:`show` does (nothing for ``None``: no chart)."""
    from IPython.display import Image, display

    if data is not None:
        display(Image(data=data, format="png"))
