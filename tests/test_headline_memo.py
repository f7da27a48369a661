"""``Evaluation.headline`` is computed once per outcome while what it reads stays the same objects, and
afresh when a result, the sensitivity analysis or the parameters are replaced (issue 15)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalkit.evaluation import Evaluation


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fresh(self: Evaluation, outcome: str) -> dict:
        calls.append(outcome)
        self.result(outcome)  # KeyError when the headline estimator did not run, as the real one
        return {"outcome": outcome, "estimate": self.results[outcome]["cs"].meta["x"], "verdict_caps": ["a"],
                "sens": None if self.sensitivity is None else self.sensitivity.robust}

    monkeypatch.setattr(Evaluation, "_headline", fresh)
    return calls


def _ev() -> Evaluation:
    params = SimpleNamespace(headline="cs", alpha=0.05, design="staggered", outcomes=["a", "b"])
    results = {o: {"cs": SimpleNamespace(meta={"x": 1.0})} for o in ("a", "b")}
    return Evaluation(params=params, panel=None, results=results, failures={}, facts=None)  # type: ignore[arg-type]


def test_once_per_outcome_and_callers_get_their_own_copy(monkeypatch):
    calls = _counting(monkeypatch)
    ev = _ev()
    first = ev.headline()
    first["verdict_caps"].append("changed")
    first["estimate"] = 99.0
    assert ev.headline("a") == {"outcome": "a", "estimate": 1.0, "verdict_caps": ["a"], "sens": None}
    ev.headline("b")
    ev.headline("b")
    assert calls == ["a", "b"]


def test_recomputed_when_what_it_reads_is_replaced(monkeypatch):
    calls = _counting(monkeypatch)
    ev = _ev()
    ev.headline()
    ev.results["a"]["cs"] = SimpleNamespace(meta={"x": 2.0})  # a new result
    assert ev.headline()["estimate"] == 2.0
    ev.results["a"]["cs"].meta = {"x": 3.0}  # a new meta
    assert ev.headline()["estimate"] == 3.0
    ev.results["a"]["cs"].meta["x"] = 4.0  # a meta value replaced in place
    assert ev.headline()["estimate"] == 4.0
    ev.robustness["a"] = {"cs_never": SimpleNamespace(meta={})}  # a robustness row added
    ev.headline()
    ev.sensitivity = SimpleNamespace(robust=True)  # the sensitivity analysis done
    assert ev.headline()["sens"] is True
    ev.params = SimpleNamespace(**{**vars(ev.params), "alpha": 0.1})  # other parameters
    ev.headline()
    ev.params.alpha = 0.2  # changed in place
    ev.headline()
    assert calls == ["a"] * 8
    ev.headline()
    assert len(calls) == 8


def test_an_error_is_raised_every_time(monkeypatch):
    calls = _counting(monkeypatch)
    ev = _ev()
    ev.params.headline = "twfe"  # not run
    for _ in range(2):
        with pytest.raises(KeyError):
            ev.headline()
    assert calls == ["a", "a"]
