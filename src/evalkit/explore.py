"""What is in the warehouse: coverage, quarantine, adoption timing, outcome distributions.

All queries run in DuckDB and return aggregates only (no record-level data), so the
``explore_data`` notebook is safe to share.
"""

from __future__ import annotations

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from evalkit.coverage import coverage_frame
from evalkit.i18n import outcome_label
from evalkit.registry import REFORMS, period_label
from evalkit.viz.style import use_cjk_font
from evalkit.warehouse import status as warehouse_status


def table_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows per canonical table, with the time span of the records."""
    spans = {
        "stations": None, "reforms": "adopted_on", "incidents": "received_at", "disputes": "opened_on",
    }
    rows = []
    for table, col in spans.items():
        n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        lo = hi = None
        if col and n:
            lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {table}").fetchone()
        rows.append({"table": table, "rows": int(n), "from": lo, "to": hi})
    return pd.DataFrame(rows)


def coverage(con: duckdb.DuckDBPyConnection, table: str = "incidents") -> pd.DataFrame:
    """Records per station (rows) and month (columns) of ``table``: a number inside the station's
    coverage (0 = a covered month without records), NaN outside it (no export; see
    :mod:`evalkit.coverage`). Every register station is a row."""
    df = coverage_frame(con, table)
    if df.empty:
        return pd.DataFrame()
    wide = df.pivot(index="station_id", columns="period", values="n_records").astype("float64")
    all_periods = range(int(wide.columns.min()), int(wide.columns.max()) + 1)
    wide = wide.reindex(columns=all_periods)
    stations = con.execute("SELECT station_id FROM stations ORDER BY station_id").df()["station_id"]
    return wide.reindex(stations)


def coverage_gaps(cov: pd.DataFrame) -> pd.DataFrame:
    """Stations with months outside coverage (missing exports) or covered months without records."""
    out = pd.DataFrame({"months_missing": cov.isna().sum(axis=1), "months_without_records": (cov == 0).sum(axis=1),
                        "months": cov.shape[1]})
    keep = (out["months_missing"] > 0) | (out["months_without_records"] > 0)
    return out[keep].sort_values(["months_missing", "months_without_records"], ascending=False)


def status(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Files, quarantine by reason, `other` shares and coverage ranges: :func:`evalkit.warehouse.status`."""
    return warehouse_status(con)


def quarantine_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Quarantined rows of the live loads by table and reason (no row contents)."""
    return con.execute("""
        SELECT table_name, reason, count(*) AS rows, count(DISTINCT source_file) AS files
        FROM quarantine GROUP BY ALL ORDER BY rows DESC
    """).df()


def adoption_matrix(con: duckdb.DuckDBPyConnection, start: str = "2019-01", end: str = "2025-12") -> pd.DataFrame:
    """Station × month matrix of the number of reforms in force (for the adoption heat map)."""
    p0 = int(start[:4]) * 12 + int(start[5:7]) - 1
    p1 = int(end[:4]) * 12 + int(end[5:7]) - 1
    df = con.execute("""
        SELECT station_id, reform, year(adopted_on) * 12 + month(adopted_on) - 1 AS first_period FROM reforms
    """).df()
    stations = con.execute("SELECT station_id FROM stations ORDER BY station_id").df()["station_id"]
    periods = np.arange(p0, p1 + 1)
    mat = pd.DataFrame(0, index=stations, columns=periods, dtype=int)
    for sid, fp in zip(df["station_id"], df["first_period"], strict=True):
        if sid in mat.index:
            mat.loc[sid, periods >= fp] += 1
    return mat


def adoption_table(con: duckdb.DuckDBPyConnection, lang: str = "zh") -> pd.DataFrame:
    """Stations adopting each reform, with first and last adoption month."""
    df = con.execute("""
        SELECT reform, count(DISTINCT station_id) AS stations, min(adopted_on) AS first, max(adopted_on) AS last
        FROM reforms GROUP BY reform ORDER BY first
    """).df()
    df["reform"] = [REFORMS[r].zh if lang == "zh" else REFORMS[r].en for r in df["reform"]]
    return df


def plot_heatmap(mat: pd.DataFrame, *, title: str = "", cbar_label: str = "", ax=None, cmap: str = "viridis"):
    """A station × month heat map with year ticks."""
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    im = ax.imshow(mat.to_numpy(), aspect="auto", interpolation="nearest", cmap=cmap)
    cols = list(mat.columns)
    ticks = [i for i, p in enumerate(cols) if int(p) % 12 == 0]
    ax.set_xticks(ticks, [period_label(cols[i])[:4] for i in ticks])
    ax.set_yticks([])
    ax.set_ylabel(f"{len(mat)} stations")
    ax.set_title(title, fontsize=11)
    ax.grid(False)
    ax.figure.colorbar(im, ax=ax, label=cbar_label, fraction=0.03)
    ax.figure.tight_layout()
    return ax


def plot_distributions(panel: pd.DataFrame, outcomes: list[str], lang: str = "zh"):
    """Histograms of station-month outcomes, one panel per outcome."""
    use_cjk_font()
    n = len(outcomes)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    for ax, o in zip(axes[0], outcomes, strict=True):
        v = panel[o].dropna()
        ax.hist(v, bins=40, color="#34495e")
        ax.set_title(outcome_label(o, lang), fontsize=10)
    fig.tight_layout()
    return fig
