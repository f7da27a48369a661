"""``evalkit index compute|alerts``: the prevention index from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

index_app = typer.Typer(no_args_is_help=True, help="The prevention index (主防指数): scores and alerts.")
console = Console(stderr=True)
out = Console()

_REGION_KEYS = ("province", "city", "county", "area_type", "station_id")


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(message, style="red", soft_wrap=True, highlight=False, markup=False)
    return typer.Exit(code)


def _region(items: list[str]) -> dict[str, list[str]] | None:
    """``county=城关县`` (repeatable; the same key twice means either value)."""
    region: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _REGION_KEYS or not value.strip():
            raise _fail(f"--region {item!r}: use KEY=VALUE with KEY one of {', '.join(_REGION_KEYS)}")
        region.setdefault(key.strip(), []).append(value.strip())
    return region or None


def _open(definition: Path, warehouse: str | None):
    from evalkit.index.definition import IndexDefinitionError, load_definition
    from evalkit.warehouse import WarehouseError, connect, find_existing

    try:
        defn = load_definition(definition)
    except IndexDefinitionError as e:
        raise _fail(str(e)) from None
    path = find_existing(warehouse)
    if not path.is_file():
        raise _fail(f"warehouse {path} not found; ingest data first or pass --warehouse PATH")
    try:
        return defn, connect(path)
    except WarehouseError as e:
        raise _fail(str(e)) from None


@index_app.command("compute")
def compute_cmd(
    definition: Path = typer.Argument(..., help="index definition YAML (e.g. params/index/prevention_index.yaml)"),
    period: str = typer.Option("month", help="month | quarter | year"),
    region: list[str] = typer.Option([], "--region", help="KEY=VALUE station filter (county=…, area_type=urban)"),
    start: str | None = typer.Option(None, help="first month YYYY-MM (default: the data's first)"),
    end: str | None = typer.Option(None, help="last month YYYY-MM (default: the data's last)"),
    out_file: Path | None = typer.Option(None, "--out", help="also write the scores to this Parquet file"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
) -> None:
    """Score every station every period: index, one sub-score per capability, indicator values."""
    from evalkit.index.compute import IndexComputeError, compute_index

    defn, con = _open(definition, warehouse)
    try:
        name = compute_index(con, defn, period=period, region=_region(region), start=start, end=end, out=out_file)
        n, k = con.execute(f"SELECT count(DISTINCT station_id), count(DISTINCT period) FROM {name}").fetchall()[0]
    except (IndexComputeError, ValueError) as e:
        raise _fail(str(e)) from None
    finally:
        con.close()
    out.print(f"{defn.label.zh} ({defn.index_id}): {n:,} stations × {k:,} {period}s → warehouse table {name}"
              + (f" and {out_file}" if out_file else ""), highlight=False)


@index_app.command("alerts")
def alerts_cmd(
    definition: Path = typer.Argument(..., help="index definition YAML"),
    since: str | None = typer.Option(None, help="only alerts from this month on (YYYY-MM)"),
    out_file: Path | None = typer.Option(None, "--out", help="also write the alerts to this Parquet file"),
    lang: str = typer.Option("zh", help="language of the reminder notices: zh | en"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
) -> None:
    """Flag station-indicator-months that move abnormally; print one reminder notice per station."""
    from evalkit.index.alerts import find_alerts, notices
    from evalkit.index.compute import IndexComputeError

    if lang not in ("zh", "en"):
        raise _fail(f"--lang {lang!r}: use zh or en")
    defn, con = _open(definition, warehouse)
    try:
        alerts = find_alerts(con, defn, since=since, out=out_file)
    except (IndexComputeError, ValueError) as e:
        raise _fail(str(e)) from None
    finally:
        con.close()
    for text in notices(alerts, defn, lang).values():
        out.print(text + "\n", highlight=False, markup=False)
    out.print(f"{len(alerts):,} alert(s) at {alerts['station_id'].nunique():,} station(s)", highlight=False)
