"""The demo world's truth for the headline estimand, on an evaluation's own sample.

``truth.parquet`` (``compute_truth``) averages every post-adoption month of every station of a
reform; an evaluation estimates something narrower: the average effect over *its* adopters'
months ``0..H`` after adoption with an observed outcome (:mod:`evalkit.estimand`), after its
region filter, window, excluded reforms and dropped stations. So the world also writes the
expected potential outcomes of every treated station-month (``truth_cells.parquet``: ``reform,
station_id, period, outcome, y0, y1`` with ``y0 = E[Y(0)]``, ``y1 = E[Y(1)]``, only months at or
after the station's adoption), ``evalkit demo-data`` loads it into the demo warehouse as table
:data:`TRUTH_CELLS_TABLE`, and :func:`truth_for_sample` averages ``y1 − y0`` over exactly the
sample's adopter-months. The table holds synthetic station codes and expectations only (no
records, nothing personal). It is not written for the national size (tens of millions of rows;
that world is not loaded into a warehouse by ``demo-data`` either).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from evalkit import registry
from evalkit.demo.outcomes import expected_outcomes, station_month_params
from evalkit.demo.params import R_IDX, REFORM_ORDER, TRUTH_OUTCOMES, World
from evalkit.registry import NEVER_TREATED

TRUTH_CELLS_FILE = "truth_cells.parquet"
TRUTH_CELLS_TABLE = "demo_truth_cells"
#: sizes whose world gets no truth cells (too large; not loaded into a warehouse by demo-data)
NO_TRUTH_CELLS = ("national",)
_COLUMNS = ["reform", "station_id", "period", "outcome", "y0", "y1", "cell", "y_on", "dose"]
#: reforms whose stations carry a dose (``World.dose``)
DOSE_REFORMS = ("village_auxiliary",)


def truth_cells(w: World) -> pd.DataFrame:
    """Expected potential outcomes of every treated station-month (``period >= adoption``) and of
    every exposed neighbour-month, long: ``reform, station_id, period, outcome, y0, y1, cell, y_on,
    dose`` (outcome units, e.g. incidents per month).

    ``cell``: ``treated`` (an adopter's month while the reform runs: ``y1 = E[Y(1)]``), ``stopped``
    (an adopter's month from its ``ended_on`` month on: the reform is off, ``y1 = y0``, and ``y_on``
    is the expected outcome had it kept running, so ``y1 − y_on`` is the effect of switching off),
    ``spillover`` (reform ``patrol_dispatch``: an untreated station sharing a border with an adopter,
    from the adoption date on: ``y0`` without, ``y1`` with the displaced theft). ``y_on`` is empty
    (NaN) except on stopped cells; ``dose`` is the station's intensity (一村一辅警 share of villages
    covered), NaN for reforms without a dose."""
    frames = []
    ids = w.stations["station_id"].to_numpy()
    for r in REFORM_ORDER:
        idx = np.flatnonzero(w.reform_of == R_IDX[r])
        if len(idx) == 0:
            continue
        y1 = expected_outcomes(w, idx, station_month_params(w, idx, treated=True))
        y0 = expected_outcomes(w, idx, station_month_params(w, idx, treated=False))
        end = w.end[idx] if w.end is not None else np.zeros(len(idx), dtype=np.int64)
        y_on = (expected_outcomes(w, idx, station_month_params(w, idx, treated=True, stops=False))
                if (end > 0).any() else None)
        post = w.periods[None, :] >= w.adopt[idx][:, None]
        si, ti = np.nonzero(post)
        stopped = (end[si] > 0) & (w.periods[ti] >= end[si])
        dose = (w.dose[idx][si].astype(float) if r in DOSE_REFORMS and w.dose is not None
                else np.full(len(si), np.nan))
        for o in TRUTH_OUTCOMES:
            a0, a1 = y0[o][si, ti].astype(float), y1[o][si, ti].astype(float)
            # exact equality where nothing was planted (rounding noise of the untouched arithmetic)
            a1 = np.where(np.abs(a1 - a0) <= 1e-12 * np.maximum(np.abs(a0), 1.0), a0, a1)
            on = np.full(len(si), np.nan)
            if y_on is not None:
                on = np.where(stopped, y_on[o][si, ti].astype(float), np.nan)
            frames.append(pd.DataFrame({
                "reform": r, "station_id": ids[idx][si], "period": w.periods[ti].astype(np.int64), "outcome": o,
                "y0": a0, "y1": a1, "cell": np.where(stopped, "stopped", "treated"), "y_on": on, "dose": dose}))
    frames += _spillover_cells(w)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            _COLUMNS, ["str", "str", "int64", "str", "float64", "float64", "str", "float64", "float64"],
            strict=True)})
    return pd.concat(frames, ignore_index=True)[_COLUMNS]


def _spillover_cells(w: World) -> list[pd.DataFrame]:
    """Cells of the untreated neighbours of 巡处一体化 adopters from the adoption date on."""
    adopters = w.reform_of == R_IDX["patrol_dispatch"]
    if w.exposed is None or not w.exposed.any() or not adopters.any():
        return []
    idx = np.flatnonzero(w.exposed)
    ids = w.stations["station_id"].to_numpy()
    y1 = expected_outcomes(w, idx, station_month_params(w, idx, treated=True, spill=True))
    y0 = expected_outcomes(w, idx, station_month_params(w, idx, treated=True, spill=False))
    si, ti = np.nonzero(np.broadcast_to(w.periods[None, :] >= w.adopt[adopters].min(), (len(idx), len(w.periods))))
    out = []
    for o in TRUTH_OUTCOMES:
        a0, a1 = y0[o][si, ti].astype(float), y1[o][si, ti].astype(float)
        a1 = np.where(np.abs(a1 - a0) <= 1e-12 * np.maximum(np.abs(a0), 1.0), a0, a1)
        out.append(pd.DataFrame({
            "reform": "patrol_dispatch", "station_id": ids[idx][si], "period": w.periods[ti].astype(np.int64),
            "outcome": o, "y0": a0, "y1": a1, "cell": "spillover", "y_on": np.nan, "dose": np.nan}))
    return out


def write_truth_cells(w: World, root: str | Path, cells: pd.DataFrame | None = None) -> Path | None:
    """Write :data:`TRUTH_CELLS_FILE` under ``root`` (``cells``, default ``truth_cells(w)``; ``None``,
    nothing written, for the national size)."""
    if w.size in NO_TRUTH_CELLS:
        return None
    path = Path(root) / TRUTH_CELLS_FILE
    (truth_cells(w) if cells is None else cells).to_parquet(path, index=False)
    return path


def load_truth_cells(con: duckdb.DuckDBPyConnection, root: str | Path) -> int:
    """Load ``root``/:data:`TRUTH_CELLS_FILE` into table :data:`TRUTH_CELLS_TABLE` (replaced);
    returns its row count (0 and no table when the world has no such file)."""
    path = Path(root) / TRUTH_CELLS_FILE
    if not path.is_file():
        return 0
    cells = pd.read_parquet(path, columns=_COLUMNS)  # noqa: F841 (read by DuckDB below)
    con.execute(f"CREATE OR REPLACE TABLE {TRUTH_CELLS_TABLE} AS SELECT * FROM cells")
    return int(con.execute(f"SELECT count(*) FROM {TRUTH_CELLS_TABLE}").fetchone()[0])


def truth_for_sample(source: duckdb.DuckDBPyConnection | pd.DataFrame, reform: str, outcome: str,
                     panel: pd.DataFrame, last: int | None, *, unit: str = "station_id", time: str = "period",
                     cohort: str = "first_treat") -> float:
    """True headline effect of ``reform`` on ``outcome`` for the sample ``panel``, in outcome units.

    The mean of ``E[Y(1)] − E[Y(0)]`` over the panel's adopter-months: rows of stations adopting
    inside the panel with ``0 ≤ period − first_treat ≤ last`` and an observed ``outcome`` (the
    rows :func:`evalkit.estimand.event_time_weights` counts; ``last=None``: every month from
    adoption on, the single-station estimators' post period). ``source``: the demo warehouse (table
    :data:`TRUTH_CELLS_TABLE`) or a frame of truth cells. Raises ``LookupError`` when the truth
    does not cover every adopter-month (no table, another reform, an outcome without truth).
    """
    g = panel[cohort]
    t = panel[time]
    e = t - g
    keep = (g != NEVER_TREATED) & (g <= t.max()) & (e >= 0) & panel[outcome].notna()
    if last is not None:
        keep &= e <= last
    months = pd.DataFrame({"station_id": panel.loc[keep, unit].astype(str).to_numpy(),
                           "period": t[keep].astype(np.int64).to_numpy()})
    if months.empty:
        raise LookupError(f"no adopter-month with an observed {outcome} in months 0–{last} after adoption"
                          if last is not None else f"no adopter-month with an observed {outcome}")
    if isinstance(source, pd.DataFrame):
        cells = source[(source["reform"] == reform) & (source["outcome"] == outcome)]
        if "cell" in cells.columns:  # the neighbours' spillover cells are not adopter-months
            cells = cells[cells["cell"] != "spillover"]
        cells = cells.assign(station_id=cells["station_id"].astype(str))[["station_id", "period", "y0", "y1"]]
        got = months.merge(cells, on=["station_id", "period"], how="left")
    else:
        have = {r[0] for r in source.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TRUTH_CELLS_TABLE not in have:
            raise LookupError(f"the warehouse has no table {TRUTH_CELLS_TABLE}; regenerate it with `evalkit demo-data`")
        got = source.execute(
            f"SELECT m.station_id, m.period, c.y0, c.y1 FROM months m LEFT JOIN {TRUTH_CELLS_TABLE} c "
            "ON c.station_id = m.station_id AND c.period = m.period AND c.reform = ? AND c.outcome = ? "
            "AND c.cell <> 'spillover'",
            [reform, outcome]).df()
    missing = got["y1"].isna()
    if missing.any():
        r = got[missing].iloc[0]
        raise LookupError(f"no planted truth for {reform}/{outcome} at station {r['station_id']} period "
                          f"{int(r['period'])} ({int(missing.sum())} of {len(got)} adopter-months)")
    return float((got["y1"] - got["y0"]).mean())


# ---------------------------------------------------------------------------- analyses' truths
def read_truth_cells(con: duckdb.DuckDBPyConnection, reform: str, outcome: str) -> pd.DataFrame:
    """The demo warehouse's truth cells of ``reform`` / ``outcome`` (read-only): ``station_id`` (str),
    ``period``, ``cell``, ``y0``, ``y1``, ``y_on``, ``dose``. ``LookupError`` without the table."""
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if TRUTH_CELLS_TABLE not in have:
        raise LookupError(f"the warehouse has no table {TRUTH_CELLS_TABLE}; regenerate it with `evalkit demo-data`")
    cells = con.execute(f"SELECT station_id, period, cell, y0, y1, y_on, dose FROM {TRUTH_CELLS_TABLE} "
                        "WHERE reform = ? AND outcome = ?", [reform, outcome]).df()
    return cells.assign(station_id=cells["station_id"].astype(str), period=cells["period"].astype(np.int64))


def cells_truth(cells: pd.DataFrame, rows: pd.DataFrame, *, kinds: tuple[str, ...] = ("treated", "stopped"),
                against: str = "y0") -> dict[str, float | int]:
    """The planted effect over the station-months ``rows`` (``station_id``, ``period``; optional
    ``weight``, default equal) of ``cells`` (:func:`read_truth_cells`) of the given ``kinds``:
    ``level`` = the (weighted) mean of ``y1 − against`` (outcome units; ``against="y_on"`` on stopped
    cells: the effect of switching off), ``base`` = the mean of ``against`` (the expected outcome
    without the effect), ``per_dose`` = the mean of ``(y1 − against) / dose`` (the slope per unit of
    dose where the effect is linear in the dose; NaN without a dose) and ``n_cells``. ``LookupError``
    when a row has no such cell (the truth would not cover the sample)."""
    if rows.empty:
        raise LookupError("no station-month to take the planted truth over")
    c = cells[cells["cell"].isin(kinds)]
    key = rows.assign(station_id=rows["station_id"].astype(str), period=rows["period"].astype(np.int64))
    got = key.merge(c, on=["station_id", "period"], how="left")
    if len(got) != len(key):
        raise LookupError("the truth cells repeat a station-month")
    missing = got["y1"].isna() | got[against].isna()
    if missing.any():
        r = got[missing].iloc[0]
        raise LookupError(f"no planted {'/'.join(kinds)} truth at station {r['station_id']} period "
                          f"{int(r['period'])} ({int(missing.sum())} of {len(got)} station-months)")
    w = got["weight"].to_numpy(float) if "weight" in got.columns else np.ones(len(got))
    w = w / w.sum()
    diff = (got["y1"] - got[against]).to_numpy(float)
    dose = got["dose"].to_numpy(float)
    per_dose = float(w @ (diff / dose)) if np.isfinite(dose).all() and (dose > 0).all() else float("nan")
    return {"level": float(w @ diff), "base": float(w @ got[against].to_numpy(float)), "per_dose": per_dose,
            "n_cells": int(len(got))}


# ---------------------------------------------------------------------------- plant summaries
#: the outcome each issue-17 plant is summarised on by default
PLANT_OUTCOMES = {"dose": "disputes_opened", "stop": "incidents_nonpolice", "displacement": "incidents_theft",
                  "urban_rural": "incidents_dispute"}


def _effect(y1: np.ndarray, y0: np.ndarray) -> dict[str, float | int]:
    """Mean level effect (outcome units per station-month), percent and log of sum(y1)/sum(y0)."""
    y1, y0 = np.asarray(y1, float), np.asarray(y0, float)
    if not len(y1):
        return {"n_cells": 0, "att_level": float("nan"), "att_pct": float("nan"), "att_log": float("nan")}
    ratio = y1.sum() / y0.sum()
    return {"n_cells": int(len(y1)), "att_level": float((y1 - y0).mean()), "att_pct": float(100 * (ratio - 1)),
            "att_log": float(np.log(ratio))}


def plant_truths(w: World, cells: pd.DataFrame | None = None,
                 outcomes: dict[str, str] | None = None) -> dict[str, dict]:
    """The true effect of each issue-17 plant of world ``w`` from its truth cells (``truth_cells(w)``
    unless given), on :data:`PLANT_OUTCOMES` (override per plant with ``outcomes``). Effects as
    :func:`_effect`: ``att_level`` (outcome units per station-month), ``att_pct`` = 100·(Σy1/Σy0 − 1),
    ``att_log`` = log(Σy1/Σy0), over the cells named below.

    - ``dose`` (一村一辅警): ``by_dose`` {d: effect over the treated cells of stations with dose d}
      and ``overall`` (all treated cells).
    - ``stop`` (非警务警情分流): ``switch_off`` (stopped cells: y1 − y_on, the effect of switching
      off, about minus the effect it ends), ``switch_on`` (all treated cells), ``county``,
      ``n_stations`` stopping, ``ended_on``.
    - ``displacement`` (巡处一体化): ``spillover`` (the exposed untreated neighbours' cells),
      ``n_exposed`` stations, ``adopters`` (the adopters' treated cells, same outcome).
    - ``urban_rural`` (警网融合): ``by_area`` {area type: effect over treated cells} and ``overall``.
    """
    cells = truth_cells(w) if cells is None else cells
    want = {**PLANT_OUTCOMES, **(outcomes or {})}
    area = dict(zip(w.stations["station_id"], w.stations["area_type"], strict=True))
    county = dict(zip(w.stations["station_id"], w.stations["county"], strict=True))

    def sel(reform: str, plant: str, cell: str) -> pd.DataFrame:
        return cells[(cells["reform"] == reform) & (cells["outcome"] == want[plant]) & (cells["cell"] == cell)]

    out: dict[str, dict] = {}
    d = sel("village_auxiliary", "dose", "treated")
    out["dose"] = {"reform": "village_auxiliary", "outcome": want["dose"], "overall": _effect(d["y1"], d["y0"]),
                   "by_dose": {float(k): _effect(g["y1"], g["y0"]) for k, g in d.groupby("dose")},
                   "n_stations": {float(k): int(g["station_id"].nunique()) for k, g in d.groupby("dose")}}
    on, off = sel("nonpolice_diversion", "stop", "treated"), sel("nonpolice_diversion", "stop", "stopped")
    stopped = sorted(off["station_id"].unique())
    ends = w.end[w.end > 0] if w.end is not None else np.array([], dtype=np.int64)
    out["stop"] = {"reform": "nonpolice_diversion", "outcome": want["stop"],
                   "switch_on": _effect(on["y1"], on["y0"]), "switch_off": _effect(off["y1"], off["y_on"]),
                   "county": county[stopped[0]] if stopped else None, "n_stations": len(stopped),
                   "ended_on": str(registry.period_start(int(ends.min())).date()) if len(ends) else None}
    sp, ad = sel("patrol_dispatch", "displacement", "spillover"), sel("patrol_dispatch", "displacement", "treated")
    out["displacement"] = {"reform": "patrol_dispatch", "outcome": want["displacement"],
                           "spillover": _effect(sp["y1"], sp["y0"]), "n_exposed": int(sp["station_id"].nunique()),
                           "adopters": _effect(ad["y1"], ad["y0"]), "n_adopters": int(ad["station_id"].nunique())}
    g = sel("police_grid", "urban_rural", "treated")
    a = g["station_id"].map(area)
    out["urban_rural"] = {"reform": "police_grid", "outcome": want["urban_rural"], "overall": _effect(g["y1"], g["y0"]),
                          "by_area": {k: _effect(x["y1"], x["y0"]) for k, x in g.groupby(a)},
                          "n_stations": {k: int(x["station_id"].nunique()) for k, x in g.groupby(a)}}
    return out


__all__ = ["DOSE_REFORMS", "NO_TRUTH_CELLS", "PLANT_OUTCOMES", "TRUTH_CELLS_FILE", "TRUTH_CELLS_TABLE",
           "cells_truth", "load_truth_cells", "plant_truths", "read_truth_cells", "truth_cells", "truth_for_sample", "write_truth_cells"]
