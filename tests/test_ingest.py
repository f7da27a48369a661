"""Ingest and warehouse: API, idempotency, transactions, privacy, CLI, formats, invariants."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.ingest import REASONS, IngestError, IngestReport, ingest, ingest_cli, ingest_world
from evalkit.warehouse import DEFAULT_WAREHOUSE, connect, get_meta, set_meta, table_counts, warehouse_path

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
_spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
mc = importlib.util.module_from_spec(_spec)
sys.modules["make_corpus"] = mc
_spec.loader.exec_module(mc)
INC_H, ST_H, inc, csv_text = mc.INC_H, mc.ST_H, mc.inc, mc.csv_text
REGISTER = CORPUS / "_register_stations.csv"


def write(path: Path, header, rows, encoding="utf-8") -> Path:
    path.write_bytes(csv_text(header, rows).encode(encoding))
    return path


@pytest.fixture
def wh(tmp_path) -> Path:
    p = tmp_path / "wh" / "warehouse.duckdb"
    ingest("stations", REGISTER, warehouse=p)
    return p


# ------------------------------------------------------------------------------ warehouse
def test_warehouse_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("EVALKIT_WAREHOUSE", raising=False)
    assert warehouse_path() == DEFAULT_WAREHOUSE
    monkeypatch.setenv("EVALKIT_WAREHOUSE", str(tmp_path / "x.duckdb"))
    assert warehouse_path() == tmp_path / "x.duckdb"
    assert warehouse_path(tmp_path / "y.duckdb") == tmp_path / "y.duckdb"


def test_connect_creates_schema_and_meta(tmp_path):
    p = tmp_path / "sub" / "w.duckdb"
    con = connect(p)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"stations", "reforms", "incidents", "disputes", "meta", "quarantine", "ingest_log"} <= tables
    set_meta(con, "synthetic", "true")
    set_meta(con, "facts", {"a": 1})
    set_meta(con, "synthetic", "false")  # replaces
    assert get_meta(con, "synthetic") == "false"
    assert get_meta(con, "facts") == {"a": 1}
    assert get_meta(con, "missing", 7) == 7
    assert table_counts(con)["incidents"] == 0
    con.close()
    ro = connect(p, read_only=True)
    assert get_meta(ro, "synthetic") == "false"
    ro.close()
    with pytest.raises(FileNotFoundError):
        connect(tmp_path / "nope.duckdb", read_only=True)


# ------------------------------------------------------------------------------ idempotency
def test_reingest_same_file_adds_nothing_and_new_month_appends(wh, tmp_path):
    f1 = write(tmp_path / "incidents_2023_03.csv", INC_H, [inc(1), inc(2), inc(2)])
    r1 = ingest("incidents", f1, warehouse=wh)
    assert (r1.rows_accepted, r1.rows_quarantined) == (2, 1)
    copy = tmp_path / "copy_of_march.csv"
    copy.write_bytes(f1.read_bytes())
    r2 = ingest("incidents", [f1, copy], warehouse=wh)
    assert r2.rows_in == 0 and r2.skipped_files == [str(f1), str(copy)]
    f2 = write(tmp_path / "incidents_2023_04.csv", INC_H,
               [inc(3, rec="2023-04-01 08:00:00", dis=None, arr=None, clo=None)])
    r3 = ingest("incidents", f2, warehouse=wh)
    assert r3.rows_accepted == 1
    con = connect(wh)
    assert table_counts(con)["incidents"] == 3
    assert table_counts(con)["quarantine"] == 1
    log = con.execute("SELECT source_file, rows_in, rows_accepted, rows_quarantined FROM ingest_log "
                      "WHERE table_name = 'incidents' ORDER BY ingested_at, source_file").fetchall()
    assert [(r[1], r[2], r[3]) for r in log] == [(3, 2, 1), (1, 1, 0)]
    con.close()


def test_directories_and_globs(wh, tmp_path):
    d = tmp_path / "exports"
    d.mkdir()
    write(d / "incidents_a.csv", INC_H, [inc(1)])
    write(d / "incidents_b.csv", INC_H, [inc(2)], "gb18030")
    write(d / "stations_x.csv", ST_H, mc.REGISTER)  # not an incidents file: ignored in a directory
    rep = ingest("incidents", d, warehouse=wh)
    assert rep.rows_accepted == 2 and len(rep.files) == 2
    write(d / "incidents_c.csv", INC_H, [inc(3)])
    rep = ingest("incidents", str(d / "incidents_*.csv"), warehouse=wh)
    assert rep.rows_accepted == 1 and len(rep.skipped_files) == 2
    with pytest.raises(IngestError, match="no file matches this pattern"):
        ingest("incidents", str(d / "nothing_*.csv"), warehouse=wh)
    with pytest.raises(IngestError, match="file not found"):
        ingest("incidents", d / "missing.csv", warehouse=wh)


def test_parquet_and_xlsx_sheet_choice(tmp_path):
    con = connect(":memory:")
    rep = ingest("stations", CORPUS / "stations_ok.xlsx", con=con, sheet=1)
    assert rep.rows_accepted == 3
    df = pd.DataFrame([inc(1), inc(2, rec="2023/3/21 09:00", dis=None, arr=None, clo=None)], columns=INC_H)
    df["接警时间"] = pd.to_datetime(df["接警时间"], format="mixed")
    df.to_parquet(tmp_path / "incidents.parquet")
    rep = ingest("incidents", tmp_path / "incidents.parquet", con=con, study_window=mc.WINDOW)
    assert rep.rows_accepted == 2
    got = con.execute("SELECT CAST(received_at AS VARCHAR) FROM incidents ORDER BY 1").fetchall()
    assert got == [("2023-03-20 14:05:00",), ("2023-03-21 09:00:00",)]
    bad = pd.DataFrame([inc(3, rec="never")], columns=INC_H)
    bad.to_parquet(tmp_path / "bad.parquet")
    ingest("incidents", tmp_path / "bad.parquet", con=con, study_window=mc.WINDOW)
    assert con.execute("SELECT source_row, reason FROM quarantine").fetchall() == [(1, "bad_datetime")]


def test_study_window_from_meta(tmp_path):
    con = connect(":memory:")
    ingest("stations", REGISTER, con=con)
    set_meta(con, "study_start", "2023-01")
    set_meta(con, "study_end", "2023-02")
    f = write(tmp_path / "i.csv", INC_H, [inc(1, rec="2023-02-28 23:59:59", dis=None, arr=None, clo=None),
                                          inc(2)])
    rep = ingest("incidents", f, con=con)
    assert rep.quarantined_by_reason == {"outside_window": 1}
    assert "2023-01-01..2023-02-28 (meta)" in con.execute("SELECT detail FROM quarantine").fetchone()[0]


def test_incidents_need_station_register(tmp_path):
    f = write(tmp_path / "i.csv", INC_H, [inc(1)])
    with pytest.raises(IngestError, match="station register is empty"):
        ingest("incidents", f, con=connect(":memory:"))


def test_mapping_file_yaml(tmp_path):
    con = connect(":memory:")
    ingest("stations", REGISTER, con=con)
    m = tmp_path / "map.yaml"
    m.write_text("incidents:\n  报警时刻: received_at\n  单号: incident_id\n", encoding="utf-8")
    h = [{"接警时间": "报警时刻", "警情编号": "单号"}.get(c, c) for c in INC_H]
    rep = ingest("incidents", write(tmp_path / "i.csv", h, [inc(1)]), con=con, mapping=m, study_window=mc.WINDOW)
    assert rep.rows_accepted == 1
    m.write_text("incidents:\n  报警时刻: arrival\n", encoding="utf-8")
    with pytest.raises(IngestError, match="'arrival' is not a column of incidents"):
        ingest("incidents", tmp_path / "i.csv", con=con, mapping=m)


# ------------------------------------------------------------------------------ fail safe
def test_crash_mid_ingest_leaves_warehouse_unchanged(wh, tmp_path, monkeypatch):
    import evalkit.ingest.core as core

    good = write(tmp_path / "incidents_1.csv", INC_H, [inc(1), inc(2)])
    second = write(tmp_path / "incidents_2.csv", INC_H, [inc(3), inc(4, st="S999")])
    con = connect(wh)
    before = table_counts(con)
    con.close()
    calls = {"n": 0}
    real = core._log_file

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # rows of file 2 (and all of file 1) are already inserted
            raise RuntimeError("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(core, "_log_file", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest("incidents", [good, second], warehouse=wh, accept_unmatched=True)
    monkeypatch.setattr(core, "_log_file", real)
    con = connect(wh)
    assert table_counts(con) == before
    con.close()
    # a retry works and is complete (S999 is 1 of 2 rows: above the 1 % gate, so accepted explicitly)
    rep = ingest("incidents", [good, second], warehouse=wh, accept_unmatched=True)  # a retry works and is complete
    assert (rep.rows_accepted, rep.rows_quarantined) == (3, 1)


def test_file_error_in_second_file_rolls_back_first(wh, tmp_path):
    good = write(tmp_path / "incidents_1.csv", INC_H, [inc(1)])
    bad = tmp_path / "incidents_2.csv"
    bad.write_bytes(b"")
    with pytest.raises(IngestError, match="file is empty"):
        ingest("incidents", [good, bad], warehouse=wh)
    con = connect(wh)
    assert table_counts(con)["incidents"] == 0 and table_counts(con)["ingest_log"] == 1  # the stations log only
    con.close()


# ------------------------------------------------------------------------------ privacy
CANARY_ID = "110101199003071234"
CANARY_ID_X = "32010219851231002X"
CANARY_PHONE = "13912345678"
CANARY_NAME = "欧阳金丝雀"


def test_personal_data_never_reaches_the_warehouse(tmp_path, capsys):
    wh = tmp_path / "private.duckdb"
    st_rows = [r[:] for r in mc.REGISTER]
    st_rows[0][1] = f"青石路派出所（值班 {CANARY_PHONE}）"
    st_rows[1][2] = f"青石区{CANARY_ID_X}"
    write(tmp_path / "stations.csv", ST_H + ["联系电话", "负责人姓名"], [r + [CANARY_PHONE, CANARY_NAME] for r in st_rows])
    assert ingest_cli("stations", [str(tmp_path / "stations.csv")], str(wh), None, None) == 0
    rows = [
        inc(1) + [CANARY_NAME, CANARY_ID, CANARY_PHONE, f"{CANARY_NAME}报警 {CANARY_PHONE}", "北京路1号"],
        # a quarantined row whose raw JSON would carry the numbers
        inc(f"J{CANARY_PHONE}", rec="bad") + [CANARY_NAME, CANARY_ID, CANARY_PHONE, CANARY_ID_X, "北京路1号"],
        inc(3, st=f"{CANARY_ID}") + [CANARY_NAME, CANARY_ID, CANARY_PHONE, "x", "北京路1号"],
        inc(4, cat=f"来访 {CANARY_PHONE}") + [CANARY_NAME, CANARY_ID, CANARY_PHONE, "x", "北京路1号"],
    ]
    h = INC_H + ["报警人", "公民身份号码", "报警电话", "备注", "家庭住址"]
    f = write(tmp_path / "incidents.csv", h, rows, "gb18030")
    # one row of four names an unknown station (above the 1 % gate): quarantined on request
    code = ingest_cli("incidents", [str(f)], str(wh), None, None, accept_unmatched=True)
    assert code == 0
    out = capsys.readouterr()
    rep = ingest("incidents", f, warehouse=wh)  # skipped; nothing new
    assert rep.skipped_files
    con = duckdb.connect(str(wh))
    dump = []
    for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
        dump.append(con.execute(f"SELECT * FROM {t}").df().to_csv())
    q = con.execute("SELECT reason, raw FROM quarantine WHERE table_name = 'incidents' ORDER BY source_row").fetchall()
    con.execute("CHECKPOINT")
    con.close()
    text = "\n".join(dump)
    logs = out.out + out.err + rep.summary()
    for canary in (CANARY_ID, CANARY_ID_X, CANARY_PHONE, CANARY_NAME, "北京路1号"):
        assert canary not in text, canary
        assert canary not in logs, canary
        for p in wh.parent.iterdir():
            if p.name.startswith(wh.name):
                data = p.read_bytes()
                for enc in ("utf-8", "gb18030", "utf-16-le"):
                    assert canary.encode(enc) not in data, (canary, p.name, enc)
    assert [r[0] for r in q] == ["bad_datetime", "unknown_station"]
    assert "[手机号已遮蔽]" in q[0][1] and "[身份证号已遮蔽]" in q[1][1]
    assert "外星人" not in logs and "来访 [手机号已遮蔽]" in logs  # unknown category reported, masked (诈骗 … is now read as fraud)
    assert "报警人" not in q[0][1] and "备注" not in q[0][1]
    assert "refused" in logs and "报警人" in logs  # reported by header name only


def test_personal_header_normalisation():
    from evalkit.ingest.headers import is_personal

    for h in ("身份证号", " 身份证号码 ", "ＩＤ_Number", "报警人手机", "当事人姓名", "caller_name", "户籍地址"):
        assert is_personal(h), h
    for h in ("派出所名称", "接警时间", "备注"):
        assert not is_personal(h), h


# ------------------------------------------------------------------------------ CLI / report
def test_cli_exit_codes(tmp_path, capsys):
    wh = tmp_path / "w.duckdb"
    assert ingest_cli("stations", [str(REGISTER)], str(wh), None, None) == 0
    assert ingest_cli("nosuch", [str(REGISTER)], str(wh), None, None) == 1
    assert "unknown table 'nosuch'" in capsys.readouterr().err
    f = write(tmp_path / "i.csv", INC_H, [inc(1, rec="bad")])
    assert ingest_cli("incidents", [str(f)], str(wh), None, None) == 2
    assert ingest_cli("stations", [str(CORPUS / "stations_ok.xlsx")], str(tmp_path / "w2.duckdb"), None, "派出所") == 0


def test_report_frame_and_summary(tmp_path):
    con = connect(":memory:")
    rep = ingest("stations", CORPUS / "stations_no_population.csv", con=con)
    assert isinstance(rep, IngestReport)
    df = rep.to_frame()
    assert list(df["rows_in"]) == [4] and list(df["status"]) == ["ingested"]
    s = str(rep)
    assert "no_population: 2" in s and "[" not in s.split("\n")[0]
    assert set(rep.quarantined_by_reason) <= set(REASONS)


# ------------------------------------------------------------------------------ property test
VALUES = {
    "id": st.sampled_from(["J1", "J2", "J3", "", " J4 ", "J5"]),
    "st": st.sampled_from(["S001", "S002", "青石路派出所", "Ｓ００３", "S999", "", "x"]),
    "rec": st.sampled_from(["2023-03-20 14:05:00", "2023/3/20 14:05", "2023年3月20日14时05分", "45005.5", "",
                            "2099-01-01", "2010-01-01", "bad", "2023-02-30"]),
    "arr": st.sampled_from(["", "2023-03-20 14:15:00", "2023-03-20 13:00:00", "2023-03-25 14:05:00", "??"]),
    "cat": st.sampled_from(["盗窃", "电诈", "外星人", "", "其他"]),
    "hb": st.sampled_from(["派出所", "巡逻", "分流", "", "特警"]),
    "case": st.sampled_from(["是", "否", "1", "0", "", "也许"]),
}
ROW = st.fixed_dictionaries(VALUES)
_T = pd.Timestamp
_REC = {"2023-03-20 14:05:00": _T("2023-03-20 14:05"), "2023/3/20 14:05": _T("2023-03-20 14:05"),
        "2023年3月20日14时05分": _T("2023-03-20 14:05"), "45005.5": _T("2023-03-20 12:00")}
_ARR = {"2023-03-20 14:15:00": _T("2023-03-20 14:15"), "2023-03-20 13:00:00": _T("2023-03-20 13:00"),
        "2023-03-25 14:05:00": _T("2023-03-25 14:05")}


def _acceptable(r) -> bool:
    """A plain-Python model of the rules, for the rows the strategy draws."""
    if not r["id"].strip() or r["st"] not in ("S001", "S002", "青石路派出所", "Ｓ００３") or r["rec"] not in _REC:
        return False
    if r["arr"]:
        if r["arr"] not in _ARR:
            return False
        delta = _ARR[r["arr"]] - _REC[r["rec"]]
        if delta < pd.Timedelta(0) or delta > pd.Timedelta(hours=24):
            return False
    return bool(r["cat"]) and r["hb"] != "特警" and r["case"] != "也许"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(ROW, min_size=0, max_size=12), min_size=1, max_size=2))
def test_reconciliation_invariant(batches, tmp_path_factory):
    d = tmp_path_factory.mktemp("prop")
    con = connect(":memory:")
    ingest("stations", REGISTER, con=con)
    total_in = 0
    expected_ids: list[str] = []
    for i, rows in enumerate(batches):
        f = write(d / f"b{i}.csv", INC_H,
                  [inc(r["id"] or "", st=r["st"], rec=r["rec"], dis=None, arr=r["arr"], clo=None, cat=r["cat"],
                       hb=r["hb"], case=r["case"]) for r in rows])
        # unknown stations (S999, x) are drawn on purpose: quarantine them despite the 1 % gate
        rep = ingest("incidents", f, con=con, study_window=mc.WINDOW, accept_unmatched=True)
        if rep.skipped_files:  # byte-identical to an earlier batch: idempotent, nothing read
            assert rep.rows_in == rep.rows_accepted == rep.rows_quarantined == 0
            continue
        for r in rows:
            if _acceptable(r) and r["id"].strip() not in expected_ids:
                expected_ids.append(r["id"].strip())
        assert rep.rows_in == len(rows) == rep.rows_accepted + rep.rows_quarantined
        assert sum(rep.quarantined_by_reason.values()) == rep.rows_quarantined
        total_in += len(rows)
        qrows = [r[0] for r in con.execute("SELECT source_row FROM quarantine WHERE source_file = ?",
                                           [str(f)]).fetchall()]
        assert len(qrows) == len(set(qrows)) == rep.rows_quarantined
        assert all(2 <= r <= len(rows) + 1 for r in qrows)
    counts = table_counts(con)
    assert counts["incidents"] + counts["quarantine"] - 0 == total_in  # stations had no quarantine
    # ids in the warehouse are unique and every accepted row satisfies the rules
    n, nd = con.execute("SELECT count(*), count(DISTINCT incident_id) FROM incidents").fetchone()
    assert n == nd
    got = sorted(r[0] for r in con.execute("SELECT incident_id FROM incidents").fetchall())
    assert got == sorted(expected_ids)
    bad = con.execute("""SELECT count(*) FROM incidents WHERE station_id NOT IN ('S001','S002','S003')
        OR received_at >= TIMESTAMP '2026-01-01' OR received_at < TIMESTAMP '2019-01-01'
        OR arrived_at < received_at OR arrived_at - received_at > INTERVAL 24 HOUR
        OR category NOT IN ('theft','fraud','fight','vice','traffic','dispute','nonpolice','other')""").fetchone()[0]
    assert bad == 0
    con.close()


# ------------------------------------------------------------------------------ demo world
def test_ingest_world_minimal(tmp_path):
    import json

    root = tmp_path / "world"
    root.mkdir()
    import shutil

    shutil.copy(CORPUS / "stations_ok.xlsx", root / "stations.xlsx")
    (root / "reforms.csv").write_text(csv_text(mc.RF_H, [["S001", "一室两队", "2021-06-01"]]), encoding="utf-8")
    write(root / "incidents_2021.csv", INC_H, [inc(1, rec="2021/3/20 14:05", dis=None, arr=None, clo=None)],
          "gb18030")
    write(root / "incidents_2022.csv", INC_H, [inc(2, rec="2022-03-20 14:05:00", dis=None, arr=None, clo=None)],
          "utf-8-sig")
    write(root / "disputes_2021.csv", mc.DS_H, [["D1", "S002", "2021-05-01", "", "邻里纠纷", "否", "否"]], "gb18030")
    (root / "manifest.json").write_text(json.dumps({"synthetic": True, "start": "2019-01", "end": "2025-12",
                                                    "size": "small", "seed": 42}), encoding="utf-8")
    pd.DataFrame({"a": [1]}).to_parquet(root / "truth.parquet")
    wh = tmp_path / "w.duckdb"
    reps = ingest_world(root, warehouse=wh)
    assert [r.table for r in reps] == ["stations", "reforms", "incidents", "disputes"]
    assert all(r.rows_quarantined == 0 for r in reps)
    con = connect(wh)
    assert get_meta(con, "synthetic") == "true"
    assert get_meta(con, "study_start") == "2019-01" and get_meta(con, "seed") == "42"
    assert get_meta(con, "manifest")["size"] == "small"
    assert table_counts(con)["incidents"] == 2
    con.close()
    assert all(r.rows_in == 0 for r in ingest_world(root, warehouse=wh))  # idempotent


@pytest.mark.slow
def test_ingest_world_demo_small(tmp_path):
    """The real demo world (small, ~1.4M incidents): everything accepted, counts match the manifest."""
    import json

    demo = pytest.importorskip("evalkit.demo.world")
    files = demo.generate_world("small", 42, tmp_path / "world")
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    wh = tmp_path / "w.duckdb"
    reps = ingest_world(files.root, warehouse=wh)
    by = {r.table: r for r in reps}
    for t in ("stations", "reforms", "incidents", "disputes"):
        assert by[t].rows_quarantined == 0, (t, by[t].quarantined_by_reason)
        assert by[t].rows_accepted == manifest["rows"][t], t
    con = connect(wh, read_only=True)
    assert get_meta(con, "synthetic") == "true"
    assert get_meta(con, "study_start") == manifest["start"]
    cats = {r[0] for r in con.execute("SELECT DISTINCT category FROM incidents").fetchall()}
    assert cats <= {"theft", "fraud", "fight", "vice", "traffic", "dispute", "nonpolice", "other"}
    hb = {r[0] for r in con.execute("SELECT DISTINCT handled_by FROM incidents").fetchall()}
    assert hb <= {"station", "patrol", "diverted"}
    n_div_arr = con.execute("SELECT count(arrived_at) FROM incidents WHERE handled_by = 'diverted'").fetchall()[0][0]
    assert n_div_arr == 0
    con.close()
