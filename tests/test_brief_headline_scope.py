"""Page 1's numbers are read once per outcome while one section of the brief is drawn (issue 15),
and afresh in the next section."""

from __future__ import annotations

import pytest

from evalkit import brief_text


class _Ev:
    primary_outcome = "a"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.effect = 1.0

    def headline(self, outcome: str | None = None) -> dict:
        outcome = outcome or self.primary_outcome
        self.calls.append(outcome)
        if outcome == "missing":
            raise KeyError(outcome)
        return {"outcome": outcome, "estimate": self.effect, "verdict_caps": []}


def test_once_per_outcome_inside_a_scope_and_every_time_outside():
    ev = _Ev()
    brief_text.headline(ev)
    brief_text.headline(ev, "a")
    assert ev.calls == ["a", "a"]  # no scope: no memo
    ev.calls.clear()
    with brief_text.headline_scope():
        first = brief_text.headline(ev)
        first["estimate"] = 99.0  # a caller's change stays in its own copy
        with brief_text.headline_scope():  # nested: the same memo
            assert brief_text.headline(ev, "a")["estimate"] == 1.0
        assert brief_text.headline(ev, "b")["outcome"] == "b"
        for _ in range(2):
            with pytest.raises(KeyError):
                brief_text.headline(ev, "missing")
        other = _Ev()
        other.effect = 2.0
        assert brief_text.headline(other)["estimate"] == 2.0  # per evaluation
    assert ev.calls == ["a", "b", "missing", "missing"]
    ev.effect = 3.0  # the next section reads the changed evaluation
    with brief_text.headline_scope():
        assert brief_text.headline(ev)["estimate"] == 3.0


def test_one_headline_decorates_a_section():
    ev = _Ev()

    @brief_text.one_headline
    def section(e: _Ev) -> float:
        return sum(brief_text.headline(e, o)["estimate"] for o in ["a", "b", "a", "b", None])

    assert section(ev) == 5.0
    assert sorted(ev.calls) == ["a", "b"]
    assert section(ev) == 5.0 and len(ev.calls) == 4
