"""The font height metrics :class:`evalkit.viz._agg.SharedMetricsRenderer` keeps per font and dpi give
``Text._get_layout`` the very numbers matplotlib computes itself (issue 15: charts' text layout)."""

from __future__ import annotations

import matplotlib as mpl
import pytest
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure

from evalkit.viz._agg import SharedMetricsRenderer, _height_metrics
from evalkit.viz.style import use_cjk_font


def _plain(layout: tuple) -> tuple:
    bbox, lines, descent = layout
    return bbox.bounds, repr(lines), descent


@pytest.mark.parametrize("dpi", [110, 130, 97])
def test_text_layout_equals_matplotlibs_own(dpi: int) -> None:
    use_cjk_font()
    for settings in ({}, {"font.sans-serif": ["DejaVu Sans"]}, {"text.hinting": "no_hinting"}):
        with mpl.rc_context(settings):
            fig = Figure(dpi=dpi)
            texts = [fig.text(0.1, 0.1, s, size=size, weight=weight, family=family, rotation=rot)
                     for s in ("稳健置信区间\n第二行", "2020-01", "lp", "M̄（相对幅度）")
                     for size, weight, family, rot in ((10, "normal", "sans-serif", 0), (13, "bold", "sans-serif", 90),
                                                       (9, "normal", "DejaVu Sans", 0))]
            for _ in range(2):  # the second pass answers from the kept metrics
                shared, own = SharedMetricsRenderer(400, 300, dpi), RendererAgg(400, 300, dpi)
                for t in texts:
                    assert _plain(t._get_layout(shared)) == _plain(t._get_layout(own)), (t.get_text(), settings)
                    assert t.get_window_extent(shared).bounds == t.get_window_extent(own).bounds


def test_height_metrics_are_the_fonts_tables_scaled() -> None:
    from matplotlib.font_manager import FontProperties

    asc, desc, gap = _height_metrics(FontProperties(family="DejaVu Sans", size=10), 72)
    assert asc > 0 and desc > 0 and gap >= 0 and asc + desc < 15  # pixels of a 10-point font at 72 dpi
    assert _height_metrics(FontProperties(family="DejaVu Sans", size=20), 144)[0] == pytest.approx(4 * asc)


def test_tight_layout_places_the_axes_as_matplotlib_and_keeps_the_canvas() -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from evalkit.viz.style import tight_layout

    use_cjk_font()
    placed = []
    for ours in (False, True):
        fig = Figure(figsize=(7, 3.5), dpi=110)
        own = FigureCanvasAgg(fig)
        for ax in fig.subplots(1, 2):
            ax.plot(np.arange(10), np.arange(10) ** 2)
            ax.set_title("稳健置信区间 — M̄（相对幅度）")
            ax.set_xlabel("改革后月数")
            ax.set_ylabel("打架斗殴警情")
        tight_layout(fig, rect=(0, 0.04, 1, 1)) if ours else fig.tight_layout(rect=(0, 0.04, 1, 1))
        assert fig.canvas is own
        placed.append([ax.get_position().bounds for ax in fig.axes])
    assert placed[0] == placed[1]
