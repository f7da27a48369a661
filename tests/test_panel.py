"""Panel building on a tiny hand-made warehouse where every expected cell is computed by hand."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from evalkit.panel import build_panel, cohort_table
from evalkit.schema import TABLES


@pytest.fixture()
def con():
    c = duckdb.connect(":memory:")
    for t in TABLES.values():
        c.execute(t.ddl())
    c.execute("""INSERT INTO stations VALUES
        ('S1', '甲派出所', 'A县', '甲市', '演示省', 'urban', 20000, 30, 40, 0),
        ('S2', '乙派出所', 'A县', '甲市', '演示省', 'rural', 5000, 10, 12, 8),
        ('S3', '丙派出所', 'B县', '乙市', '演示省', 'urban', 10000, 20, 20, 0)""")
    c.execute("""INSERT INTO reforms VALUES
        ('S1', 'two_teams_one_room', DATE '2021-02-15'),
        ('S3', 'patrol_dispatch', DATE '2021-01-01')""")
    # S1, January 2021: 4 incidents: two fights (response 4 and 10 min, one by patrol), one theft case
    # (response 6 min), one diverted non-police call (no arrival).
    c.execute("""INSERT INTO incidents VALUES
        ('I1', 'S1', TIMESTAMP '2021-01-03 10:00:00', NULL, TIMESTAMP '2021-01-03 10:04:00', NULL, 'fight', 'patrol', FALSE),
        ('I2', 'S1', TIMESTAMP '2021-01-10 22:00:00', NULL, TIMESTAMP '2021-01-10 22:10:00', NULL, 'fight', 'station', FALSE),
        ('I3', 'S1', TIMESTAMP '2021-01-20 08:00:00', NULL, TIMESTAMP '2021-01-20 08:06:00', NULL, 'theft', 'station', TRUE),
        ('I4', 'S1', TIMESTAMP '2021-01-31 23:59:00', NULL, NULL, NULL, 'nonpolice', 'diverted', FALSE),
        ('I5', 'S1', TIMESTAMP '2021-02-01 00:00:00', NULL, TIMESTAMP '2021-02-01 00:02:00', NULL, 'traffic', NULL, NULL),
        ('I6', 'S2', TIMESTAMP '2021-03-05 12:00:00', NULL, TIMESTAMP '2021-03-05 12:30:00', NULL, 'dispute', 'station', FALSE),
        ('I7', 'S2', TIMESTAMP '2020-12-31 23:59:59', NULL, NULL, NULL, 'theft', 'station', TRUE)""")
    c.execute("""INSERT INTO disputes VALUES
        ('D1', 'S2', DATE '2021-01-05', DATE '2021-01-09', 'neighbour', TRUE, FALSE),
        ('D2', 'S2', DATE '2021-01-20', NULL, 'family', FALSE, TRUE),
        ('D3', 'S2', DATE '2021-02-01', DATE '2021-02-11', 'labour', TRUE, FALSE)""")
    yield c
    c.close()


def test_panel_every_cell_by_hand(con):
    p = build_panel(con, "两队一室", start="2021-01", end="2021-03")
    assert len(p) == 3 * 3  # 3 stations x 3 months, no row dropped
    jan = 2021 * 12
    s1 = p[(p.station_id == "S1") & (p.period == jan)].iloc[0]
    assert s1.calls_total == 4
    assert s1.incidents_total == 3  # diverted call excluded
    assert s1.incidents_fight == 2 and s1.incidents_theft == 1 and s1.incidents_nonpolice == 0
    assert s1.dispatches == 3 and s1.cases == 1
    assert s1.incidents_per_10k == pytest.approx(3 * 10000 / 20000)
    assert s1.n_responses == 3
    assert s1.response_mean_min == pytest.approx((4 + 10 + 6) / 3)
    assert s1.response_median_min == pytest.approx(6.0)
    assert s1.response_p90_min == pytest.approx(6 + 0.8 * (10 - 6))  # linear interpolation
    assert s1.share_within_5min == pytest.approx(1 / 3)
    assert s1.n_noncase == 2 and s1.share_patrol_closed == pytest.approx(0.5)
    assert s1.first_treat == 2021 * 12 + 1 and s1.treated == 0 and s1.event_time == -1

    feb = p[(p.station_id == "S1") & (p.period == jan + 1)].iloc[0]
    assert feb.incidents_total == 1 and feb.incidents_traffic == 1  # NULL handled_by counts as station
    assert feb.treated == 1 and feb.event_time == 0
    assert feb.response_mean_min == pytest.approx(2.0) and feb.share_within_5min == 1.0
    mar = p[(p.station_id == "S1") & (p.period == jan + 2)].iloc[0]
    assert mar.incidents_total == 0 and np.isnan(mar.response_mean_min)  # empty month kept, zero count

    s2 = p[p.station_id == "S2"].set_index("period")
    assert s2.loc[jan, "incidents_total"] == 0  # I7 is in December 2020, outside the window
    assert s2.loc[jan + 2, "incidents_dispute"] == 1 and s2.loc[jan + 2, "response_mean_min"] == 30
    assert s2.loc[jan, "disputes_opened"] == 2 and s2.loc[jan, "disputes_resolved"] == 1
    assert s2.loc[jan, "dispute_resolution_rate"] == 0.5 and s2.loc[jan, "dispute_escalation_rate"] == 0.5
    assert s2.loc[jan, "dispute_days_to_resolve"] == 4
    assert s2.loc[jan + 1, "dispute_days_to_resolve"] == 10
    assert np.isnan(s2.loc[jan + 2, "dispute_resolution_rate"])
    assert (s2.first_treat == 0).all() and s2.event_time.isna().all() and (s2.treated == 0).all()

    # S3 adopted a different reform: never treated for this one
    assert (p[p.station_id == "S3"].first_treat == 0).all()


def test_region_filter_and_cohorts(con):
    p = build_panel(con, "patrol_dispatch", start="2021-01", end="2021-02", region={"city": "乙市"})
    assert set(p.station_id) == {"S3"}
    assert (p.first_treat == 2021 * 12).all() and (p.treated == 1).all()
    ct = cohort_table(build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02"))
    assert ct.set_index("first_treat")["stations"].to_dict() == {0: 2, 2021 * 12 + 1: 1}


def test_bad_region_and_empty(con):
    with pytest.raises(ValueError, match="unknown column"):
        build_panel(con, "two_teams_one_room", region={"street": "x"})
    with pytest.raises(ValueError, match="empty"):
        build_panel(con, "two_teams_one_room", region={"city": "无此市"})
    with pytest.raises(KeyError, match="unknown reform"):
        build_panel(con, "no_such_reform")


def test_exclude_other_reforms_drops_only_their_untreated_adopters(con):
    p = build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02", exclude_reforms=["巡处一体化"])
    assert set(p.station_id) == {"S1", "S2"}  # S3 (patrol dispatch) leaves the comparison group
    assert p.attrs["excluded_stations"] == {"patrol_dispatch": 1}
    # adoption after the window end does not count
    later = build_panel(con, "two_teams_one_room", start="2020-11", end="2020-12", exclude_reforms=["patrol_dispatch"])
    assert set(later.station_id) == {"S1", "S2", "S3"} and later.attrs["excluded_stations"] == {"patrol_dispatch": 0}
    # the evaluated reform's own adopters always stay, even if they adopted an excluded reform too
    con.execute("INSERT INTO reforms VALUES ('S1', 'patrol_dispatch', DATE '2021-01-01')")
    p = build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02", exclude_reforms=["patrol_dispatch"])
    assert set(p.station_id) == {"S1", "S2"}
    with pytest.raises(ValueError, match="itself"):
        build_panel(con, "two_teams_one_room", exclude_reforms=["两队一室"])
    assert build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02").attrs["excluded_stations"] == {}
