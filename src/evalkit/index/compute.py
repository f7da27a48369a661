"""Station × period scores of an index definition, computed as one DuckDB query.

Nothing is pulled into pandas: the query reads the warehouse tables, writes the table
``index_<index_id>_<period>`` into the warehouse and (optionally) a Parquet file with DuckDB's
``COPY``. Steps (each a CTE; the rules are documented in ``docs/prevention-index.md``):

1. ``grid``: every station of the region × every month of the window (a missing report row stays
   a NULL, never a zero);
2. ``monthly``: per indicator the month's numerator and denominator, kept only when both are known;
3. ``agg``: per station and period ``value = scale × Σ numerator / Σ denominator``;
4. ``filled``: ``missing: carry`` fills a missing value with the last known one (up to
   ``carry_periods`` earlier periods); ``yoy`` rules take the change against the period a year earlier;
5. ``scored``: 0–100 points per indicator (linear, thresholds, rank, zscore, yoy);
6. capability sub-scores (weighted mean of the indicator scores present), the index (weighted
   mean of the sub-scores present) and the rank within the period (1 = best).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from evalkit.coverage import coverage_source
from evalkit.index.definition import IndexDefinition, Indicator, Scoring
from evalkit.panel import PanelSpec, _region_sql, cached_cells, cells_sql
from evalkit.registry import period_of, period_start

PERIODS = ("month", "quarter", "year")
# period key of a month index ``period`` (year*12 + month-1) and its label
_KEY = {"month": "period", "quarter": "(period // 12) * 4 + (period % 12) // 3", "year": "period // 12"}
_LABEL = {"month": "printf('%04d-%02d', k // 12, k % 12 + 1)", "quarter": "printf('%04d-Q%d', k // 4, k % 4 + 1)",
          "year": "printf('%04d', k)"}
YOY_LAG = {"month": 12, "quarter": 4, "year": 1}
STATION_COLS = ("county", "city", "province", "area_type")


class IndexComputeError(ValueError):
    """The index cannot be computed on this warehouse (message names what is missing)."""


def table_name(defn: IndexDefinition, period: str) -> str:
    """The warehouse table the scores are written to."""
    return f"index_{defn.index_id}_{period}"


def _num(x: float) -> str:
    """A DOUBLE literal (a plain ``0.123…`` would be read as a DECIMAL and can overflow)."""
    r = repr(float(x))
    return r if "e" in r or "n" in r else r + "e0"


def _den_sql(ind: Indicator, alias: str) -> str:
    d = ind.source.denominator
    if d == "population":
        return "(g.population / 10000.0)"
    if d == "officers":
        return "CAST(g.officers AS DOUBLE)"
    if d == "months":
        return "1.0"
    return f"CAST({alias}.{d} AS DOUBLE)"


def _alias(table: str) -> str:
    return "p" if table == "panel" else f"r_{table}"


def _score_sql(ind: Indicator, x: str, lag: int) -> str:
    """0–100 points of value column ``x`` (NULL stays NULL); window functions run over ``filled``."""
    s: Scoring = ind.scoring
    hb = ind.direction == "higher_better"
    grp = "" if s.peers == "all" else f", {s.peers}"
    if s.rule in ("linear", "yoy"):
        if s.rule == "yoy":
            prev = f"lag({x}, {lag}) OVER (PARTITION BY station_id ORDER BY k)"
            x = f"(100.0 * ({x} - {prev}) / nullif({prev}, 0))" if s.relative else f"({x} - {prev})"
        lo, hi = _num(s.lo), _num(s.hi)
        frac = f"({x} - {lo}) / ({hi} - {lo})" if hb else f"({hi} - {x}) / ({hi} - {lo})"
        # greatest/least skip NULLs in DuckDB: a missing value must stay missing
        return f"CASE WHEN {x} IS NULL THEN NULL ELSE 100.0 * greatest(0.0, least(1.0, {frac})) END"
    if s.rule == "thresholds":
        steps = s.steps or []
        order = reversed(steps) if hb else steps
        op = ">=" if hb else "<="
        whens = " ".join(f"WHEN {x} {op} {_num(b)} THEN {_num(p)}" for b, p in order)
        return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE {_num(s.below)} END"
    w = f"PARTITION BY k{grp}, ({x} IS NULL)"
    if s.rule == "rank":
        o = f"{w} ORDER BY {x} {'ASC' if hb else 'DESC'}"
        n = f"count({x}) OVER ({w})"
        r = f"rank() OVER ({o})"
        # rows ordered up to and with the tied ones (RANGE frame): r + ties - 1; the same window (one
        # sort) as r, where count(*) OVER (PARTITION BY k, peers, x) would sort again
        up_to = f"count(*) OVER ({o})"
        # mid-rank percent: tied stations share the average of their ranks; best = 100
        return (f"CASE WHEN {x} IS NULL THEN NULL WHEN {n} = 1 THEN 50.0 "
                f"ELSE 100.0 * ({r} - 1 + ({up_to} - {r}) / 2.0) / ({n} - 1) END")
    # zscore against the peers of the period; the peers' rows in station order over the whole
    # partition: DuckDB's parallel window sums depend on the row order (scores differed by ~1e-13
    # run to run), one order gives the same mean and SD in every run
    wz = f"{w} ORDER BY station_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    z = f"({x} - avg({x}) OVER ({wz})) / nullif(stddev_samp({x}) OVER ({wz}), 0)"
    sign = "" if hb else "-"
    return (f"CASE WHEN {x} IS NULL THEN NULL ELSE "
            f"greatest(0.0, least(100.0, 50.0 + 50.0 * coalesce({sign}{z}, 0.0) / {_num(s.cap)})) END")


def _weighted(parts: list[tuple[str, float]]) -> str:
    """Weighted mean of the non-NULL columns (NULL when all are NULL)."""
    num = " + ".join(f"coalesce({c} * {_num(w)}, 0)" for c, w in parts)
    den = " + ".join(f"CASE WHEN {c} IS NULL THEN 0 ELSE {_num(w)} END" for c, w in parts)
    return f"({num}) / nullif({den}, 0)"


def default_window(con: duckdb.DuckDBPyConnection, defn: IndexDefinition) -> tuple[int, int]:
    """The months (period indices) covered by the definition's source tables, first..last."""
    spans = []
    for t in defn.tables():
        if t == "panel":
            row = con.execute("SELECT min(period), max(period) FROM coverage "
                              "WHERE table_name IN ('incidents', 'disputes')").fetchall()[0]
        else:
            row = con.execute(f"SELECT min(year(month) * 12 + month(month) - 1), "
                              f"max(year(month) * 12 + month(month) - 1) FROM {t}").fetchall()[0]
        if row[0] is not None:
            spans.append(row)
    if not spans:
        raise IndexComputeError(f"the warehouse holds no rows for the index's tables ({', '.join(defn.tables())}); "
                                f"ingest them first (evalkit ingest cases …)")
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _value_ctes(defn: IndexDefinition, period: str, p0: int, p1: int, region: dict | None,
                cells: str | None = None) -> tuple[list[str], dict, list[Indicator]]:
    """Steps 1–3 of the query (``grid``, ``monthly``, ``agg``): the CTEs, their named parameters and
    the indicators, in definition order. ``cells``: a table of the panel's cells for the region and a
    window containing ``p0..p1`` (:func:`evalkit.panel.cached_cells`), read instead of the records."""
    if period not in PERIODS:
        raise IndexComputeError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    region_sql, region_args = _region_sql(region)
    params: dict = {"p0": p0, "p1": p1}
    for j, v in enumerate(region_args):
        region_sql = region_sql.replace("?", f"$r{j}", 1)
        params[f"r{j}"] = v
    inds = [i for _, i in defn.indicators]
    ctes = [
        "months AS (SELECT range AS period FROM range(CAST($p0 AS BIGINT), CAST($p1 AS BIGINT) + 1))",
        f"st AS (SELECT s.* FROM stations s WHERE {region_sql})",
        "grid AS (SELECT st.station_id, st.county, st.city, st.province, st.area_type, st.population, "
        "st.officers, m.period FROM st CROSS JOIN months m)",
    ]
    joins = []
    for t in defn.tables():
        a = _alias(t)
        if t == "panel" and cells:
            ctes.append(f"{a} AS (SELECT * FROM {cells} WHERE period BETWEEN $p0 AND $p1)")
        elif t == "panel":
            psql = cells_sql(PanelSpec("", region=region))  # the panel's cells: no reform needed
            for j in range(len(region_args)):
                psql = psql.replace("?", f"$r{j}", 1)
            params["t0"] = period_start(p0).to_pydatetime()
            params["t1"] = period_start(p1 + 1).to_pydatetime()
            ctes.append(f"{a} AS ({psql})")
        else:
            ctes.append(f"{a} AS (SELECT *, year(month) * 12 + month(month) - 1 AS period FROM {t} "
                        f"WHERE station_id IN (SELECT station_id FROM st))")
        joins.append(f"LEFT JOIN {a} ON {a}.station_id = g.station_id AND {a}.period = g.period")
    key = _KEY[period]
    monthly_cols = []
    for ind in inds:
        a = _alias(ind.source.table)
        num, den = f"CAST({a}.{ind.source.numerator} AS DOUBLE)", _den_sql(ind, a)
        known = f"{num} IS NOT NULL AND {den} IS NOT NULL"
        monthly_cols.append(f"CASE WHEN {known} THEN {num} END AS n_{ind.id}")
        monthly_cols.append(f"CASE WHEN {known} THEN {den} END AS d_{ind.id}")
    ctes.append(f"monthly AS (SELECT g.station_id, {', '.join('g.' + c for c in STATION_COLS)}, "
                f"{key.replace('period', 'g.period')} AS k, {', '.join(monthly_cols)} "
                f"FROM grid g {' '.join(joins)})")
    # a month is one row (its sum is exact); a quarter's or year's sum of a non-integer source (loss_yuan,
    # patrol_hours) depends on DuckDB's row order at the last bit (ordered sums cost +35 % here)
    agg_cols = [f"{_num(i.source.scale)} * sum(n_{i.id}) / nullif(sum(d_{i.id}), 0) AS {i.id}" for i in inds]
    ctes.append(f"agg AS (SELECT station_id, {', '.join(f'any_value({c}) AS {c}' for c in STATION_COLS)}, k, "
                f"{', '.join(agg_cols)} FROM monthly GROUP BY station_id, k)")
    return ctes, params, inds


def panel_cells(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, p0: int, p1: int,
                region: dict | None) -> str | None:
    """Inside :func:`evalkit.panel.panel_cache`, the table of the panel's cells the index of ``defn``
    reads for the region and months ``p0..p1`` (shared with the evaluation's panel); else None."""
    if "panel" not in defn.tables():
        return None
    cols = {c for _, i in defn.indicators if i.source.table == "panel"
            for c in (i.source.numerator, i.source.denominator) if c not in ("population", "officers", "months")}
    # the coverage the evaluation's panel uses (panel.build_panel): the same cells, one cache key
    covs = [coverage_source(con, t) for t in ("incidents", "disputes")]
    return cached_cells(con, region, p0, p1, *covs, columns=tuple(sorted(cols)))


def values_sql(defn: IndexDefinition, period: str, p0: int, p1: int,
               region: dict | None = None, cells: str | None = None) -> tuple[str, dict]:
    """The indicator values only (steps 1–3, no scores): ``station_id``, ``period`` (label) and one
    column per indicator, the same numbers as those columns of :func:`index_sql`. Cheaper when the
    scores are not needed (the alerts read the values only). ``cells``: as :func:`index_sql`."""
    ctes, params, inds = _value_ctes(defn, period, p0, p1, region, cells)
    cols = ["station_id", f"{_LABEL[period]} AS period", *[i.id for i in inds]]
    return "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(cols)} FROM agg ORDER BY k, station_id", params


def index_sql(defn: IndexDefinition, period: str, p0: int, p1: int,
              region: dict | None = None, cells: str | None = None) -> tuple[str, dict]:
    """The query (and its named parameters) returning one row per station and period. ``cells``: the
    table of the panel's cells to read (:func:`panel_cells`) instead of the records."""
    ctes, params, inds = _value_ctes(defn, period, p0, p1, region, cells)
    fill_cols = []
    for i in inds:
        if i.missing == "carry":
            fill_cols.append(f"last_value({i.id} IGNORE NULLS) OVER (PARTITION BY station_id ORDER BY k "
                             f"ROWS BETWEEN {i.carry_periods} PRECEDING AND CURRENT ROW) AS x_{i.id}")
        else:
            fill_cols.append(f"{i.id} AS x_{i.id}")
    ctes.append(f"filled AS (SELECT *, {', '.join(fill_cols)} FROM agg)")
    score_cols = []
    for i in inds:
        sc = _score_sql(i, f"x_{i.id}", YOY_LAG[period])
        if i.missing == "zero":
            sc = f"coalesce({sc}, 0.0)"
        score_cols.append(f"{sc} AS score_{i.id}")
    ctes.append(f"scored AS (SELECT *, {', '.join(score_cols)} FROM filled)")
    cap_cols = [f"{_weighted([(f'score_{i.id}', i.weight) for i in c.indicators])} AS {c.id}"
                for c in defn.capabilities]
    ctes.append(f"caps AS (SELECT *, {', '.join(cap_cols)} FROM scored)")
    index = _weighted([(c.id, c.weight) for c in defn.capabilities])
    ctes.append(f"ix AS (SELECT *, {index} AS \"index\" FROM caps)")
    out_cols = ["station_id", f"{_LABEL[period]} AS period", '"index"',
                *[c.id for c in defn.capabilities],
                "CASE WHEN \"index\" IS NOT NULL THEN rank() OVER (PARTITION BY k, (\"index\" IS NULL) "
                "ORDER BY \"index\" DESC) END AS rank",
                *[i.id for i in inds], *[f"score_{i.id}" for i in inds]]
    sql = "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(out_cols)} FROM ix ORDER BY k, station_id"
    return sql, params


def compute_index(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, *, period: str = "month",
                  region: dict | None = None, start: str | None = None, end: str | None = None,
                  out: str | Path | None = None) -> str:
    """Compute the scores into the warehouse table :func:`table_name` (replaced); write ``out``
    (Parquet) too when given. ``start``/``end``: ``YYYY-MM`` (default: the span of the source
    tables). Returns the table name. Columns: ``station_id``, ``period`` (2024-03 / 2024-Q1 /
    2024), ``index`` (0–100), one sub-score per capability (0–100), ``rank`` (1 = best in the
    period), each indicator's value (its unit) and ``score_<indicator>`` (0–100)."""
    missing = [t for t in defn.tables() if t != "panel" and not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [t]).fetchall()[0][0]]
    if missing:
        raise IndexComputeError(f"the warehouse has no table {', '.join(missing)}; ingest it first")
    for key, value in (("start", start), ("end", end)):
        if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(value)):
            raise IndexComputeError(f"{key} {value!r} is not a month YYYY-MM")
    d0, d1 = default_window(con, defn)
    p0 = period_of(start + "-01") if start else d0
    p1 = period_of(end + "-01") if end else d1
    if p1 < p0:
        raise IndexComputeError(f"the window ends ({end}) before it starts ({start})")
    sql, params = index_sql(defn, period, p0, p1, region)
    name = table_name(defn, period)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}", params)
    if con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] == 0:
        raise IndexComputeError(f"no station matches the region {region!r}")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY {name} TO '{str(out).replace(chr(39), chr(39) * 2)}' (FORMAT PARQUET)")
    return name


__all__ = ["PERIODS", "IndexComputeError", "compute_index", "default_window", "index_sql", "panel_cells", "table_name",
           "values_sql"]
