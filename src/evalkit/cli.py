"""The ``evalkit`` command line (typer)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evalkit: evaluate police-station reforms with modern difference-in-differences.")
console = Console(stderr=True)
out = Console()


@app.command("demo-data")
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
def ingest_cmd(
    table: str = typer.Argument(..., help="stations | reforms | incidents | disputes"),
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


@warehouse_app.command("status")
def warehouse_status_cmd(
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
    all_stations: bool = typer.Option(False, "--all-stations", help="list every station's coverage (default: "
                                      "all up to 200 stations, else only those with gaps)"),
) -> None:
    """Loaded files, quarantine by reason, shares mapped to `other`, each station's coverage months."""
    import numbers

    import duckdb
    import pandas as pd

    from evalkit.warehouse import find_existing, is_demo, status

    path = find_existing(warehouse)
    if not path.is_file():
        console.print(f"[red]warehouse {path} not found; ingest data first (evalkit ingest …)[/]")
        raise typer.Exit(1)
    with duckdb.connect(str(path), read_only=True) as con:
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
            console.print(f"[red]{exc}[/]")
            continue
        wh = Path(warehouse or prm.warehouse)
        problems = check_against_warehouse(prm, str(p), wh)
        for msg in problems:
            console.print(f"[red]{msg}[/]", highlight=False)
        bad += bool(problems)
        if not problems:
            note = "" if wh.is_file() else f" (warehouse {wh} not found: window not checked against the data)"
            out.print(f"[green]ok[/] {p}{note}", highlight=False)
    raise typer.Exit(1 if bad else 0)


@app.command("run")
def run_cmd(
    params: list[Path] = typer.Argument(..., help="params YAML files (one evaluation each)"),
    outputs: Path = typer.Option(Path("outputs"), help="root folder for outputs/<evaluation_id>/"),
    warehouse: str | None = typer.Option(None, help="override the params' warehouse path"),
    lang: str | None = typer.Option(None, help="override the brief language (zh | en)"),
    pdf: bool = typer.Option(True, help="also print the brief to PDF"),
) -> None:
    """Run evaluations: papermill notebook → results.json → brief.html / brief.pdf."""
    from evalkit.params import ParamsError, load_params
    from evalkit.runner import RunError, run_file

    # validate everything first: a typo in the fifth file should not cost four notebook runs
    problems = []
    for p in params:
        try:
            load_params(p)
        except ParamsError as exc:
            problems.append(str(exc))
    if problems:
        for msg in problems:
            console.print(f"[red]{msg}[/]")
        raise typer.Exit(2)
    failed = 0
    for p in params:
        t0 = time.perf_counter()
        with console.status(f"running {p} …"):
            try:
                res = run_file(p, outputs, warehouse=warehouse, lang=lang, pdf=pdf)
            except RunError as exc:
                failed += 1
                console.print(f"[red]failed[/] {p}: {exc}")
                continue
        brief = res.brief.pdf or res.brief.html if res.brief else res.executed
        console.print(f"[green]done[/] {p} in {time.perf_counter() - t0:.1f}s → {brief}")
    if failed:
        raise typer.Exit(1)


@app.command("batch")
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
def panel_cmd(
    reform: str = typer.Option(..., help="reform id or Chinese name, e.g. 两队一室"),
    out_file: Path = typer.Option(..., "--out", help="CSV or Parquet file to write"),
    warehouse: Path = typer.Option(Path("data/warehouse.duckdb"), help="DuckDB file"),
    start: str = typer.Option("2019-01", help="first month YYYY-MM"),
    end: str = typer.Option("2025-12", help="last month YYYY-MM"),
) -> None:
    """Export the station × month panel for a reform (for `evalkit estimate` or other tools)."""
    import duckdb

    from evalkit.panel import build_panel

    with duckdb.connect(str(warehouse), read_only=True) as con:
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


@app.command("estimate")
def estimate_cmd(
    panel_file: Path = typer.Argument(..., help="station × period panel (CSV or Parquet)"),
    outcome: str = typer.Option(..., help="outcome column"),
    method: str = typer.Option("cs", help="cs | sa | imputation | twfe | event_twfe | bacon | poisson | did2x2 | naive_yoy"),
    unit: str = typer.Option("station_id", help="unit column"),
    time_col: str = typer.Option("period", "--time", help="time column (integer periods)"),
    cohort: str = typer.Option("first_treat", help="first treated period column (0 or empty = never)"),
    control: str = typer.Option("never", help="cs: never | notyet"),
    covariates: str | None = typer.Option(None, help="cs: comma-separated covariate columns"),
    est_method: str = typer.Option("dr", help="cs with covariates: dr | ipw | reg"),
    cluster: str | None = typer.Option(None, help="cluster column (default: unit)"),
    bootstrap: int = typer.Option(0, help="cs: multiplier-bootstrap draws (0 = analytic SEs)"),
    seed: int | None = typer.Option(None, help="random seed for the bootstrap"),
    allow_unbalanced: bool = typer.Option(False, help="cs: keep units missing some periods (R did allow_unbalanced_panel)"),
    alpha: float = typer.Option(0.05, help="1 - confidence level"),
    json_out: Path | None = typer.Option(None, "--json", help="write the full result as JSON here"),
) -> None:
    """Run any estimator on any panel file; print a table and write the full result as JSON."""
    from evalkit.estimators import REGISTRY, get_estimator

    if method not in REGISTRY:
        raise typer.BadParameter(f"unknown method {method!r}; choose from {', '.join(REGISTRY)}")
    panel = read_panel_file(panel_file)
    missing = [c for c in (unit, time_col, cohort, outcome) if c not in panel.columns]
    if missing:
        raise typer.BadParameter(f"{panel_file}: missing column(s) {missing}; columns are {list(panel.columns)}")
    kwargs: dict = {"unit": unit, "time": time_col, "cohort": cohort, "cluster": cluster, "alpha": alpha}
    panel[cohort] = panel[cohort].fillna(0)
    if method == "cs":
        kwargs |= {"control": control, "est_method": est_method, "bootstrap": bootstrap, "seed": seed,
                   "allow_unbalanced": allow_unbalanced,
                   "covariates": [c.strip() for c in covariates.split(",")] if covariates else None}
    t0 = time.perf_counter()
    result = get_estimator(method)(panel, outcome, **kwargs)
    result.meta["seconds"] = round(time.perf_counter() - t0, 4)
    result.meta["panel_file"] = str(panel_file)
    out.print(result.summary())
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        result.to_json(json_out)
        console.print(f"full result → {json_out}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
