"""An Agg canvas whose renderers share plain-text metrics: the same pixels, fewer text layouts.

matplotlib caches a text's width / height / descent per renderer, and a chart saved with
``bbox_inches="tight"`` is drawn by two renderers at the saving dpi (a layout pass on the full
figure, then the cropped one), so every label was laid out again — with the CJK font ~0.3–1 ms
per label in FreeType (`FT2Font.set_text`), ~0.05–0.1 s CPU of a brief's charts. Here the metrics of plain (non-math)
text are kept per (text, font properties, dpi, font settings), which is everything Agg's
``get_text_width_height_descent`` reads, so the cached answer is the one it would compute.
"""

from __future__ import annotations

from typing import Any

from matplotlib import font_manager, rcParams
from matplotlib import text as mtext
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_font

# rcParams that choose the font file or change its glyph metrics (the FontProperties give the rest)
_FONT_RC = ("font.family", "font.sans-serif", "font.serif", "font.monospace", "font.cursive", "font.fantasy",
            "text.hinting", "text.hinting_factor", "text.kerning_factor")
_METRICS: dict[tuple, tuple[float, float, float]] = {}
_HEIGHTS: dict[tuple, tuple[float | None, float | None, float | None]] = {}  # font height metrics, same keys
_MAX_ENTRIES = 4096  # a brief has a few hundred labels; cleared when full


def _rc(key: str) -> Any:
    value = rcParams[key]
    return tuple(value) if isinstance(value, list) else value


class SharedMetricsRenderer(RendererAgg):
    """:class:`RendererAgg` whose plain-text metrics are shared by all its instances."""

    def _font_key(self, prop: Any) -> tuple:
        return (tuple(prop.get_family()), prop.get_style(), prop.get_variant(), prop.get_weight(),
                prop.get_stretch(), prop.get_size_in_points(), prop.get_file(), self.dpi,
                id(font_manager.fontManager), tuple(_rc(k) for k in _FONT_RC))

    def get_text_width_height_descent(self, s, prop, ismath):  # noqa: ANN001, ANN201 - matplotlib's signature
        if ismath:  # mathtext and TeX: matplotlib's own path, uncached here
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, *self._font_key(prop))
        hit = _METRICS.get(key)
        if hit is None:
            if len(_METRICS) >= _MAX_ENTRIES:
                _METRICS.clear()
            hit = _METRICS[key] = super().get_text_width_height_descent(s, prop, ismath)
        return hit

    def _get_font_height_metrics(self, prop):  # noqa: ANN001, ANN202 - matplotlib >= 3.11's hook in Text._get_layout
        """(ascent, descent, line gap) of ``prop``'s font in pixels, as ``Text._get_layout`` computes them
        when the renderer has no such method (finding the font and reading its tables for every label
        and every layout: ~1,000 times per brief); kept per font properties and dpi. Drawn while saving,
        the figure's dpi (what ``_get_layout`` reads) is the renderer's."""
        key = self._font_key(prop)
        hit = _HEIGHTS.get(key)
        if hit is None:
            if len(_HEIGHTS) >= _MAX_ENTRIES:
                _HEIGHTS.clear()
            hit = _HEIGHTS[key] = _height_metrics(prop, self.dpi)
        return hit


def _height_metrics(prop: Any, dpi: float) -> tuple[float | None, float | None, float | None]:
    """matplotlib 3.11's ``Text._get_layout`` font height metrics, the same arithmetic (same floats);
    (None, None, None) when the font has neither table (``_get_layout`` then measures "lp")."""
    font = get_font(mtext.fontManager._find_fonts_by_props(prop))  # noqa: SLF001 - text.py's font manager
    possible = [("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"), ("hhea", "lineGap", "ascent", "descent")]
    for table_name, linegap_key, ascent_key, descent_key in possible:
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        fontsize = prop.get_size_in_points()
        units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
        scale = 1 / units_per_em * fontsize * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[linegap_key] * scale
    return None, None, None


class SharedMetricsCanvas(FigureCanvasAgg):
    """Agg canvas drawing with :class:`SharedMetricsRenderer` (used while a chart is saved)."""

    def get_renderer(self) -> RendererAgg:
        renderer = super().get_renderer()
        if type(renderer) is RendererAgg:  # a fresh renderer of this size and dpi
            renderer.__class__ = SharedMetricsRenderer
        return renderer


__all__ = ["SharedMetricsCanvas", "SharedMetricsRenderer"]
