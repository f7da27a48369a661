"""Station × month panels, built by SQL inside DuckDB.

Raw records never travel to pandas: one ``GROUP BY`` per source table runs in DuckDB and
only the aggregated station-month rows (a few thousand to a few million) come back.

Definitions (per station and month; months numbered ``year*12 + month-1``, see
:mod:`evalkit.registry`):

- ``calls_total``: every incident received, including calls diverted to 12345.
- ``incidents_total`` and ``incidents_<category>``: incidents handled by the station or its
  patrols (``handled_by`` ≠ ``diverted``; a missing ``handled_by`` — an export without 处置力量 —
  counts as the station, which is what the bureau's own totals mean).
- ``incidents_per_10k``: ``incidents_total`` per 10,000 residents.
- ``dispatches`` (处警量): incidents handled by station or patrol — the same count as
  ``incidents_total`` (a dispatch is every non-diverted incident), kept as the bureau's dispatch
  vocabulary; a params file may list only one of the two (``registry.SAME_SERIES``).
- ``cases`` (办案量): incidents with ``is_case``.
- ``n_responses``: incidents with an arrival time; ``response_*_min``: minutes from
  receipt to arrival (mean, median, 90th percentile); ``share_within_5min``.
- ``n_noncase`` and ``share_patrol_closed``: among non-diverted, non-case incidents, the
  share handled by patrol.
- ``disputes_opened`` (by ``opened_on``), ``disputes_resolved``, ``dispute_resolution_rate``,
  ``dispute_escalation_rate``, ``dispute_days_to_resolve`` (resolved disputes only).
- ``first_treat``: the month the station adopted the reform (0 = never in the register);
  ``treated``: 1 from that month on; ``event_time``: months since adoption (NA if never). These stay
  intent-to-treat: a station that stopped the reform (``reforms.ended_on``) is still an adopter from
  ``first_treat`` on, so the staggered headline is the effect of having *started* the reform.
- ``treatment``: 1 in the months the reform actually ran at the station — ``first_treat`` <= month <
  the month of ``ended_on`` (no ``ended_on``: to the end) — else 0 (never-adopters: 0). The switching
  analysis (:mod:`evalkit.estimators.switching`) reads it.
- ``dose``: only when some adopter of the reform has an ``intensity`` in the reforms table: the
  station's intensity from its ``first_treat`` month on (NaN there for an adopter without one),
  0 before adoption and for never-adopters (the dose-response analysis, :mod:`evalkit.estimators.dose`).
  ``panel.attrs["n_stopped"]``: adopters whose ``ended_on`` falls inside the window;
  ``panel.attrs["n_dose_missing"]``: adopters without an intensity when a ``dose`` column exists.

Unknowns are missing, not zero. A record's unknown (NULL) ``is_case``, ``handled_by``,
``resolved`` or ``escalated`` is never read as "no": a station-month's count or rate is NaN when
*any* record it ranges over has the value it needs unknown (not computed over the known records
only — unknowns usually come from a whole file without the column). ``is_case`` unknown → ``cases``
(any incident), ``n_noncase`` and ``share_patrol_closed`` (any non-diverted incident) NaN;
``handled_by`` unknown → ``share_patrol_closed`` NaN (the totals count it as the station);
``escalated`` unknown → ``disputes_escalated`` and ``dispute_escalation_rate`` NaN; ``resolved``
unknown → ``disputes_resolved``, ``dispute_resolution_rate`` and ``dispute_days_to_resolve`` NaN.

Gaps are missing, not zero. The warehouse records which station-months each record table
covers (:mod:`evalkit.coverage`: months with records, plus runs of empty months that are
plausible as true zeros for the station's volume, inside the span of the files that hold the
station). A covered month without records gets zero counts and missing (NaN) means. A month
*outside* coverage — a station that stopped exporting for a while, months before or after the
data, a file that never arrived — gets NaN counts and NaN means for that table's columns
(incident columns from ``incidents``, dispute columns from ``disputes``); the row is kept, never
dropped, so the panel is unbalanced in its outcomes and the estimators drop the NaN cells.
Count columns are ``int64`` when every cell is covered and ``float64`` (NaN = not covered)
otherwise. ``panel.attrs``: ``balanced`` (no missing cell), ``coverage_gaps``
(``{table: {station_id: months missing in the window}}``) and ``missing_cells`` (``{table: n}``).
In the demo world every station reports every month, so its panels are balanced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import duckdb
import pandas as pd

from evalkit.cells_cache import shared_cells
from evalkit.coverage import coverage_source
from evalkit.registry import CATEGORIES, NEVER_TREATED, period_of, period_start, reform_id

REGION_COLUMNS = ("province", "city", "county", "area_type", "station_id")


@dataclass(frozen=True)
class PanelSpec:
    """What panel to build: the reform defining treatment timing, window and region."""

    reform: str
    start: str = "2019-01"
    end: str = "2025-12"
    region: dict[str, str | list[str]] | None = None

    @property
    def first_period(self) -> int:
        return period_of(pd.Timestamp(self.start + "-01") if len(self.start) == 7 else self.start)

    @property
    def last_period(self) -> int:
        return period_of(pd.Timestamp(self.end + "-01") if len(self.end) == 7 else self.end)


def _region_sql(region: dict[str, str | list[str]] | None) -> tuple[str, list]:
    if not region:
        return "TRUE", []
    clauses, args = [], []
    for col, value in region.items():
        if value is None:
            continue
        if col not in REGION_COLUMNS:
            raise ValueError(f"region filter on unknown column {col!r}; use one of {REGION_COLUMNS}")
        values = [value] if isinstance(value, str) else list(value)
        clauses.append(f"s.{col} IN ({', '.join('?' for _ in values)})")
        args.extend(values)
    return (" AND ".join(clauses) or "TRUE"), args


INCIDENT_COUNTS = ("calls_total", "incidents_total", *(f"incidents_{c}" for c in CATEGORIES), "dispatches",
                   "cases", "n_responses", "n_noncase")
DISPUTE_COUNTS = ("disputes_opened", "disputes_resolved", "disputes_escalated")
# the stored coverage, spelled as coverage.coverage_source spells it (the same text: one cache key)
_STORED = {t: f"(SELECT station_id, period, n_records FROM coverage WHERE table_name = '{t}')"
           for t in ("incidents", "disputes")}
STATION_ATTRS = ("station_id", "name", "county", "city", "province", "area_type", "population", "officers",
                 "auxiliaries")


def panel_sql(spec: PanelSpec, inc_cov: str = _STORED["incidents"], dis_cov: str = _STORED["disputes"],
              cells: str | None = None) -> str:
    """The SQL that builds the panel (parameters: reform, p0, p1, t0, t1, then region values).

    ``inc_cov``/``dis_cov``: FROM-able sources of the covered ``(station_id, period)`` of each record
    table (default: the warehouse's ``coverage`` table). ``cells``: a FROM-able source of
    :func:`cells_sql`'s rows for a window containing ``$p0..$p1`` (a table of :func:`panel_cache`),
    read instead of the records (parameters then: reform, p0, p1).
    """
    src = cells or f"({cells_sql(spec, inc_cov, dis_cov)})"
    attrs = ", ".join(f"c.{a}" for a in STATION_ATTRS)
    return f"""
WITH adopt AS (
  SELECT station_id, min(adopted_on) AS adopted_on
  FROM reforms WHERE reform = $reform GROUP BY station_id
)
SELECT {attrs}, c.period,
  coalesce(year(a.adopted_on) * 12 + month(a.adopted_on) - 1, {NEVER_TREATED}) AS first_treat,
  c.* EXCLUDE ({", ".join(STATION_ATTRS)}, period)
FROM {src} c
LEFT JOIN adopt a ON a.station_id = c.station_id
WHERE c.period BETWEEN $p0 AND $p1
ORDER BY c.station_id, c.period
"""


def cells_sql(spec: PanelSpec, inc_cov: str = _STORED["incidents"], dis_cov: str = _STORED["disputes"]) -> str:
    """The panel's station-month cells, unordered and without the reform's columns: the station
    attributes, ``period`` and the outcome columns of the module docstring, one row per station of
    the region and month ``$p0..$p1`` (parameters: p0, p1, t0, t1, then region values). A cell
    depends on its own station and month only: the cells of a longer window, cut to a shorter one,
    are the shorter window's cells."""
    cat_cols = ",\n      ".join(
        f"count(*) FILTER (WHERE NOT diverted AND category = '{c}') AS incidents_{c}" for c in CATEGORIES
    )
    # a count is NULL outside coverage, zero in a covered month without records, and NULL in a
    # month whose records leave the counted value unknown (the aggregate below is then NULL)
    def ic(col: str) -> str:
        return f"CASE WHEN ci.period IS NULL THEN NULL WHEN i.station_id IS NULL THEN 0 ELSE i.{col} END AS {col}"

    def dc(col: str) -> str:
        return f"CASE WHEN cd.period IS NULL THEN NULL WHEN d.station_id IS NULL THEN 0 ELSE d.{col} END AS {col}"

    def known(cond: str, expr: str) -> str:  # expr, or NULL when some record has an unknown value
        return f"CASE WHEN count(*) FILTER (WHERE {cond}) = 0 THEN {expr} END"

    cat_select = ", ".join(ic(f"incidents_{c}") for c in CATEGORIES)
    region_sql, _ = _region_sql(spec.region)
    # records of stations outside the region are left out before aggregating; without a region the
    # join from `st` below drops the (unknown) stations' rows, so no per-record probe is needed
    in_st = "" if region_sql == "TRUE" else "AND station_id IN (SELECT station_id FROM st)"
    return f"""
WITH months AS (
  SELECT range AS period FROM range(CAST($p0 AS BIGINT), CAST($p1 AS BIGINT) + 1)
),
st AS (
  SELECT s.* FROM stations s WHERE {region_sql}
),
inc_raw AS (
  SELECT station_id,
         year(received_at) * 12 + month(received_at) - 1 AS period,
         coalesce(handled_by, 'station') = 'diverted' AS diverted,  -- unknown: handled by the station
         handled_by,
         is_case,
         category,
         CASE WHEN arrived_at IS NOT NULL THEN date_diff('second', received_at, arrived_at) END AS response_sec,
         response_sec / 60.0 AS response_min
  FROM incidents
  WHERE received_at >= $t0 AND received_at < $t1
    {in_st}
),
inc AS (
  SELECT station_id, period,
      count(*) AS calls_total,
      count(*) FILTER (WHERE NOT diverted) AS incidents_total,
      {cat_cols},
      count(*) FILTER (WHERE NOT diverted) AS dispatches,
      {known("is_case IS NULL", "count(*) FILTER (WHERE is_case)")} AS cases,
      count(response_min) AS n_responses,
      -- whole seconds: an exact sum, the same mean in every run (a parallel sum of minutes is not)
      avg(response_sec) / 60.0 AS response_mean_min,
      -- both quantiles from one sorted state (median = quantile_cont 0.5, the same numbers)
      quantile_cont(response_min, [0.5, 0.9]) AS response_q,
      avg(CASE WHEN response_min IS NOT NULL THEN CAST(response_min <= 5 AS DOUBLE) END) AS share_within_5min,
      {known("NOT diverted AND is_case IS NULL", "count(*) FILTER (WHERE NOT diverted AND NOT is_case)")}
          AS n_noncase,
      {known("NOT diverted AND (is_case IS NULL OR handled_by IS NULL)",
             "avg(CASE WHEN NOT diverted AND NOT is_case THEN CAST(handled_by = 'patrol' AS DOUBLE) END)")}
          AS share_patrol_closed
  FROM inc_raw GROUP BY station_id, period
),
dis AS (
  SELECT station_id,
         year(opened_on) * 12 + month(opened_on) - 1 AS period,
         count(*) AS disputes_opened,
         {known("resolved IS NULL", "count(*) FILTER (WHERE resolved)")} AS disputes_resolved,
         {known("escalated IS NULL", "count(*) FILTER (WHERE escalated)")} AS disputes_escalated,
         {known("resolved IS NULL",
                "avg(CASE WHEN resolved AND closed_on IS NOT NULL THEN date_diff('day', opened_on, closed_on) END)")}
             AS dispute_days_to_resolve
  FROM disputes
  WHERE opened_on >= CAST($t0 AS DATE) AND opened_on < CAST($t1 AS DATE)
    {in_st}
  GROUP BY station_id, period
)
SELECT
  st.station_id, st.name, st.county, st.city, st.province, st.area_type,
  st.population, st.officers, st.auxiliaries,
  m.period,
  {ic("calls_total")},
  {ic("incidents_total")},
  {cat_select},
  CASE WHEN st.population > 0 AND ci.period IS NOT NULL THEN coalesce(i.incidents_total, 0) * 10000.0 / st.population END
      AS incidents_per_10k,
  {ic("dispatches")},
  {ic("cases")},
  {ic("n_responses")},
  i.response_mean_min, i.response_q[1] AS response_median_min, i.response_q[2] AS response_p90_min,
  i.share_within_5min,
  {ic("n_noncase")},
  i.share_patrol_closed,
  {dc("disputes_opened")},
  {dc("disputes_resolved")},
  {dc("disputes_escalated")},
  CASE WHEN d.disputes_opened > 0 THEN d.disputes_resolved * 1.0 / d.disputes_opened END
      AS dispute_resolution_rate,
  CASE WHEN d.disputes_opened > 0 THEN d.disputes_escalated * 1.0 / d.disputes_opened END
      AS dispute_escalation_rate,
  d.dispute_days_to_resolve
FROM st CROSS JOIN months m
LEFT JOIN inc i ON i.station_id = st.station_id AND i.period = m.period
LEFT JOIN dis d ON d.station_id = st.station_id AND d.period = m.period
LEFT JOIN {inc_cov} ci ON ci.station_id = st.station_id AND ci.period = m.period
LEFT JOIN {dis_cov} cd ON cd.station_id = st.station_id AND cd.period = m.period
"""


def bind_cells(sql: str, p0: int, p1: int, region: dict | None) -> tuple[str, dict]:
    """``sql`` (holding :func:`cells_sql`) with its region ``?`` turned into named parameters, and the
    parameters p0, p1, t0, t1 and the region values (DuckDB does not mix ``$named`` and ``?``)."""
    _, region_args = _region_sql(region)
    sql, named = name_placeholders(sql, region_args, "r")
    return sql, {"p0": p0, "p1": p1, "t0": period_start(p0).to_pydatetime(),
                 "t1": period_start(p1 + 1).to_pydatetime(), **named}


def name_placeholders(sql: str, args: list, prefix: str) -> tuple[str, dict]:
    """``sql`` with its ``?`` in turn named ``$<prefix>0``, ``$<prefix>1``… and those names' values."""
    named = {}
    for k, v in enumerate(args):
        sql = sql.replace("?", f"${prefix}{k}", 1)
        named[f"{prefix}{k}"] = v
    return sql, named


# per open connection inside panel_cache: {(region, coverage sources): (table, p0, p1, columns)}
_SCOPES: dict[int, dict[tuple, tuple[str, int, int, tuple[str, ...] | None]]] = {}


@contextmanager
def panel_cache(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Inside the block the panel's station-month cells (:func:`cells_sql`) are computed once per
    region (and coverage source) into a TEMP table of ``con`` and reused by :func:`build_panel` and the
    index (:mod:`evalkit.index`) for every window inside the first one: one pass over the records
    instead of one per reader. The records must not change inside the block (an evaluation and the
    index report only read). The tables are dropped at the end; a nested block is the outer one."""
    key = id(con)
    if key in _SCOPES:
        yield
        return
    _SCOPES[key] = {}
    try:
        yield
    finally:
        for name, *_ in _SCOPES.pop(key).values():
            with suppress(duckdb.Error):  # a closed connection has dropped its temp tables already
                con.execute(f"DROP TABLE IF EXISTS {name}")


def cached_cells(con: duckdb.DuckDBPyConnection, region: dict | None, p0: int, p1: int,
                 inc_cov: str = _STORED["incidents"], dis_cov: str = _STORED["disputes"],
                 columns: tuple[str, ...] | None = None) -> str | None:
    """Inside :func:`panel_cache`: the TEMP table of the cells of ``region`` for a window containing
    ``p0..p1`` (months) with the outcome ``columns`` (None: all), computed now when no table of the
    block has them (only the asked columns: DuckDB then skips the other aggregates). Outside: None
    (the caller reads the records)."""
    scope = _SCOPES.get(id(con))
    if scope is None:
        return None
    region_sql, region_args = _region_sql(region)
    key = (region_sql, tuple(region_args), inc_cov, dis_cov)
    hit = scope.get(key)
    if (hit is not None and hit[1] <= p0 and p1 <= hit[2]
            and (hit[3] is None or (columns is not None and set(columns) <= set(hit[3])))):
        return hit[0]
    name = hit[0] if hit is not None else f"ek_panel_cells_{len(scope)}"
    shared = shared_cells(con, region, p0, p1, inc_cov, dis_cov, write=False)
    if shared is not None:  # the same cells, computed ahead of this kernel by the runner (cells_cache)
        sql, named = f"SELECT * FROM {shared[0]}", shared[1]
    else:
        sql, named = bind_cells(cells_sql(PanelSpec("", region=region), inc_cov, dis_cov), p0, p1, region)
    if columns is not None:
        sql = f"SELECT {', '.join(STATION_ATTRS)}, period, {', '.join(columns)} FROM ({sql}) c"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", named)
    scope[key] = (name, p0, p1, None if columns is None else tuple(columns))
    return name


def build_panel(
    con: duckdb.DuckDBPyConnection,
    reform: str,
    *,
    start: str = "2019-01",
    end: str = "2025-12",
    region: dict[str, str | list[str]] | None = None,
    exclude_reforms: list[str] | None = None,
) -> pd.DataFrame:
    """Build the station × month panel for one reform from the warehouse.

    ``exclude_reforms``: other reforms (ids or Chinese names) whose adopters are dropped from the
    comparison group, because those reforms also move the outcome (a "clean" comparison group).
    Stations that adopted the evaluated reform stay. How many were dropped, per reform, is in
    ``panel.attrs["excluded_stations"]``.

    ``reform`` may be an English id or a Chinese name (两队一室). ``start``/``end`` are
    ``YYYY-MM`` months (inclusive). ``region`` filters stations, e.g. ``{"city": "临江市"}``.
    Returns one row per station and month, with ``first_treat`` (0 = never adopted),
    ``treated`` (0/1) and ``event_time`` (Int64, NA for never-adopters).
    """
    spec = PanelSpec(reform_id(reform), start, end, region)
    p0, p1 = spec.first_period, spec.last_period
    if p1 < p0:
        raise ValueError(f"panel window ends ({end}) before it starts ({start})")
    covs = [coverage_source(con, t) for t in ("incidents", "disputes")]
    cells, shared = cached_cells(con, spec.region, p0, p1, *covs), None
    if cells is None:  # a batch's cells of this region and window, shared by its evaluations (cells_cache)
        shared = shared_cells(con, spec.region, p0, p1, *covs)
        cells = shared[0] if shared else None
    if cells is not None:  # inside panel_cache or a batch: the cells were (or are now) computed once
        sql, named = panel_sql(spec, cells=cells), {"p0": p0, "p1": p1, **(shared[1] if shared else {})}
    else:
        sql, named = bind_cells(panel_sql(spec, *covs), p0, p1, spec.region)
    named["reform"] = spec.reform
    df = con.execute(sql, named).df()
    if df.empty:
        raise ValueError(
            f"panel for reform {spec.reform!r} is empty: no stations match region {region!r} in the warehouse"
        )
    for col in (*INCIDENT_COUNTS, *DISPUTE_COUNTS):
        # whole counts; float64 only when some cell is outside coverage (NaN = missing, not zero)
        df[col] = df[col].astype("float64" if df[col].isna().any() else "int64")
    for col in ("period", "first_treat"):
        df[col] = df[col].astype("int64")
    df["month"] = pd.to_datetime({"year": df["period"] // 12, "month": df["period"] % 12 + 1, "day": 1})
    ever = df["first_treat"] != NEVER_TREATED
    df["treated"] = (ever & (df["period"] >= df["first_treat"])).astype("int8")
    df["event_time"] = pd.array((df["period"] - df["first_treat"]).where(ever), dtype="Int64")
    excluded: dict[str, int] = {}
    if exclude_reforms:
        others = [reform_id(r) for r in exclude_reforms]
        if spec.reform in others:
            raise ValueError(f"exclude_reforms lists the evaluated reform {spec.reform!r} itself")
        adopters = con.execute(
            "SELECT reform, station_id FROM reforms WHERE reform IN (SELECT unnest($r)) AND adopted_on < $t1",
            {"r": others, "t1": period_start(p1 + 1).to_pydatetime()}).df()
        # unique() first: isin on Arrow strings converts every value it is given to a Python str
        never = df.loc[df["first_treat"] == NEVER_TREATED, "station_id"].unique()
        adopters = adopters[adopters["station_id"].isin(never)]
        excluded = {r: int(adopters.loc[adopters["reform"] == r, "station_id"].nunique()) for r in others}
        df = df[~df["station_id"].isin(adopters["station_id"].unique())].reset_index(drop=True)
        if not (df["first_treat"] == NEVER_TREATED).any() and df.empty:
            raise ValueError("excluding the adopters of other reforms leaves no station in the panel")
    _add_switch_and_dose(con, df, spec.reform, p0, p1)
    df.attrs["excluded_stations"] = excluded
    gaps: dict[str, dict[str, int]] = {}
    for table, col in (("incidents", "calls_total"), ("disputes", "disputes_opened")):
        miss = df[col].isna().groupby(df["station_id"]).sum()
        gaps[table] = {str(k): int(v) for k, v in miss[miss > 0].items()}
    df.attrs["coverage_gaps"] = gaps
    df.attrs["missing_cells"] = {t: int(sum(g.values())) for t, g in gaps.items()}
    df.attrs["balanced"] = not any(gaps.values())
    df.attrs["reform"] = spec.reform
    df.attrs["start"], df.attrs["end"] = start, end
    df.attrs["region"] = region or {}
    return df


def _add_switch_and_dose(con: duckdb.DuckDBPyConnection, df: pd.DataFrame, reform: str, p0: int, p1: int) -> None:
    """``treatment`` (on/off from ``adopted_on``/``ended_on``), ``dose`` (from ``intensity``) and the
    attrs ``n_stopped``/``n_dose_missing`` (in place; see the module docstring). A warehouse made
    before these optional columns existed reads as "no stop, no intensity"."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'reforms'").fetchall()}
    end_sql = ("year(max(ended_on)) * 12 + month(max(ended_on)) - 1" if "ended_on" in have
               else "CAST(NULL AS BIGINT)")
    dose_sql = "max(intensity)" if "intensity" in have else "CAST(NULL AS DOUBLE)"
    per = con.execute(f"SELECT station_id, {end_sql} AS end_period, {dose_sql} AS intensity FROM reforms "
                      f"WHERE reform = $r GROUP BY station_id", {"r": reform}).df().set_index("station_id")
    ever = df["first_treat"] != NEVER_TREATED
    started = ever & (df["period"] >= df["first_treat"])
    end = df["station_id"].map(per["end_period"]).astype("float64")
    df["treatment"] = (started & ~(end <= df["period"])).astype("int8")  # NaN end: never stops
    adopters = df.loc[ever, "station_id"].unique()
    end_adopt = per["end_period"].reindex(adopters)
    df.attrs["n_stopped"] = int(((end_adopt >= p0) & (end_adopt <= p1)).sum())
    dose = per["intensity"].reindex(adopters)
    if dose.notna().any():
        level = df["station_id"].map(per["intensity"]).astype("float64")
        df["dose"] = level.where(started, 0.0)
        df.attrs["n_dose_missing"] = int(dose.isna().sum())
    else:
        df.attrs["n_dose_missing"] = 0


def cohort_table(panel: pd.DataFrame, unit: str = "station_id", cohort: str = "first_treat") -> pd.DataFrame:
    """Number of stations per adoption cohort (0 = never adopted)."""
    first = panel.groupby(unit)[cohort].first()
    return first.value_counts().sort_index().rename_axis(cohort).reset_index(name="stations")
