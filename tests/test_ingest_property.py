"""Property (issue 12): for every sequence of loads, replaces and forgets of realistic incident
exports, rows in = accepted + quarantined for every load, and the warehouse holds exactly the
rows and the quarantine of the live loads — nothing left from a replaced or forgotten one."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from evalkit.cli import app
from realistic import exports as E
from realistic.county import full_name, messy_datetime, stations

STS = stations(8)
KINDS = ("ok", "ok", "ok", "bad_date", "unknown_unit", "no_unit", "dup")
QUARANTINED = {"bad_date", "unknown_unit", "no_unit", "dup"}
RUNNER = CliRunner()


def cli(*args) -> tuple[int, str]:
    res = RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "500"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def write_export(path: Path, file_no: int, kinds: list[str]) -> tuple[int, int]:
    """Write one export; returns the (accepted, quarantined) rows it must give."""
    rows, last_ok = [], None
    for i, kind in enumerate(kinds):
        s = STS[i % len(STS)]
        t = dt.datetime(2023, 1 + i % 12, 1 + i % 28, 8 + i % 12, i % 60)
        rid = f"P{file_no}-{i:03d}"
        unit, when = full_name(s), messy_datetime(t, i)
        if kind == "bad_date":
            when = "待补录"
        elif kind == "unknown_unit":
            unit = "临江市公安局城南分局港区派出所"
        elif kind == "no_unit":
            unit = ""
        elif kind == "dup":
            if last_ok is None:  # nothing to duplicate yet: an ordinary row
                kind = "ok"
            else:
                rid = last_ok
        if kind == "ok":
            last_ok = rid
        kinds[i] = kind
        rows.append([i + 1, rid, when, unit, "电信网络诈骗"])
    E.write_csv(path, [["序号", "警情编号", "接警时间", "所属派出所", "警情类别"], *rows], encoding="gb18030")
    q = sum(k in QUARANTINED for k in kinds)
    return len(kinds) - q, q


op = st.tuples(st.sampled_from(["load", "replace", "forget"]), st.integers(0, 2),
               st.lists(st.sampled_from(KINDS), min_size=1, max_size=12))


def _state(wh: Path) -> tuple[int, int, dict[str, int]]:
    with duckdb.connect(str(wh), read_only=True) as con:
        acc = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
        qua = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        per = dict(con.execute("SELECT source_file, count(*) FROM quarantine GROUP BY ALL").fetchall())
        for rows_in, a, q in con.execute("SELECT rows_in, rows_accepted, rows_quarantined FROM ingest_log "
                                         "WHERE table_name = 'incidents'").fetchall():
            assert rows_in == a + q, "a load whose rows in != accepted + quarantined"
    return acc, qua, per


# no shrinking: each step is a CLI ingest, and the generated example is short enough to read
@pytest.mark.slow
@settings(max_examples=12, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(op, min_size=1, max_size=6))
def test_loads_replaces_and_forgets_reconcile(ops):
    with tempfile.TemporaryDirectory(prefix="ek-prop-") as d:
        d = Path(d)
        wh = d / "wh.duckdb"
        assert cli("ingest", "stations", *E.register_files(d), "--warehouse", wh)[0] == 0
        live: dict[str, tuple[int, int]] = {}  # file name → (accepted, quarantined) of its live load
        for k, (what, file_no, kinds) in enumerate(ops):
            f = d / f"警情_{file_no}.csv"
            before = _state(wh)
            if what == "forget":
                code, out = cli("warehouse", "forget", f, "--warehouse", wh)
                if f.name in live:
                    assert code == 0, out
                    del live[f.name]
                else:  # forgetting a file that was never loaded is an error and changes nothing
                    assert code != 0, out
                    assert _state(wh) == before
            elif what == "replace" and f.name not in live:
                # replacing a file that was never loaded is an error and changes nothing
                write_export(f, file_no, list(kinds))
                code, out = cli("ingest", "incidents", f, "--warehouse", wh, "--accept-unmatched", "--replace")
                assert code == 1, out
                assert _state(wh) == before
            else:  # a first load, or a changed file loaded again (which needs --replace)
                expected = write_export(f, file_no, list(kinds))
                flags = ["--replace"] if f.name in live else []
                code, out = cli("ingest", "incidents", f, "--warehouse", wh, "--accept-unmatched", *flags)
                assert code == (0 if expected[0] else 2), out
                live[f.name] = expected
            acc, qua, per = _state(wh)
            assert acc == sum(a for a, _ in live.values()), f"after op {k} ({what}): rows of dead loads remain"
            assert qua == sum(q for _, q in live.values()), f"after op {k} ({what}): stale quarantine"
            per_name = {Path(src).name: n for src, n in per.items()}
            assert per_name == {n: q for n, (_, q) in live.items() if q}
            with duckdb.connect(str(wh), read_only=True) as con:
                logged = con.execute("SELECT source_file, rows_in, rows_accepted, rows_quarantined FROM ingest_log "
                                     "WHERE table_name = 'incidents' AND live").fetchall()
            assert {Path(f).name: (n, a, q) for f, n, a, q in logged} == {
                name: (a + q, a, q) for name, (a, q) in live.items()}, "the live loads in ingest_log"
