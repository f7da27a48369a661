"""evalkit.step_ahead: a step run ahead in a forked child gives what computing it here gives (issue 15)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from evalkit.step_ahead import Ahead, run_ahead

fork_only = pytest.mark.skipif(not (hasattr(os, "fork") and sys.platform.startswith("linux")),
                               reason="run_ahead forks on Linux only")


@fork_only
def test_forked_value_is_the_value_computed_here(monkeypatch):
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 40))  # a value larger than a pipe's buffer comes through whole

    def step():
        return {"x": x @ x.T, "frame": pd.DataFrame({"a": [1.5, np.nan]}), "pid": os.getpid()}

    with run_ahead(step) as ahead:
        assert ahead.forked
        got = ahead.result()
    assert got["pid"] != os.getpid()  # computed in the child
    assert np.array_equal(got["x"], x @ x.T)
    pd.testing.assert_frame_equal(got["frame"], step()["frame"])
    assert ahead.pid is None  # the child was reaped


@fork_only
@pytest.mark.parametrize("case", ["raises", "unpicklable", "child dies"])
def test_a_child_that_does_not_deliver_is_replaced_by_computing_here(monkeypatch, case):
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")
    parent = os.getpid()

    def step():
        if os.getpid() == parent:
            return "here"
        if case == "raises":
            raise ValueError("only in the child")
        if case == "unpicklable":
            return threading.Lock()
        os._exit(3)

    with run_ahead(step) as ahead:
        assert ahead.forked
        assert ahead.result() == "here"


@fork_only
def test_an_error_of_the_step_is_raised_here(monkeypatch):
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")

    def step():
        raise ValueError("no draws")

    with run_ahead(step) as ahead, pytest.raises(ValueError, match="no draws"):
        ahead.result()


@fork_only
def test_cancel_stops_a_child_whose_result_is_never_read(monkeypatch):
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "1")
    ahead = run_ahead(lambda: np.zeros(10**6))  # 8 MB: the child waits on the full pipe
    pid = ahead.pid
    assert pid is not None
    ahead.cancel()
    assert ahead.pid is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no such child any more


def test_switched_off_computes_here_when_asked(monkeypatch):
    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "0")
    calls = []
    ahead = run_ahead(lambda: calls.append(1) or len(calls))
    assert isinstance(ahead, Ahead) and not ahead.forked and not calls  # nothing computed yet
    assert ahead.result() == 1
    ahead.cancel()


@pytest.mark.slow
@fork_only
def test_romano_wolf_ahead_gives_the_serial_results(demo_warehouse, monkeypatch):
    """The evaluation's multiple-testing table and Romano–Wolf result with the draws run ahead in a
    child equal those computed in their turn, bit for bit."""
    import evalkit
    from evalkit.params import validate_params

    params = validate_params({
        "evaluation_id": "ahead", "reform": "两队一室", "outcomes": ["incidents_fight", "dispatches", "cases"],
        "region": {"area_type": "urban"}, "sensitivity": False, "warehouse": str(demo_warehouse),
        "pretrend_test": "chi2", "ri_draws": 49,
    })
    runs = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("EVALKIT_STEP_AHEAD", mode)
        runs[mode] = evalkit.evaluate(params)
    serial, ahead = runs["0"], runs["1"]
    assert serial.multiple_error is None and "p_romano_wolf" in serial.multiple
    pd.testing.assert_frame_equal(ahead.multiple, serial.multiple, check_exact=True)
    for o in params.outcomes:
        h = serial.params.headline
        assert ahead.results[o][h].inference["romano_wolf"].to_dict() == serial.results[o][h].inference[
            "romano_wolf"].to_dict()
