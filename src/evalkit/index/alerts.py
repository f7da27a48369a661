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
    one indicator id (the callers loop over indicators so memory stays that of one); ``since``:
    ``YYYY-MM``, only the months from it on (their own baselines still read the ``history`` rows
    before them: the same numbers as those rows of the whole query)."""
    parts = []
    for cap, ind in defn.indicators:
        if only is not None and ind.id != only:
            continue
        sign = 1 if ind.direction == "lower_better" else -1  # +: a rise is worse
        parts.append(f"SELECT s.station_id, s.period, st.area_type, '{cap.id}' AS capability, '{ind.id}' AS indicator, "
                     f"{sign} AS worse_sign, CAST(s.{ind.id} AS DOUBLE) AS v FROM {source} s "
                     f"JOIN stations st USING (station_id)")
    return f"""
WITH long AS ({' UNION ALL '.join(parts)}),
peer AS (
  SELECT *, median(v) OVER (PARTITION BY period, indicator, area_type) AS peer_median,
         {MAD_SD} * mad(v) OVER (PARTITION BY period, indicator, area_type) AS s_peer
  FROM long
),
{_own_baseline_sql(history, since)},
z AS (
  SELECT *, greatest(s_own, s_peer / 2) AS scale FROM base
  WHERE v IS NOT NULL AND n_hist >= {int(min_history)} AND s_peer > 0
)
SELECT station_id, period, capability, indicator, v AS value, peer_median,
       peer_median + m AS baseline, v - (peer_median + m) AS change,
       worse_sign * (a - m) / scale AS z_own, worse_sign * a / s_peer AS z_peer, n_hist
FROM z"""


def _own_baseline_sql(history: int, since: str | None) -> str:
    """CTEs ``adj`` (``a = v − peer median``) and ``base`` (``adj`` with the own baseline ``m``,
    ``s_own`` and ``n_hist`` over the ``history`` rows before, per station and indicator).

    Without ``since``: a ``ROWS`` window over every row. With ``since``: only the rows from that
    month on, each joined to the rows ``rn − history .. rn − 1`` of its partition (``rn``: row
    number by period), the same multiset as the ``ROWS`` frame (gaps in the months and NULL ``a``
    included: median/MAD skip NULLs, ``count(a)`` counts the known ones). A report reads 3 of 27
    months: the windows over the 24 history months were most of its alerts' time."""
    if since is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", since):
        raise ValueError(f"since {since!r} is not a month YYYY-MM")
    if since is None:
        frame = f"PARTITION BY station_id, indicator ORDER BY period ROWS BETWEEN {history} PRECEDING AND 1 PRECEDING"
        return f"""adj AS (SELECT *, v - peer_median AS a FROM peer),
base AS (
  SELECT *, median(a) OVER ({frame}) AS m, {MAD_SD} * mad(a) OVER ({frame}) AS s_own,
         count(a) OVER ({frame}) AS n_hist
  FROM adj
)"""
    return f"""adj AS (SELECT *, v - peer_median AS a,
                   row_number() OVER (PARTITION BY station_id, indicator ORDER BY period) AS rn FROM peer),
cur AS (SELECT * FROM adj WHERE period >= '{since}'),
hist AS (
  SELECT c.station_id, c.indicator, c.rn, median(h.a) AS m, {MAD_SD} * mad(h.a) AS s_own, count(h.a) AS n_hist
  FROM cur c JOIN adj h ON h.station_id = c.station_id AND h.indicator = c.indicator
                       AND h.rn BETWEEN c.rn - {int(history)} AND c.rn - 1
  GROUP BY c.station_id, c.indicator, c.rn
),
base AS (
  SELECT cur.* EXCLUDE (rn), hist.m, hist.s_own, coalesce(hist.n_hist, 0) AS n_hist
  FROM cur LEFT JOIN hist USING (station_id, indicator, rn)
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
