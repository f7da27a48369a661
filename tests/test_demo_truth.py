"""The demo truth of the headline estimand on an evaluation's own sample (evalkit.demo.truth):
the expected Y(1) − Y(0) averaged over the sample's adopter-months 0..H, recomputed by brute force
from the world, and what ``Evaluation.planted_truth`` shows next to the headline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.demo import build_world, expected_outcomes, read_manifest, station_month_params
from evalkit.demo.truth import TRUTH_CELLS_TABLE, truth_cells, truth_for_sample
from evalkit.estimators import get_estimator
from evalkit.evaluation import Evaluation, open_warehouse, warehouse_facts
from evalkit.evaluation_steps import estimator_options
from evalkit.panel import build_panel
from evalkit.params import load_params

ROOT = Path(__file__).resolve().parents[1]
SEED = 7  # the conftest demo warehouse's seed
OUTCOME = "incidents_fight"


@pytest.fixture(scope="module")
def world():
    return build_world("small", SEED)


@pytest.fixture(scope="module")
def setup(demo_warehouse):
    p = load_params(ROOT / "params" / "two_teams_fights.yaml").model_copy(
        update={"warehouse": str(demo_warehouse), "headline": "imputation", "estimators": ["imputation"]})
    assert p.outcomes[0] == OUTCOME
    with open_warehouse(demo_warehouse) as con:
        facts = warehouse_facts(con, str(demo_warehouse))
        panel = build_panel(con, p.reform, start=p.window.start, end=p.window.end, region=p.region.as_filter(),
                            exclude_reforms=p.exclude_reforms)
    return p, panel, facts


def _brute_force(world, panel: pd.DataFrame, outcome: str, last: int) -> float:
    """Mean of E[Y1] − E[Y0] from the world's expected values over the panel's adopter-months."""
    pos = {s: i for i, s in enumerate(world.stations["station_id"])}
    e = panel["period"] - panel["first_treat"]
    rows = panel[(panel["first_treat"] > 0) & (e >= 0) & (e <= last) & panel[outcome].notna()]
    diffs = []
    for sid, grp in rows.groupby("station_id"):
        i = np.array([pos[sid]])
        y1 = expected_outcomes(world, i, station_month_params(world, i, True))[outcome][0]
        y0 = expected_outcomes(world, i, station_month_params(world, i, False))[outcome][0]
        t = np.searchsorted(world.periods, grp["period"].to_numpy())
        diffs.append((y1 - y0)[t])
    return float(np.concatenate(diffs).mean())


def test_truth_cells_are_the_treated_station_months(world):
    cells = truth_cells(world)
    assert list(cells.columns) == ["reform", "station_id", "period", "outcome", "y0", "y1", "cell", "y_on", "dose"]
    # the exposed neighbours' spillover cells (issue 17) are tested in test_demo_plants
    cells = cells[cells["cell"] != "spillover"]
    adopt = dict(zip(world.stations["station_id"], world.adopt, strict=True))
    assert (cells["period"] >= cells["station_id"].map(adopt)).all()  # only months at or after adoption
    n_treated_months = sum(int((world.periods >= a).sum()) for a, r in zip(world.adopt, world.reform_of,
                                                                          strict=True) if r >= 0)
    assert len(cells) == n_treated_months * cells["outcome"].nunique()
    placebo = cells[cells["reform"] == "service_hall"]
    assert len(placebo) and (placebo["y1"] == placebo["y0"]).all()


def test_truth_for_the_evaluation_sample_is_exact(world, setup, demo_warehouse):
    p, panel, _ = setup
    H = p.event_window[1]
    with open_warehouse(demo_warehouse) as con:
        assert con.execute(f"SELECT count(*) FROM {TRUTH_CELLS_TABLE}").fetchone()[0] > 0
        level = truth_for_sample(con, p.reform, OUTCOME, panel, H)
    expect = _brute_force(world, panel, OUTCOME, H)
    assert level == pytest.approx(expect, rel=1e-9)
    assert level == pytest.approx(truth_for_sample(truth_cells(world), p.reform, OUTCOME, panel, H), rel=1e-12)
    # a narrower horizon is a different number: the horizon is part of the estimand
    assert abs(truth_for_sample(truth_cells(world), p.reform, OUTCOME, panel, 6) - level) > 1e-3
    with pytest.raises(LookupError, match="no planted truth for patrol_dispatch/incidents_fight at station"):
        truth_for_sample(truth_cells(world), "patrol_dispatch", OUTCOME, panel, H)


def test_planted_truth_is_the_sample_truth_not_the_manifest_number(world, setup, demo_warehouse):
    p, panel, facts = setup
    res = get_estimator("imputation")(panel, OUTCOME, **estimator_options("imputation", p))
    ev = Evaluation(p, panel, {OUTCOME: {"imputation": res}}, {OUTCOME: {}}, facts)
    got = ev.planted_truth(OUTCOME)
    # brute force on the headline's own sample rows, in percent of the headline's baseline mean
    expect = 100 * _brute_force(world, res.context.sample.frame, OUTCOME, p.event_window[1]) / res.meta["baseline_mean"]
    assert got == pytest.approx(expect, rel=1e-9)
    assert got == pytest.approx(100 * truth_for_sample(truth_cells(world), p.reform, OUTCOME, panel,
                                                       p.event_window[1]) / res.meta["baseline_mean"], rel=1e-9)
    old = next(r for r in read_manifest(Path(demo_warehouse).parent / "world")["reforms"]
               if r["reform"] == p.reform)["true_overall_att_pct"][OUTCOME]
    assert abs(got - old) > 0.5, (got, old)  # the all-months, all-stations figure answers another question
    # a warehouse without truth cells (not a demo world): no truth shown
    ev.facts = type(facts)(**{**facts.__dict__, "synthetic": False})
    assert ev.planted_truth(OUTCOME) is None


def test_single_station_design_truth_covers_every_post_month(world, demo_warehouse):
    p = load_params(ROOT / "params" / "station_pilot.yaml").model_copy(
        update={"warehouse": str(demo_warehouse), "headline": "twfe", "estimators": ["twfe"]})
    assert p.design == "single_station"
    outcome = p.outcomes[0]
    with open_warehouse(demo_warehouse) as con:
        facts = warehouse_facts(con, str(demo_warehouse))
        panel = build_panel(con, p.reform, start=p.window.start, end=p.window.end, region=p.region.as_filter(),
                            exclude_reforms=p.exclude_reforms)
    res = get_estimator("twfe")(panel, outcome, **estimator_options("twfe", p))
    ev = Evaluation(p, panel, {outcome: {"twfe": res}}, {outcome: {}}, facts)
    frame = res.context.sample.frame
    post_months = int((frame["first_treat"].gt(0) & (frame["period"] >= frame["first_treat"])).sum())
    assert post_months > p.event_window[1] + 1  # the pilot has more post months than 0..H
    expect = 100 * _brute_force(world, frame, outcome, 10**6) / res.meta["baseline_mean"]
    assert ev.planted_truth(outcome) == pytest.approx(expect, rel=1e-9)
