"""Repairing a load: --replace, warehouse forget, loads own their quarantine, live facts, status,
and demo-data never touching a warehouse with ingested data."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from _exports import DIS_H, INC_H, incident_rows, months, write_csv, write_register
from evalkit.cli import app
from evalkit.ingest import IngestError, ingest
from evalkit.ingest.loads import reconcile
from evalkit.warehouse import connect, forget, holds_real_data, live_facts, set_meta, status

WINDOW = ("2019-01", "2025-12")


@pytest.fixture
def wh(tmp_path):
    p = tmp_path / "warehouse.duckdb"
    ingest("stations", write_register(tmp_path / "register.xlsx"), warehouse=p)
    return p


def _bad_then_fixed(tmp_path):
    """A first export with 8 broken dates for 东门 (and a unit written in full), then the corrected one."""
    ms = months("2023-01", "2023-04")
    rows = incident_rows("某市公安局城区分局东门派出所", ms, 20, "A") + incident_rows("石桥所", ms, 5, "B")
    bad = [r[:] for r in rows]
    for r in bad[:8]:
        r[2] = "2023年13月40日"
    first = write_csv(tmp_path / "exports" / "incidents_2023.csv", INC_H, bad)
    return first, rows


def _assert_reconciled(con):
    rec = reconcile(con)
    assert rec["ok"].all(), rec


def test_replace_removes_old_rows_and_quarantine(wh, tmp_path):
    first, fixed_rows = _bad_then_fixed(tmp_path)
    r1 = ingest("incidents", first, warehouse=wh, study_window=WINDOW)
    assert (r1.rows_accepted, r1.rows_quarantined) == (92, 8)
    # the bureau sends the corrected file under the same name: without --replace it would double up
    write_csv(first, INC_H, fixed_rows)
    r2 = ingest("incidents", first, warehouse=wh, study_window=WINDOW, replace=True)
    assert (r2.rows_in, r2.rows_accepted, r2.rows_quarantined) == (100, 100, 0)
    assert r2.replaced == [{"file": str(first), "load_id": r1.load_ids[0], "rows": 92, "quarantined": 8}]
    assert "replaced earlier load" in r2.summary()
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 100
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0  # stale quarantine gone
    log = con.execute("SELECT load_id, live, removed_how FROM ingest_log WHERE table_name = 'incidents' "
                      "ORDER BY load_id").fetchall()
    assert log == [(r1.load_ids[0], False, "replaced"), (r2.load_ids[0], True, None)]
    assert live_facts(con)["quarantined"] == 0 and live_facts(con)["rows"]["incidents"] == 100
    _assert_reconciled(con)
    con.close()


def test_replace_matches_by_file_name_from_another_folder(wh, tmp_path):
    first, fixed_rows = _bad_then_fixed(tmp_path)
    ingest("incidents", first, warehouse=wh, study_window=WINDOW)
    corrected = write_csv(tmp_path / "corrected" / "incidents_2023.csv", INC_H, fixed_rows)
    rep = ingest("incidents", corrected, warehouse=wh, study_window=WINDOW, replace=True)
    assert rep.replaced[0]["file"] == str(first) and rep.rows_accepted == 100
    # a file name loaded from two folders is ambiguous: the full path is asked for
    other = write_csv(tmp_path / "other" / "incidents_2023.csv", INC_H,
                      incident_rows("东门", ["2024-01"], 3, "Z"))
    ingest("incidents", other, warehouse=wh, study_window=WINDOW)
    third = write_csv(tmp_path / "incidents_2023.csv", INC_H, fixed_rows[:50])  # new content, same name
    with pytest.raises(IngestError, match="several loaded files are named incidents_2023.csv"):
        ingest("incidents", third, warehouse=wh, study_window=WINDOW, replace=True)


def test_replace_without_an_earlier_load_is_an_error(wh, tmp_path):
    f = write_csv(tmp_path / "new.csv", INC_H, incident_rows("东门", ["2023-01"], 3, "A"))
    with pytest.raises(IngestError, match="no earlier load of this file"):
        ingest("incidents", f, warehouse=wh, study_window=WINDOW, replace=True)
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0
    con.close()


def test_fixed_mapping_reingested_with_replace(wh, tmp_path):
    # the export names the unit column 承办方, unknown to evalkit (办理单位 is now a known alias): every
    # row lacks its station
    rows = incident_rows("东门派出所", months("2023-01", "2023-02"), 10, "A")
    f = write_csv(tmp_path / "inc.csv", ["警情编号", "承办方", *INC_H[2:]], rows)
    with pytest.raises(IngestError):  # the station column is required: refused, nothing written
        ingest("incidents", f, warehouse=wh, study_window=WINDOW)
    good_map = tmp_path / "map2.yaml"
    good_map.write_text("incidents:\n  承办方: station_id\n", encoding="utf-8")
    rep = ingest("incidents", f, warehouse=wh, study_window=WINDOW, mapping=good_map)
    assert rep.rows_accepted == 20
    rep = ingest("incidents", f, warehouse=wh, study_window=WINDOW, mapping=good_map, replace=True)
    assert rep.rows_accepted == 20 and rep.replaced[0]["rows"] == 20
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 20
    _assert_reconciled(con)
    con.close()


def test_forget_removes_rows_and_quarantine(wh, tmp_path):
    first, _ = _bad_then_fixed(tmp_path)
    ingest("incidents", first, warehouse=wh, study_window=WINDOW)
    dis = write_csv(tmp_path / "纠纷台账.csv", DIS_H,
                    [["D1", "东门派出所", "2023-01-05", "2023-01-09", "邻里纠纷", "是", "否"]])
    ingest("disputes", dis, warehouse=wh, study_window=WINDOW)
    removed = forget(first, warehouse=wh)
    assert removed == [{"table": "incidents", "file": str(first), "load_id": removed[0]["load_id"],
                        "rows": 92, "quarantined": 8}]
    con = connect(wh)
    facts = live_facts(con)
    assert facts["rows"] == {"stations": 4, "reforms": 0, "incidents": 0, "disputes": 1}
    assert facts["quarantined"] == 0 and facts["loads"] == 2
    assert con.execute("SELECT count(*) FROM coverage WHERE table_name = 'incidents'").fetchone()[0] == 0
    _assert_reconciled(con)
    con.close()
    with pytest.raises(IngestError, match="no live load of this file"):
        forget(first, warehouse=wh)


def test_forgetting_the_register_while_records_point_at_it_is_refused(wh, tmp_path):
    ingest("incidents", write_csv(tmp_path / "i.csv", INC_H, incident_rows("东门", ["2023-01"], 3, "A")),
           warehouse=wh, study_window=WINDOW)
    with pytest.raises(IngestError, match="3 incidents rows pointing at stations no longer in the register"):
        forget(tmp_path / "register.xlsx", warehouse=wh)
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM stations").fetchone()[0] == 4  # rolled back
    con.close()


def test_cli_replace_forget_and_status(wh, tmp_path):
    first, fixed_rows = _bad_then_fixed(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["ingest", "incidents", str(first), "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
    write_csv(first, INC_H, fixed_rows)
    r = runner.invoke(app, ["ingest", "incidents", str(first), "--warehouse", str(wh), "--replace"])
    assert r.exit_code == 0 and "replaced earlier load" in r.output, r.output
    r = runner.invoke(app, ["warehouse", "status", "--warehouse", str(wh)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "incidents_2023.csv" in r.output and "441502002" in r.output and "2023-01" in r.output
    st_ = status(connect(wh, read_only=True))
    assert list(st_["files"]["table_name"]) == ["stations", "incidents"]
    assert st_["coverage"].set_index("station_id").loc["441502002", "covered"] == "2023-01..2023-04"
    assert st_["removed"]["removed_how"].tolist() == ["replaced"]
    r = runner.invoke(app, ["warehouse", "forget", "incidents_2023.csv", "--warehouse", str(wh)])
    assert r.exit_code == 0 and "100 rows and 0 quarantined removed" in r.output, r.output
    r = runner.invoke(app, ["warehouse", "forget", "nosuch.csv", "--warehouse", str(wh)])
    assert r.exit_code == 1 and "nosuch.csv" in r.output


def test_status_reports_other_shares(wh, tmp_path):
    rows = incident_rows("东门", ["2023-01"], 8, "A")
    for r in rows[:2]:
        r[4] = "外星人来访"  # unknown category → other
    ingest("incidents", write_csv(tmp_path / "i.csv", INC_H, rows), warehouse=wh, study_window=WINDOW)
    con = connect(wh, read_only=True)
    files = status(con)["files"].set_index("table_name")
    assert files.loc["incidents", "rows_other"] == 2 and files.loc["incidents", "share_other"] == 0.25
    assert live_facts(con)["rows_other"] == {"incidents": 2}
    con.close()


# ------------------------------------------------------------------------------ property test
OPS = st.lists(st.tuples(st.sampled_from(["load", "replace", "forget"]), st.integers(0, 2), st.integers(0, 3)),
               min_size=1, max_size=8)


def _variant(path, k: int):
    """File content variant k: a different number of rows and of broken dates."""
    rows = incident_rows("东门", months("2023-01", "2023-02"), 3 + k, f"{path.stem}-")
    for r in rows[:k]:
        r[2] = "bad date"
    write_csv(path, INC_H, rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_rows_in_equal_accepted_plus_quarantined_through_load_replace_forget(ops, tmp_path_factory):
    d = tmp_path_factory.mktemp("ops")
    con = connect(":memory:")
    ingest("stations", write_register(d / "register.csv"), con=con)
    for op, i, k in ops:
        f = d / f"f{i}.csv"
        _variant(f, k)
        try:
            if op == "forget":
                forget(f, con=con)
            else:
                rep = ingest("incidents", f, con=con, study_window=WINDOW, replace=op == "replace")
                assert rep.rows_in == rep.rows_accepted + rep.rows_quarantined
        except IngestError as e:  # forgetting or replacing a file that is not loaded
            assert "no live load" in str(e) or "no earlier load" in str(e)
        _assert_reconciled(con)
        live = con.execute("SELECT coalesce(sum(rows_in), 0) FROM ingest_log WHERE live").fetchone()[0]
        n = con.execute("SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM stations) "
                        "+ (SELECT count(*) FROM quarantine)").fetchone()[0]
        assert n == live


# ------------------------------------------------------------------------------ demo-data
def test_demo_data_refuses_a_warehouse_with_ingested_data(wh, tmp_path):
    assert holds_real_data(wh)
    size = wh.stat().st_size
    r = CliRunner().invoke(app, ["demo-data", "--out", str(tmp_path / "world"), "--warehouse", str(wh)])
    assert r.exit_code == 1
    msg = " ".join(r.output.split())
    assert "holds ingested (non-demo) data" in msg and "--overwrite-real-warehouse" in msg
    assert not (tmp_path / "world").exists() and wh.stat().st_size == size
    demo = tmp_path / "demo.duckdb"
    con = connect(demo)
    set_meta(con, "synthetic", "true")
    con.close()
    assert not holds_real_data(demo) and not holds_real_data(tmp_path / "absent.duckdb")
    # and real exports never go into the demo world's warehouse
    with pytest.raises(IngestError, match="holds the synthetic demo world"):
        ingest("stations", write_register(tmp_path / "register.csv"), warehouse=demo)
