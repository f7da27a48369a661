"""Personal data wherever it hides: masking patterns (SQL and Python agree), ID numbers in key
columns, and no plain copy of a GB18030 file left behind by a killed ingest."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from evalkit.ingest import ingest
from evalkit.ingest.privacy import (
    is_id_number,
    mask_chain_sql,
    mask_py,
    mask_sql,
    masked_changed_sql,
    needs_mask_sql,
)
from evalkit.ingest.sources import TMP_PREFIX, make_tmpdir
from evalkit.warehouse import connect

ROOT = Path(__file__).resolve().parents[1]
WINDOW = ("2019-01", "2025-12")

# (text, what must disappear, the mask that must appear)
CASES = [
    ("报警人张三称电动车被盗", "张三", "[姓名已遮蔽]"),
    ("当事人：李小龙，联系人王五", "李小龙", "[姓名已遮蔽]"),
    ("联系人王五到场", "王五", "[姓名已遮蔽]"),
    ("座机0571-87654321转", "87654321", "[电话已遮蔽]"),
    ("值班(0571)87654321", "87654321", "[电话已遮蔽]"),
    ("老身份证330102850101123在册", "330102850101123", "[身份证号已遮蔽]"),
    ("证件32010219851231007X", "32010219851231007X", "[身份证号已遮蔽]"),
    ("证件 320102 19851231 007X 已核", "19851231", "[身份证号已遮蔽]"),
    ("手机138 0013 8000", "0013", "[手机号已遮蔽]"),
    ("手机138-0013-8000", "0013", "[手机号已遮蔽]"),
    ("手机138.0013.8000", "0013", "[手机号已遮蔽]"),
    ("手机１３８００１３８０００", "８００１３８", "[手机号已遮蔽]"),
    ("家住浙江省杭州市西湖区文三路123号2单元501室", "文三路123号", "[地址已遮蔽]"),
    ("在青石村3组12号门口", "青石村3组12号", "[地址已遮蔽]"),
]


@pytest.mark.parametrize("text,gone,mask", CASES)
def test_mask_python_and_sql_agree(text, gone, mask):
    py = mask_py(text)
    sql = duckdb.connect().execute(f"SELECT {mask_sql('x')} FROM (SELECT ? AS x)", [text]).fetchall()[0][0]
    assert gone not in py and mask in py, py
    assert sql == py


def test_mask_runs_the_replacements_only_where_a_pattern_matches():
    # mask_sql skips the eleven replacements on text no pattern matches: the same text out as running
    # them all, on pieces of personal data, of exports and of neither, glued at random
    import random

    rng = random.Random(15)
    pieces = [t for t, _, _ in CASES] + [
        "2023-03-20 14:05:00", "2021/11/22 17:04", "S0102", "J0000000501", "非警务求助", "派出所", "否", "是",
        "0571", "87654321", "138", "0013", "8000", "+86 ", "-", " ", "：", "(", ")", "号", "路", "村", "组", "室",
        "单元", "浙江省", "杭州市", "西湖区", "文三", "报警人", "姓名", "张三", "电话", "１３８", "３２０１０２",
        "19851231", "007X", "330102", "850101", "123", '{"警情编号":"', '","', '"}', "，", "ＡＢ", "一二三", "十",
    ]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))) for _ in range(3000)]
    texts += [t for t, _, _ in CASES] + ["", "城关派出所", None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    differ = con.execute(f"SELECT x FROM t WHERE {mask_sql('x')} IS DISTINCT FROM {mask_chain_sql('x')}").fetchall()
    assert differ == []
    changed = con.execute(f"SELECT count(*) FROM t WHERE {needs_mask_sql('x')}").fetchall()[0][0]
    assert 300 < changed < len(texts) - 300  # both kinds are there


def test_masked_changed_given_the_mask_is_needs_mask():
    # the quarantine's masked count tests its stored (already masked) text with the rule of needs_mask_sql
    con = duckdb.connect()
    for text, want in [(t, True) for t, _, _ in CASES] + [("城关派出所", False), ("ＡＢ１２", False), (None, False)]:
        got = con.execute(f"SELECT {needs_mask_sql('x')}, {masked_changed_sql('m', 'x')} "
                          f"FROM (SELECT x, {mask_sql('x')} AS m FROM (SELECT CAST(? AS VARCHAR) AS x))", [text]).fetchall()[0]
        assert got == (want, want), text


def test_ordinary_text_is_left_alone():
    for s in ("城关派出所", "青石区", "J000123", "2023-03-20 14:05:00", "S001", "盗窃", "某市公安局某分局城关派出所"):
        assert mask_py(s) == s


def test_id_number_check_digit():
    assert is_id_number("32010219851231007X")
    assert is_id_number("320102 19851231 007X")
    assert not is_id_number("320102198512310021")  # wrong check digit: an ordinary number
    assert is_id_number("330102850101123")
    assert not is_id_number("J2023000000001")


def test_key_holding_an_id_number_is_refused(tmp_path):
    con = connect(":memory:")
    reg = tmp_path / "s.csv"
    reg.write_text("单位代码,单位名称,人口\nS001,城关派出所,52000\n32010219851231007X,河口派出所,1000\n",
                   encoding="utf-8")
    rep = ingest("stations", reg, con=con)
    assert (rep.rows_accepted, rep.quarantined_by_reason) == (1, {"id_number_in_key": 1})
    f = tmp_path / "i.csv"
    f.write_text("警情编号,单位,接警时间,类别\nJ1,S001,2023-03-20 14:05,盗窃\n"
                 "110101199003071233,S001,2023-03-20 15:05,盗窃\n330102850101123,S001,2023-03-20 16:05,盗窃\n",
                 encoding="utf-8")
    rep = ingest("incidents", f, con=con, study_window=WINDOW)
    assert (rep.rows_in, rep.rows_accepted, rep.quarantined_by_reason) == (3, 1, {"id_number_in_key": 2})
    dump = str(con.execute("SELECT * FROM quarantine").fetchall()) + str(con.execute("SELECT * FROM incidents"
                                                                                      ).fetchall())
    for secret in ("110101199003071233", "330102850101123", "32010219851231007X"):
        assert secret not in dump
    assert con.execute("SELECT source_row, detail FROM quarantine WHERE table_name = 'incidents' ORDER BY 1"
                       ).fetchall() == [
        (3, "incident_id (警情编号) holds a citizen ID number; the row is refused (use the record's own number as the key)"),
        (4, "incident_id (警情编号) holds a citizen ID number; the row is refused (use the record's own number as the key)")]


def test_masking_in_stored_station_names_and_quarantine(tmp_path):
    con = connect(":memory:")
    reg = tmp_path / "s.csv"
    reg.write_text("单位代码,单位名称,区县,人口\nS001,城关派出所（联系人王五 0571-87654321）,青石区文三路8号,52000\n",
                   encoding="utf-8")
    ingest("stations", reg, con=con)
    name, county = con.execute("SELECT name, county FROM stations").fetchall()[0]
    assert name == "城关派出所(联系人[姓名已遮蔽] [电话已遮蔽])"
    assert county == "[地址已遮蔽]"


def test_killed_ingest_leaves_no_plain_copy(tmp_path):
    """SIGKILL mid-ingest of a GB18030 file: the temp dir holds no regular file (only the FIFO the
    text streamed through), and the next start removes the stale directory."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    wh = tmp_path / "w.duckdb"
    reg = tmp_path / "s.csv"
    reg.write_text("单位代码,单位名称,人口\nS001,城关派出所,52000\n", encoding="utf-8")
    ingest("stations", reg, warehouse=wh)
    big = tmp_path / "incidents.csv"
    canary = "金丝雀报警内容"
    with open(big, "wb") as fh:
        fh.write("警情编号,单位,接警时间,警情类别,简要案情\n".encode("gb18030"))
        row = ",S001,2023-03-20 14:05,盗窃," + canary * 8 + "\n"
        for i in range(400_000):
            fh.write((f"J{i}" + row).encode("gb18030"))
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "ingest", "incidents", str(big), "--warehouse", str(wh)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    fifo_seen = False
    while time.time() < deadline and proc.poll() is None:
        fifo_seen = any(stat.S_ISFIFO(p.lstat().st_mode) for p in tmpdir.rglob("*") if p.exists())
        if fifo_seen:
            break
        time.sleep(0.01)
    assert fifo_seen, "the ingest never streamed the file"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = [p for p in tmpdir.rglob("*") if p.is_file() and not stat.S_ISFIFO(p.lstat().st_mode)]
    assert left == []
    for p in tmpdir.rglob("*"):
        if p.is_file():
            continue
        assert canary.encode("utf-8") not in p.name.encode()
    stale = [d for d in tmpdir.iterdir() if d.name.startswith(TMP_PREFIX)]
    assert stale, "expected the killed ingest's directory"
    old = tempfile.tempdir
    tempfile.tempdir = str(tmpdir)
    try:
        fresh = make_tmpdir()
        assert [d for d in tmpdir.iterdir() if d.name.startswith(TMP_PREFIX)] == [Path(fresh.name)]
        fresh.cleanup()
    finally:
        tempfile.tempdir = old
