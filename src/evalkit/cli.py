"""The ``evalkit`` command line (typer)."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path

from evalkit.kernel_start import start_for_command_line

start_for_command_line(sys.argv)  # `evalkit run FILE`: its notebook kernel starts now, before the heavy imports
# (typer and rich included: ~0.07 s sooner)
import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evalkit: evaluate police-station reforms with modern difference-in-differences.")
console = Console(stderr=True)
out = Console()


def _error(message: str) -> None:
    """An error message on stderr in red, never re-wrapped (one line stays one line) nor read as markup."""
    console.print(message, style="red", soft_wrap=True, highlight=False, markup=False)


def _warehouse_errors(cmd):
    """A warehouse that cannot be opened (in use, corrupt, not DuckDB) ends the command with one line
    saying what to do, exit code 2 — never a traceback."""

    @functools.wraps(cmd)
    def wrapper(*args, **kwargs):
        from evalkit.warehouse import WarehouseError

        try:
            return cmd(*args, **kwargs)
        except WarehouseError as exc:
            raise _fail_line(str(exc), 2) from None

    return wrapper


@app.command("demo-data")
@_warehouse_errors
def demo_data(
    size: str = typer.Option("small", help="small (~100 stations) | medium (~1,500) | national (40,000)"),
    seed: int = typer.Option(42, help="random seed (same seed, same files)"),
    out_dir: Path = typer.Option(Path("data/demo"), "--out", help="folder for the raw exports and truth"),
    warehouse: Path = typer.Option(Path("data/demo/warehouse.duckdb"),
                                   help="DuckDB file to load the world into (the demo's own file)"),
    load: bool = typer.Option(True, help="ingest the generated exports into the warehouse"),
    fresh: bool = typer.Option(True, help="start from an empty warehouse (removes the existing file)"),
    overwrite_real: bool = typer.Option(False, "--overwrite-real-warehouse",
                                        help="allow replacing a warehouse that holds ingested (non-demo) data"),
) -> None:
    """Generate the synthetic demo world (raw exports + truth) and load it into its own warehouse."""
    from evalkit.demo import generate_world
    from evalkit.warehouse import holds_real_data

    # a warehouse with ingested data is never replaced (or mixed with the demo) by accident
    if load and size != "national" and holds_real_data(warehouse) and not overwrite_real:
        console.print(f"[red]{warehouse} holds ingested (non-demo) data; demo-data will not touch it. Use another "
                      f"--warehouse (default data/demo/warehouse.duckdb) or pass --overwrite-real-warehouse.[/]")
        raise typer.Exit(1)
    t0 = time.perf_counter()
    files = generate_world(size=size, seed=seed, out_dir=out_dir, progress=True)
    console.print(f"[green]demo world[/] {size} (seed {seed}) written to {files.root} in {time.perf_counter() - t0:.1f}s")
    if load and size != "national":
        from evalkit.ingest import ingest_world

        if fresh:
            for p in (warehouse, Path(str(warehouse) + ".wal")):
                p.unlink(missing_ok=True)
        t1 = time.perf_counter()
        reports = ingest_world(files.root, warehouse=warehouse)
        tab = Table(title=f"ingest into {warehouse}")
        for col in ("table", "rows in", "accepted", "quarantined"):
            tab.add_column(col, justify="right" if col != "table" else "left")
        for r in reports:
            tab.add_row(r.table, f"{r.rows_in:,}", f"{r.rows_accepted:,}", f"{r.rows_quarantined:,}")
        console.print(tab)
        console.print(f"[green]warehouse ready[/] in {time.perf_counter() - t1:.1f}s")


@app.command("ingest")
@_warehouse_errors
def ingest_cmd(
    table: str = typer.Argument(..., help="stations | reforms | incidents | disputes | cases | visits | hazards | "
                                          "patrols | surveys | complaints"),
    files: list[str] = typer.Argument(..., help="files, folders or globs (CSV, XLSX, Parquet)"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
    mapping: str | None = typer.Option(None, help="YAML mapping file: headers, values, defaults"),
    sheet: str | None = typer.Option(None, help="XLSX sheet name or index (default: the visible sheet)"),
    set_values: list[str] = typer.Option([], "--set", help="COLUMN=VALUE for a column the files lack (repeatable)"),
    suggest_mapping: str | None = typer.Option(None, "--suggest-mapping",
                                               help="write a mapping YAML for the first file; load nothing"),
    replace: bool = typer.Option(False, "--replace",
                                 help="first remove the earlier load of each file (rows and quarantine)"),
    accept_unmatched: bool = typer.Option(False, "--accept-unmatched",
                                          help="quarantine rows of unknown stations even above 1 % of a file"),
) -> None:
    """Load raw exports into the warehouse: aliases, validation, quarantine, privacy."""
    from evalkit.ingest import ingest_cli

    raise typer.Exit(ingest_cli(table, files, warehouse, mapping, sheet, set_values, suggest_mapping,
                                replace=replace, accept_unmatched=accept_unmatched))


warehouse_app = typer.Typer(no_args_is_help=True, help="What the warehouse holds; remove a file's load.")
app.add_typer(warehouse_app, name="warehouse")

from evalkit.index.cli import index_app  # noqa: E402  (the prevention index: evalkit index compute|alerts)

app.add_typer(index_app, name="index")


@warehouse_app.command("status")
@_warehouse_errors
def warehouse_status_cmd(
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
    all_stations: bool = typer.Option(False, "--all-stations", help="list every station's coverage (default: "
                                      "all up to 200 stations, else only those with gaps)"),
) -> None:
    """Loaded files, quarantine by reason, shares mapped to `other`, each station's coverage months."""
    import numbers

    import pandas as pd

    from evalkit.warehouse import find_existing, is_demo, open_db, status

    path = find_existing(warehouse)
    if not path.is_file():
        console.print(f"[red]warehouse {path} not found; ingest data first (evalkit ingest …)[/]")
        raise typer.Exit(1)
    with open_db(path, read_only=True) as con:
        st = status(con)
        demo = is_demo(con)
    out.print(f"[bold]{path}[/bold]" + (" (demo world)" if demo else ""), highlight=False)
    cov = st["coverage"]
    if len(cov) > 200 and not all_stations:  # a national warehouse: only the stations that need a look
        full = cov.groupby("table_name")["months"].transform("max")
        keep = (cov["gap_months"] > 0) | (cov["months"] < full)
        out.print(f"coverage: {int((~keep).sum()):,} station-tables fully covered; the other {int(keep.sum()):,} "
                  f"below (all: --all-stations)", highlight=False)
        st["coverage"] = cov[keep]
    for title, key in (("files (live loads)", "files"), ("quarantine by reason", "quarantine"),
                       ("coverage per station (months with records or plausible zeros)", "coverage"),
                       ("replaced or forgotten loads", "removed")):
        df = st[key]
        if df.empty:
            continue
        if "file" in df.columns:  # the name is enough on screen; status() keeps the path
            df = df.assign(file=[Path(f).name for f in df["file"]])
        tab = Table(title=title, title_justify="left")
        for col in df.columns:
            tab.add_column(str(col), overflow="fold")
        for row in df.itertuples(index=False):
            tab.add_row(*("" if v is None or v is pd.NA or v != v else f"{v:,}" if isinstance(v, numbers.Integral)
                          else str(v) for v in row))
        out.print(tab)


@warehouse_app.command("forget")
@_warehouse_errors
def warehouse_forget_cmd(
    file: str = typer.Argument(..., help="the file as it was ingested (path or unique file name)"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
    table: str | None = typer.Option(None, help="only loads of this table"),
) -> None:
    """Remove a file's rows and its quarantine from the warehouse."""
    from evalkit.ingest import IngestError
    from evalkit.warehouse import forget

    try:
        removed = forget(file, warehouse=warehouse, table=table)
    except IngestError as e:
        console.print(f"[red]forget failed, nothing removed:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    for r in removed:
        out.print(f"forgot load {r['load_id']} of {r['file']} ({r['table']}): {r['rows']:,} rows and "
                  f"{r['quarantined']:,} quarantined removed", highlight=False)


@app.command("validate")
@_warehouse_errors
def validate_cmd(
    params: list[Path] = typer.Argument(..., help="params YAML files"),
    warehouse: str | None = typer.Option(None, help="check the window against this warehouse (default: the params')"),
) -> None:
    """Validate params files without running anything; the window is checked against the warehouse's data."""
    from evalkit.params import ParamsError, check_against_warehouse, load_params

    bad = 0
    for p in params:
        try:
            prm = load_params(p)
        except ParamsError as exc:
            bad += 1
            _error(str(exc))
            continue
        wh = Path(warehouse or prm.warehouse)
        problems = check_against_warehouse(prm, str(p), wh)
        for msg in problems:
            _error(msg)
        bad += bool(problems)
        if not problems:
            note = "" if wh.is_file() else f" (warehouse {wh} not found: window not checked against the data)"
            out.print(f"[green]ok[/] {p}{note}", highlight=False)
    raise typer.Exit(1 if bad else 0)


class _RunProgress:
    """The live line of ``evalkit run``: which evaluation (k/n) and step, with elapsed times (stderr).

    Rendered by rich at each refresh (``__rich__``), so the clocks tick while a step runs; steps arrive
    from :func:`evalkit.runner.run_params`'s ``on_step`` (the kernel's steps through a status file)."""

    def __init__(self, total: int) -> None:
        self.total, self.index, self.name = total, 0, ""
        self.step, self.t_eval, self.t_step = "", time.perf_counter(), time.perf_counter()

    def start(self, index: int, name: str) -> None:
        self.index, self.name, self.step = index, name, ""
        self.t_eval = self.t_step = time.perf_counter()

    def on_step(self, step: str) -> None:
        from evalkit.progress import label

        self.step, self.t_step = label(step), time.perf_counter()

    def __rich__(self) -> str:
        now = time.perf_counter()
        return (f"[bold]{self.index}/{self.total}[/] {self.name} · [cyan]{self.step or '…'}[/] "
                f"{now - self.t_step:.1f}s · [dim]{now - self.t_eval:.1f}s[/]")


class _ParallelProgress:
    """The live lines of ``evalkit run --jobs N``: one per running evaluation, steps read from the status
    files the workers write (:func:`evalkit.runner.run_file_job`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, tuple[float, Path]] = {}  # shown name → (start, status file)

    def __rich__(self) -> str:
        from evalkit.progress import label, read_status

        now = time.perf_counter()
        lines = []
        for name, (t0, status) in self.running.items():
            step = read_status(status)
            lines.append(f"{name} · [cyan]{label(step) if step else '…'}[/] · [dim]{now - t0:.1f}s[/]")
        return "\n".join(lines) or "…"


def _run_parallel(params: list[Path], outputs: Path, warehouse: str | None, lang: str | None, pdf: bool,
                  jobs: int, show: bool) -> int:
    """Run the files on ``jobs`` worker processes (each with its own Chromium and kept notebook kernel, dying
    with this process: :func:`evalkit.runner.job_pool`); print one line per finished file. Failures."""
    import tempfile
    from concurrent.futures import FIRST_COMPLETED, wait

    from evalkit.batch.core import _kill_descendants
    from evalkit.runner import job_pool, next_file_hint, run_file_job

    failed = 0
    with tempfile.TemporaryDirectory(prefix="evalkit-run-") as folder:
        live = _ParallelProgress(Path(folder))
        ex = job_pool(min(jobs, len(params)), jobs)
        pending, inflight = list(enumerate(params)), {}
        try:
            with console.status(live) if show else contextlib.nullcontext():
                while pending or inflight:
                    while pending and len(inflight) < jobs:
                        i, p = pending.pop(0)
                        name = f"{i + 1}/{len(params)} {p.stem}"
                        status = Path(folder) / f"{i}.json"
                        fut = ex.submit(run_file_job, str(p), str(outputs), warehouse, lang, pdf,
                                        str(status) if show else None, next_file_hint(pending, jobs))
                        inflight[fut] = (p, name, time.perf_counter())
                        live.running[name] = (time.perf_counter(), status)
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for fut in done:
                        p, name, t0 = inflight.pop(fut)
                        live.running.pop(name, None)
                        try:
                            ok, text = fut.result()
                        except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (out of memory)
                            ok, text = False, f"{type(exc).__name__}: {exc}"
                        if ok:
                            console.print(f"[green]done[/] {p} in {time.perf_counter() - t0:.1f}s → {text}")
                        else:
                            failed += 1
                            _error(f"failed {p}: {text}")
        except BaseException:
            _kill_descendants()  # workers, their kernels and browsers
            raise
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    return failed


@app.command("run")
@_warehouse_errors
def run_cmd(
    params: list[Path] = typer.Argument(..., help="params YAML files (one evaluation each)"),
    outputs: Path = typer.Option(Path("outputs"), help="root folder for outputs/<evaluation_id>/"),
    warehouse: str | None = typer.Option(None, help="override the params' warehouse path"),
    lang: str | None = typer.Option(None, help="override the brief language (zh | en)"),
    pdf: bool = typer.Option(True, help="also print the brief to PDF"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="evaluations run at the same time (worker "
                                                           "processes; 2 on 2 cores)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress (it is also off when stderr "
                                                              "is not a terminal)"),
) -> None:
    """Run evaluations: papermill notebook → results.json → brief.html / brief.pdf."""
    from evalkit.export import browser_session
    from evalkit.params import ParamsError, load_params
    from evalkit.runner import RunError, check_outputs_writable, run_file

    # validate everything first: a typo in the fifth file should not cost four notebook runs
    problems = []
    for p in params:
        try:
            load_params(p)
        except ParamsError as exc:
            problems.append(str(exc))
    if problems:
        for msg in problems:
            _error(msg)
        raise typer.Exit(2)
    try:
        check_outputs_writable(outputs)
    except RunError as exc:
        raise _fail_line(str(exc), 2) from None
    show = console.is_terminal and not quiet
    if jobs > 1 and len(params) > 1:
        if _run_parallel(params, outputs, warehouse, lang, pdf, jobs, show):
            raise typer.Exit(1)
        return
    failed = 0
    live = _RunProgress(len(params))
    with browser_session():  # one Chromium for every brief of this run
        for i, p in enumerate(params, 1):
            t0 = time.perf_counter()
            live.start(i, p.stem)
            with console.status(live) if show else contextlib.nullcontext():
                try:  # the next file's kernel starts while this brief exports
                    res = run_file(p, outputs, warehouse=warehouse, lang=lang, pdf=pdf, on_step=live.on_step
                                   if show else None, next_file=params[i] if i < len(params) else None)
                except RunError as exc:
                    failed += 1
                    _error(f"failed {p}: {exc}")
                    continue
            brief = res.brief.pdf or res.brief.html if res.brief else res.executed
            console.print(f"[green]done[/] {p} in {time.perf_counter() - t0:.1f}s → {brief}")
    if failed:
        raise typer.Exit(1)


@app.command("batch")
@_warehouse_errors
def batch_cmd(
    paths: list[str] = typer.Argument(..., help="params folders, globs, YAML files or matrix files"),
    workers: int = typer.Option(1, help="parallel evaluations (processes)"),
    outputs: str = typer.Option("outputs", help="root folder; the batch writes outputs/<name>/"),
    dask: bool = typer.Option(False, "--dask", help="run on a Dask cluster (local cluster unless --scheduler)"),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (implies --dask)"),
    warehouse: str | None = typer.Option(None, help="override every evaluation's warehouse path"),
    pdf: bool = typer.Option(True, help="print briefs and the portfolio brief to PDF"),
    name: str | None = typer.Option(None, help="batch name (default: folder or file stem)"),
) -> None:
    """Run many evaluations: parallel, resumable, with a portfolio summary and brief."""
    from evalkit.batch import batch_cli

    raise typer.Exit(batch_cli(paths, workers, outputs, dask, scheduler, warehouse, pdf, name))


@app.command("brief")
def brief_cmd(
    executed: Path = typer.Argument(..., help="an executed notebook, e.g. outputs/X/executed.ipynb"),
    out_dir: Path | None = typer.Option(None, help="where to write brief.html / brief.pdf"),
    pdf: bool = typer.Option(True, help="also print to PDF"),
) -> None:
    """Re-export a brief from an executed notebook without re-running it."""
    from evalkit.export import BriefError, export_brief

    try:
        files = export_brief(executed, out_dir, pdf=pdf)
    except BriefError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    out.print(f"{files.html}" + (f"\n{files.pdf}" if files.pdf else ""))


@app.command("panel")
@_warehouse_errors
def panel_cmd(
    reform: str = typer.Option(..., help="reform id or Chinese name, e.g. 两队一室"),
    out_file: Path = typer.Option(..., "--out", help="CSV or Parquet file to write"),
    warehouse: Path = typer.Option(Path("data/warehouse.duckdb"), help="DuckDB file"),
    start: str = typer.Option("2019-01", help="first month YYYY-MM"),
    end: str = typer.Option("2025-12", help="last month YYYY-MM"),
) -> None:
    """Export the station × month panel for a reform (for `evalkit estimate` or other tools)."""
    from evalkit.panel import build_panel
    from evalkit.warehouse import open_db

    if not warehouse.is_file():
        raise _fail_line(f"warehouse {warehouse} not found: pass --warehouse, or create it with `evalkit ingest`", 2)
    with open_db(warehouse, read_only=True) as con:
        df = build_panel(con, reform, start=start, end=end)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if out_file.suffix == ".parquet":
        df.to_parquet(out_file, index=False)
    else:
        df.to_csv(out_file, index=False)
    console.print(f"{len(df):,} station-months, {df['station_id'].nunique():,} stations → {out_file}")


def read_panel_file(path: Path):
    """Read a panel from CSV or Parquet (clear error otherwise)."""
    import pandas as pd

    if not path.is_file():
        raise typer.BadParameter(f"panel file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise typer.BadParameter(f"{path}: expected a .csv or .parquet panel file")


def _applies(option: str) -> str:
    """'cs, sa' — the methods whose spec accepts ``option`` (help texts iterate the specs)."""
    from evalkit.estimators.specs import SPECS

    return "methods: " + (", ".join(n for n, s in SPECS.items() if option in s.options) or "none")


def _method_help() -> str:
    from evalkit.estimators.specs import SPECS

    return "estimator: " + " | ".join(SPECS)


def _fail_line(message: str, code: int) -> typer.Exit:
    """Print one plain line to stderr (no rich wrapping or markup) and exit with ``code``."""
    sys.stderr.write("error: " + " ".join(str(message).split()) + "\n")
    return typer.Exit(code)


@app.command("estimate")
def estimate_cmd(
    panel_file: Path = typer.Argument(..., help="station × period panel (CSV or Parquet)"),
    outcome: str = typer.Option(..., help="outcome column"),
    method: str = typer.Option("cs", help=_method_help()),
    unit: str = typer.Option("station_id", help="unit column"),
    time_col: str = typer.Option("period", "--time", help="time column (integer periods)"),
    cohort: str | None = typer.Option(None, help="first treated period column (0 or empty = never; default "
                                      "first_treat); every method but switching"),
    treatment: str | None = typer.Option(None, help="station-period column: the dose (method dose) or the "
                                         "treatment that switches on and off (method switching)"),
    cluster: str | None = typer.Option(None, help=f"cluster column (default: unit); {_applies('cluster')}"),
    weights: str | None = typer.Option(None, help=f"observation-weight column, e.g. population; {_applies('weights')}"),
    control: str | None = typer.Option(None, help=f"never | notyet; {_applies('control')}"),
    covariates: str | None = typer.Option(None, help=f"comma-separated covariate columns; {_applies('covariates')}"),
    est_method: str | None = typer.Option(None, help=f"dr | ipw | reg (with covariates); {_applies('est_method')}"),
    bootstrap: int | None = typer.Option(None, help=f"multiplier-bootstrap draws (0 = analytic); {_applies('bootstrap')}"),
    seed: int | None = typer.Option(None, help=f"random seed of bootstrap / placebo draws; {_applies('seed')}"),
    allow_unbalanced: bool | None = typer.Option(None, "--allow-unbalanced", help=f"keep units missing some periods; {_applies('allow_unbalanced')}"),
    anticipation: int | None = typer.Option(None, help=f"periods of anticipation; {_applies('anticipation')}"),
    trim_e: str | None = typer.Option(None, "--trim-e", help=f"LO,HI: drop event times outside from aggregation; {_applies('trim_e')}"),
    bin_e: str | None = typer.Option(None, "--bin-e", help=f"LO,HI: pool event times beyond the ends into end bins; {_applies('bin_e')}"),
    leads: int | None = typer.Option(None, help=f"pre-period event dummies; {_applies('leads')}"),
    lags: int | None = typer.Option(None, help=f"post-period event dummies; {_applies('lags')}"),
    window: int | None = typer.Option(None, help=f"periods before/after adoption; {_applies('window')}"),
    se: str | None = typer.Option(None, help=f"placebo | jackknife | bootstrap | none; {_applies('se')}"),
    reps: int | None = typer.Option(None, help=f"placebo / bootstrap replications; {_applies('reps')}"),
    degree: int | None = typer.Option(None, help=f"B-spline degree of the dose-response curve; {_applies('degree')}"),
    knots: str | None = typer.Option(None, help=f"interior knots: a count (2) or doses (0.3,0.6); {_applies('knots')}"),
    effects: int | None = typer.Option(None, help=f"effects after the first switch; {_applies('effects')}"),
    placebo: int | None = typer.Option(None, help=f"placebos before the first switch; {_applies('placebo')}"),
    switchers: str | None = typer.Option(None, help=f"in | out | both; {_applies('switchers')}"),
    adjacency: Path | None = typer.Option(None, help="station pairs file (CSV or Parquet; columns station_id, "
                                          f"neighbor_id); {_applies('adjacency')}"),
    alpha: float = typer.Option(0.05, help="1 - confidence level"),
    json_out: Path | None = typer.Option(None, "--json", help="write the full result as JSON here"),
    by: str | None = typer.Option(None, "--by", help="also print the effect by subgroup: a station column "
                                  "(area_type, county, ...), size_class or cohort; methods imputation, cs"),
) -> None:
    """Run any estimator on any panel file; print a table and write the full result as JSON.

    Options a method does not take are refused (exit 2), as are panel problems (one line naming
    the column and the first offending rows).
    """
    from evalkit.estimate_options import SUMMARY_KINDS, event_window, knots_option, treatment_option
    from evalkit.estimators._sample import PanelInputError, build_sample
    from evalkit.estimators.specs import SPECS, get_estimator

    if method not in SPECS:
        raise _fail_line(f"unknown method {method!r}; choose from {', '.join(SPECS)}", 2)
    if by is not None and method not in ("imputation", "cs"):
        raise _fail_line(f"--by needs method imputation or cs (subgroups of one fit), not {method}", 2)
    spec = SPECS[method]
    try:
        given = {
            "cluster": cluster, "weights": weights, "control": control, "est_method": est_method,
            "covariates": [c.strip() for c in covariates.split(",")] if covariates else None,
            "bootstrap": bootstrap, "seed": seed, "allow_unbalanced": allow_unbalanced,
            "anticipation": anticipation, "trim_e": event_window(trim_e, "trim-e"),
            "bin_e": event_window(bin_e, "bin-e"), "leads": leads, "lags": lags, "window": window,
            "se": se, "reps": reps, "degree": degree, "knots": knots_option(knots), "effects": effects,
            "placebo": placebo, "switchers": switchers, "cohort": cohort, "adjacency": adjacency,
        }
        given.update(treatment_option(method, treatment))
    except ValueError as exc:
        raise _fail_line(str(exc), 2) from None
    given = {k: v for k, v in given.items() if v is not None}
    if switchers is not None and switchers not in ("in", "out", "both"):
        raise _fail_line(f"--switchers must be in, out or both, got {switchers!r}", 2)
    if "weights" in given and not spec.weights:
        raise _fail_line(f"method {method} does not take observation weights (--weights); "
                         f"{_applies('weights')}", 2)
    refused = [k for k in given if k not in spec.options]
    if refused:
        flags = ", ".join("--" + k.replace("_", "-") for k in refused)
        raise _fail_line(f"{flags} does not apply to method {method}; see `evalkit estimate --help`", 2)
    if method == "spillover" and adjacency is None:
        raise _fail_line("method spillover needs --adjacency FILE (station pairs: station_id, neighbor_id)", 2)
    try:
        panel = read_panel_file(panel_file)
        if adjacency is not None:
            if not adjacency.is_file():
                raise typer.BadParameter(f"adjacency file not found: {adjacency}")
            given["adjacency"] = read_panel_file(adjacency)
    except typer.BadParameter as exc:
        raise _fail_line(str(exc), 2) from None
    column = given.get("dose") or given.get("treatment")
    if column is not None and column not in panel.columns:
        raise _fail_line(f"{panel_file}: --treatment column {column!r} not in the panel; columns are "
                         f"[{', '.join(map(str, panel.columns[:12]))}]", 2)
    kwargs = {"unit": unit, "time": time_col, "alpha": alpha, **given}
    if "cohort" in spec.options:
        cohort = kwargs["cohort"] = cohort or "first_treat"
        if cohort in panel.columns:
            panel[cohort] = panel[cohort].fillna(0)  # documented: an empty cohort cell = never treated
    t0 = time.perf_counter()
    try:
        if "cohort" in spec.options:  # validate once up front (switching checks its own panel: no cohort)
            build_sample(panel, outcome, unit=unit, time=time_col, cohort=cohort, cluster=cluster, weights=weights,
                         covariates=given.get("covariates") or ())
        result = get_estimator(method)(panel, outcome, **kwargs)
    except (PanelInputError, TypeError) as exc:
        raise _fail_line(f"{panel_file}: {exc}", 2) from None
    except ValueError as exc:  # the estimator cannot run on this sample (e.g. no pre-period)
        raise _fail_line(f"{method} on {panel_file}: {exc}", 1) from None
    result.meta["seconds"] = round(time.perf_counter() - t0, 4)
    result.meta["panel_file"] = str(panel_file)
    out.print(result.summary(SUMMARY_KINDS.get(method, SUMMARY_KINDS["default"])))
    if by is not None:
        _print_subgroups(result, by, panel, alpha, unit, panel_file)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        result.to_json(json_out)
        console.print(f"full result → {json_out}")


def _print_subgroups(result, by: str, panel, alpha: float, unit: str, panel_file: Path) -> None:
    """The subgroup table of ``evalkit estimate --by`` (:func:`evalkit.heterogeneity.subgroup_effects`)."""
    from evalkit.heterogeneity import subgroup_effects

    try:
        sg = subgroup_effects(result, by, panel, alpha=alpha, unit=unit)
    except ValueError as exc:
        raise _fail_line(f"{panel_file}: {exc}", 2) from None
    cols = [c for c in ("group", "estimate", "std_error", "ci_low", "ci_high", "pct", "p_value", "n_adopters",
                        "n_comparison", "verdict") if c in sg.table.columns]
    out.print(f"\nEffect by {by} (one {result.estimator} fit; verdict floors per subgroup):")
    out.print(sg.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"), soft_wrap=True)
    eq = sg.equality
    if eq["status"] == "ok":
        out.print(f"Equal effects across {by}: Wald chi2({eq['df']}) = {eq['stat']:.3f}, p = {eq['p_value']:.4g}")
    else:
        out.print(f"Equal effects across {by}: not available, because {eq['reason']}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
