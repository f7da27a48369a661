"""The prevention index as an outcome of a reform evaluation (evalkit.index.outcome): params spellings,
the scores joined to the panel (missing stays missing), and an evaluation on the demo world."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from evalkit.index import compute_index, load_definition
from evalkit.index.outcome import add_index_outcomes
from evalkit.panel import build_panel
from evalkit.params import ParamsError, validate_params
from evalkit.registry import OUTCOMES, outcome_id
from evalkit.warehouse import connect

DEFN = Path(__file__).parents[1] / "params" / "index" / "prevention_index.yaml"


def _params(**kw):
    return validate_params({"evaluation_id": "ix", "reform": "两队一室", "index_definition": str(DEFN), **kw})


def test_spellings_resolve_to_panel_columns_with_labels():
    p = _params(outcomes=["index", "index:防警情", "index:prevent_cases", "index:破案率", "index:fights_10k"])
    assert p.outcomes == ["index_score", "index_prevent_calls", "index_prevent_cases", "index_clearance",
                          "index_fights_10k"]
    o = OUTCOMES["index_prevent_calls"]
    assert (o.zh, o.en, o.kind, o.unit_zh, o.better) == ("主防指数·防警情", "Prevention index: Preventing calls for "
                                                          "police", "score", "分", "higher")
    assert OUTCOMES["index_score"].zh == "主防指数"
    assert outcome_id("主防指数·防警情") == "index_prevent_calls"
    # the resolved ids validate again (the notebook rebuilds its params from them)
    assert _params(outcomes=p.outcomes).outcomes == p.outcomes
    # one spelling twice is one outcome
    assert _params(outcomes=["index:防警情", "index:prevent_calls"]).outcomes == ["index_prevent_calls"]


def test_unknown_index_outcome_and_missing_definition_are_one_line_errors(tmp_path):
    with pytest.raises(ParamsError, match=r"outcomes: .*unknown index outcome 'index:防火' .*prevent_calls"):
        _params(outcomes=["index:防火"])
    with pytest.raises(ParamsError, match=r"index_definition .*nope.yaml not found"):
        _params(outcomes=["index"], index_definition=str(tmp_path / "nope.yaml"))
    # without an index outcome the definition file is not read
    assert _params(outcomes=["incidents_fight"], index_definition="nope.yaml").outcomes == ["incidents_fight"]


def test_scores_join_the_panel_and_missing_stays_missing(demo_warehouse, tmp_path):
    wh = tmp_path / "wh.duckdb"
    shutil.copy(demo_warehouse, wh)
    con = connect(wh)
    sid = con.execute("SELECT min(station_id) FROM surveys").fetchall()[0][0]
    con.execute("DELETE FROM surveys WHERE station_id = ? AND month = DATE '2023-05-01'", [sid])
    table = compute_index(con, load_definition(DEFN), period="month")
    p = _params(outcomes=["index:satisfaction", "index:防警情", "index"], window={"start": "2021-01", "end": "2024-12"},
                warehouse=str(wh))
    panel = build_panel(con, p.reform, start=p.window.start, end=p.window.end)
    out = add_index_outcomes(con, panel, p)
    assert len(out) == len(panel) and out.attrs["reform"] == panel.attrs["reform"]
    cell = out[(out["station_id"] == sid) & (out["period"] == 2023 * 12 + 4)]
    assert math.isnan(cell["index_satisfaction"].iloc[0])  # no survey that month: missing, not zero
    assert not math.isnan(cell["index_prevent_calls"].iloc[0])
    assert out["index_satisfaction"].isna().sum() == 1
    # the same numbers as `evalkit index compute` over every station
    ref = con.execute(f"SELECT station_id, period, \"index\", prevent_calls FROM {table} "
                      f"WHERE period BETWEEN '2021-01' AND '2024-12'").df()
    ref["period"] = ref["period"].str[:4].astype(int) * 12 + ref["period"].str[5:].astype(int) - 1
    m = out.merge(ref, on=["station_id", "period"])
    assert len(m) == len(out)
    assert (m["index_score"] - m["index"]).abs().max() < 1e-9
    assert (m["index_prevent_calls"] - m["prevent_calls"]).abs().max() < 1e-9
    con.close()


def test_evaluation_on_the_demo_world_finds_two_teams_raising_prevent_calls(demo_warehouse):
    from evalkit import brief_text
    from evalkit.evaluation import evaluate

    p = _params(outcomes=["index:防警情"], warehouse=str(demo_warehouse), estimators=["twfe", "cs"],
                sensitivity=False)
    ev = evaluate(p)
    est = ev.estimates().set_index("name")
    # 两队一室 cuts fights in the demo world: its adopters' 防警情 sub-score rises against never-adopters
    assert est.loc["twfe", "estimate"] > 2
    assert est.loc[ev.params.headline, "estimate"] > 0
    line = brief_text.outcome_line(ev, "index_prevent_calls")
    assert line.startswith("主防指数·防警情：")
    assert "两队一室" in brief_text.headline_text(ev)["question"]
