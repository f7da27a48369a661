"""Orchestrate a batch: plan → skip complete evaluations → run the rest → portfolio.

``outputs/<batch>/`` holds one folder per evaluation, ``logs/<id>.log``, ``batch.json``
(every evaluation's status, error and timings; rewritten atomically after each one),
``summary.parquet`` and ``portfolio.html`` / ``portfolio.pdf``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from evalkit.batch.execute import DONE, atomic_write_text, is_complete, now, run_item
from evalkit.batch.plan import BatchItem, PlanError, fingerprint_items, plan
from evalkit.runner import RunError, check_outputs_writable


class BatchInterrupted(BaseException):
    """SIGTERM / SIGINT received: workers are stopped, completed evaluations are kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@dataclass
class BatchReport:
    name: str
    directory: Path
    records: dict[str, dict[str, Any]]
    seconds: float
    summary: Path | None = None
    portfolio_html: Path | None = None
    portfolio_pdf: Path | None = None
    interrupted: int | None = None
    mode: str = "local"
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.records.items() if r.get("status") == "failed"]

    @property
    def skipped(self) -> list[str]:
        return [k for k, r in self.records.items() if r.get("skipped")]

    @property
    def ok(self) -> list[str]:
        return [k for k, r in self.records.items() if r.get("status") == "ok"]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + self.interrupted
        return 1 if self.failed else 0


def default_name(paths: list[str]) -> str:
    if len(paths) == 1:
        p = Path(paths[0].rstrip("/"))
        if any(ch in paths[0] for ch in "*?["):
            p = Path(paths[0]).parent
        return (p.stem if p.suffix else p.name) or "batch"
    return "batch"


def _kill_descendants(grace: float = 3.0) -> None:
    """Terminate every process this batch started (workers, kernels, Chromium), then kill leftovers."""
    import psutil

    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for p in kids:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(kids, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


class _Display:
    """Rich progress: done / running / failed / skipped, elapsed and ETA; one line per finished evaluation."""

    def __init__(self, total: int, skipped: int, console: Console | None, enabled: bool, name: str) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.ok = self.failed = self.running = 0
        self.skipped = skipped
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
            disable=not enabled,
        )
        self.batch_dir: Path | None = None
        self.inflight: dict[str, float] = {}  # evaluation id → start (perf_counter)
        self.task = self.progress.add_task(name, total=total, status=self._status())

    def _status(self) -> str:
        text = (f"[green]✓ {self.ok} done[/]  [cyan]▶ {self.running} running[/]  "
                f"[red]✗ {self.failed} failed[/]  [dim]↷ {self.skipped} skipped[/]")
        if self.batch_dir is not None and self.inflight:
            from evalkit.batch.execute import step_file
            from evalkit.progress import label, read_status

            now = time.perf_counter()
            running = []
            for eid, t in self.inflight.items():
                step = read_status(step_file(self.batch_dir, eid))
                running.append(f"{eid} · {label(step) if step else '…'} {now - t:.0f}s")
            text += "\n  [cyan]" + "\n  ".join(running) + "[/]"
        return text

    def tick(self) -> None:
        """Refresh the running evaluations' steps (the workers write them to ``logs/<id>.step``)."""
        if self.enabled:
            self.progress.update(self.task, status=self._status())

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def start(self, item: dict[str, Any]) -> None:
        self.running += 1
        self.inflight[item["evaluation_id"]] = time.perf_counter()
        self.progress.update(self.task, status=self._status())

    def done(self, rec: dict[str, Any]) -> None:
        self.running = max(0, self.running - 1)
        self.inflight.pop(rec.get("evaluation_id"), None)
        if rec.get("status") == "ok":
            self.ok += 1
            if self.enabled:
                self.progress.console.print(f"[green]✓[/] {rec['evaluation_id']} "
                                            f"[dim]{rec.get('seconds_total', 0):.1f}s[/]")
        else:
            self.failed += 1
            if self.enabled:
                err = " ".join(x.strip() for x in (rec.get("error") or "").strip().splitlines()[:2])
                self.progress.console.print(f"[red]✗ {rec['evaluation_id']}[/]: {err[:300]} "
                                            f"[dim](log: {rec.get('log', '-')})[/]")
        self.progress.update(self.task, advance=1, status=self._status())


def run_batch(paths: list[str], outputs: str | Path = "outputs", *, name: str | None = None, workers: int = 2,
              dask: bool = False, scheduler: str | None = None, warehouse: str | None = None, pdf: bool = True,
              force: bool = False, progress: bool = True, portfolio: bool = True,
              portfolio_pdf: bool | None = None, console: Console | None = None) -> BatchReport:
    """Run every evaluation of ``paths`` into ``outputs/<name>/``; see the module docstring.

    Raises :class:`evalkit.batch.plan.PlanError` for unreadable sources (nothing runs then).
    ``portfolio_pdf`` defaults to ``pdf``.
    """
    t0 = time.perf_counter()
    name = name or default_name(paths)
    batch_dir = Path(outputs) / name
    try:
        check_outputs_writable(batch_dir)
    except RunError as exc:
        raise PlanError(str(exc)) from None
    (batch_dir / "logs").mkdir(exist_ok=True)
    items = plan(paths, warehouse=warehouse)
    mode = "dask" if (dask or scheduler) else "local"
    # local workers start (and start their kernels) while the warehouses are fingerprinted (1-4 s on the
    # medium world) when some evaluation will surely run: one without done.json
    pool = _early_pool(batch_dir, items, workers, pdf, force) if mode == "local" else None
    report = BatchReport(name, batch_dir, {}, 0.0, mode=mode)
    order = [it.evaluation_id for it in items]
    to_run: list[BatchItem] = []
    try:
        fingerprint_items(items)
        for it in items:
            if not it.ok:  # invalid params: recorded here, no worker needed
                report.records[it.evaluation_id] = {**run_item(it.to_dict(), str(batch_dir), pdf), "skipped": False}
                continue
            done = None if force else is_complete(batch_dir / it.evaluation_id, it.fingerprint, pdf=pdf)
            if done is not None:
                report.records[it.evaluation_id] = {**done, "skipped": True}
            else:
                to_run.append(it)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            shutil.rmtree(batch_dir / CELLS_DIR, ignore_errors=True)  # the early pool's empty cells folder
        raise

    def save_manifest() -> None:
        data = {"batch": name, "mode": mode, "workers": workers, "scheduler": scheduler, "pdf": pdf,
                "sources": list(map(str, paths)), "updated_at": now(),
                "evaluations": [report.records.get(k, {"evaluation_id": k, "status": "pending"}) for k in order]}
        atomic_write_text(batch_dir / "batch.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))

    by_id = {it.evaluation_id: it for it in items}
    ready: dict[str, list[dict[str, Any]]] = {}  # the portfolio's rows of finished evaluations
    # read in a thread as each evaluation finishes (0.1-0.5 s each), while the others run: the batch's loop
    # goes back to its workers at once
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-portfolio-rows") if portfolio else None

    def read_rows(eid: str, rec: dict[str, Any]) -> None:
        from evalkit.batch.portfolio import summary_rows

        with contextlib.suppress(Exception):  # read again (and any error raised) by write_portfolio
            ready[eid] = summary_rows(name, by_id[eid], rec, batch_dir / eid)

    def on_done(rec: dict[str, Any]) -> None:
        eid = rec["evaluation_id"]
        report.records[eid] = {**rec, "skipped": False}
        display.done(rec)
        save_manifest()
        if reader is not None and eid in by_id:
            reader.submit(read_rows, eid, report.records[eid])

    interrupted: list[int] = []
    closing: list[threading.Thread] = []  # the local pool's shutdown, joined after the portfolio (run_local)
    # the portfolio's Chromium: started (in a browser session of this thread) once a worker is idle at the end
    session = contextlib.ExitStack()
    tail: list[threading.Thread] = []

    def on_tail() -> None:
        from evalkit.export import browser_session, prestart_browser

        session.enter_context(browser_session())
        t = threading.Thread(target=contextvars.copy_context().run, args=(prestart_browser,),
                             name="evalkit-portfolio-browser", daemon=True)
        t.start()
        tail.append(t)

    portfolio_browser = portfolio and (pdf if portfolio_pdf is None else portfolio_pdf)

    def handler(signum, frame):  # noqa: ARG001
        if not interrupted:
            interrupted.append(signum)
            raise BatchInterrupted(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    in_main = _in_main_thread()
    if in_main:
        for s in old:
            signal.signal(s, handler)
    n_invalid = sum(not it.ok for it in items)
    display = _Display(len(to_run), len(items) - len(to_run) - n_invalid, console, progress, f"batch {name}")
    display.failed = n_invalid
    display.batch_dir = batch_dir
    try:
        save_manifest()
        with display:
            payload = [it.to_dict() for it in to_run]
            if not payload:
                pass
            elif mode == "dask":
                from evalkit.batch.distributed import run_dask

                run_dask(payload, str(batch_dir), pdf=pdf, workers=workers, scheduler=scheduler,
                         on_start=display.start, on_done=on_done,
                         on_cluster=lambda s: report.notes.append(f"dask cluster {s}"))
            else:
                from evalkit.batch.local import run_local

                if portfolio:  # the forest plot's matplotlib and fonts load while the workers run, not after
                    threading.Thread(target=_load_plotting, name="evalkit-portfolio-imports", daemon=True).start()
                run_local(payload, str(batch_dir), pdf=pdf, workers=workers, on_start=display.start,
                          on_done=on_done, tick=display.tick, cells=str(_cells_folder(batch_dir, to_run, pool)),
                          pool=pool, closing=closing, on_tail=on_tail if portfolio_browser else None)
            if pool is not None and not payload:  # every evaluation was complete after all
                pool.shutdown(wait=False, cancel_futures=True)
    except BatchInterrupted as exc:
        report.interrupted = exc.signum
        _kill_descendants()
    finally:
        shutil.rmtree(batch_dir / CELLS_DIR, ignore_errors=True)
        if reader is not None:  # its rows complete (an interrupted batch writes no portfolio: dropped)
            reader.shutdown(wait=not report.interrupted, cancel_futures=bool(report.interrupted))
        if in_main:
            for s, h in old.items():
                signal.signal(s, h)
    try:
        for t in tail:  # the browser is in place (the portfolio's own start would race it)
            t.join()
        if report.interrupted:
            save_manifest()
            report.seconds = time.perf_counter() - t0
            return report
        if portfolio:
            from evalkit.batch.portfolio import write_portfolio

            report.summary, report.portfolio_html, report.portfolio_pdf = write_portfolio(
                batch_dir, name, items, report.records, pdf=pdf if portfolio_pdf is None else portfolio_pdf,
                ready=ready)
    finally:  # the workers exited meanwhile (each closing its Chromium and kernel): none outlives the batch
        session.close()
        for t in closing:
            t.join()
    report.seconds = time.perf_counter() - t0
    save_manifest()
    return report


#: the batch's shared station-month cells (evalkit.cells_cache), inside the batch folder while it runs
CELLS_DIR = ".cells"


def _early_pool(batch_dir: Path, items: list[BatchItem], workers: int, pdf: bool, force: bool):
    """:func:`evalkit.batch.local.start_pool` before the fingerprints, its workers warming up, or ``None`` when
    every valid evaluation has a ``done.json`` (a resume: maybe nothing to run)."""
    valid = [it for it in items if it.ok]
    sure = [it for it in valid if force or not (batch_dir / it.evaluation_id / DONE).is_file()]
    if not sure:
        return None
    from evalkit.batch.local import start_pool

    return start_pool(workers, len(valid), cells=str(_empty(batch_dir / CELLS_DIR)),
                      warm=str(sure[0].params.get("notebook") or "evaluate_reform"), pdf=pdf, warm_workers=len(sure))


def _empty(folder: Path) -> Path:
    """``folder``, empty (a killed run's files removed), readable by this user only."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    return folder


def _cells_folder(batch_dir: Path, to_run: list[BatchItem], pool: Any) -> Path:
    """The batch's cells folder with :func:`evalkit.cells_cache.plan_whole`'s decisions for the evaluations
    about to run: emptied now, or (``pool`` started early) when the pool started, before any evaluation."""
    from evalkit.cells_cache import plan_whole
    from evalkit.panel import PanelSpec

    folder = batch_dir / CELLS_DIR
    if pool is None:
        _empty(folder)
    needs = []
    for it in to_run:
        p = it.evaluation_params()
        if not p.panel_file:  # a ready Parquet panel reads no records
            spec = PanelSpec("", p.window.start, p.window.end)
            needs.append((p.warehouse, p.region.as_filter(), spec.first_period, spec.last_period))
    plan_whole(folder, needs)
    return folder


def _load_plotting() -> None:
    """Import matplotlib (Agg) and find the CJK font, as :func:`evalkit.batch.portfolio.forest_plot_png` does
    first (0.5-1.3 s), and pyarrow's Parquet writer (``summary.parquet``); errors are left to the portfolio,
    which reports them."""
    with contextlib.suppress(Exception):
        import matplotlib
        import pyarrow.parquet  # noqa: F401  (summary.parquet: 0.17 s of imports at the end otherwise)

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

        from evalkit.viz.style import use_cjk_font

        use_cjk_font()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread() and os.getpid() > 0
