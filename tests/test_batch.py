"""`evalkit batch`: failure isolation, kill + resume, local vs Dask, portfolio.

Runs real papermill evaluations on the small demo world (cheap params: two estimators,
one outcome). Set ``EVALKIT_TEST_WAREHOUSE`` to an existing demo warehouse to skip
generating one (~50 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from evalkit.batch import PlanError, expand_matrix, plan, run_batch
from evalkit.batch.execute import is_complete
from evalkit.batch.plan import warehouse_fingerprint

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = ["estimate", "std_error", "ci_low", "ci_high", "p_value", "pct", "pct_ci_low", "pct_ci_high"]
KEYS = ["evaluation_id", "outcome", "estimator"]

GOOD = {
    "fights": {"reform": "两队一室", "outcomes": ["incidents_fight"], "region": {"area_type": "urban"}},
    "village": {"reform": "一村一辅警", "outcomes": ["dispute_escalation_rate"], "region": {"area_type": "rural"}},
    "patrol": {"reform": "巡处一体化", "outcomes": ["response_mean_min"], "region": {"area_type": "urban"}},
}


@pytest.fixture(scope="session")
def warehouse(demo_warehouse) -> Path:
    return demo_warehouse


def _write_params(folder: Path, wh: Path, names: list[str], broken: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        d = {"evaluation_id": name, **GOOD[name], "estimators": ["naive_yoy", "twfe"], "lang": "en",
             "warehouse": str(wh)}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    if broken:
        (folder / "broken.yaml").write_text(
            "evaluation_id: broken\nreform: no_such_reform\noutcomes: [incidents_fight]\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def local_batch(warehouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    src = _write_params(root / "params", warehouse, ["fights", "village"], broken=True)
    rep = run_batch([str(src)], root / "out", name="demo", workers=2, pdf=False, portfolio_pdf=True,
                    progress=False)
    return src, rep


# ---------------------------------------------------------------------------- fast
def test_matrix_expansion():
    data = {"matrix": {"reform": ["两队一室", "village_auxiliary"], "outcomes": [["incidents_fight"], ["dispatches", "cases"]],
                       "region": {"urban": {"area_type": "urban"}, "rural": {"area_type": "rural"}}},
            "base": {"estimators": ["twfe"]}, "id": "{reform}_{outcome}_{region}",
            "exclude": [{"reform": "village_auxiliary", "region": "urban"}]}
    out = dict(expand_matrix(data, "m.yaml"))
    assert len(out) == 6
    p = out["two_teams_one_room_dispatches-cases_urban"]
    assert p["reform"] == "两队一室" and p["outcomes"] == ["dispatches", "cases"]
    assert p["region"] == {"area_type": "urban"} and p["estimators"] == ["twfe"]
    assert "village_auxiliary_incidents_fight_urban" not in out
    with pytest.raises(PlanError, match="same evaluation_id"):
        expand_matrix({**data, "id": "{reform}"}, "m.yaml")
    with pytest.raises(PlanError, match="not a params key"):
        expand_matrix({"matrix": {"colour": ["red"]}}, "m.yaml")


def test_plan_sources(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(
        {"matrix": {"reform": ["两队一室"], "outcomes": ["dispatches", "cases"], "region": ["urban", "rural"]}},
        allow_unicode=True), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("reform: [unclosed\n", encoding="utf-8")
    items = plan([str(tmp_path / "*.yaml")], warehouse="w.duckdb")
    ids = [it.evaluation_id for it in items]
    assert ids == ["bad", "two_teams_one_room_dispatches_urban", "two_teams_one_room_dispatches_rural",
                   "two_teams_one_room_cases_urban", "two_teams_one_room_cases_rural"]
    assert not items[0].ok and "not valid YAML" in items[0].error
    assert all(it.ok and it.params["warehouse"].endswith("w.duckdb") for it in items[1:])
    with pytest.raises(PlanError):
        plan([str(tmp_path / "missing")])


# ---------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_batch_isolates_failures_and_writes_portfolio(local_batch, warehouse):
    src, rep = local_batch
    assert rep.exit_code == 1
    assert sorted(rep.ok) == ["fights", "village"] and rep.failed == ["broken"]
    d = rep.directory
    assert "unknown reform" in rep.records["broken"]["error"]
    assert not (d / ".cells").exists()  # the shared station-month cells (evalkit.cells_cache) are removed
    assert "no_such_reform" in (d / "logs" / "broken.log").read_text(encoding="utf-8")
    assert not (d / "broken" / "done.json").exists() and (d / "broken" / "error.json").is_file()
    for eid in ("fights", "village"):
        done = json.loads((d / eid / "done.json").read_text(encoding="utf-8"))
        assert set(done["files"]) == {"executed.ipynb", "results.json", "brief.html"}
        assert (d / "logs" / f"{eid}.log").stat().st_size > 0
    s = pd.read_parquet(d / "summary.parquet")
    assert set(s["evaluation_id"]) == {"fights", "village", "broken"}
    ok = s[s["status"] == "ok"]
    assert len(ok) == 4 and ok[NUMBERS].notna().all().all()
    head = ok[ok["is_headline"]].set_index("evaluation_id")
    assert head.loc["fights", "estimator"] == "twfe" and head.loc["fights", "pct"] < 0
    assert (head["n_treated"] > 0).all() and (head["n_control"] > 0).all()
    assert ok["synthetic"].all()
    t = s.drop_duplicates("evaluation_id").set_index("evaluation_id").loc[["fights", "village"]]
    assert (t["seconds_kernel_start"] > 0).all() and (t["seconds_execute"] > t["seconds_estimate"]).all()
    assert (t["seconds_export"] > 0).all()
    html = (d / "portfolio.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DEMO DATA" in html and "broken" in html and "data:image/png;base64" in html
    assert "3 (2 succeeded, 1 failed)" in html and "no_such_reform" in html
    assert rep.portfolio_pdf is not None and rep.portfolio_pdf.read_bytes()[:4] == b"%PDF"
    # re-run: nothing to do but the broken file, which fails again
    again = run_batch([str(src)], d.parent, name="demo", workers=2, pdf=False, portfolio_pdf=False, progress=False)
    assert sorted(again.skipped) == ["fights", "village"] and again.failed == ["broken"]
    assert again.exit_code == 1


@pytest.mark.slow
def test_kill_mid_batch_then_resume(warehouse, tmp_path):
    src = _write_params(tmp_path / "params", warehouse, ["fights", "village", "patrol"], broken=False)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.batch", str(src), "--workers", "1", "--no-pdf",
                             "--outputs", str(out), "--name", "k"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    d = out / "k"
    deadline = time.monotonic() + 240
    while not list(d.glob("*/done.json")):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no evaluation completed in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    assert rc == 128 + signal.SIGTERM, proc.stderr.read()[-3000:]
    completed = sorted(p.parent.name for p in d.glob("*/done.json"))
    assert 1 <= len(completed) < 3
    # no corrupt outputs: every final-named file parses; done.json only where everything is current
    for f in d.glob("*/results.json"):
        json.loads(f.read_text(encoding="utf-8"))
    for f in d.glob("*/executed.ipynb"):
        json.loads(f.read_text(encoding="utf-8"))
    items = {it.evaluation_id: it for it in plan([str(src)])}
    from evalkit.batch.plan import fingerprint_items

    fingerprint_items(list(items.values()))
    for eid in completed:
        assert is_complete(d / eid, items[eid].fingerprint, pdf=False)
    manifest = json.loads((d / "batch.json").read_text(encoding="utf-8"))
    assert {e["evaluation_id"] for e in manifest["evaluations"]} == set(items)

    rep = run_batch([str(src)], out, name="k", workers=2, pdf=False, portfolio_pdf=False, progress=False)
    assert rep.exit_code == 0
    assert sorted(rep.skipped) == completed
    assert sorted(rep.ok) == ["fights", "patrol", "village"]
    for eid in items:
        assert is_complete(d / eid, items[eid].fingerprint, pdf=False)
        assert not [f for f in (d / eid).iterdir() if f.name.startswith(".")]
    s = pd.read_parquet(d / "summary.parquet")
    assert (s["status"] == "ok").all() and s.loc[s["evaluation_id"].isin(completed), "skipped"].all()


@pytest.mark.slow
def test_dask_matches_local(local_batch, tmp_path):
    src, local = local_batch
    rep = run_batch([str(src)], tmp_path, name="demo", workers=2, dask=True, pdf=False, portfolio_pdf=False,
                    progress=False)
    assert rep.mode == "dask" and rep.exit_code == 1
    errors = {k: (r.get("error"), Path(r["log"]).read_text(encoding="utf-8")[-4000:] if r.get("log")
                  and Path(r["log"]).is_file() else None) for k, r in rep.records.items() if r.get("status") != "ok"}
    assert sorted(rep.ok) == ["fights", "village"] and rep.failed == ["broken"], errors
    a = pd.read_parquet(local.directory / "summary.parquet").sort_values(KEYS, na_position="first")
    b = pd.read_parquet(rep.directory / "summary.parquet").sort_values(KEYS, na_position="first")
    cols = [*KEYS, "status", *NUMBERS, "verdict", "n_treated", "n_control", "fingerprint"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_warehouse_fingerprint_is_content_based(tmp_path):
    import duckdb

    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for p in (a, b):
        with duckdb.connect(str(p)) as con:
            con.execute("CREATE TABLE t (x INT, y VARCHAR)")
            con.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
            con.execute("CREATE TABLE ingest_log (sha256 VARCHAR, ingested_at TIMESTAMP)")
            con.execute("INSERT INTO ingest_log VALUES ('x', now())")
    assert warehouse_fingerprint(a) == warehouse_fingerprint(b)
    with duckdb.connect(str(b)) as con:
        con.execute("UPDATE t SET y = 'c' WHERE x = 2")
    assert warehouse_fingerprint(a) != warehouse_fingerprint(b)


def test_kernel_failures_retry_but_cell_errors_do_not(monkeypatch):
    import logging

    import evalkit.runner as runner
    from evalkit.batch import execute

    calls = []

    def flaky(params, root, **kw):
        calls.append(params)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "ran"

    monkeypatch.setattr(runner, "run_params", flaky)
    monkeypatch.setattr(execute.time, "sleep", lambda s: None)
    record: dict = {}
    assert execute._run_notebook("p", Path("."), logging.getLogger("t"), record) == "ran"
    assert len(calls) == 2 and record["kernel_retries"] == 1

    def cell_error(params, root, **kw):
        calls.append(params)
        raise runner.RunError("x: notebook failed in cell 3: ValueError")

    calls.clear()
    monkeypatch.setattr(runner, "run_params", cell_error)
    with pytest.raises(runner.RunError):
        execute._run_notebook("p", Path("."), logging.getLogger("t"), {})
    assert len(calls) == 1

    def always_dead(params, root, **kw):
        calls.append(params)
        raise TimeoutError("kernel did not start")

    calls.clear()
    monkeypatch.setattr(runner, "run_params", always_dead)
    record = {}
    with pytest.raises(TimeoutError):
        execute._run_notebook("p", Path("."), logging.getLogger("t"), record)
    assert len(calls) == execute.KERNEL_ATTEMPTS and record["kernel_retries"] == execute.KERNEL_ATTEMPTS


def test_next_kernel_starts_ahead_only_when_the_worker_will_probably_get_another(monkeypatch):
    from evalkit.batch.local import PRESTART_ENV, _next_notebook

    item = {"evaluation_id": "a", "params": {"notebook": "prevention_index"}}
    monkeypatch.delenv(PRESTART_ENV, raising=False)
    monkeypatch.setenv("EVALKIT_KERNEL_REUSE", "1")
    monkeypatch.setenv(PRESTART_ENV, "1")
    assert _next_notebook([item, item], 2) is None  # a worker keeping its kernel starts none ahead
    monkeypatch.setenv("EVALKIT_KERNEL_REUSE", "0")
    monkeypatch.delenv("EVALKIT_BATCH_KERNEL_REUSE", raising=False)
    monkeypatch.delenv(PRESTART_ENV, raising=False)
    assert _next_notebook([item, item], 2) is None  # off by default
    monkeypatch.setenv(PRESTART_ENV, "1")
    assert _next_notebook([], 2) is None
    assert _next_notebook([item], 2) is None  # the other worker may take the last one: none in vain
    assert _next_notebook([item, {"evaluation_id": "b", "params": None}], 2) == "prevention_index"
    assert _next_notebook([{"evaluation_id": "b", "params": None}], 1) == "evaluate_reform"
    monkeypatch.setenv(PRESTART_ENV, "0")
    assert _next_notebook([item, item], 2) is None


def _keeper_state() -> tuple[bool, int, int]:
    from evalkit.batch.kernels import process_keeper

    k = process_keeper()
    return (k is not None and k.kernel is not None and k.kernel.alive(), k.started, k.uses) if k else (False, 0, 0)


def test_an_early_pool_starts_each_workers_kernel_before_its_first_evaluation(monkeypatch):
    from evalkit.batch.local import start_pool

    for var in ("EVALKIT_KERNEL_REUSE", "EVALKIT_BATCH_KERNEL_REUSE"):
        monkeypatch.delenv(var, raising=False)
    with start_pool(1, 5, warm="evaluate_reform", pdf=False) as pool:
        # the warm-up was submitted first: the probe after it sees the kernel started, not yet used
        assert pool.submit(_keeper_state).result(timeout=120) == (True, 1, 0)
    with start_pool(2, 5, warm="evaluate_reform", pdf=False, warm_workers=0) as pool:
        assert pool.submit(_keeper_state).result(timeout=120) == (False, 0, 0)  # no worker surely needed


class _InstantPool:
    """A stand-in for the batch's process pool: each evaluation finishes at once (a finished future) and the
    hint it was given is recorded; submitting more than ``interrupt_after`` evaluations raises Ctrl-C."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.hints: list = []
        self.interrupt_after = interrupt_after

    def submit(self, fn, item, batch_dir, pdf, hint):
        from concurrent.futures import Future

        if self.interrupt_after is not None and len(self.hints) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.hints.append(hint)
        fut = Future()
        fut.set_result({"evaluation_id": item["evaluation_id"], "status": "ok"})
        return fut

    def shutdown(self, **kw):
        pass


def test_a_free_worker_gets_its_next_evaluation_before_the_finished_one_is_recorded(monkeypatch):
    """run_local refills a worker's slot first; on_done (manifest, portfolio rows) runs after, not in between.
    The next-notebook hint is not computed while workers keep their kernel."""
    from evalkit.batch import local

    pool = _InstantPool()
    events: list[str] = []
    items = [{"evaluation_id": e, "params": {"notebook": "evaluate_reform"}} for e in "abc"]
    monkeypatch.setenv(local.PRESTART_ENV, "1")
    monkeypatch.setenv("EVALKIT_KERNEL_REUSE", "1")
    monkeypatch.delenv("EVALKIT_BATCH_KERNEL_REUSE", raising=False)
    local.run_local(items, "unused", pdf=False, workers=1, pool=pool,
                    on_start=lambda it: events.append("start " + it["evaluation_id"]),
                    on_done=lambda rec: events.append("done " + rec["evaluation_id"]))
    assert events == ["start a", "start b", "done a", "start c", "done b", "done c"]
    assert pool.hints == [None, None, None]


def test_an_interrupt_while_refilling_still_records_what_finished(monkeypatch):
    """Refill first, record after: a Ctrl-C (or crash) while the next evaluation is submitted must not lose
    the record of the one that finished (the manifest lets a resume skip it)."""
    from evalkit.batch import local

    done: list[str] = []
    items = [{"evaluation_id": e, "params": {"notebook": "evaluate_reform"}} for e in "ab"]
    with pytest.raises(KeyboardInterrupt):
        local.run_local(items, "unused", pdf=False, workers=1, pool=_InstantPool(interrupt_after=1), on_start=lambda it: None,
                        on_done=lambda rec: done.append(rec["evaluation_id"]))
    assert done == ["a"]


def test_the_tail_hook_runs_once_when_a_worker_is_idle_with_nothing_left_and_the_pool_closes_in_a_thread():
    """on_tail is called once, after the last evaluation was handed out and a worker is free (not before); with
    ``closing`` the pool is shut down in a thread the caller joins (the portfolio is written meanwhile)."""
    from evalkit.batch import local

    class _Pool(_InstantPool):
        def __init__(self) -> None:
            super().__init__()
            self.closed: list[dict] = []

        def shutdown(self, **kw):
            self.closed.append(kw)

    pool = _Pool()
    events: list[str] = []
    closing: list = []
    items = [{"evaluation_id": e, "params": {"notebook": "evaluate_reform"}} for e in "abc"]
    local.run_local(items, "unused", pdf=False, workers=1, pool=pool,
                    on_start=lambda it: events.append("start " + it["evaluation_id"]),
                    on_done=lambda rec: events.append("done " + rec["evaluation_id"]),
                    closing=closing, on_tail=lambda: events.append("tail"))
    assert events.count("tail") == 1
    assert events.index("tail") > events.index("start c")
    assert len(closing) == 1
    closing[0].join()
    assert pool.closed == [{"wait": True, "cancel_futures": True}]
