"""Speed work on the notebook's cells after ``evaluate()`` (issue 15, branch ``s21-cells``): nothing
the brief or ``results.json`` shows may change.

* Charts are encoded by :func:`evalkit.viz.style.png_bytes` (raw Agg crop → RGB PNG at zlib level 1,
  drawn on :class:`evalkit.viz._agg.SharedMetricsCanvas`) instead of ``savefig(format="png",
  bbox_inches="tight")``: the decoded pixels must be exactly matplotlib's.
* The ``results.json`` writer and its records builder must give the previous text byte for byte."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from evalkit.viz.style import plt, png_bytes, show, use_cjk_font


def _matplotlib_png(fig, dpi: int = 130) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _chart(two_panels: bool = False, transparent: bool = False):
    use_cjk_font()
    fig, axes = plt.subplots(1, 2 if two_panels else 1, figsize=(8, 3.6), squeeze=False)
    rng = np.random.default_rng(7)
    for ax in axes[0]:
        x = np.arange(-12, 25)
        y = rng.normal(size=x.size).cumsum()
        ax.fill_between(x, y - 1, y + 1, color="#e8a39b", alpha=0.35, linewidth=0)
        ax.errorbar(x, y, yerr=0.5, fmt="o", ms=3.5, lw=1, color="#c0392b")
        ax.axvline(-0.5, color="grey", ls="--")
        ax.set_title("事件研究 — 打架斗殴警情 M̄（相对幅度）")
        ax.set_xlabel("改革后月数")
        ax.legend(["均值", "区间"], frameon=False)
    if transparent:
        fig.patch.set_alpha(0.0)
        for ax in axes[0]:
            ax.patch.set_alpha(0.0)
    fig.tight_layout()
    return fig


@pytest.mark.parametrize("two_panels", [False, True])
@pytest.mark.parametrize("dpi", [130, 97])
def test_png_bytes_has_matplotlibs_pixels(two_panels: bool, dpi: int) -> None:
    fig = _chart(two_panels)
    try:
        ours, theirs = png_bytes(fig, dpi), _matplotlib_png(fig, dpi)
    finally:
        plt.close(fig)
    img = Image.open(io.BytesIO(ours))
    assert img.mode == "RGB"  # opaque figure: the alpha channel (all 255) is left out
    a, b = _pixels(ours), _pixels(theirs)
    assert a.shape == b.shape
    assert np.array_equal(a, b)
    assert img.info["dpi"] == pytest.approx(Image.open(io.BytesIO(theirs)).info["dpi"])


@pytest.mark.parametrize("layout", ["tight_layout", "none"])
def test_png_bytes_crops_as_matplotlib_around_text_outside_the_axes(layout: str) -> None:
    """The crop box is measured without savefig's own layout pass (one pass fewer): the same box with
    a legend and texts outside the axes, rotated tick labels, a suptitle; with and without tight_layout
    (a figure with another layout engine takes savefig's own path)."""
    use_cjk_font()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(np.arange(2019, 2026), np.arange(7) ** 1.5, label="处理组均值（每所每月）")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_xticks(np.arange(2019, 2026), [f"{y}-01" for y in range(2019, 2026)], rotation=45)
    fig.suptitle("事件研究 — 打架斗殴警情")
    fig.text(0.01, -0.05, "注：相对幅度以改革前月均值为基数")
    if layout == "tight_layout":
        fig.tight_layout()
    try:
        ours, theirs = png_bytes(fig), _matplotlib_png(fig)
        assert (fig.get_layout_engine() is None) == (layout == "none")  # left as it was
    finally:
        plt.close(fig)
    a, b = _pixels(ours), _pixels(theirs)
    assert a.shape == b.shape
    assert np.array_equal(a, b)


def test_png_bytes_keeps_transparency() -> None:
    fig = _chart(transparent=True)
    try:
        ours, theirs = png_bytes(fig), _matplotlib_png(fig)
    finally:
        plt.close(fig)
    assert Image.open(io.BytesIO(ours)).mode == "RGBA"
    a, b = _pixels(ours), _pixels(theirs)
    assert a[..., 3].min() < 255  # the test draws a see-through figure
    assert np.array_equal(a, b)


def test_show_displays_the_png_and_closes_the_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    fig = _chart()
    expected = _pixels(_matplotlib_png(fig))
    show(fig.axes[0])
    assert not plt.fignum_exists(fig.number)
    assert len(shown) == 1 and shown[0].format == "png"
    assert np.array_equal(_pixels(shown[0].data), expected)


# ---------------------------------------------------------------- results.json writer
def _previous_dumps_readable(value, indent: int = 2) -> str:
    """The writer before branch s21-cells (wall2's), kept as the reference: byte for byte the same text."""
    import json

    dumps = json.JSONEncoder(ensure_ascii=False).encode
    out: list[str] = []

    def flat(v) -> bool:
        if isinstance(v, dict):
            return not any(isinstance(x, (dict, list)) for x in v.values())
        if isinstance(v, list):
            return not any(isinstance(x, (dict, list)) for x in v)
        return True

    def emit(v, level: int) -> None:
        if flat(v) or not v:
            out.append(dumps(v))
            return
        pad, inner = "\n" + " " * (indent * level), "\n" + " " * (indent * (level + 1))
        if isinstance(v, dict):
            out.append("{")
            for i, (k, x) in enumerate(v.items()):
                out.append(("," if i else "") + inner + dumps(str(k)) + ": ")
                emit(x, level + 1)
            out.append(pad + "}")
        else:
            out.append("[")
            for i, x in enumerate(v):
                out.append(("," if i else "") + inner)
                emit(x, level + 1)
            out.append(pad + "]")

    emit(value, 0)
    return "".join(out)


def test_dumps_readable_writes_the_previous_text_byte_for_byte() -> None:
    from evalkit.results import EstimationResult, dumps_readable

    rng = np.random.default_rng(3)
    est = {"kind": ["overall", "event", "event"], "term": ["ATT", "e=-1", "e=0"], "estimate": [-1.5, 0.1, -2.0],
           "std_error": [0.3, 0.2, 0.4]}
    import pandas as pd

    r = EstimationResult("cs", "incidents_fight", pd.DataFrame(est), meta={"note": "a [b] {c}", "n": 3},
                         vcov={"event": pd.DataFrame(rng.normal(size=(2, 2)), index=["e=-1", "e=0"],
                                                     columns=["e=-1", "e=0"])})
    cases = [
        {"a": r.to_dict(), "b": [], "c": {}, "d": [[1, [2, {"e": "中文"}]], None, True, 1e-300, -0.0]},
        {"s": ["[not a list]", "{not a dict}", "plain"], "t": ["x", ["nested after a scalar"], {"k": "[v]"}]},
        {"u": [1, 2, {"late": {"deep": [3, "]"]}}], "v": [[], {}, [[]]], "w": ("tuple", ["in", "tuple"])},
        {"rows": [{"a": 1, "b": "[", "c": None}, {"a": 2, "b": "}", "c": 1.5}], "m": rng.normal(size=(3, 4)).tolist()},
        [], {}, 3, "x[", [["a"]], [1, [2]], ("t", 1), {"k": ()}, {"k": (1, [2])},
    ]
    for data in cases:
        assert dumps_readable(data) == _previous_dumps_readable(data)
        assert dumps_readable(data, indent=4) == _previous_dumps_readable(data, indent=4)


def test_frame_records_take_str_and_int_columns_as_they_are() -> None:
    """Columns of only str / int / bool / missing skip the value-by-value walk: same records, same types."""
    import math

    import pandas as pd

    from evalkit.results import _clean, _frame_records

    def reference(df: pd.DataFrame) -> list[dict]:
        return [{str(k): _clean(None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v)
                 for k, v in row.items()} for row in df.astype(object).to_dict(orient="records")]

    df = pd.DataFrame({
        "kind": pd.array(["overall", "event", "event"], dtype="string"),
        "term": ["ATT", "e=-1", "e=0"],
        "group": pd.array([pd.NA, 2019, 2020], dtype="Int64"),
        "all_na": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
        "flag": [True, False, True],
        "np_int": pd.Series([np.int64(1), np.int64(2), np.int64(3)], dtype=object),
        "mixed": pd.Series([1, "x", float("nan")], dtype=object),
        "bools": pd.Series([np.bool_(True), None, False], dtype=object),
        "estimate": [1.0, float("nan"), -0.0],
    })
    got = _frame_records(df)
    assert got == reference(df)
    assert [type(r["np_int"]) for r in got] == [int, int, int]  # numpy scalars still converted
    assert [type(r["bools"]) for r in got] == [bool, type(None), bool]
    assert got[0]["group"] is None and got[1]["group"] == 2019 and all(r["all_na"] is None for r in got)
    assert got[2]["mixed"] is None


# ---------------------------------------------------------------- shared text metrics
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # CJK text in DejaVu Sans: boxes, on purpose
def test_shared_metrics_equal_aggs_own_and_follow_the_font_settings() -> None:
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    from evalkit.viz._agg import SharedMetricsRenderer

    use_cjk_font()
    texts = ["0.5", "−0.2", "2020-01", "稳健置信区间", "M̄（相对幅度）", "lp", ""]
    props = [FontProperties(size=10), FontProperties(size=11, weight="bold"), FontProperties(family="DejaVu Sans", size=9)]
    for dpi in (110, 130):
        for settings in ({}, {"text.hinting": "no_hinting"}, {"font.sans-serif": ["DejaVu Sans"]}):
            with mpl.rc_context(settings):
                shared, own = SharedMetricsRenderer(400, 200, dpi), RendererAgg(400, 200, dpi)
                for s in texts:
                    for p in props:
                        assert shared.get_text_width_height_descent(s, p, False) == \
                            own.get_text_width_height_descent(s, p, False), (s, p, dpi, settings)
                        # a second renderer of another size answers from the cache: the same numbers
                        assert SharedMetricsRenderer(50, 50, dpi).get_text_width_height_descent(s, p, False) == \
                            own.get_text_width_height_descent(s, p, False)
    assert SharedMetricsRenderer(10, 10, 100).get_text_width_height_descent(r"$x^2$", props[0], True) == \
        RendererAgg(10, 10, 100).get_text_width_height_descent(r"$x^2$", props[0], True)  # mathtext: not cached


def test_png_bytes_gives_the_figure_its_own_canvas_back() -> None:
    fig = _chart()
    own = fig.canvas
    try:
        png_bytes(fig)
        assert fig.canvas is own and own.figure is fig
        assert np.array_equal(_pixels(png_bytes(fig)), _pixels(_matplotlib_png(fig)))  # again, same pixels
    finally:
        plt.close(fig)
