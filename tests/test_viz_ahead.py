"""Charts drawn ahead in a forked child (:mod:`evalkit.viz.ahead`, issue 15): the notebook gets the very
bytes it would draw itself, each chart is drawn once, and whatever the child does not deliver is drawn
in this process (errors included)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from evalkit.viz import ahead
from evalkit.viz.style import plt, png_bytes, use_cjk_font

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork ahead: Linux only")


class Owner:
    """Stands for the evaluation the handle is kept on."""


def _chart(seed: int):
    use_cjk_font()
    fig, ax = plt.subplots(figsize=(5, 3))
    y = np.random.default_rng(seed).normal(size=30).cumsum()
    ax.plot(np.arange(30), y, color="#c0392b")
    ax.set_title(f"趋势 {seed}")
    ax.set_xlabel("月份")
    return ax


def _sequential(seeds) -> list[bytes]:
    out = []
    for s in seeds:
        ax = _chart(s)
        out.append(png_bytes(ax.figure))
        plt.close(ax.figure)
    return out


@pytest.fixture
def run_by_evalkit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_PROGRESS_FILE", "/nonexistent/progress.json")  # a kernel `evalkit run` started
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")


def _builders(seeds, drawn_here: list[int], child_log=None):
    def build(s: int):
        def f():
            if os.getpid() == parent:
                drawn_here.append(s)
            elif child_log is not None:
                with open(child_log, "a") as fh:
                    fh.write(f"{s}\n")
            return _chart(s)
        return f

    parent = os.getpid()
    return [(("chart", s), build(s)) for s in seeds]


def test_charts_ahead_are_the_bytes_drawn_here_each_drawn_once(run_by_evalkit, tmp_path) -> None:
    seeds = [1, 2, 3, 4]
    expected = _sequential(seeds)
    owner, here, log = Owner(), [], tmp_path / "child.txt"
    charts = _builders(seeds, here, log)
    assert ahead.start(owner, charts)
    handle = owner.__dict__[ahead._ATTR]
    for _ in range(2000):  # a loaded host may start the child late: let it take the last chart first
        if handle.child_low() < len(seeds):
            break
        time.sleep(0.005)
    got = [ahead.png(owner, key, build) for key, build in charts]
    assert got == expected  # byte for byte
    in_child = [int(x) for x in log.read_text().split()] if log.exists() else []
    assert 1 in here and 4 in in_child  # the two ends: the parent's first chart, the child's last
    assert sorted(here + in_child) == seeds  # each chart drawn once
    assert ahead._ATTR not in owner.__dict__  # reaped after the last chart


def test_no_child_outside_evalkit_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_PROGRESS_FILE", raising=False)
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")
    owner, here = Owner(), []
    charts = _builders([1, 2], here)
    assert not ahead.start(owner, charts)
    assert [ahead.png(owner, k, b) for k, b in charts] == _sequential([1, 2])
    assert here == [1, 2]


def test_a_chart_failing_or_absent_in_the_child_is_drawn_here(run_by_evalkit) -> None:
    def broken():
        raise ValueError("no bounds to draw")

    owner = Owner()
    charts = [(("a",), lambda: _chart(1)), (("none",), lambda: None), (("broken",), broken)]
    assert ahead.start(owner, charts)
    assert ahead.png(owner, ("a",), charts[0][1]) == _sequential([1])[0]
    assert ahead.png(owner, ("none",), charts[1][1]) is None
    with pytest.raises(ValueError, match="no bounds"):  # the parent meets the error itself
        ahead.png(owner, ("broken",), broken)


def test_a_killed_child_leaves_its_charts_to_the_parent(run_by_evalkit) -> None:
    owner, here = Owner(), []
    charts = _builders([1, 2, 3], here)
    assert ahead.start(owner, charts)
    os.kill(owner.__dict__[ahead._ATTR].pid, 9)
    assert [ahead.png(owner, k, b) for k, b in charts] == _sequential([1, 2, 3])


def test_a_handle_never_asked_is_reaped(run_by_evalkit) -> None:
    owner = Owner()
    assert ahead.start(owner, _builders([1, 2], []))
    pid = owner.__dict__[ahead._ATTR].pid
    ahead.finish(owner)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_stuck_child_is_killed_and_its_chart_drawn_here(run_by_evalkit, monkeypatch) -> None:
    """A child that does not deliver the chart the notebook waits for within ``DEADLINE`` (here it sleeps,
    as one stuck on a lock copied at the fork would) is killed; the chart is drawn here, the same bytes."""
    monkeypatch.setattr(ahead, "DEADLINE", 0.5)
    parent = os.getpid()

    def stuck():
        if os.getpid() != parent:
            time.sleep(20)
        return _chart(3)

    owner = Owner()
    charts = [*_builders([1, 2], []), (("chart", 3), stuck)]
    assert ahead.start(owner, charts)
    handle = owner.__dict__[ahead._ATTR]
    pid = handle.pid
    for _ in range(2000):  # the child has taken the last chart (and sleeps in it)
        if handle.child_low() < len(charts):
            break
        time.sleep(0.005)
    t0 = time.monotonic()
    assert ahead.png(owner, ("chart", 3), stuck) == _sequential([3])[0]
    assert time.monotonic() - t0 < 10
    assert ahead._ATTR not in owner.__dict__
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(pid, os.WNOHANG)


def test_the_notes_cell_reaps_a_child_whose_charts_were_never_asked(run_by_evalkit, monkeypatch) -> None:
    from evalkit import report

    for name in ("data_note", "method_note"):
        monkeypatch.setattr(report, name, lambda _ev: "note")
    monkeypatch.setattr(report, "technical_reasons", lambda _ev: [])
    monkeypatch.setattr(report, "_html", lambda _s: None)
    owner = Owner()
    owner.lang = "en"
    assert ahead.start(owner, _builders([1, 2], []))
    pid = owner.__dict__[ahead._ATTR].pid
    report.show_notes(owner)
    assert ahead._ATTR not in owner.__dict__
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@pytest.mark.slow
def test_the_brief_shows_the_charts_ahead_in_brief_charts_order_and_the_same_bytes(demo_warehouse, monkeypatch):
    """On a real evaluation: the show_* functions ask for exactly :func:`evalkit.report.brief_charts`'s
    keys, in that order, and a brief drawn with the child shows the bytes of one drawn without it."""
    import evalkit
    from evalkit import report
    from evalkit.params import validate_params

    ev = evalkit.evaluate(validate_params({
        "evaluation_id": "ahead", "reform": "一村一辅警", "outcomes": ["disputes_opened"], "region": {"area_type": "rural"},
        "inference": ["randomization"], "ri_draws": 49, "sensitivity": True, "dose": {"degree": 1, "small_cohorts": "skip"},
        "warehouse": str(demo_warehouse), "lang": "zh"}))
    asked: list = []
    real_png, real_start, started = ahead.png, ahead.start, []
    monkeypatch.setattr(ahead, "start", lambda owner, charts, dpi=130: started.append(real_start(owner, charts, dpi)))
    monkeypatch.setattr(ahead, "png", lambda owner, key, build, dpi=130: asked.append(key) or real_png(owner, key, build, dpi))

    def brief(env: dict[str, str]) -> list[bytes]:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        shown: list[bytes] = []
        monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(getattr(obj, "data", None)))
        asked.clear()
        report.show_brief(ev)
        return [x for x in shown if isinstance(x, bytes)]

    serial = brief({"EVALKIT_STEP_AHEAD": "0"})
    keys = [k for k, _ in report.brief_charts(ev)]
    assert [k[0] for k in keys] == ["event_study", "trends", "sensitivity", "randomization", "analysis"]
    assert asked == keys
    forked = brief({"EVALKIT_PROGRESS_FILE": "/nonexistent/progress.json", "EVALKIT_STEP_AHEAD": "1"})
    assert started == [False, True]  # serial, then with the child
    assert ahead._ATTR not in ev.__dict__  # the child was used to the last chart and reaped
    assert forked == serial and len(serial) == len(keys)
