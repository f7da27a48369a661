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
        assert ahead.result() is got and ahead.forked  # read once, kept
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
def test_steps_ahead_give_the_serial_results(demo_warehouse, monkeypatch, tmp_path):
    """The evaluation with the pre-trend tests and Romano–Wolf draws run ahead in a child (robustness,
    sensitivity, the headline's jackknife and the further analyses that read no step meanwhile) writes
    the results.json of the serial order: same keys in the same order, same numbers bit for bit (timings
    apart), the further analyses included (heterogeneity, which reads the pre-trend p, after the steps)."""
    import json

    import evalkit
    from evalkit.evaluation import TIMING_KEYS
    from evalkit.params import validate_params

    params = validate_params({
        "evaluation_id": "ahead", "reform": "两队一室", "outcomes": ["incidents_fight", "dispatches", "cases"],
        "warehouse": str(demo_warehouse), "inference": ["randomization"], "heterogeneity": ["area_type"],
        "pretrend_draws": 49, "ri_draws": 49, "switching": {"effects": 3, "placebo": 2},
    })
    import evalkit.step_ahead as step_ahead

    started = []  # the handles run_ahead gave: with mode 1 one of them must be a forked child

    def spy(fn):
        ahead = real(fn)
        started.append(ahead.forked)
        return ahead

    real = step_ahead.run_ahead
    monkeypatch.setattr(step_ahead, "run_ahead", spy)
    text = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("EVALKIT_STEP_AHEAD", mode)
        started.clear()
        ev = evalkit.evaluate(params)
        ev.save(tmp_path / f"{mode}.json")
        data = json.loads((tmp_path / f"{mode}.json").read_text())
        text[mode] = json.dumps({k: v for k, v in data.items() if k not in TIMING_KEYS})
        assert any(started) == (mode == "1")  # the child really ran the steps in mode 1, never in mode 0
        order = list(ev.timings)
        assert (order.index("switching") < order.index("pretrend_test")) == (mode == "1")  # meanwhile, in mode 1
        assert order.index("heterogeneity") > order.index("pretrend_test")  # reads the pre-trend p: after it
    assert "p_romano_wolf" in text["0"] and '"method": "permutation"' in text["0"] and '"heterogeneity"' in text["0"]
    assert '"switching"' in text["0"] and '"jackknife"' in text["0"]
    assert text["1"] == text["0"]


def test_fit_estimators_keeps_the_order_and_raises_a_headline_failure(monkeypatch):
    """The headline is fitted first, yet results and failures follow the params' order; a failing
    secondary estimator is recorded, a failing headline raises what ``headline_failed`` makes."""
    import evalkit.evaluation_steps as S
    from evalkit.params import validate_params
    from evalkit.results import EstimationResult

    monkeypatch.setenv("EVALKIT_STEP_AHEAD", "0")
    p = validate_params({"evaluation_id": "order", "reform": "两队一室", "outcomes": ["incidents_fight", "dispatches"],
                         "estimators": ["twfe", "imputation", "cs"], "headline": "imputation",
                         "warehouse": "unused.duckdb"})
    calls = []

    def fake(name):
        def run(panel, outcome, **kw):
            calls.append((outcome, name))
            if name == "cs" and outcome == "dispatches" or name == "imputation" and panel == "bad":
                raise ValueError(f"{name} broke")
            return EstimationResult(name, outcome, pd.DataFrame([{"kind": "overall", "term": "ATT", "estimate": 1.0}]))
        return run

    monkeypatch.setattr(S, "get_estimator", fake)
    results, failures, ahead = S.fit_estimators("panel", p, lambda *a: RuntimeError(a[:2]))
    assert ahead is None
    assert calls[:2] == [("incidents_fight", "imputation"), ("dispatches", "imputation")]
    assert {o: list(r) for o, r in results.items()} == {"incidents_fight": ["twfe", "imputation", "cs"],
                                                        "dispatches": ["twfe", "imputation"]}
    assert failures == {"incidents_fight": {}, "dispatches": {"cs": "ValueError: cs broke"}}
    with pytest.raises(RuntimeError, match="imputation"):
        S.fit_estimators("bad", p, lambda name, o, exc, tb: RuntimeError(f"{name} on {o}: {exc}"))
