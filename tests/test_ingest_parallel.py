"""The parallel stage pass (ingest/stage.py): value maps as ENUM/CASE look-ups, duplicate candidates
in a bitmap, file rows from the stage's rowid. It must give what the serial pass (rows numbered by a
window, maps joined) gives: the same accepted rows in the same storage order, the same quarantine
with the same file rows, reasons, details and raw text — with DuckDB on one thread (serial: no batch
insert) and on two (parallel), for a small register, a register of 40,000 stations, and station
names too many for the look-up lists (serial again)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from evalkit.ingest import core, ingest, stage
from evalkit.ingest.errors import IngestError
from evalkit.warehouse import connect

REGISTER = Path(__file__).parent / "data" / "bad_inputs" / "_register_stations.csv"
HEAD = "警情编号,所属派出所编码,接警时间,派警时间,到场时间,结警时间,警情类别,处置力量,是否立案\n"
REG_HEAD = "派出所编码,派出所名称,所属区县,所属地市,省份,辖区类型,辖区常住人口,民警数,辅警数,行政村数\n"


def _key(i: int) -> str:
    return f"J{i:08d}" if i % 997 != 996 else f"J{i - 500:08d}"  # repeats an earlier key


def _incidents(path: Path, n: int, station) -> Path:
    """``n`` incident rows; ``station(i)`` names the station of row ``i``. Planted: repeated keys
    (one of them also failing another check), arrivals before receipt, missing values, unknown
    categories, trailing and full-width blanks, a bad timestamp, unparsed yes/no words."""
    lines = [HEAD]
    for i in range(n):
        key = _key(i)
        arr = "2023-03-20 14:00:00" if i % 1201 == 7 else "2023-03-20 14:15:00"
        rec = "2023-03-20 14:05:00" if i % 4999 != 11 else "2023-13-45 99:00"
        cat = ("盗窃", "纠纷 ", "新型类别", "\u3000交通事故")[i % 4] if i % 7 else "非警务求助"
        handled = ("派出所", "巡逻", "分流", "乱写")[i % 4] if i % 13 else ""
        yes = ("是", "否", "不详")[i % 3]
        lines.append(f"{key},{station(i)},{rec},2023-03-20 14:07:00,{arr},2023-03-20 15:00:00,{cat},{handled},{yes}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _register(path: Path, n: int) -> Path:
    path.write_text(REG_HEAD + "".join(f"R{i:05d},第{i}派出所,青石区,江城市,某省,城区,{10000 + i},20,30,5\n"
                                       for i in range(n)), encoding="utf-8")
    return path


def _run(tmp_path: Path, name: str, register: Path, csv: Path, threads: int, monkeypatch) -> tuple:
    """Ingest ``register`` and ``csv`` with DuckDB on ``threads`` threads; (path taken for the
    incidents: 'parallel'/'serial', report counts, incidents in storage order, quarantine)."""
    paths: list[str] = []
    real = core.direct_stage

    def spy(*a, **k):
        off = real(*a, **k)
        paths.append("serial" if off is None else "parallel")
        return off

    monkeypatch.setattr(core, "direct_stage", spy)
    con = connect(tmp_path / name / "warehouse.duckdb")
    try:
        con.execute(f"SET threads = {threads}")
        ingest("stations", register, con=con)
        rep = ingest("incidents", csv, con=con, study_window=("2020-01", "2024-12"))
        rows = con.execute("SELECT * EXCLUDE (load_id) FROM incidents ORDER BY rowid").fetchall()
        qua = con.execute("SELECT source_row, reason, column_name, detail, raw FROM quarantine "
                          "WHERE table_name = 'incidents' ORDER BY rowid").fetchall()
    finally:
        con.close()
    counts = (rep.rows_in, rep.rows_accepted, rep.rows_quarantined, dict(rep.quarantined_by_reason),
              rep.masked_values, rep.other_rows, dict(rep.unknown_values))
    return paths[-1], counts, rows, qua


def _same_both_ways(tmp_path, register, csv, monkeypatch, expect_parallel: bool = True):
    one = _run(tmp_path, "t1", register, csv, 1, monkeypatch)
    two = _run(tmp_path, "t2", register, csv, 2, monkeypatch)
    assert one[0] == "serial"  # one thread: no batch insert, so the numbered serial pass
    assert two[0] == ("parallel" if expect_parallel else "serial")
    assert two[1] == one[1]
    assert two[2] == one[2]  # accepted rows, values and storage order
    assert two[3] == one[3]  # quarantine: file rows, reasons, details, raw text, in order
    return two


def test_parallel_pass_equals_serial_pass(tmp_path, monkeypatch):
    # ~30 MB: several CSV buffers, so several reader threads; codes, a name, blanks, unknown stations
    n = 260_000
    csv = _incidents(tmp_path / "incidents.csv", n, lambda i: ("S001", "东湖派出所", "S002 ", "S003",
                                                              "X999" if i % 1000 == 4 else "S001")[i % 5])
    _, counts, rows, qua = _same_both_ways(tmp_path, REGISTER, csv, monkeypatch)
    assert counts[0] == n == counts[1] + counts[2]
    reasons = counts[3]
    assert {"duplicate_id", "arrival_before_receipt", "unknown_station", "bad_datetime", "bad_boolean",
            "bad_value"} <= set(reasons)
    # storage order and row numbers: the accepted rows are the file's rows (file row = i + 2) less
    # the quarantined ones, in file order, each key once
    out = {r[0] for r in qua}
    assert [r[0] for r in qua] == sorted(out) and len(out) == counts[2]
    keys = [r[0] for r in rows]
    assert keys == [_key(i) for i in range(n) if i + 2 not in out] and len(keys) == len(set(keys))


def test_register_of_40000_stations(tmp_path, monkeypatch):
    register = _register(tmp_path / "register.csv", 40_000)

    def station(i):  # codes of all 40,000 stations, some names, a few unknown codes
        return f"第{i % 3000}派出所" if i % 11 == 0 else ("R99999" if i % 997 == 5 else f"R{(i * 7) % 40_000:05d}")

    csv = _incidents(tmp_path / "incidents.csv", 60_000, station)
    _, counts, rows, _ = _same_both_ways(tmp_path, register, csv, monkeypatch)
    assert counts[3]["unknown_station"] > 0 and len({r[1] for r in rows}) > 20_000


def test_too_many_station_names_take_the_serial_pass(tmp_path, monkeypatch):
    register = _register(tmp_path / "register.csv", 8_000)
    csv = _incidents(tmp_path / "incidents.csv", 30_000, lambda i: f"第{i % 8000}派出所")  # 8,000 names
    _same_both_ways(tmp_path, register, csv, monkeypatch, expect_parallel=False)


@pytest.mark.parametrize("n", [3, 40, 1500])
def test_map_lookups_equal_the_left_join(n):
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE _ek_map_x AS SELECT 'v' || i || CASE WHEN i % 5 = 0 THEN ' ''q' ELSE '' END AS v,
        CASE WHEN i % 4 = 0 THEN NULL WHEN i % 3 = 0 THEN 'v' || i ELSE 'm' || (i % 7) END AS m,
        i % 2 = 0 AS known FROM range({n}) t(i)""")
    con.execute("CREATE TABLE t AS SELECT v AS v_x FROM _ek_map_x UNION ALL SELECT * FROM "
                "(VALUES ('not in the map'), (NULL), ('V1'), ('v1 ')) x(v_x)")
    join = "LEFT JOIN _ek_map_x mx ON mx.v = v_x"
    subs = stage.map_lookups(con, [join])
    assert subs is not None and set(subs) == {"mx.m", "mx.known", "mx.v"}  # v: the value where the map holds it
    got = con.execute(f"SELECT v_x, {subs['mx.m']}, {subs['mx.known']}, {subs['mx.v']} FROM t "
                      f"ORDER BY v_x NULLS LAST").fetchall()
    want = con.execute(f"SELECT v_x, mx.m, mx.known, mx.v FROM t {join} ORDER BY v_x NULLS LAST").fetchall()
    assert sum(r[3] is None for r in want) == 4  # 'not in the map', 'V1', 'v1 ' miss it; and NULL
    assert got == want
    assert stage.substitute("COALESCE(mx.m, 'mx.m') AND mx.known", subs).count("mx.") == 1  # not inside quotes


def test_map_lookups_refuse_long_lists():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE _ek_map_x AS SELECT 'v' || i AS v, 'm' || i AS m FROM range({stage.LIST_MAX + 1}) t(i)")
    assert stage.map_lookups(con, ["LEFT JOIN _ek_map_x mx ON mx.v = v_x"]) is None
    assert stage.map_lookups(con, ["JOIN _ek_map_x mx ON mx.v = v_x"]) is None


@pytest.mark.parametrize("n", [0, 1, 5000, "max", 300_000])
def test_bitmap_holds_every_candidate(n):
    n = stage.CAND_MAX if n == "max" else n  # the fullest bitmap: still ≥ 64 bits a candidate
    con = duckdb.connect()
    con.execute(f"CREATE TABLE k AS SELECT 'J' || i AS p_incident_id FROM range({n + 20_000}) t(i)")
    cand = np.unique(con.execute(f"SELECT hash(p_incident_id) AS h FROM k WHERE rowid < {n}").fetchnumpy()["h"])
    test = stage.bitmap_sql(cand, "p_incident_id")
    if n > stage.CAND_MAX:
        assert test is None
        return
    hit, fp = con.execute(f"SELECT count(*) FILTER (WHERE rowid < {n} AND {test}), "
                          f"count(*) FILTER (WHERE rowid >= {n} AND {test}) FROM k").fetchall()[0]
    assert hit == n and fp < 20_000 * 0.02  # ≤ 1 - e^(-1/64) ≈ 1.6 % expected


def test_parallel_pass_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_INGEST_PARALLEL", "0")
    csv = _incidents(tmp_path / "incidents.csv", 2_000, lambda i: ("S001", "东湖派出所")[i % 2])
    path, counts, _, _ = _run(tmp_path, "off", REGISTER, csv, 2, monkeypatch)
    assert path == "serial" and counts[0] == 2_000


def _ingest_small(tmp_path, name: str, n: int = 2_000):
    """Ingest the register and ``n`` incident rows with DuckDB on two threads (the parallel pass)."""
    csv = _incidents(tmp_path / f"{name}.csv", n, lambda i: ("S001", "东湖派出所")[i % 2])
    con = connect(tmp_path / name / "warehouse.duckdb")
    try:
        con.execute("SET threads = 2")
        ingest("stations", REGISTER, con=con)
        return csv, ingest("incidents", csv, con=con, study_window=("2020-01", "2024-12"))
    finally:
        con.close()


def test_csv_error_in_the_parallel_pass_is_one_line(tmp_path, monkeypatch):
    # a CSV error raised while the stage pass reads the file names the file and row, as the first scan's
    real = stage.is_batch_insert

    def fail(con, sql):
        if "p_incident_id" not in sql:  # the register
            return real(con, sql)
        raise duckdb.InvalidInputException("Invalid Input Error: CSV Error on Line: 7\nOriginal Line: 张三,"
                                           "13800138000\nInvalid unicode (byte sequence mismatch) detected")

    monkeypatch.setattr(stage, "is_batch_insert", fail)
    with pytest.raises(IngestError) as ei:
        _ingest_small(tmp_path, "csv_error")
    msg = str(ei.value)
    assert "\n" not in msg and "张三" not in msg and "13800138000" not in msg
    assert msg.endswith("csv_error.csv: row 7: invalid UTF-8 byte sequence (file detected as UTF-8 from its first "
                        "bytes; mixed or wrong encoding?)"), msg


def test_rowids_changed_after_the_stage_pass_are_refused(tmp_path, monkeypatch):
    # the file row is rowid - off: a stage whose rowids moved (its first row rewritten at the end) is an error
    real = core.direct_stage

    def moved(con, src, hm, lead, parsed, *a):
        off = real(con, src, hm, lead, parsed, *a)
        if "incident_id" not in parsed:  # the register
            return off
        assert off is not None  # the parallel pass
        first = "rowid = (SELECT min(rowid) FROM _ek_stage)"
        con.execute(f"INSERT INTO _ek_stage SELECT * FROM _ek_stage WHERE {first}")
        con.execute(f"DELETE FROM _ek_stage WHERE {first}")
        return off

    monkeypatch.setattr(core, "direct_stage", moved)
    with pytest.raises(AssertionError, match="rowids"):
        _ingest_small(tmp_path, "moved")


def test_join_alias_left_in_the_sql_takes_the_serial_pass(tmp_path, monkeypatch):
    joins = ["LEFT JOIN _ek_map_station ms ON ms.v = v_station_id",
             "LEFT JOIN _ek_map_w_category ON _ek_map_w_category.v = v_category"]
    assert stage.join_alias_left("CASE WHEN ms.m IS NULL THEN 1 END", joins)
    assert stage.join_alias_left("(_ek_map_w_category.known)", joins)
    assert not stage.join_alias_left("p_ms.m, xms.m, _ek_v.ms, msx.m, 'x'", joins)
    assert not stage.join_alias_left("ms.m", [])
    # a check condition naming a join column (not replaced by a look-up) needs the join: the parallel
    # pass is not tried (its EXPLAIN would fail to bind); the serial pass binds the conditions outside
    # the joins too, so such a condition fails there, as in any pass
    real_plan, tried, real = core._plan, [], stage.is_batch_insert

    def plan(spec, *a):
        parsed, joins, checks = real_plan(spec, *a)
        if spec.name != "incidents":
            return parsed, joins, checks
        assert any(" ms " in j for j in joins)
        return parsed, joins, [*checks, core.Check("bad_value", "station_id", "ms.m = 'no such station'", "'never'")]

    def spy(con, sql):
        tried.append("p_incident_id" in sql)
        return real(con, sql)

    monkeypatch.setattr(core, "_plan", plan)
    monkeypatch.setattr(stage, "is_batch_insert", spy)
    with pytest.raises(duckdb.BinderException, match='"ms"'):
        _ingest_small(tmp_path, "alias")
    assert tried == [False]  # the register only
