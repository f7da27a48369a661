"""The alert rule restricted to the reported months (``since``: own baselines by a join over the
rows before) against the whole-table ``ROWS`` window, on a hand-made monthly table with gaps in the
months, unknown values, short histories, flat histories (MAD 0) and ties: the same rows, bit for bit."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from evalkit.index import alerts, validate_definition

DEFN = validate_definition({"index_id": "al", "label": {"zh": "a", "en": "a"}, "capabilities": [
    {"id": "c", "label": {"zh": "c", "en": "c"}, "indicators": [
        {"id": "up", "label": {"zh": "u", "en": "u"}, "unit": "n", "direction": "higher_better",
         "scoring": {"rule": "rank"}, "source": {"table": "visits", "numerator": "households_visited"}},
        {"id": "down", "label": {"zh": "d", "en": "d"}, "unit": "n", "direction": "lower_better",
         "scoring": {"rule": "rank"}, "source": {"table": "visits", "numerator": "households_visited"}}]}]})
MONTHS = [f"{2021 + t // 12}-{t % 12 + 1:02d}" for t in range(40)]


def _world() -> duckdb.DuckDBPyConnection:
    """30 stations over 40 months. S00–S02 (area type mixed): 90 (92 one month in four), 100 and
    110, so their own histories of ``up`` are flat (MAD 0: the scale floor) while the peers' MAD is
    10; S04–S06: only the last 8–15 months (fewer than 12 rows before most months); S07–S12: one
    month in three missing (gaps: the ROWS frame then reaches further back); every other value
    unknown with probability 0.15; values rounded to 0.5 so medians tie."""
    rng = np.random.default_rng(20261205)
    rows = []
    for s in range(30):
        first = 40 - (8 + s % 8) if s in (4, 5, 6) else 0
        for t in range(first, 40):
            if 7 <= s <= 12 and t % 3 == s % 3:
                continue
            up, down = np.round(rng.gamma(3, 4) * 2) / 2, float(rng.poisson(2))
            up, down = (None if rng.random() < 0.15 else x for x in (up, down))
            if s < 3:
                up = (92.0 if s == 0 and t % 4 == 1 else 90.0) if s == 0 else 90.0 + 10 * s
            if t == 37 and s in (0, 9):  # abnormal moves, so that alerts exist
                up, down = 0.0, 40.0
            rows.append((f"S{s:02d}", MONTHS[t], up, down))
    con = duckdb.connect()
    con.execute("CREATE TABLE stations AS SELECT * FROM (VALUES " + ", ".join(
        f"('S{s:02d}', '{'mixed' if s < 3 else 'urban' if s % 2 else 'rural'}')" for s in range(30)) + ") t(station_id, area_type)")
    con.execute("CREATE TABLE month (station_id VARCHAR, period VARCHAR, up DOUBLE, down DOUBLE)")
    con.executemany("INSERT INTO month VALUES (?, ?, ?, ?)", rows)
    return con


KEYS = ["station_id", "period", "capability", "indicator"]


def _frame(con, sql: str) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM ({sql}) ORDER BY {', '.join(KEYS)}").df()


@pytest.mark.parametrize("since", ["2020-01", "2021-02", "2022-06", "2023-01", "2024-03", "2024-04", "2030-01"])
@pytest.mark.parametrize(("history", "min_history"), [(24, 12), (5, 0), (3, 3)])
def test_since_equals_the_whole_window(since, history, min_history):
    con = _world()
    for only in ("up", "down"):
        kw = dict(history=history, min_history=min_history, only=only)
        old = _frame(con, f"SELECT * FROM ({alerts.tested_sql(DEFN, 'month', **kw)}) WHERE period >= '{since}'")
        new = _frame(con, alerts.tested_sql(DEFN, "month", since=since, **kw))
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        if since <= "2024-01" and min_history:
            assert len(old)  # the comparison is not vacuous
        old_al = con.execute(f"SELECT * FROM ({alerts.alerts_sql(DEFN, 'month', k=2.0, **kw)}) "
                             f"WHERE period >= '{since}'").df()
        new_al = con.execute(alerts.alerts_sql(DEFN, "month", k=2.0, since=since, **kw)).df()
        pd.testing.assert_frame_equal(new_al, old_al, check_exact=True)


def test_the_world_has_what_the_comparison_needs():
    """Flat own histories (MAD 0 → the scale floor), short histories, unknown values and alerts."""
    con = _world()
    t = _frame(con, alerts.tested_sql(DEFN, "month", only="up"))
    flat = t[(t["station_id"] == "S01") & (t["period"] < "2024-02")]
    # a = 100 − 100 every month, m = 0, MAD 0 → scale = s_peer / 2 = 7.413 and z_own = 0
    assert len(flat) >= 12 and (flat["z_own"] == 0).all() and (flat["baseline"] == 100).all()
    assert con.execute("SELECT count(*) FROM month WHERE up IS NULL").fetchall()[0][0] > 0
    assert {"S00", "S09"} <= set(con.execute(alerts.alerts_sql(DEFN, "month")).df()["station_id"])
    assert t["n_hist"].min() == 12 and t["n_hist"].max() == 24


def test_since_must_be_a_month():
    with pytest.raises(ValueError, match="since \"2024-01'\" is not a month"):
        alerts.tested_sql(DEFN, "month", since="2024-01'")


def _long_form_sql(defn, source: str, history: int, min_history: int, only: str | None) -> str:
    """The rule as sessions 21–22 wrote it (reference): one long row per station, month and
    indicator, the peers' median/MAD and the own baseline as windows partitioned by indicator."""
    parts = []
    for cap, ind in defn.indicators:
        if only is not None and ind.id != only:
            continue
        sign = 1 if ind.direction == "lower_better" else -1
        parts.append(f"SELECT s.station_id, s.period, st.area_type, '{cap.id}' AS capability, '{ind.id}' AS indicator, "
                     f"{sign} AS worse_sign, CAST(s.{ind.id} AS DOUBLE) AS v FROM {source} s "
                     f"JOIN stations st USING (station_id)")
    frame = f"PARTITION BY station_id, indicator ORDER BY period ROWS BETWEEN {history} PRECEDING AND 1 PRECEDING"
    return f"""
WITH long AS ({' UNION ALL '.join(parts)}),
peer AS (SELECT *, median(v) OVER (PARTITION BY period, indicator, area_type) AS peer_median,
                1.4826 * mad(v) OVER (PARTITION BY period, indicator, area_type) AS s_peer FROM long),
adj AS (SELECT *, v - peer_median AS a FROM peer),
base AS (SELECT *, median(a) OVER ({frame}) AS m, 1.4826 * mad(a) OVER ({frame}) AS s_own,
                count(a) OVER ({frame}) AS n_hist FROM adj),
z AS (SELECT *, greatest(s_own, s_peer / 2) AS scale FROM base
      WHERE v IS NOT NULL AND n_hist >= {int(min_history)} AND s_peer > 0)
SELECT station_id, period, capability, indicator, v AS value, peer_median,
       peer_median + m AS baseline, v - (peer_median + m) AS change,
       worse_sign * (a - m) / scale AS z_own, worse_sign * a / s_peer AS z_peer, n_hist
FROM z"""


@pytest.mark.parametrize("since", [None, "2021-02", "2023-01", "2024-03"])
@pytest.mark.parametrize(("history", "min_history"), [(24, 12), (5, 0)])
@pytest.mark.parametrize("only", [None, "up", "down"])
def test_the_wide_statistics_equal_the_long_windows(since, history, min_history, only):
    """All indicators at once on the wide table (peers by one aggregate per month and area type,
    own baselines per station) against one long row per indicator and windows partitioned by
    indicator: the same rows, bit for bit (gaps, unknown values, flat and short histories)."""
    con = _world()
    want = _frame(con, f"SELECT * FROM ({_long_form_sql(DEFN, 'month', history, min_history, only)}) "
                       f"WHERE period >= '{since or '0000'}'")
    got = _frame(con, alerts.tested_sql(DEFN, "month", history=history, min_history=min_history,
                                        only=only, since=since))
    assert len(want) > 20  # not vacuous
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_only_must_name_an_indicator():
    with pytest.raises(ValueError, match="no indicator 'nope' in index al"):
        alerts.tested_sql(DEFN, "month", only="nope")
