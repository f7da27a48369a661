"""The index on a tiny warehouse where every value, score, sub-score, index and rank is computed
by hand (the arithmetic is written out next to each expected number)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from _exports import write_csv, write_register
from evalkit.index import compute_index, load_definition, validate_definition
from evalkit.index.definition import IndexDefinitionError
from evalkit.ingest import ingest
from evalkit.warehouse import connect

REG = [("001", "甲派出所", "城区", 10000), ("002", "乙派出所", "城区", 20000),
       ("003", "丙派出所", "某县", 40000), ("004", "丁派出所", "某县", 50000)]


def _ind(id_, table, num, den, direction, scoring, scale=1.0, **kw):
    return {"id": id_, "label": {"zh": id_, "en": id_}, "unit": "u", "direction": direction, "scoring": scoring,
            "source": {"table": table, "numerator": num, "denominator": den, "scale": scale}, **kw}


DEFN = {
    "index_id": "tiny",
    "label": {"zh": "小指数", "en": "Tiny index"},
    "capabilities": [
        {"id": "cap_cases", "label": {"zh": "防案件", "en": "Cases"}, "weight": 2.0, "indicators": [
            _ind("clearance", "cases", "cases_solved", "cases_opened", "higher_better",
                 {"rule": "linear", "lo": 0.0, "hi": 100.0}, scale=100.0),
            _ind("cases_10k", "cases", "cases_opened", "population", "lower_better", {"rule": "rank"}),
        ]},
        {"id": "cap_service", "label": {"zh": "共建共治共享", "en": "Service"}, "indicators": [
            _ind("satisfaction", "surveys", "satisfied", "surveyed", "higher_better",
                 {"rule": "thresholds", "steps": [[80.0, 60.0], [90.0, 100.0]]}, scale=100.0, missing="zero"),
            _ind("visits_10k", "visits", "households_visited", "population", "higher_better",
                 {"rule": "zscore", "cap": 2.0}),
        ]},
    ],
}


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    d = tmp_path_factory.mktemp("ix")
    path = d / "wh.duckdb"
    ingest("stations", write_register(d / "reg.csv", REG), warehouse=path)
    ingest("cases", write_csv(d / "cases.csv", ["单位代码", "月份", "立案数", "破案数"], [
        ["001", "2024年1月", 10, 5], ["002", "2024年1月", 10, 8], ["003", "2024年1月", 20, 20],
        ["001", "2024年2月", 30, 25]]), warehouse=path)
    ingest("surveys", write_csv(d / "s.csv", ["单位代码", "月份", "调查人数", "满意人数"], [
        ["001", "2024年1月", 50, 50], ["002", "2024年1月", 50, 45], ["003", "2024年1月", 50, 40]]), warehouse=path)
    ingest("visits", write_csv(d / "v.csv", ["单位代码", "月份", "走访户数"], [
        ["001", "2024年1月", 100], ["002", "2024年1月", 400], ["003", "2024年1月", 1200],
        ["004", "2024年1月", 2000]]), warehouse=path)
    return path


def _rows(con, table, period):
    cur = con.execute(f"SELECT * FROM {table} WHERE period = ? ORDER BY station_id", [period])
    cols = [c[0] for c in cur.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_month_by_hand(wh, tmp_path):
    con = connect(wh)
    try:
        name = compute_index(con, validate_definition(DEFN), period="month", out=tmp_path / "s.parquet")
        got = _rows(con, name, "2024-01")
        pq = duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 's.parquet'}'").fetchall()[0][0]
    finally:
        con.close()
    assert name == "index_tiny_month" and pq == 8  # 4 stations × 2 months
    # clearance = 100 × solved / opened; linear 0..100
    assert [got[s]["clearance"] for s in ("001", "002", "003")] == [50.0, 80.0, 100.0]
    assert got["004"]["clearance"] is None and got["004"]["score_clearance"] is None
    # cases per 10,000 residents: 10/1, 10/2, 20/4; rank, lower better, ties share the mid-rank:
    # 001 is worst (0); 002 and 003 tie for ranks 2-3: (2 - 1 + 0.5) / 2 = 75
    assert [got[s]["cases_10k"] for s in ("001", "002", "003")] == [10.0, 5.0, 5.0]
    assert [got[s]["score_cases_10k"] for s in ("001", "002", "003")] == [0.0, 75.0, 75.0]
    # satisfaction 100 %, 90 %, 80 %, missing → thresholds 100, 100, 60; missing: zero → 0
    assert [got[s]["score_satisfaction"] for s in ("001", "002", "003", "004")] == [100.0, 100.0, 60.0, 0.0]
    # visits per 10k: 100, 200, 300, 400; mean 250, sd = sqrt(50000/3); score = 50 + 25 z
    sd = math.sqrt(50000 / 3)
    zs = {s: 50 + 25 * (v - 250) / sd for s, v in zip(("001", "002", "003", "004"), (100, 200, 300, 400), strict=True)}
    for s in zs:
        assert got[s]["score_visits_10k"] == pytest.approx(zs[s], abs=1e-9)
    cases = {"001": (50 + 0) / 2, "002": (80 + 75) / 2, "003": (100 + 75) / 2, "004": None}
    service = {"001": (100 + zs["001"]) / 2, "002": (100 + zs["002"]) / 2, "003": (60 + zs["003"]) / 2,
               "004": (0 + zs["004"]) / 2}
    index = {s: (2 * cases[s] + service[s]) / 3 if cases[s] is not None else service[s] for s in cases}
    for s in cases:
        assert got[s]["cap_cases"] == (pytest.approx(cases[s], abs=1e-9) if cases[s] is not None else None)
        assert got[s]["cap_service"] == pytest.approx(service[s], abs=1e-9)
        assert got[s]["index"] == pytest.approx(index[s], abs=1e-9)
    # index ≈ 36.8, 75.1, 78.3, 39.5 → ranks 4, 2, 1, 3
    assert [got[s]["rank"] for s in ("001", "002", "003", "004")] == [4, 2, 1, 3]


def test_quarter_is_ratio_of_sums(wh):
    con = connect(wh)
    try:
        got = _rows(con, compute_index(con, validate_definition(DEFN), period="quarter"), "2024-Q1")
    finally:
        con.close()
    # 001: (5 + 25) / (10 + 30) = 75 %, not the mean of 50 % and 83 %
    assert got["001"]["clearance"] == 75.0
    # 001 cases per 10k per month: (10 + 30) / (1 + 1) = 20 (both months reported)
    assert got["001"]["cases_10k"] == 20.0
    assert got["002"]["cases_10k"] == 5.0  # only January reported: February is missing, not zero


def test_carry_and_yoy(wh):
    d = {**DEFN, "capabilities": [{"id": "c", "label": {"zh": "c", "en": "c"}, "indicators": [
        _ind("clr", "cases", "cases_solved", "cases_opened", "higher_better",
             {"rule": "linear", "lo": 0.0, "hi": 100.0}, scale=100.0, missing="carry", carry_periods=1),
        _ind("chg", "cases", "cases_opened", "months", "lower_better",
             {"rule": "yoy", "lo": -10.0, "hi": 10.0}),
    ]}]}
    con = connect(wh)
    try:
        name = compute_index(con, validate_definition(d), period="month")
        feb = _rows(con, name, "2024-02")
    finally:
        con.close()
    # 002 has no February row: its January value (80 %) is carried one month; its value column stays empty
    assert feb["002"]["clr"] is None and feb["002"]["score_clr"] == 80.0
    assert feb["004"]["score_clr"] is None  # nothing to carry
    # no month a year earlier in the warehouse → no yoy score
    assert feb["001"]["score_chg"] is None


def _bad(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(IndexDefinitionError) as e:
        load_definition(p)
    return str(e.value)


def test_definition_errors_name_the_key(tmp_path):
    import yaml

    good = yaml.safe_dump(DEFN, allow_unicode=True)
    assert "repeats the key 'index_id'" in _bad(tmp_path, good + "index_id: again\n")
    msg = _bad(tmp_path, good.replace("weight: 2.0", "weight: '2'"))
    assert "capabilities[cap_cases].weight" in msg
    msg = _bad(tmp_path, good.replace("numerator: cases_solved", "numerator: solved"))
    assert "capabilities[cap_cases].indicators[clearance].source" in msg and "'solved'" in msg
    msg = _bad(tmp_path, good.replace("hi: 100.0", "hi: true", 1))
    assert "indicators[clearance].scoring.hi" in msg
    assert "unknown key" in _bad(tmp_path, good + "colour: red\n")


def test_shipped_definition_validates():
    from pathlib import Path

    d = load_definition(Path(__file__).parents[1] / "params" / "index" / "prevention_index.yaml")
    assert [c.label.zh for c in d.capabilities] == ["防警情", "防案件", "防风险", "防事故", "防执法问题", "防违法违纪",
                                                    "共建共治共享"]


def test_cli_compute_and_alerts(wh, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from evalkit.cli import app

    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(DEFN, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(app, ["index", "compute", str(f), "--period", "year", "--region", "county=某县",
                                 "--warehouse", str(wh), "--out", str(tmp_path / "y.parquet")])
    assert r.exit_code == 0, r.output
    rows = duckdb.sql(f"SELECT station_id, period FROM '{tmp_path / 'y.parquet'}' ORDER BY 1").fetchall()
    assert rows == [("003", "2024"), ("004", "2024")]
    r = CliRunner().invoke(app, ["index", "compute", str(f), "--region", "town=x", "--warehouse", str(wh)])
    assert r.exit_code == 2 and "--region 'town=x'" in r.output
    # two months of history: nothing can be tested, no alert
    r = CliRunner().invoke(app, ["index", "alerts", str(f), "--warehouse", str(wh)])
    assert r.exit_code == 0 and "0 alert(s)" in r.output


def test_bad_months_are_refused(wh):
    from evalkit.index.alerts import find_alerts
    from evalkit.index.compute import IndexComputeError

    con = connect(wh)
    try:
        with pytest.raises(IndexComputeError, match="start '2024-13' is not a month YYYY-MM"):
            compute_index(con, validate_definition(DEFN), start="2024-13")
        with pytest.raises(IndexComputeError, match="since \"2024-01'; DROP\" is not a month"):
            find_alerts(con, validate_definition(DEFN), since="2024-01'; DROP")
    finally:
        con.close()


@pytest.mark.parametrize("direction", ["higher_better", "lower_better"])
def test_rank_rule_mid_ranks_by_hand(direction):
    """rank: tied stations share the mean of their ranks, in both directions, per period and peer group;
    a missing value stays missing and a station alone among its peers gets 50."""
    from evalkit.index.compute import _score_sql
    from evalkit.index.definition import Indicator

    ind = Indicator.model_validate(_ind("v", "cases", "cases_opened", "population", direction, {"rule": "rank", "peers": "area_type"}))
    rows = [("s1", 1, "u", 3.0), ("s2", 1, "u", 5.0), ("s3", 1, "u", 5.0), ("s4", 1, "u", 5.0), ("s5", 1, "u", 9.0),
            ("s6", 1, "u", None), ("s7", 1, "r", 2.0), ("s1", 2, "u", 1.0), ("s2", 2, "u", 1.0)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (station_id VARCHAR, k INTEGER, area_type VARCHAR, x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    got = dict(((s, k), v) for s, k, v in con.execute(f"SELECT station_id, k, {_score_sql(ind, 'x', 12)} FROM t")
               .fetchall())
    # period 1, urban, 5 known values 3, 5, 5, 5, 9: ranks 1, 2-4 (mean 3), 5 → (rank - 1) / 4 × 100
    best_low = direction == "lower_better"
    want = {("s1", 1): 0.0, ("s2", 1): 50.0, ("s3", 1): 50.0, ("s4", 1): 50.0, ("s5", 1): 100.0}
    if best_low:
        want = {key: 100.0 - v for key, v in want.items()}
    want |= {("s6", 1): None, ("s7", 1): 50.0, ("s1", 2): 50.0, ("s2", 2): 50.0}  # period 2: a tie of two → 50
    assert got == want


def test_zscore_scores_do_not_depend_on_the_row_order():
    """DuckDB's parallel window mean/SD of a partition depends on the order its rows arrive in (the
    index's z-scores differed by ~1e-13 run to run); the peers' rows in station order give one answer."""
    from evalkit.index.compute import _score_sql

    shipped = Path(__file__).parents[1] / "params" / "index" / "prevention_index.yaml"
    ind = next(i for _, i in load_definition(shipped).indicators if i.scoring.rule == "zscore")
    con = duckdb.connect()
    con.execute("SET threads = 2")
    # 4 periods x 2 peer groups x 25,000 stations, values near 1e6 so the sums' rounding shows
    con.execute("CREATE TABLE f AS SELECT printf('S%06d', i // 4) AS station_id, i % 4 AS k, "
                "CASE WHEN i % 8 < 4 THEN 'urban' ELSE 'rural' END AS area_type, "
                "1e6 + 1e3 * random() AS x FROM range(200000) r(i)")
    sql = f"SELECT station_id, k, {_score_sql(ind, 'x', 12)} AS s FROM {{}} ORDER BY station_id, k"
    runs = set()
    for seed in (0.1, 0.2, 0.3, 0.4):
        con.execute(f"SELECT setseed({seed})")
        con.execute("CREATE OR REPLACE TABLE g AS SELECT * FROM f ORDER BY random()")
        runs.add(tuple(s for _, _, s in con.execute(sql.format("g")).fetchall()))
    assert len(runs) == 1
