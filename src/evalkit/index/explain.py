"""Explaining the index: drivers of a score change, rank stability, redundancy (correlations).

All three read a computed index table (:func:`evalkit.index.compute.compute_index`) in DuckDB SQL.

- **Drivers**: the index is exactly ``Σ_i c_i`` with the contribution ``c_i = W_cap/ΣW_present ×
  w_i/Σw_present × score_i`` (weights renormalised over the scores present that period), so the
  change between two periods is exactly ``Σ_i Δc_i``: each indicator's share of the move.
- **Rank stability**: every weight (capabilities and indicators) multiplied by an independent
  factor U(1 − r, 1 + r), and/or every ``linear``/``yoy`` bound and ``thresholds`` bound moved by
  U(−r, r) × (hi − lo) (resp. × the bound's spacing), then all stations re-scored from the stored
  values; reported per draw and period: Spearman correlation of the ranks with the unperturbed
  ones (same re-scoring path), the mean absolute rank change, and the share of the top-10 kept.
- **Correlations**: Pearson correlations over station-periods between indicator scores (or values)
  and between capability sub-scores.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from evalkit.index.compute import _num, _score_sql, _weighted
from evalkit.index.definition import IndexDefinition


def _contrib_sql(defn: IndexDefinition) -> list[str]:
    """SQL of each indicator's contribution ``c_i`` to the index (NULL when its score is missing)."""
    cap_w = " + ".join(f"CASE WHEN {c.id} IS NULL THEN 0 ELSE {_num(c.weight)} END" for c in defn.capabilities)
    out = []
    for c in defn.capabilities:
        ind_w = " + ".join(f"CASE WHEN score_{i.id} IS NULL THEN 0 ELSE {_num(i.weight)} END" for i in c.indicators)
        for i in c.indicators:
            out.append(f"{_num(c.weight)} / nullif({cap_w}, 0) * {_num(i.weight)} / nullif({ind_w}, 0) * score_{i.id}")
    return out


def drivers(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, table: str, period_from: str,
            period_to: str, station_id: str | None = None) -> pd.DataFrame:
    """Per station and indicator: scores in both periods and the change of its contribution to the
    index (index points); ``Σ contribution_change = index_to − index_from`` per station where both
    indices exist. Sorted by station, then by the size of the contribution change."""
    parts = []
    for (cap, ind), c in zip(defn.indicators, _contrib_sql(defn), strict=True):
        parts.append(f"SELECT station_id, period, '{cap.id}' AS capability, '{ind.id}' AS indicator, "
                     f"score_{ind.id} AS score, {c} AS contribution, rank, \"index\" FROM {table}")
    where = "WHERE station_id = $s" if station_id else ""
    sql = f"""
WITH long AS ({' UNION ALL '.join(parts)}),
a AS (SELECT * FROM long WHERE period = $p0), b AS (SELECT * FROM long WHERE period = $p1)
SELECT b.station_id, b.capability, b.indicator, a.score AS score_from, b.score AS score_to,
       coalesce(b.contribution, 0) - coalesce(a.contribution, 0) AS contribution_change,
       a."index" AS index_from, b."index" AS index_to, a.rank AS rank_from, b.rank AS rank_to
FROM b JOIN a USING (station_id, indicator) {where.replace('station_id', 'b.station_id')}
ORDER BY b.station_id, abs(contribution_change) DESC, b.indicator"""
    params = {"p0": period_from, "p1": period_to, **({"s": station_id} if station_id else {})}
    return con.execute(sql, params).df()


def _rescored_index_sql(defn: IndexDefinition, table: str, lag: int) -> str:
    """The index re-scored from the stored values of ``table`` (``missing: zero`` applied; ``carry``
    is not re-applied, the same for every draw and for the unperturbed baseline)."""
    key = "dense_rank() OVER (ORDER BY period)"
    scores = ", ".join(f"{_score_sql(i, i.id, lag)} AS score_{i.id}" if i.missing != "zero"
                       else f"coalesce({_score_sql(i, i.id, lag)}, 0.0) AS score_{i.id}" for _, i in defn.indicators)
    stations = ", ".join(f"st.{c}" for c in ("county", "city", "province", "area_type"))
    caps = ", ".join(f"{_weighted([(f'score_{i.id}', i.weight) for i in c.indicators])} AS {c.id}"
                     for c in defn.capabilities)
    index = _weighted([(c.id, c.weight) for c in defn.capabilities])
    return f"""
WITH base AS (SELECT t.*, {stations}, {key} AS k FROM {table} t JOIN stations st USING (station_id)),
sc AS (SELECT station_id, period, k, {scores} FROM base),
cp AS (SELECT *, {caps} FROM sc)
SELECT station_id, period, {index} AS ix FROM cp"""


def _perturbed(defn: IndexDefinition, rng: np.random.Generator, weights: float, rules: float) -> IndexDefinition:
    d = defn.model_copy(deep=True)
    for c in d.capabilities:
        c.weight *= float(rng.uniform(1 - weights, 1 + weights))
        for i in c.indicators:
            i.weight *= float(rng.uniform(1 - weights, 1 + weights))
            s = i.scoring
            if rules and s.rule in ("linear", "yoy"):
                span = s.hi - s.lo
                lo, hi = s.lo + rng.uniform(-rules, rules) * span, s.hi + rng.uniform(-rules, rules) * span
                s.lo, s.hi = (lo, hi) if hi > lo else (s.lo, s.hi)
            elif rules and s.rule == "thresholds" and s.steps:
                bounds = [b for b, _ in s.steps]
                gap = (bounds[-1] - bounds[0]) / max(len(bounds) - 1, 1) or 1.0
                moved = sorted(b + rng.uniform(-rules, rules) * gap for b in bounds)
                if len(set(moved)) == len(moved):
                    s.steps = [(b, p) for b, (_, p) in zip(moved, s.steps, strict=True)]
    return d


def rank_stability(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, table: str, *, period: str = "month",
                   draws: int = 20, weights: float = 0.2, rules: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """One row per draw and period: ``spearman`` (ranks against the unperturbed re-scoring),
    ``mean_abs_rank_change`` (places) and ``top10_kept`` (share of the unperturbed top 10)."""
    from evalkit.index.compute import YOY_LAG

    lag = YOY_LAG[period]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ix_base AS {_rescored_index_sql(defn, table, lag)}")
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(draws):
        sql = _rescored_index_sql(_perturbed(defn, rng, weights, rules), table, lag)
        frames.append(con.execute(f"""
WITH p AS ({sql}),
j AS (
  SELECT b.period, rank() OVER (PARTITION BY b.period ORDER BY b.ix DESC) AS r0,
         rank() OVER (PARTITION BY b.period ORDER BY p.ix DESC) AS r1
  FROM _ix_base b JOIN p USING (station_id, period) WHERE b.ix IS NOT NULL AND p.ix IS NOT NULL
)
SELECT {d} AS draw, period, corr(r0, r1) AS spearman, avg(abs(r0 - r1)) AS mean_abs_rank_change,
       count(*) FILTER (WHERE r0 <= 10 AND r1 <= 10) / least(10, count(*)) AS top10_kept
FROM j GROUP BY period ORDER BY period""").df())
    con.execute("DROP TABLE IF EXISTS _ix_base")
    return pd.concat(frames, ignore_index=True)


def correlations(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, table: str, *,
                 level: str = "indicator", values: bool = False) -> pd.DataFrame:
    """Pearson correlation matrix over station-periods: ``level="indicator"`` (scores, or values
    with ``values=True``) or ``"capability"`` (sub-scores). Computed as one SQL aggregate."""
    if level == "capability":
        cols = [c.id for c in defn.capabilities]
    else:
        cols = [i.id if values else f"score_{i.id}" for _, i in defn.indicators]
    names = [c.removeprefix("score_") for c in cols]
    pairs = [(a, b) for ia, a in enumerate(cols) for b in cols[ia + 1:]]
    row = con.execute("SELECT " + ", ".join(f"corr({a}, {b})" for a, b in pairs) + f" FROM {table}").fetchall()[0]
    m = pd.DataFrame(np.eye(len(cols)), index=names, columns=names)
    for (a, b), r in zip(pairs, row, strict=True):
        a, b = a.removeprefix("score_"), b.removeprefix("score_")
        m.loc[a, b] = m.loc[b, a] = np.nan if r is None else r
    return m


__all__ = ["correlations", "drivers", "rank_stability"]
