"""Alerts (提醒单): station-indicator-months that move abnormally, and a reminder notice per station.

The rule (documented with its false-alarm rate in ``docs/prevention-index.md`` § Alerts), on the
monthly indicator values ``v`` of the index table (``index_<id>_month``), all in DuckDB SQL:

1. **peer adjustment** (seasonality and common shocks): ``a = v − median(v of the peers that month)``,
   peers = stations of the same area type (urban/rural/mixed) in the computation;
2. **own baseline**: the median ``m`` and robust scale ``s = 1.4826 × MAD`` of the station's own ``a``
   over the ``HISTORY`` (24) months before, at least ``MIN_HISTORY`` (12) of them known;
3. **scale floor**: ``scale = max(s, s_peer / 2)`` with ``s_peer = 1.4826 × MAD`` of ``v`` across the
   peers that month, so a station whose own history is flat (rare counts: MAD 0) is not alerted on
   its first ordinary non-zero month;
4. **alert** when the move is in the *worse* direction of the indicator and beyond ``K`` (5) robust
   standard deviations against both baselines: ``z_own = (a − m) / scale > K`` and
   ``z_peer = a / s_peer > K`` (signs flipped for higher-better indicators).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from evalkit.index.compute import table_name
from evalkit.index.definition import IndexDefinition

K = 5.0
HISTORY = 24
MIN_HISTORY = 12
MAD_SD = 1.4826  # MAD → standard deviation under normality


def tested_sql(defn: IndexDefinition, source: str, *, history: int = HISTORY,
               min_history: int = MIN_HISTORY, only: str | None = None, since: str | None = None) -> str:
    """Every station-indicator-month the rule can test (value known, at least ``min_history`` known
    months before, peers' MAD > 0), with its baselines and both z (positive = worse); ``only``:
    one indicator id (memory then stays that of one); ``since``: ``YYYY-MM``, only the months from
    it on (their own baselines still read the ``history`` rows before them: the same numbers as
    those rows of the whole query).

    The statistics run on the wide table (one row per station and month, one column per
    indicator): the peers' median and MAD are one aggregate per month and area type, the own
    baselines one window (or join) per station, for all indicators at once; the long rows (one per
    indicator) are made last. The same values as one long row per indicator partitioned by
    indicator (``tests/test_index_alerts_since.py`` holds that form), at a fraction of the sorts."""
    inds = [(cap, ind) for cap, ind in defn.indicators if only is None or ind.id == only]
    if not inds:
        raise ValueError(f"no indicator {only!r} in index {defn.index_id}")
    ids = [ind.id for _, ind in inds]
    vals = ", ".join(f"CAST(s.{i} AS DOUBLE) AS v_{i}" for i in ids)
    peer_cols = ", ".join(f"median(v_{i}) AS pm_{i}, {MAD_SD} * mad(v_{i}) AS ps_{i}" for i in ids)
    parts = []
    for cap, ind in inds:
        sign = 1 if ind.direction == "lower_better" else -1  # +: a rise is worse
        i = ind.id
        parts.append(
            f"SELECT station_id, period, '{cap.id}' AS capability, '{i}' AS indicator, v_{i} AS value, "
            f"pm_{i} AS peer_median, pm_{i} + m_{i} AS baseline, v_{i} - (pm_{i} + m_{i}) AS change, "
            f"{sign} * (a_{i} - m_{i}) / greatest(so_{i}, ps_{i} / 2) AS z_own, {sign} * a_{i} / ps_{i} AS z_peer, "
            f"n_{i} AS n_hist FROM base WHERE v_{i} IS NOT NULL AND n_{i} >= {int(min_history)} AND ps_{i} > 0")
    union = "\nUNION ALL\n".join(parts)
    return f"""
WITH src AS (
  SELECT s.station_id, s.period, st.area_type, {vals} FROM {source} s JOIN stations st USING (station_id)
),
peer AS (SELECT period, area_type, {peer_cols} FROM src GROUP BY period, area_type),
adj AS (
  SELECT src.*, {", ".join(f"pm_{i}, ps_{i}, v_{i} - pm_{i} AS a_{i}" for i in ids)}
  FROM src JOIN peer ON peer.period = src.period AND peer.area_type IS NOT DISTINCT FROM src.area_type
),
{_own_baseline_sql(ids, history, since)}
{union}"""


def _own_baseline_sql(ids: list[str], history: int, since: str | None) -> str:
    """The CTE ``base``: the rows of ``adj`` (``a_<id> = v − peer median``) with, per indicator, the
    own baseline ``m_<id>``, ``so_<id>`` (scale) and ``n_<id>`` (known months) over the ``history``
    rows before, per station.

    Without ``since``: a ``ROWS`` window over every row. With ``since``: only the rows from that
    month on, each joined to the rows ``rn − history .. rn − 1`` of its station (``rn``: row
    number by period), the same multiset as the ``ROWS`` frame (gaps in the months and NULL ``a``
    included: median/MAD skip NULLs, ``count(a)`` counts the known ones). A report reads 3 of 27
    months: the windows over the 24 history months were most of its alerts' time."""
    if since is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", since):
        raise ValueError(f"since {since!r} is not a month YYYY-MM")
    if since is None:
        frame = f"PARTITION BY station_id ORDER BY period ROWS BETWEEN {history} PRECEDING AND 1 PRECEDING"
        cols = ", ".join(f"median(a_{i}) OVER w AS m_{i}, {MAD_SD} * mad(a_{i}) OVER w AS so_{i}, "
                         f"count(a_{i}) OVER w AS n_{i}" for i in ids)
        return f"base AS (SELECT *, {cols} FROM adj WINDOW w AS ({frame}))"
    aggs = ", ".join(f"median(h.a_{i}) AS m_{i}, {MAD_SD} * mad(h.a_{i}) AS so_{i}, count(h.a_{i}) AS n_{i}"
                     for i in ids)
    return f"""num AS (SELECT *, row_number() OVER (PARTITION BY station_id ORDER BY period) AS rn FROM adj),
cur AS (SELECT * FROM num WHERE period >= '{since}'),
hist AS (
  SELECT c.station_id, c.rn, {aggs}
  FROM cur c JOIN num h ON h.station_id = c.station_id AND h.rn BETWEEN c.rn - {int(history)} AND c.rn - 1
  GROUP BY c.station_id, c.rn
),
base AS (
  SELECT cur.* EXCLUDE (rn), {", ".join(f"hist.m_{i}, hist.so_{i}, coalesce(hist.n_{i}, 0) AS n_{i}" for i in ids)}
  FROM cur LEFT JOIN hist USING (station_id, rn)
)"""


def alerts_sql(defn: IndexDefinition, source: str, *, k: float = K, history: int = HISTORY,
               min_history: int = MIN_HISTORY, only: str | None = None, since: str | None = None) -> str:
    """The query returning one row per alert (``source``: a monthly index table; ``since``: as
    :func:`tested_sql`)."""
    sql = tested_sql(defn, source, history=history, min_history=min_history, only=only, since=since)
    return (f"SELECT * FROM ({sql}) "
            f"WHERE z_own > {float(k)} AND z_peer > {float(k)} ORDER BY station_id, period, capability, indicator")


def find_alerts(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, *, since: str | None = None,
                out: str | Path | None = None, k: float = K) -> pd.DataFrame:
    """Alerts over the monthly index table (recomputed first with :func:`compute_index`, all stations).

    ``since``: ``YYYY-MM``, keep alerts from that month on. Returns the alerts frame (small:
    one row per alert); written to ``out`` (Parquet) when given and to the warehouse table
    ``<index table>_alerts``."""
    from evalkit.index.compute import IndexComputeError, compute_index

    if since is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(since)):
        raise IndexComputeError(f"since {since!r} is not a month YYYY-MM")

    # recomputed every time: a table left by another definition with the same index_id must not be read
    source = compute_index(con, defn, period="month")
    for n, (_, ind) in enumerate(defn.indicators):  # one indicator at a time: bounded memory at national scale
        sql = alerts_sql(defn, source, k=k, only=ind.id, since=since or None)
        con.execute(f"CREATE OR REPLACE TABLE {source}_alerts AS {sql}" if n == 0 else
                    f"INSERT INTO {source}_alerts {sql}")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY {source}_alerts TO '{str(out).replace(chr(39), chr(39) * 2)}' (FORMAT PARQUET)")
    return con.execute(f"SELECT * FROM {source}_alerts ORDER BY station_id, period, capability, indicator").df()


def false_alarm_rate(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, *, k: float = K) -> dict:
    """Alerts per tested station-indicator-month (see :func:`tested_sql`) of the monthly index table,
    on a warehouse without planted changes."""
    source = table_name(defn, "month")
    n_cells = n_alerts = 0
    for _, ind in defn.indicators:
        c, a = con.execute(f"SELECT count(*), count(*) FILTER (WHERE z_own > {float(k)} AND z_peer > {float(k)}) "
                           f"FROM ({tested_sql(defn, source, only=ind.id)})").fetchall()[0]
        n_cells, n_alerts = n_cells + c, n_alerts + a
    return {"alerts": int(n_alerts), "tested": int(n_cells), "rate": n_alerts / n_cells if n_cells else float("nan")}


_WORDS = {
    "zh": ("{station} 提醒单（{n} 项）", "{period} {label}：{value:.2f}{unit_sep}，较基线 {baseline:.2f} {dirword} "
           "{delta:.2f}（本所历史 z = {z_own:.1f}，同类派出所 z = {z_peer:.1f}；同类中位数 {peer:.2f}）",
           "上升", "下降"),
    "en": ("Reminder for {station} ({n} item(s))", "{period} {label}: {value:.2f}{unit_sep}, {dirword} by {delta:.2f} "
           "against a baseline of {baseline:.2f} (z = {z_own:.1f} against the station's own history, {z_peer:.1f} "
           "against comparable stations; their median {peer:.2f})", "up", "down"),
}


def _unit_words(unit: str, lang: str) -> str:
    """The unit after a value: as written in English; in Chinese only when the definition writes it
    in Chinese (the zh label, e.g. 万人走访户数, already names the unit), never English inside zh."""
    if lang == "en":
        return f" {unit}"
    return f"（{unit}）" if any("\u4e00" <= ch <= "\u9fff" for ch in unit) else ""


def notices(alerts: pd.DataFrame, defn: IndexDefinition, lang: str = "zh") -> dict[str, str]:
    """One reminder notice per station: what moved, by how much, against which baseline."""
    head, line, up, down = _WORDS[lang]
    inds = {i.id: i for _, i in defn.indicators}
    out: dict[str, str] = {}
    for station, g in alerts.groupby("station_id", sort=True):
        lines = [head.format(station=station, n=len(g))]
        for r in g.itertuples():
            ind = inds[r.indicator]
            lines.append("- " + line.format(
                period=r.period, label=getattr(ind.label, lang), value=r.value,
                unit_sep=_unit_words(ind.unit, lang), baseline=r.baseline,
                dirword=up if r.change >= 0 else down, delta=abs(r.change), z_own=r.z_own, z_peer=r.z_peer,
                peer=r.peer_median))
        out[str(station)] = "\n".join(lines)
    return out


__all__ = ["HISTORY", "K", "MIN_HISTORY", "alerts_sql", "false_alarm_rate", "find_alerts", "notices", "tested_sql"]
