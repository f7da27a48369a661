"""The issue-17 plants of the demo world (evalkit.demo): 一村一辅警 doses, one county stopping
非警务警情分流, theft displaced from 巡处一体化 adopters onto their untreated neighbours, and 警网融合
effects that differ between urban and rural stations; each with its truth (truth cells and
``plant_truths``), checked against the planted formulas in docs/demo-world.md."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from evalkit import registry
from evalkit.demo import build_world
from evalkit.demo.exports import _write_reforms_csv, write_adjacency_csv
from evalkit.demo.params import (
    DISPLACEMENT_THEFT,
    DIVERSION_STOP,
    DOSE_LEVELS,
    GRID_DISPUTE,
    GRID_RAMP,
    PATROL_DATE,
    PATROL_THEFT,
    R_IDX,
)
from evalkit.demo.truth import TRUTH_CELLS_TABLE, plant_truths, truth_cells, truth_for_sample
from evalkit.evaluation import open_warehouse

SEEDS = (7, 42)


@pytest.fixture(scope="module", params=SEEDS)
def world(request):
    return build_world("small", request.param)


@pytest.fixture(scope="module")
def cells(world):
    return truth_cells(world)


def _event(world, cells: pd.DataFrame) -> pd.Series:
    adopt = dict(zip(world.stations["station_id"], world.adopt, strict=True))
    return cells["period"] - cells["station_id"].map(adopt)


# ---------------------------------------------------------------------------- the exports
def test_reforms_file_has_doses_and_one_county_stopping(world, tmp_path):
    _write_reforms_csv(world, tmp_path / "reforms.csv")
    rf = pd.read_csv(tmp_path / "reforms.csv", dtype=str, keep_default_na=False)
    assert list(rf.columns) == ["派出所编码", "改革事项", "实施日期", "停止日期", "覆盖比例"]
    village = rf["改革事项"] == "一村一辅警"
    assert village.sum() >= 8
    doses = rf.loc[village, "覆盖比例"].astype(float)
    assert set(doses) == set(DOSE_LEVELS)  # every level is used
    assert doses.value_counts().max() - doses.value_counts().min() <= 1  # dealt out evenly
    assert (rf.loc[~village, "覆盖比例"] == "").all()
    stop = rf["停止日期"] != ""
    assert stop.any() and (rf.loc[stop, "停止日期"] == DIVERSION_STOP).all()
    assert (rf.loc[stop, "改革事项"] == "非警务警情分流").all()
    county = dict(zip(world.stations["station_id"], world.stations["county"], strict=True))
    stop_counties = {county[s] for s in rf.loc[stop, "派出所编码"]}
    assert len(stop_counties) == 1  # the stations of ONE county stop …
    div = rf[rf["改革事项"] == "非警务警情分流"]
    in_county = div["派出所编码"].map(county).isin(stop_counties)
    assert (div.loc[in_county, "停止日期"] != "").all()  # … all of them
    assert (div.loc[in_county, "实施日期"] < DIVERSION_STOP).all()  # stopping after adopting


def test_adjacency_file_is_a_symmetric_border_map(world, tmp_path):
    n = write_adjacency_csv(world, tmp_path / "adjacency.csv")
    adj = pd.read_csv(tmp_path / "adjacency.csv", dtype=str)
    assert list(adj.columns) == ["派出所编码", "相邻派出所编码", "是否接壤"] and len(adj) == n
    assert (adj["派出所编码"] != adj["相邻派出所编码"]).all() and (adj["是否接壤"] == "是").all()
    pairs = set(zip(adj["派出所编码"], adj["相邻派出所编码"], strict=True))
    assert all((b, a) in pairs for a, b in pairs) and len(pairs) == n  # both directions, no duplicates
    assert set(adj["派出所编码"]) == set(world.stations["station_id"])  # every station has a neighbour
    deg = adj.groupby("派出所编码").size()
    assert 2.0 <= deg.mean() <= 4.0  # rook neighbours on a map with some empty cells
    # the patrol adopters border several untreated stations, also across county lines
    ids = world.stations["station_id"].to_numpy()
    patrol = set(ids[world.reform_of == R_IDX["patrol_dispatch"]])
    exposed = set(adj.loc[adj["派出所编码"].isin(patrol), "相邻派出所编码"]) - patrol
    assert exposed == set(ids[world.exposed]) and len(exposed) >= 5
    county = dict(zip(ids, world.stations["county"], strict=True))
    assert len({county[s] for s in exposed}) >= 2


def test_demo_warehouse_ingests_the_plants(demo_warehouse):
    with open_warehouse(demo_warehouse) as con:
        n_adj = con.execute("SELECT count(*) FROM adjacency").fetchone()[0]
        rf = con.execute("SELECT reform, count(ended_on) AS n_end, count(intensity) AS n_int, "
                         "min(intensity) AS lo, max(intensity) AS hi, min(ended_on) AS e FROM reforms "
                         "GROUP BY reform").df().set_index("reform")
        kinds = dict(con.execute(f"SELECT cell, count(*) FROM {TRUTH_CELLS_TABLE} GROUP BY cell").fetchall())
        manifest = json.loads(con.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    w = build_world("small", 7)
    assert n_adj == 2 * len(w.adjacency)
    assert rf.loc["village_auxiliary", "n_int"] == (w.reform_of == R_IDX["village_auxiliary"]).sum()
    assert (rf.loc["village_auxiliary", "lo"], rf.loc["village_auxiliary", "hi"]) == (0.25, 1.0)
    assert rf.loc["nonpolice_diversion", "n_end"] == (w.end > 0).sum() > 0
    assert str(rf.loc["nonpolice_diversion", "e"])[:10] == DIVERSION_STOP
    assert rf.drop(index=["village_auxiliary"])["n_int"].sum() == 0
    assert rf.drop(index=["nonpolice_diversion"])["n_end"].sum() == 0
    assert "police_grid" in rf.index
    assert kinds.keys() == {"treated", "stopped", "spillover"}
    assert manifest["rows"]["adjacency"] == n_adj and "adjacency.csv" in manifest["files"]
    assert manifest["plants"]["displacement"]["spillover"]["att_pct"] == pytest.approx(100 * DISPLACEMENT_THEFT)


# ---------------------------------------------------------------------------- the truths
def test_dose_scales_every_effect_linearly(world, cells):
    full = truth_cells(dataclasses.replace(world, dose=np.ones(world.n_stations)))
    key = ["station_id", "period", "outcome"]
    got = cells[cells["reform"] == "village_auxiliary"].merge(
        full[full["reform"] == "village_auxiliary"], on=key, suffixes=("", "_full"))
    assert len(got) == (cells["reform"] == "village_auxiliary").sum() and got["dose"].isin(DOSE_LEVELS).all()
    np.testing.assert_allclose(got["y0"], got["y0_full"], rtol=1e-12)  # the untreated outcome has no dose
    eff, eff_full = got["y1"] - got["y0"], got["y1_full"] - got["y0_full"]
    np.testing.assert_allclose(eff, got["dose"] * eff_full, rtol=1e-9, atol=1e-12)
    assert (eff_full != 0).any()
    t = plant_truths(world, cells)["dose"]
    assert t["outcome"] == "disputes_opened" and set(t["by_dose"]) == set(DOSE_LEVELS)
    # disputes registered x(1 + 0.15 d) from 12 months after adoption: ATT(d) in percent about 15 d
    # less the ramp; the overall ATT lies between the smallest and the largest dose's
    for d, eff_d in t["by_dose"].items():
        assert 0.55 * 15 * d < eff_d["att_pct"] < 15 * d + 1e-9
        assert eff_d["att_log"] == pytest.approx(np.log1p(eff_d["att_pct"] / 100))
    pcts = [e["att_pct"] for e in t["by_dose"].values()]
    assert min(pcts) < t["overall"]["att_pct"] < max(pcts)
    late = got[(got["outcome"] == "disputes_opened") & (_event(world, got) >= 11)]
    np.testing.assert_allclose(late["y1"] / late["y0"], 1 + 0.15 * late["dose"], rtol=1e-12)


def test_stopped_months_are_untreated_and_switching_off_is_known(world, cells):
    div = cells[cells["reform"] == "nonpolice_diversion"]
    off = div[div["cell"] == "stopped"]
    stop_p = registry.period_of(pd.Timestamp(DIVERSION_STOP))
    assert len(off) and (off["period"] >= stop_p).all()
    assert (off["y1"] == off["y0"]).all()  # the reform is off: no effect in the truth
    stopping = set(off["station_id"])
    on = div[div["cell"] == "treated"]
    assert (on.loc[on["station_id"].isin(stopping), "period"] < stop_p).all()
    assert not on.loc[~on["station_id"].isin(stopping), "y_on"].notna().any()
    # handled non-police calls: x0.40 while running (60% diverted), x0.95 after the stop (5%)
    nonpol = off[off["outcome"] == "incidents_nonpolice"]
    np.testing.assert_allclose(nonpol["y1"] / nonpol["y_on"], 0.95 / 0.40, rtol=1e-12)
    t = plant_truths(world, cells)["stop"]
    assert t["switch_off"]["att_pct"] == pytest.approx(100 * (0.95 / 0.40 - 1))
    assert t["switch_off"]["att_log"] == pytest.approx(np.log(0.95 / 0.40))
    assert -100 * (1 - 0.40 / 0.95) < t["switch_on"]["att_pct"] < -50  # with the 3-month ramp
    assert t["ended_on"] == DIVERSION_STOP and t["n_stations"] == len(stopping) >= 3
    county = dict(zip(world.stations["station_id"], world.stations["county"], strict=True))
    assert {county[s] for s in stopping} == {t["county"]}


def test_displacement_onto_untreated_neighbours(world, cells):
    sp = cells[cells["cell"] == "spillover"]
    ids = world.stations["station_id"].to_numpy()
    assert set(sp["station_id"]) == set(ids[world.exposed])
    assert (sp["reform"] == "patrol_dispatch").all()
    assert (sp["period"] >= registry.period_of(pd.Timestamp(PATROL_DATE))).all()
    theft = sp[sp["outcome"] == "incidents_theft"]
    np.testing.assert_allclose(theft["y1"] / theft["y0"], 1 + DISPLACEMENT_THEFT, rtol=1e-12)
    assert (sp.loc[sp["outcome"].isin(["incidents_fight", "response_mean_min"]), "y1"]
            == sp.loc[sp["outcome"].isin(["incidents_fight", "response_mean_min"]), "y0"]).all()
    t = plant_truths(world, cells)["displacement"]
    assert t["spillover"]["att_pct"] == pytest.approx(100 * DISPLACEMENT_THEFT)
    assert t["spillover"]["att_log"] == pytest.approx(np.log1p(DISPLACEMENT_THEFT))
    assert t["adopters"]["att_pct"] == pytest.approx(100 * PATROL_THEFT)
    assert t["n_exposed"] == world.exposed.sum() >= 5
    # the spillover cells are not adopter-months: the headline truth never reads them
    panel = pd.DataFrame({"station_id": ids[world.exposed][:1], "period": [int(theft["period"].max())],
                          "first_treat": [registry.period_of(pd.Timestamp(PATROL_DATE))], "incidents_theft": 1.0})
    with pytest.raises(LookupError, match="no planted truth"):
        truth_for_sample(cells, "patrol_dispatch", "incidents_theft", panel, None)


def test_police_grid_effect_differs_by_area_type(world, cells):
    g = cells[(cells["reform"] == "police_grid") & (cells["outcome"] == "incidents_dispute")]
    area = g["station_id"].map(dict(zip(world.stations["station_id"], world.stations["area_type"], strict=True)))
    assert set(area) == {"urban", "rural"}
    ramp = np.minimum((_event(world, g) + 1) / GRID_RAMP, 1.0)
    np.testing.assert_allclose(g["y1"] / g["y0"], 1 + area.map(GRID_DISPUTE) * ramp, rtol=1e-12)
    t = plant_truths(world, cells)["urban_rural"]
    for a in ("urban", "rural"):
        full = 100 * GRID_DISPUTE[a]
        assert full < t["by_area"][a]["att_pct"] < 0.85 * full  # the 6-month ramp
        assert t["n_stations"][a] >= 3
    # adopters come from stations without another reform, in the half-year cohorts 2021-07..2023-07
    coh = {registry.period_label(int(c)) for c in world.adopt[world.reform_of == R_IDX["police_grid"]]}
    assert coh <= {"2021-07", "2022-01", "2022-07", "2023-01", "2023-07"} and len(coh) >= 3
