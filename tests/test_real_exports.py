"""Issue 12: exports as a county bureau hands them over (written by ``tests/realistic``), loaded
through the CLI with the expected outcome of each case; repair (--replace, forget), status, the
did-you-mean hint, personal data and a killed ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from evalkit.cli import app
from realistic import exports as E
from realistic.county import PERSONAL_DIGITS, PERSONAL_STRINGS, citizen_id, stations

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()


def evalkit(*args) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, stdout + stderr) with wide lines (no rich wrapping)."""
    res = RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "500", "NO_COLOR": "1"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def ingest(wh: Path, table: str, files, *args) -> tuple[int, str]:
    return evalkit("ingest", table, *[str(f) for f in files], "--warehouse", wh, *args)


def q(wh: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql).fetchall()


def load_register(d: Path, wh: Path, kind: str = "codes") -> None:
    code, out = ingest(wh, "stations", E.register_files(d, kind))
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM quarantine") == [(0,)], out


def stored_strings(wh: Path) -> str:
    """Every text value of every table of the warehouse, joined (to look for personal data)."""
    with duckdb.connect(str(wh), read_only=True) as con:
        cols = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                           "WHERE data_type = 'VARCHAR'").fetchall()
        parts = []
        for t, c in cols:
            parts += [str(r[0]) for r in con.execute(f'SELECT "{c}" FROM "{t}" WHERE "{c}" IS NOT NULL').fetchall()]
    return "\n".join(parts)


def assert_no_personal_data(text: str, extra: tuple[str, ...] = ()) -> None:
    flat = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum())
    for s in (*PERSONAL_STRINGS, *extra):
        assert s not in text, f"personal data {s!r} was stored or printed"
    for s in (*PERSONAL_DIGITS, *extra):
        assert s not in flat, f"personal data {s!r} was stored or printed (separators removed)"


def quarantine_by_reason(wh: Path, table: str) -> dict[str, int]:
    return dict(q(wh, f"SELECT reason, count(*) FROM quarantine WHERE table_name = '{table}' GROUP BY ALL"))


@pytest.fixture
def wh(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"


# ------------------------------------------------------------------ the corpus, case by case
@pytest.mark.parametrize("make", E.SIMPLE_CASES, ids=lambda f: f.__name__)
def test_case(make, tmp_path, wh):
    case = make(tmp_path / "exports")
    if case.register:
        load_register(tmp_path, wh, case.register)
    before = q(wh, f"SELECT count(*) FROM {case.table}")[0][0] if wh.exists() else 0
    code, out = ingest(wh, case.table, case.files, *case.args)
    assert code == case.exit_code, out
    if case.exit_code != 0:
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 1, f"the error should be one line:\n{out}"
        for word in case.error:
            assert word in lines[0], f"{word!r} missing from the error:\n{out}"
        assert q(wh, f"SELECT count(*) FROM {case.table}")[0][0] == before, "a failed ingest must write nothing"
        return
    accepted = q(wh, f"SELECT count(*) FROM {case.table}")[0][0] - before
    assert accepted == case.accepted, out
    assert quarantine_by_reason(wh, case.table) == case.reasons, out
    # the tool counted exactly the data rows written (no title, note, header or group row)
    rows_in = q(wh, f"SELECT sum(rows_in), sum(rows_accepted), sum(rows_quarantined) FROM ingest_log "
                    f"WHERE table_name = '{case.table}'")[0]
    assert rows_in == (case.accepted + sum(case.reasons.values()), case.accepted, sum(case.reasons.values()))
    if case.check:
        with duckdb.connect(str(wh), read_only=True) as con:
            case.check(con)
    assert_no_personal_data(stored_strings(wh) + out, (citizen_id("33010219850312004"), "33010219900101008X"))


def test_missing_register_columns_are_reported_once_all_together(tmp_path, wh):
    case = E.register_title_rows(tmp_path, with_defaults=False)
    code, out = ingest(wh, "stations", case.files)
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if "province" in ln]
    assert len(lines) == 1 and "city" in lines[0] and "area_type" in lines[0], out
    assert "--set" in out, "the report should say how to give the missing columns as defaults"


def test_unmatched_units_accepted_on_request(tmp_path, wh):
    load_register(tmp_path, wh)
    case = E.incidents_unmatched(tmp_path, accept=True)
    code, out = ingest(wh, "incidents", case.files, *case.args)
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(94,)]
    assert quarantine_by_reason(wh, "incidents") == {E.UNMATCHED: 6}


def test_unknown_header_gets_did_you_mean(tmp_path, wh):
    load_register(tmp_path, wh)
    rows = E.incident_rows(stations(8), 10, seed=9)
    head = list(E.INCIDENT_HEAD)
    head[3] = "到达时问"  # a typo of 到达时间
    f = E.write_csv(tmp_path / "警情_错字.csv", [head, *rows], encoding="gb18030")
    code, out = ingest(wh, "incidents", [f])
    assert code == 0, out
    hint = [ln for ln in out.splitlines() if "到达时问" in ln]
    assert hint and any("到达时间" in ln for ln in hint), out


def test_suggested_mapping_edited_by_the_user_maps_headers_and_values(tmp_path, wh):
    """The user's loop: suggest → read (an unknown header, an unknown category) → edit → load."""
    import yaml

    load_register(tmp_path, wh)
    rows = E.incident_rows(stations(8), 20, seed=21)
    for r in rows[:4]:
        r[5] = "涉网求助"  # the vocabulary's guess is wrong for this bureau: it is fraud
    for r in rows[4:6]:
        r[5] = "ZZ类警情"  # unknown: `other`, and the share is reported
    head = list(E.INCIDENT_HEAD)
    head[4] = "所队"  # a header no alias knows
    f = E.write_csv(tmp_path / "警情_所队.csv", [head, *rows], encoding="gb18030")
    m = tmp_path / "incidents.yaml"
    code, out = ingest(wh, "incidents", [f], "--suggest-mapping", m)
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(0,)], "--suggest-mapping must load nothing"
    code, out = ingest(wh, "incidents", [f], "--mapping", m)
    assert code == 1 and "station_id" in out, "without the edit the station column is missing"
    doc = yaml.safe_load(m.read_text(encoding="utf-8"))
    assert doc["columns"]["所队"] is None and doc["values"]["category"]["ZZ类警情"] in (None, "other"), doc
    doc["columns"]["所队"] = "station_id"
    doc["values"]["category"]["涉网求助"] = "fraud"
    m.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    code, out = ingest(wh, "incidents", [f], "--mapping", m)
    assert code == 0, out
    cats = dict(q(wh, "SELECT category, count(*) FROM incidents GROUP BY ALL"))
    fraud = 4 + sum(r[5] == "电信网络诈骗" for r in rows)
    assert cats["fraud"] == fraud and cats["other"] == 2, cats
    assert any("other" in ln and "10.0%" in ln for ln in out.splitlines()), out


def test_sheet_chosen_by_name_reads_a_hidden_sheet_only_when_asked(tmp_path):
    case = E.register_hidden_sheet(tmp_path)
    wh1, wh2 = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    assert ingest(wh1, "stations", case.files, "--sheet", "名册")[0] == 0
    assert q(wh1, "SELECT count(*) FROM stations WHERE name = '废弃派出所'") == [(0,)]
    assert q(wh1, "SELECT count(*) FROM stations") == [(8,)]
    code, out = ingest(wh2, "stations", case.files, "--sheet", "旧名册")
    assert code == 0, out
    assert sorted(r[0] for r in q(wh2, "SELECT name FROM stations")) == ["废弃派出所", "旧城派出所"]


def test_formula_cells_without_cached_values_are_quarantined_by_row(tmp_path, wh):
    load_register(tmp_path, wh)
    case, frows = E.incidents_formulas(tmp_path)
    code, out = ingest(wh, "incidents", case.files)
    assert code == 0, out
    got = q(wh, "SELECT source_row, reason FROM quarantine ORDER BY source_row")
    assert got == [(r, E.FORMULA) for r in frows], got
    assert q(wh, "SELECT count(*) FROM incidents") == [(17,)]
    assert q(wh, "SELECT count(*) FROM incidents WHERE arrived_at IS NULL") == [(0,)], "a formula became empty"


def test_stray_quotes_are_read_or_quarantined_by_row(tmp_path, wh):
    load_register(tmp_path, wh)
    case, stray = E.incidents_stray_quotes(tmp_path)
    code, out = ingest(wh, "incidents", case.files)
    assert code == 0, out
    assert q(wh, "SELECT rows_in, rows_accepted + rows_quarantined FROM ingest_log "
                 "WHERE table_name = 'incidents'") == [(50, 50)]
    # a line with an odd number of quotes is quarantined by its row (docs/ingest.md), nothing else
    got = q(wh, "SELECT source_row, reason FROM quarantine ORDER BY source_row")
    assert got == [(r, "unbalanced_quote") for r in sorted(stray)], got
    # every other line is read as its own record (the quote opened in row 21 swallowed no row)
    rows = E.incident_rows(stations(8), 50, seed=5)
    expected = {str(r[1]) for i, r in enumerate(rows) if i + 2 not in stray}
    assert {r[0] for r in q(wh, "SELECT incident_id FROM incidents")} == expected
    assert q(wh, "SELECT count(*) FROM incidents WHERE category = 'other'")[0][0] == 0


def test_station_that_stops_exporting_is_missing_not_zero(tmp_path, wh):
    from evalkit.panel import build_panel

    load_register(tmp_path, wh)
    case, gone = E.incidents_monthly_with_gap(tmp_path)
    code, out = ingest(wh, "incidents", case.files)
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(case.accepted,)]
    with duckdb.connect(str(wh), read_only=True) as con:
        panel = build_panel(con, "两队一室", start="2024-01", end="2024-12")
    mine = panel[panel["station_id"] == gone.code].set_index("month")["incidents_total"]
    assert len(mine.dropna()) == 6, "months with records"
    gap = mine[(mine.index >= "2024-04-01") & (mine.index <= "2024-09-01")]
    assert not (gap == 0).any(), f"months without an export became zero incidents:\n{gap}"
    code, out = evalkit("warehouse", "status", "--warehouse", wh)
    assert code == 0, out
    assert gone.code in out or gone.name in out, out


# ------------------------------------------------------------------ repair
def _bad_then_good(tmp_path: Path) -> tuple[Path, list, list]:
    rows = E.incident_rows(stations(8), 60, seed=11)
    bad = [list(r) for r in rows]
    for r in bad[:20]:
        r[2] = "待补录"
    return tmp_path / "警情_2023上半年.csv", bad, rows


def test_replace_removes_old_rows_and_their_quarantine(tmp_path, wh):
    load_register(tmp_path, wh)
    f, bad, good = _bad_then_good(tmp_path)
    E.write_csv(f, [E.PLAIN_HEAD, *bad], encoding="gb18030")
    code, out = ingest(wh, "incidents", [f])
    assert code == 0, out
    assert quarantine_by_reason(wh, "incidents") == {"bad_datetime": 20}
    E.write_csv(f, [E.PLAIN_HEAD, *good], encoding="gb18030")
    code, out = ingest(wh, "incidents", [f], "--replace")
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(60,)]
    assert quarantine_by_reason(wh, "incidents") == {}, "stale quarantine rows outlived their load"
    # replacing with the very same file again changes nothing
    code, out = ingest(wh, "incidents", [f], "--replace")
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(60,)]


def test_forget_removes_one_file_and_keeps_the_others(tmp_path, wh):
    load_register(tmp_path, wh)
    f1, bad, _ = _bad_then_good(tmp_path)
    E.write_csv(f1, [E.PLAIN_HEAD, *bad], encoding="gb18030")
    rows2 = E.incident_rows(stations(8), 30, seed=12, id_prefix="K")
    f2 = E.write_csv(tmp_path / "警情_2023下半年.csv", [E.PLAIN_HEAD, *rows2], encoding="gb18030")
    assert ingest(wh, "incidents", [f1, f2])[0] == 0
    assert q(wh, "SELECT count(*) FROM incidents") == [(70,)]
    code, out = evalkit("warehouse", "status", "--warehouse", wh)
    assert code == 0 and f1.name in out and f2.name in out and "bad_datetime" in out, out
    code, out = evalkit("warehouse", "forget", f1, "--warehouse", wh)
    assert code == 0, out
    assert q(wh, "SELECT count(*) FROM incidents") == [(30,)]
    assert quarantine_by_reason(wh, "incidents") == {}
    assert q(wh, f"SELECT DISTINCT live FROM ingest_log WHERE source_file LIKE '%{f1.name}'") == [(False,)]
    # the forgotten file can be loaded again (its sha256 no longer blocks it)
    assert ingest(wh, "incidents", [f1])[0] == 0
    assert q(wh, "SELECT count(*) FROM incidents") == [(70,)]


# ------------------------------------------------------------------ window checks and the demo world
def _params(path: Path, wh: Path, start: str, end: str) -> Path:
    path.write_text(f"evaluation_id: w\nreform: 两队一室\noutcomes: [incidents_total]\nwarehouse: {wh}\n"
                    f"window: {{start: '{start}', end: '{end}'}}\n", encoding="utf-8")
    return path


def _window_warehouse(tmp_path: Path, wh: Path) -> None:
    """Incidents of 2024 only; adopters in 2024-01 and 2024-07."""
    load_register(tmp_path, wh)
    case, _ = E.incidents_monthly_with_gap(tmp_path)  # incidents of 2024 only
    assert ingest(wh, "incidents", case.files)[0] == 0
    sts = stations(8)
    adopt = E.write_csv(tmp_path / "改革.csv", [["派出所编码", "改革事项", "实施日期"],
                                                [sts[2].code, "两队一室", "2024-07-01"],
                                                [sts[3].code, "两队一室", "2024-01-01"]])
    assert ingest(wh, "reforms", [adopt])[0] == 0


def test_validate_refuses_a_window_beyond_the_data_or_without_pre_period(tmp_path, wh):
    _window_warehouse(tmp_path, wh)
    code, out = evalkit("validate", _params(tmp_path / "a.yaml", wh, "2019-01", "2025-12"))
    assert code != 0 and "2019-01" in out and "2024-01" in out and "2025-12" in out and "2024-12" in out, out
    code, out = evalkit("validate", _params(tmp_path / "b.yaml", wh, "2024-01", "2024-12"))
    assert code == 0, out
    code, out = evalkit("validate", _params(tmp_path / "c.yaml", wh, "2024-07", "2024-12"))
    assert code != 0 and "pre-period" in out, out


@pytest.mark.slow
def test_run_refuses_a_window_beyond_the_data_before_running(tmp_path, wh):
    _window_warehouse(tmp_path, wh)
    code, out = evalkit("run", _params(tmp_path / "a.yaml", wh, "2019-01", "2025-12"), "--outputs", tmp_path / "out",
                        "--no-pdf")
    assert code != 0 and "2025-12" in out and not (tmp_path / "out" / "w" / "results.json").exists(), out


def test_demo_data_never_touches_an_ingested_warehouse(tmp_path, wh):
    load_register(tmp_path, wh)
    before = wh.read_bytes()
    code, out = evalkit("demo-data", "--size", "small", "--seed", "3", "--out", tmp_path / "world", "--warehouse", wh)
    assert code != 0, "demo-data replaced a warehouse holding ingested data without an explicit flag"
    assert wh.read_bytes() == before
    assert not (tmp_path / "world").exists() or not any((tmp_path / "world").rglob("*.duckdb"))


# ------------------------------------------------------------------ a killed ingest leaves no plain copy
def _big_gb18030(path: Path, n: int, prefix: str = "Z") -> bytes:
    """A large incident file in GB18030; returns a marker whose UTF-8 bytes a transcoded copy holds."""
    marker = "临江市公安局城南分局城关派出所"
    st = stations(8)[0]
    line = f"{{i}},{prefix}{{i:09d}},2023-03-20 14:05:00,{marker},盗窃,报警人称家中被盗\r\n"
    with path.open("wb") as fh:
        fh.write("序号,警情编号,接警时间,所属派出所,警情类别,简要警情\r\n".encode("gb18030"))
        chunk = 20_000
        for s in range(0, n, chunk):
            fh.write("".join(line.format(i=i) for i in range(s, min(n, s + chunk))).encode("gb18030"))
    assert st.name in marker
    return marker.encode("utf-8")


def _plain_copies(tmpdir: Path, marker: bytes) -> list[Path]:
    hits = []
    for p in tmpdir.rglob("*"):
        if p.is_file():
            with p.open("rb") as fh:
                while block := fh.read(1 << 20):
                    if marker in block:
                        hits.append(p)
                        break
    return hits


def _opened(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def _wait_mid_load(proc: subprocess.Popen, big: Path, tmpdir: Path) -> None:
    """Return once the ingest is mid-load: a temp copy of over 256 KB is being written, a FIFO or
    other temp entry exists, or (for a reader streaming in memory) the export has been open 0.5 s."""
    t0, opened = time.monotonic(), None
    while time.monotonic() - t0 < 60 and proc.poll() is None:
        entries = [p for p in tmpdir.rglob("*") if not p.is_dir()]
        if any(not p.is_file() or p.stat().st_size > 256 << 10 for p in entries):
            time.sleep(0.2)
            return
        if opened is None and _opened(proc.pid, big):
            opened = time.monotonic()
        if opened is not None and time.monotonic() - opened > 0.5:
            return
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_ingest_leaves_no_plain_copy(tmp_path, wh, sig):
    load_register(tmp_path, wh)
    big = tmp_path / "exports" / "警情_全年.csv"
    big.parent.mkdir()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT / "src")}
    n = 400_000
    for _ in range(3):  # a faster reader finishes before the kill: try again with a larger file
        marker = _big_gb18030(big, n)
        proc = subprocess.Popen([sys.executable, "-m", "evalkit", "ingest", "incidents", str(big), "--warehouse",
                                 str(wh)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_mid_load(proc, big, tmpdir)
        if proc.poll() is None:
            break
        subprocess.run([sys.executable, "-m", "evalkit", "warehouse", "forget", str(big), "--warehouse", str(wh)],
                       env=env, capture_output=True, check=True)
        n *= 2
    assert proc.poll() is None, "the ingest always finished before it could be killed"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    if sig == signal.SIGKILL:  # nothing can clean up after SIGKILL: the next start must
        small = tmp_path / "警情_小.csv"
        _big_gb18030(small, 5, prefix="S")
        subprocess.run([sys.executable, "-m", "evalkit", "ingest", "incidents", str(small), "--warehouse", str(wh)],
                       env=env, capture_output=True, check=True)
    assert _plain_copies(tmpdir, marker) == [], "a plain-text copy of the export was left in the temp directory"
    assert q(wh, "SELECT count(*) FROM incidents WHERE incident_id LIKE 'Z%'") == [(0,)]
