"""The demo world's monthly report tables for the prevention index (办案, 走访, 风险隐患, 巡逻,
满意度, 执法投诉), with planted structure.

Drawn from their own seeded random stream (``SeedSequence(seed, spawn_key=(16, …))``), so the
demo world's other tables and numbers are exactly those of a world without them. Planted:

- a station quality ``q`` (N(0, 1)) raising the clearance, hazard-resolution and satisfaction rates;
- seasonality: fewer visits in the Spring Festival month (× 0.7), more patrol hours in summer;
- reform effects from adoption on (``REFORM_EFFECTS``): 一村一辅警 (village_auxiliary) visits × 1.3
  and hazards found × 1.25; 两队一室 (two_teams_one_room) clearance + 8 points; 便民服务升级
  (service_hall) satisfaction + 4 points;
- one abnormal station-month (``PLANTED_ALERT``): households visited × 0.25 (走访 collapses) at the
  station at position ``station`` of the register, ``month_from_end`` months before the end
  (skipped when ``plant_alert=False``; every other number is the same either way).

Written as CSV with the Chinese headers of :mod:`evalkit.schema` (Parquet for the national
world), plus ``index_truth.json`` naming the planted effects and the abnormal station-month.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit import schema
from evalkit.demo.params import REFORM_ORDER, World, _ss
from evalkit.registry import period_start

SEED_KEY = 16  # the index tables' own random stream
REFORM_EFFECTS = {
    "village_auxiliary": {"households_visited": 1.30, "hazards_found": 1.25},
    "two_teams_one_room": {"clearance_points": 8.0},
    "service_hall": {"satisfaction_points": 4.0},
}
PLANTED_ALERT = {"table": "visits", "column": "households_visited", "factor": 0.25, "station": 7,
                 "month_from_end": 18}


def _adopted(w: World, reform: str) -> np.ndarray:
    """[S, T] 1.0 where the station has adopted ``reform`` by that month."""
    r = REFORM_ORDER.index(reform)
    on = (w.reform_of == r)[:, None] & (w.adopt[:, None] > 0) & (w.periods[None, :] >= w.adopt[:, None])
    return on.astype(float)


def draw_tables(w: World, *, plant_alert: bool = True) -> tuple[dict[str, pd.DataFrame], dict]:
    """The six report tables (canonical columns, ``month`` as a date) and the planted truth."""
    rng = _ss(w.seed, SEED_KEY)
    S, T = w.n_stations, len(w.periods)
    pop = w.stations["population"].to_numpy(float)[:, None] / 10_000.0
    officers = w.stations["officers"].to_numpy(float)[:, None]
    q = rng.normal(0, 1, S)[:, None]
    month = (w.periods % 12)[None, :]
    sf = np.asarray(w.sf, float)[None, :] if w.sf is not None else np.zeros((1, T))
    vil, two, hall = (_adopted(w, r) for r in ("village_auxiliary", "two_teams_one_room", "service_hall"))

    opened = rng.poisson(np.broadcast_to(3.0 * pop, (S, T)))
    p_clear = np.clip(0.45 + 0.06 * q + 0.01 * REFORM_EFFECTS["two_teams_one_room"]["clearance_points"] * two,
                      0.05, 0.95)
    solved = rng.binomial(opened, p_clear)
    loss = np.round(opened * rng.lognormal(8.0, 0.3, (S, T)), 2)
    visits = rng.poisson(40.0 * pop * (1 - 0.3 * sf) * (1 + 0.3 * vil))
    found = rng.poisson(4.0 * pop * (1 + 0.25 * vil))
    resolved = rng.binomial(found, np.clip(0.75 + 0.05 * q, 0.3, 0.99))
    summer = np.isin(month, (5, 6, 7)).astype(float)
    hours = np.round(officers * rng.normal(40.0, 4.0, (S, T)) * (1 + 0.1 * summer), 1).clip(min=0)
    surveyed = np.full((S, T), 50)
    p_sat = np.clip(0.88 + 0.02 * q + 0.01 * REFORM_EFFECTS["service_hall"]["satisfaction_points"] * hall, 0.5, 0.995)
    satisfied = rng.binomial(surveyed, p_sat)
    complaints = rng.poisson(np.broadcast_to(0.02 * officers, (S, T)))
    truth: dict = {"reform_effects": REFORM_EFFECTS, "alert": None}
    if plant_alert:  # drawn above either way: the world without the alert differs in this one cell only
        s, t = PLANTED_ALERT["station"] % S, T - PLANTED_ALERT["month_from_end"]
        visits[s, t] = int(round(visits[s, t] * PLANTED_ALERT["factor"]))
        truth["alert"] = {"station_id": str(w.stations["station_id"].iloc[s]), "table": "visits",
                          "column": "households_visited",
                          "month": period_start(int(w.periods[t])).strftime("%Y-%m")}
    upheld = rng.binomial(complaints, 0.3)

    ids = np.repeat(w.stations["station_id"].to_numpy(), T)
    months = np.tile(np.array([period_start(int(p)).date() for p in w.periods], dtype=object), S)

    def frame(**cols) -> pd.DataFrame:
        return pd.DataFrame({"station_id": ids, "month": months, **{k: v.ravel() for k, v in cols.items()}})

    tables = {
        "cases": frame(cases_opened=opened, cases_solved=solved, loss_yuan=loss),
        "visits": frame(households_visited=visits),
        "hazards": frame(hazards_found=found, hazards_resolved=resolved),
        "patrols": frame(patrol_hours=hours),
        "surveys": frame(surveyed=surveyed, satisfied=satisfied),
        "complaints": frame(complaints=complaints, complaints_upheld=upheld),
    }
    return tables, truth


def write_index_tables(w: World, root: str | Path, *, plant_alert: bool = True) -> list[str]:
    """Write the report tables as exports with Chinese headers (months as 2024年3月); returns the
    file names written (``index_truth.json`` included)."""
    root = Path(root)
    tables, truth = draw_tables(w, plant_alert=plant_alert)
    national = w.size == "national"
    names = []
    for t, df in tables.items():
        spec = schema.TABLES[t]
        out = df.copy()
        # one label per month, repeated per station (no per-row formatting at national scale)
        labels = np.array([f"{p // 12}年{p % 12 + 1}月" for p in w.periods], dtype=object)
        out["month"] = np.tile(labels, w.n_stations)
        out.columns = [spec.column(c).zh for c in out.columns]
        name = f"{t}.parquet" if national else f"{t}.csv"
        if national:
            out.to_parquet(root / name, index=False)
        else:
            out.to_csv(root / name, index=False, encoding="utf-8")
        names.append(name)
    (root / "index_truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2), encoding="utf-8")
    return [*names, "index_truth.json"]


__all__ = ["PLANTED_ALERT", "REFORM_EFFECTS", "draw_tables", "write_index_tables"]
