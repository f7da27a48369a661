"""The numbers of a bureau's prevention-index report (no text, no plotting: :mod:`evalkit.index.brief`
and :mod:`evalkit.viz.index` render them).

- **scores**: the index of every station of the region in every period (:func:`index_sql`, peers =
  the region's stations, as ``evalkit index compute --region``), read-only on the warehouse;
- **ranking**: the reported period's stations by rank, with the change of index and rank against the
  period before;
- **trend**: per period the region's mean index and its 10th/90th percentiles over stations;
- **alerts**: the alerts (:mod:`evalkit.index.alerts`, peers = stations of the same area type in the
  whole warehouse, as ``evalkit index alerts``) of the months of the reported period, for the region's
  stations, with their reminder notices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from evalkit.index.alerts import HISTORY, alerts_sql, notices
from evalkit.index.compute import default_window, index_sql, panel_cells, values_sql
from evalkit.index.definition import IndexDefinition
from evalkit.index.report_params import IndexReportParams
from evalkit.panel import _region_sql, panel_cache
from evalkit.registry import period_of


@dataclass
class IndexReport:
    params: IndexReportParams
    defn: IndexDefinition
    synthetic: bool
    at: str  # the reported period label
    previous: str | None  # the period before it (None: the first)
    scores: pd.DataFrame  # station_id, name, period, index, <capabilities>, rank (every period)
    ranking: pd.DataFrame  # the reported period: rank, station_id, name, index, d_index, d_rank, capabilities
    trend: pd.DataFrame  # period, mean, p10, p90, stations
    alerts: pd.DataFrame  # the alerts of the reported period's months
    notices: dict[str, str] = field(default_factory=dict)

    @property
    def capabilities(self) -> list[str]:
        return [c.id for c in self.defn.capabilities]


def months_of(at: str, period: str) -> tuple[str, str]:
    """The first and last month (``YYYY-MM``) of a period label."""
    if period == "month":
        return at, at
    if period == "quarter":
        y, q = int(at[:4]), int(at[-1])
        return f"{y:04d}-{3 * q - 2:02d}", f"{y:04d}-{3 * q:02d}"
    return f"{at}-01", f"{at}-12"


def _synthetic(con: duckdb.DuckDBPyConnection) -> bool:
    from evalkit.evaluation import warehouse_facts

    return warehouse_facts(con, "").synthetic


def station_scores(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, period: str,
                   region: dict | None) -> pd.DataFrame:
    """Index, sub-scores and rank of the region's stations in every period (small: stations × periods)."""
    p0, p1 = default_window(con, defn)
    sql, named = index_sql(defn, period, p0, p1, region, panel_cells(con, defn, p0, p1, region))
    caps = ", ".join(f"q.{c.id}" for c in defn.capabilities)
    return con.execute(f"SELECT q.station_id, s.name, q.period, q.\"index\", {caps}, q.rank FROM ({sql}) q "
                       f"JOIN stations s USING (station_id) ORDER BY q.period, q.rank, q.station_id", named).df()


def period_alerts(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, first: str, last: str,
                  region: dict | None) -> pd.DataFrame:
    """Alerts of the months ``first``..``last`` at the region's stations; the monthly indicator values
    of every station are built in a TEMP table (the warehouse stays read-only).

    Only the months the rule reads are built: the ``HISTORY`` months before ``first`` (the own
    baseline's window) through ``last`` (peers are the same month's stations). Every station has a
    row in every month of the grid, so the baseline's ``ROWS`` frame of a reported month spans the
    same months as over the whole span: the alerts are those of the whole monthly table. The own
    baselines are computed for the reported months only (``since``)."""
    d0, d1 = default_window(con, defn)
    p0 = max(d0, period_of(first + "-01") - HISTORY)
    p1 = max(p0, min(d1, period_of(last + "-01")))
    sql, named = values_sql(defn, "month", p0, p1, None, panel_cells(con, defn, p0, p1, None))
    con.execute(f"CREATE OR REPLACE TEMP TABLE ek_index_report_month AS {sql}", named)
    region_sql, args = _region_sql(region)
    # every indicator in one query (its windows are per indicator: the same rows as one query per
    # indicator, as evalkit index alerts runs them): the report's rows are only HISTORY + 3 months,
    # where 18 queries each paid the joins and sorts again (~1.3 s of CPU on 1,500 stations)
    out = con.execute(
        f"SELECT a.* FROM ({alerts_sql(defn, 'ek_index_report_month', since=first)}) a "
        f"JOIN stations s USING (station_id) WHERE a.period BETWEEN ? AND ? AND {region_sql}",
        [first, last, *args]).df()
    con.execute("DROP TABLE ek_index_report_month")
    return out.sort_values(["station_id", "period", "capability", "indicator"]).reset_index(drop=True)


def build_report(params: IndexReportParams, con: duckdb.DuckDBPyConnection | None = None) -> IndexReport:
    """All numbers of the report (opens ``params.warehouse`` read-only unless ``con`` is given)."""
    from evalkit.index.outcome import load_for_params

    defn = load_for_params(params.index_definition)
    if con is None:
        from evalkit.evaluation import open_warehouse

        with open_warehouse(params.warehouse) as own:
            return build_report(params, own)
    region = params.region.as_filter()
    with panel_cache(con):  # the scores and the alerts read one computation of the panel's cells
        return _build(params, con, defn, region)


def _build(params: IndexReportParams, con: duckdb.DuckDBPyConnection, defn: IndexDefinition,
           region: dict | None) -> IndexReport:
    scores = station_scores(con, defn, params.period, region)
    periods = sorted(scores.loc[scores["index"].notna(), "period"].unique())
    if not periods:
        raise ValueError(f"{params.evaluation_id}: no station of region {region} has an index score")
    at = params.at or periods[-1]
    if at not in periods:
        raise ValueError(f"{params.evaluation_id}: at {at!r} has no index scores; choose one of "
                         f"{periods[0]}..{periods[-1]}")
    previous = periods[periods.index(at) - 1] if periods.index(at) > 0 else None
    caps = [c.id for c in defn.capabilities]
    now = scores[scores["period"] == at].set_index("station_id")
    ranking = now[["rank", "name", "index", *caps]].copy()
    if previous is not None:
        before = scores[scores["period"] == previous].set_index("station_id")
        ranking["d_index"] = ranking["index"] - before["index"]
        ranking["d_rank"] = before["rank"] - ranking["rank"]  # positive: moved up
    else:
        ranking["d_index"] = ranking["d_rank"] = float("nan")
    ranking = ranking.reset_index().sort_values(["rank", "station_id"], na_position="last").reset_index(drop=True)
    g = scores.groupby("period")["index"]
    trend = pd.DataFrame({"mean": g.mean(), "p10": g.quantile(0.1), "p90": g.quantile(0.9),
                          "stations": g.count()}).reset_index()
    first, last = months_of(at, params.period)
    alerts = period_alerts(con, defn, first, last, region)
    return IndexReport(params, defn, _synthetic(con), at, previous, scores, ranking, trend, alerts,
                       notices(alerts, defn, params.lang) if len(alerts) else {})


def save_results(rep: IndexReport, path: str | Path) -> Path:
    """``results.json`` of the run: the reported period, the ranking and the alerts (numbers only)."""
    p = Path(path)
    doc = {"evaluation_id": rep.params.evaluation_id, "kind": "prevention_index", "period": rep.params.period,
           "at": rep.at, "previous": rep.previous, "synthetic": rep.synthetic,
           "ranking": json.loads(rep.ranking.to_json(orient="records", force_ascii=False)),
           "alerts": json.loads(rep.alerts.to_json(orient="records", force_ascii=False))}
    p.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return p


__all__ = ["IndexReport", "build_report", "months_of", "period_alerts", "save_results", "station_scores"]
