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

from evalkit.demo.outcomes import expected_outcomes, station_month_params
from evalkit.demo.params import R_IDX, REFORM_ORDER, TRUTH_OUTCOMES, World
from evalkit.registry import NEVER_TREATED

TRUTH_CELLS_FILE = "truth_cells.parquet"
TRUTH_CELLS_TABLE = "demo_truth_cells"
#: sizes whose world gets no truth cells (too large; not loaded into a warehouse by demo-data)
NO_TRUTH_CELLS = ("national",)
_COLUMNS = ["reform", "station_id", "period", "outcome", "y0", "y1"]


def truth_cells(w: World) -> pd.DataFrame:
    """Expected potential outcomes of every treated station-month (``period >= adoption``), long:
    ``reform, station_id, period, outcome, y0, y1`` (outcome units, e.g. incidents per month)."""
    frames = []
    ids = w.stations["station_id"].to_numpy()
    for r in REFORM_ORDER:
        idx = np.flatnonzero(w.reform_of == R_IDX[r])
        if len(idx) == 0:
            continue
        y1 = expected_outcomes(w, idx, station_month_params(w, idx, treated=True))
        y0 = expected_outcomes(w, idx, station_month_params(w, idx, treated=False))
        post = w.periods[None, :] >= w.adopt[idx][:, None]
        si, ti = np.nonzero(post)
        for o in TRUTH_OUTCOMES:
            a0, a1 = y0[o][si, ti].astype(float), y1[o][si, ti].astype(float)
            # exact equality where nothing was planted (rounding noise of the untouched arithmetic)
            a1 = np.where(np.abs(a1 - a0) <= 1e-12 * np.maximum(np.abs(a0), 1.0), a0, a1)
            frames.append(pd.DataFrame({
                "reform": r, "station_id": ids[idx][si], "period": w.periods[ti].astype(np.int64), "outcome": o,
                "y0": a0, "y1": a1}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            _COLUMNS, ["str", "str", "int64", "str", "float64", "float64"], strict=True)})
    return pd.concat(frames, ignore_index=True)[_COLUMNS]


def write_truth_cells(w: World, root: str | Path) -> Path | None:
    """Write :data:`TRUTH_CELLS_FILE` under ``root`` (``None``, nothing written, for the national size)."""
    if w.size in NO_TRUTH_CELLS:
        return None
    path = Path(root) / TRUTH_CELLS_FILE
    truth_cells(w).to_parquet(path, index=False)
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
        cells = cells.assign(station_id=cells["station_id"].astype(str))[["station_id", "period", "y0", "y1"]]
        got = months.merge(cells, on=["station_id", "period"], how="left")
    else:
        have = {r[0] for r in source.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TRUTH_CELLS_TABLE not in have:
            raise LookupError(f"the warehouse has no table {TRUTH_CELLS_TABLE}; regenerate it with `evalkit demo-data`")
        got = source.execute(
            f"SELECT m.station_id, m.period, c.y0, c.y1 FROM months m LEFT JOIN {TRUTH_CELLS_TABLE} c "
            "ON c.station_id = m.station_id AND c.period = m.period AND c.reform = ? AND c.outcome = ?",
            [reform, outcome]).df()
    missing = got["y1"].isna()
    if missing.any():
        r = got[missing].iloc[0]
        raise LookupError(f"no planted truth for {reform}/{outcome} at station {r['station_id']} period "
                          f"{int(r['period'])} ({int(missing.sum())} of {len(got)} adopter-months)")
    return float((got["y1"] - got["y0"]).mean())


__all__ = ["NO_TRUTH_CELLS", "TRUTH_CELLS_FILE", "TRUTH_CELLS_TABLE", "load_truth_cells", "truth_cells",
           "truth_for_sample", "write_truth_cells"]
