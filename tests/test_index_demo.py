"""The shipped index on the small demo world (seed 7): planted structure shows, the planted abnormal
month is alerted, and the false-alarm rate without the planted change stays at the documented level."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.demo.index_tables import draw_tables
from evalkit.demo.world import build_world
from evalkit.index import compute_index, load_definition
from evalkit.index.alerts import false_alarm_rate, find_alerts, notices
from evalkit.warehouse import connect

DEFN = Path(__file__).parents[1] / "params" / "index" / "prevention_index.yaml"
DOCUMENTED_FALSE_ALARM = 0.001  # docs/prevention-index.md § Alerts: measured 0.04 % of tested cells


@pytest.fixture(scope="module")
def demo_copy(demo_warehouse, tmp_path_factory):
    """A writable copy of the session's demo warehouse with the monthly index computed."""
    path = tmp_path_factory.mktemp("ixdemo") / "wh.duckdb"
    shutil.copy(demo_warehouse, path)
    con = connect(path)
    compute_index(con, load_definition(DEFN), period="month")
    con.close()
    return path


def _did(con, reform: str, column: str) -> float:
    """(post − pre) mean of ``column`` for the reform's adopters minus the same for never-adopters
    (pre/post split at 2022-01 for never-adopters, at adoption for adopters)."""
    return con.execute(f"""
WITH a AS (SELECT station_id, min(adopted_on) AS on_ FROM reforms WHERE reform = ? GROUP BY 1),
x AS (
  SELECT i.{column} AS y, a.station_id IS NOT NULL AS adopter,
         CASE WHEN a.station_id IS NOT NULL THEN CAST(i.period || '-01' AS DATE) >= a.on_
              ELSE i.period >= '2022-01' END AS post
  FROM index_prevention_month i LEFT JOIN a USING (station_id)
  WHERE i.station_id NOT IN (SELECT station_id FROM reforms WHERE reform <> ?)
)
SELECT (avg(y) FILTER (WHERE adopter AND post) - avg(y) FILTER (WHERE adopter AND NOT post))
     - (avg(y) FILTER (WHERE NOT adopter AND post) - avg(y) FILTER (WHERE NOT adopter AND NOT post)) FROM x
""", [reform, reform]).fetchall()[0][0]


def test_reforms_move_their_capabilities(demo_copy):
    con = connect(demo_copy, read_only=True)
    try:
        # 两队一室 cuts fights: 防警情 rises for its adopters against never-adopters
        assert _did(con, "two_teams_one_room", "score_fights_10k") > 5
        assert _did(con, "two_teams_one_room", "prevent_calls") > 1
        # 一村一辅警 raises visits (× 1.3): the visits score rises
        assert _did(con, "village_auxiliary", "score_visits_10k") > 5
        # values: about 40 households per 10,000 residents × 1.3 for village_auxiliary adopters …
        assert _did(con, "village_auxiliary", "visits_10k") > 6
        # … and nothing for a reform that plants nothing on visits (scores are relative to the peers,
        # so they move when other peers adopt: the check is on the values)
        assert abs(_did(con, "nonpolice_diversion", "visits_10k")) < 2
    finally:
        con.close()


def test_planted_alert_and_false_alarm_rate(demo_copy, demo_warehouse):
    truth = json.loads((Path(demo_warehouse).parent / "world" / "index_truth.json").read_text(encoding="utf-8"))
    planted = truth["alert"]
    defn = load_definition(DEFN)
    con = connect(demo_copy)
    try:
        alerts = find_alerts(con, defn)
        hit = alerts[(alerts.station_id == planted["station_id"]) & (alerts.period == planted["month"])]
        assert list(hit.indicator) == ["visits_10k"]
        text = notices(alerts, defn, "zh")[planted["station_id"]]
        assert f"{planted['month']} 万人走访户数" in text and "下降" in text
        assert "fell" not in text and "down by" in notices(alerts, defn, "en")[planted["station_id"]]
        # the same world without the planted change: only the planted cell differs
        w = build_world("small", 7)
        visits = draw_tables(w, plant_alert=False)[0]["visits"]
        con.execute("DELETE FROM visits")
        con.register("v0", visits)
        con.execute("INSERT INTO visits (station_id, month, households_visited) SELECT station_id, month, "
                    "households_visited FROM v0")
        compute_index(con, defn, period="month")
        fa = false_alarm_rate(con, defn)
        clean = find_alerts(con, defn)
    finally:
        con.close()
    assert fa["tested"] > 90_000
    assert fa["rate"] <= DOCUMENTED_FALSE_ALARM
    assert clean[(clean.station_id == planted["station_id"]) & (clean.period == planted["month"])].empty
    assert len(clean) == len(alerts) - 1


def test_national_path_and_other_files_unchanged(tmp_path, monkeypatch):
    """The report tables are Parquet in the national world and load like the CSVs; writing them
    changes no other file of the world (their random stream is their own)."""
    import evalkit.demo.index_tables as it
    from evalkit.demo import generate_world
    from evalkit.ingest import ingest_world

    kw = {"start": "2024-01", "end": "2025-12", "n_stations": 15}
    f = generate_world("national", 7, tmp_path / "with", **kw)
    monkeypatch.setattr(it, "write_index_tables", lambda w, root, **k: [])
    g = generate_world("national", 7, tmp_path / "without", **kw)
    for name in ("panel.parquet", "truth.parquet", "reforms.csv", "disputes_2025.csv"):
        assert (f.root / name).read_bytes() == (g.root / name).read_bytes(), name
    assert not (g.root / "visits.parquet").exists()
    reports = {r.table: r for r in ingest_world(f.root, warehouse=tmp_path / "wh.duckdb")}
    for t in ("cases", "visits", "hazards", "patrols", "surveys", "complaints"):
        assert reports[t].rows_in == reports[t].rows_accepted == 15 * 24
    con = connect(tmp_path / "wh.duckdb")
    try:
        name = compute_index(con, load_definition(DEFN), period="year")
        n, missing = con.execute(f"SELECT count(*), count(*) FILTER (WHERE \"index\" IS NULL) FROM {name}").fetchall()[0]
    finally:
        con.close()
    assert (n, missing) == (30, 0)
