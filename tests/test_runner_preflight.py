"""runner.preflight: the checks of params.check_against_warehouse plus the adopters, on one connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import runner, warehouse
from evalkit.params import check_against_warehouse, load_params

ROOT = Path(__file__).resolve().parents[1]


def _params(wh: Path, **update):
    p = load_params(ROOT / "params" / "two_teams_fights.yaml")
    return p.model_copy(update={"warehouse": str(wh), **update})


def test_preflight_opens_the_warehouse_once_and_says_what_check_against_warehouse_says(demo_warehouse,
                                                                                       monkeypatch):
    opened = []
    real = warehouse.open_db

    def counting(*a, **k):
        opened.append(a)
        return real(*a, **k)

    monkeypatch.setattr(runner, "open_db", counting)
    monkeypatch.setattr(warehouse, "open_db", counting)  # what check_against_warehouse opens with
    runner.preflight(_params(demo_warehouse))  # a window inside the data: passes
    assert len(opened) == 1
    good = _params(demo_warehouse)
    bad = good.model_copy(update={"window": good.window.model_copy(update={"end": "2099-12"})})
    expected = check_against_warehouse(bad, bad.evaluation_id, demo_warehouse)
    opened.clear()
    assert expected and "window.end 2099-12 lies beyond" in expected[0]
    with pytest.raises(runner.RunError) as err:
        runner.preflight(bad)
    assert str(err.value) == "; ".join(expected) and len(opened) == 1
