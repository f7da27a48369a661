"""Panel building on a tiny hand-made warehouse where every expected cell is computed by hand."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from evalkit.panel import build_panel, cohort_table, panel_cache
from evalkit.schema import TABLES


@pytest.fixture(params=["records", "cached"])
def con(request):
    """The hand-made warehouse; "cached": every test also runs inside panel_cache (the panel read from
    the cached station-month cells must be the same, gaps and unknowns included)."""
    c = duckdb.connect(":memory:")
    for t in TABLES.values():
        c.execute(t.ddl())
    c.execute("""INSERT INTO stations VALUES
        ('S1', '甲派出所', 'A县', '甲市', '演示省', 'urban', 20000, 30, 40, 0),
        ('S2', '乙派出所', 'A县', '甲市', '演示省', 'rural', 5000, 10, 12, 8),
        ('S3', '丙派出所', 'B县', '乙市', '演示省', 'urban', 10000, 20, 20, 0)""")
    c.execute("""INSERT INTO reforms (station_id, reform, adopted_on) VALUES
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
    if request.param == "cached":
        with panel_cache(c):
            yield c
    else:
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
    # ... but I5's unknown is_case / handled_by make the month's case count and patrol share unknown
    assert np.isnan(feb.cases) and np.isnan(feb.n_noncase) and np.isnan(feb.share_patrol_closed)
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
    con.execute("INSERT INTO reforms (station_id, reform, adopted_on) VALUES ('S1', 'patrol_dispatch', DATE '2021-01-01')")
    p = build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02", exclude_reforms=["patrol_dispatch"])
    assert set(p.station_id) == {"S1", "S2"}
    with pytest.raises(ValueError, match="itself"):
        build_panel(con, "two_teams_one_room", exclude_reforms=["两队一室"])
    assert build_panel(con, "two_teams_one_room", start="2021-01", end="2021-02").attrs["excluded_stations"] == {}


def _write(path, lines: list[str]) -> str:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    return str(path)


def test_unknown_values_are_missing_never_zero(tmp_path):
    """Exports as kept: incidents without 是否立案/处置力量, a dispute ledger with 调处结果 and no 民转刑;
    a second station's exports have the columns, with one blank 是否立案 cell in February."""
    from evalkit.ingest import ingest
    from evalkit.warehouse import connect

    con = connect(":memory:")
    ingest("stations", _write(tmp_path / "派出所.csv", [
        "单位代码,单位名称,辖区人口", "S001,城关派出所,52000", "S002,河口派出所,18500"]),
        con=con, defaults=["province=某省", "city=江城市", "area_type=城区"])
    ingest("incidents", _write(tmp_path / "警情_城关.csv", [
        "警情编号,所属派出所,接警时间,警情类别",
        "A1,城关派出所,2023-01-03 10:00,盗窃", "A2,城关派出所,2023-01-09 11:00,电信网络诈骗",
        "A3,城关派出所,2023-02-14 12:00,盗窃"]), con=con, study_window=("2023-01", "2023-12"))
    ingest("incidents", _write(tmp_path / "警情_河口.csv", [
        "警情编号,所属派出所,接警时间,警情类别,处置力量,是否立案",
        "B1,河口派出所,2023-01-04 10:00,盗窃,巡逻,否", "B2,河口派出所,2023-01-05 10:00,盗窃,派出所,是",
        "B3,河口派出所,2023-01-06 10:00,打架斗殴,派出所,否",
        "B4,河口派出所,2023-02-02 10:00,盗窃,巡逻,", "B5,河口派出所,2023-02-03 10:00,盗窃,巡逻,否"]),
        con=con, study_window=("2023-01", "2023-12"))
    ingest("disputes", _write(tmp_path / "纠纷台账.csv", [
        "编号,受理单位,受理日期,纠纷类型,调处结果",
        "D1,城关派出所,2023-01-05,婚姻家庭纠纷,调解成功", "D2,城关派出所,2023-01-20,物业纠纷,调解不成功",
        "D3,城关派出所,2023-02-01,邻里纠纷,正在调解"]), con=con, study_window=("2023-01", "2023-12"))
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    p = build_panel(con, "两队一室", start="2023-01", end="2023-02").set_index(["station_id", "month"])
    jan, feb = "2023-01-01", "2023-02-01"
    s1 = p.loc["S001"]
    # no 处置力量 column: incidents count as handled by the station (the bureau's own totals) ...
    assert s1["incidents_total"].tolist() == [2, 1] and s1["calls_total"].tolist() == [2, 1]
    # ... but the case count and the patrol share are unknown, not zero
    assert s1["cases"].isna().all() and s1["n_noncase"].isna().all() and s1["share_patrol_closed"].isna().all()
    # no 民转刑 column: the escalation count and rate are unknown; the outcome text is known
    assert s1["disputes_escalated"].isna().all() and s1["dispute_escalation_rate"].isna().all()
    assert s1.loc[jan, "disputes_resolved"] == 1 and s1.loc[jan, "dispute_resolution_rate"] == 0.5
    assert s1.loc[feb, "disputes_resolved"] == 0 and s1.loc[feb, "dispute_resolution_rate"] == 0.0  # still open
    s2 = p.loc["S002"]
    assert (s2.loc[jan, "cases"], s2.loc[jan, "n_noncase"], s2.loc[jan, "share_patrol_closed"]) == (1, 2, 0.5)
    # February: B4's 是否立案 is blank, so that month's case count and patrol share are unknown
    assert s2.loc[feb, "incidents_total"] == 2
    assert np.isnan(s2.loc[feb, "cases"]) and np.isnan(s2.loc[feb, "share_patrol_closed"])
