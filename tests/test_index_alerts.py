"""The alert rule on a tiny warehouse computed by hand: three urban stations of 10,000 residents
(so visits per 10,000 = households visited), 14 months, one collapse in the last month."""

from __future__ import annotations

import pytest

from _exports import write_csv, write_register
from evalkit.index import validate_definition
from evalkit.index.alerts import false_alarm_rate, find_alerts, notices
from evalkit.ingest import ingest
from evalkit.warehouse import connect

REG = [("A", "甲派出所", "城区", 10000), ("B", "乙派出所", "城区", 10000), ("C", "丙派出所", "城区", 10000)]
DEFN = {"index_id": "al", "label": {"zh": "a", "en": "a"}, "capabilities": [
    {"id": "c", "label": {"zh": "共建共治共享", "en": "c"}, "indicators": [
        {"id": "visits_10k", "label": {"zh": "万人走访户数", "en": "Visits"}, "unit": "户/万人",
         "direction": "higher_better", "scoring": {"rule": "rank"},
         "source": {"table": "visits", "numerator": "households_visited", "denominator": "population"}}]}]}
MONTHS = [f"2023年{m}月" for m in range(1, 13)] + ["2024年1月", "2024年2月"]


def _a(t: int) -> int:
    """Station A: 90 in even months (t = 0, 2, …), 92 in odd ones; collapses to 20 in the last."""
    return 20 if t == 13 else (90 if t % 2 == 0 else 92)


@pytest.fixture()
def con(tmp_path):
    path = tmp_path / "wh.duckdb"
    ingest("stations", write_register(tmp_path / "reg.csv", REG), warehouse=path)
    rows = [[s, m, v] for t, m in enumerate(MONTHS) for s, v in (("A", _a(t)), ("B", 100), ("C", 110))]
    ingest("visits", write_csv(tmp_path / "v.csv", ["单位代码", "月份", "走访户数"], rows), warehouse=path)
    c = connect(path)
    yield c
    c.close()


def test_alert_by_hand(con):
    defn = validate_definition(DEFN)
    alerts = find_alerts(con, defn)
    # Only 2024-01 and 2024-02 have 12 known months before them. 2024-02, station A:
    #   peers {20, 100, 110}: median 100, MAD of {80, 0, 10} = 10 → s_peer = 14.826
    #   a = 20 − 100 = −80; A's history a_t = −10 (7 even months) or −8 (6 odd): median m = −10,
    #   MAD 0 → scale = max(0, 14.826 / 2) = 7.413
    #   z_own = −(−80 + 10) / 7.413 = 9.443 > 5, z_peer = 80 / 14.826 = 5.396 > 5 → alert
    # 2024-01, A: a = −10, m = median of six −10 and six −8 = −9, scale 7.413 → z_own = 0.13; B and C: 0.
    assert len(alerts) == 1
    r = alerts.iloc[0]
    assert (r.station_id, r.period, r.indicator) == ("A", "2024-02", "visits_10k")
    assert r.value == 20 and r.peer_median == 100 and r.baseline == 90 and r.change == -70
    assert r.z_own == pytest.approx(70 / (1.4826 * 10 / 2))
    assert r.z_peer == pytest.approx(80 / (1.4826 * 10))
    assert false_alarm_rate(con, defn) == {"alerts": 1, "tested": 6, "rate": 1 / 6}
    zh = notices(alerts, defn, "zh")["A"]
    assert zh.splitlines() == ["A 提醒单（1 项）", "- 2024-02 万人走访户数：20.00（户/万人），较基线 90.00 下降 70.00"
                               "（本所历史 z = 9.4，同类派出所 z = 5.4；同类中位数 100.00）"]
    # both limits must be crossed: K = 6 is beyond z_peer = 5.4, K = 5.3 is not
    assert find_alerts(con, defn, k=6.0).empty
    assert len(find_alerts(con, defn, k=5.3)) == 1
    assert find_alerts(con, defn, since="2024-03").empty


def test_zh_notice_never_carries_an_english_unit():
    """A unit written in English in the definition stays out of the Chinese reminder (the zh label
    names the quantity); a Chinese unit is shown, and English reminders show the unit as written."""
    from evalkit.index.alerts import _unit_words

    assert _unit_words("households per 10,000 residents per month", "zh") == ""
    assert _unit_words("户/万人", "zh") == "（户/万人）"
    assert _unit_words("households per 10,000 residents per month", "en") == " households per 10,000 residents per month"
