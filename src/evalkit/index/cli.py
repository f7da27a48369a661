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


@index_app.command("explain")
def explain_cmd(
    definition: Path = typer.Argument(..., help="index definition YAML"),
    station: str = typer.Option(..., help="station id"),
    period_from: str = typer.Option(..., "--from", help="earlier period (2024-03, 2024-Q1 or 2024)"),
    period_to: str = typer.Option(..., "--to", help="later period, same kind"),
    period: str = typer.Option("month", help="month | quarter | year"),
    top: int = typer.Option(10, help="indicators shown, largest moves first"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
) -> None:
    """Which indicators drove a station's index (and rank) from one period to another."""
    from evalkit.index.compute import IndexComputeError, compute_index
    from evalkit.index.explain import drivers

    defn, con = _open(definition, warehouse)
    try:
        d = drivers(con, defn, compute_index(con, defn, period=period), period_from, period_to, station)
    except (IndexComputeError, ValueError) as e:
        raise _fail(str(e)) from None
    finally:
        con.close()
    if d.empty:
        raise _fail(f"no scores for station {station} in both {period_from} and {period_to}", 1)
    r = d.iloc[0]
    out.print(f"{station}: index {r.index_from:.1f} → {r.index_to:.1f}, rank {r.rank_from} → {r.rank_to}",
              highlight=False)
    labels = {i.id: i.label.zh for _, i in defn.indicators}
    for x in d.head(top).itertuples():
        out.print(f"  {labels[x.indicator]:<12} {x.score_from:>6.1f} → {x.score_to:>6.1f} points   "
                  f"{x.contribution_change:+.2f} index points", highlight=False, markup=False)


@index_app.command("robustness")
def robustness_cmd(
    definition: Path = typer.Argument(..., help="index definition YAML"),
    period: str = typer.Option("year", help="month | quarter | year"),
    draws: int = typer.Option(20, help="perturbed definitions"),
    weights: float = typer.Option(0.2, help="each weight × U(1 − w, 1 + w)"),
    rules: float = typer.Option(0.2, help="bounds moved by U(−r, r) × their span"),
    seed: int = typer.Option(0, help="random seed of the perturbations"),
    warehouse: str | None = typer.Option(None, help="DuckDB file (default data/warehouse.duckdb)"),
) -> None:
    """Rank stability under perturbed weights and scoring bounds; the most correlated indicators."""
    import numpy as np

    from evalkit.index.compute import IndexComputeError, compute_index
    from evalkit.index.explain import correlations, rank_stability

    defn, con = _open(definition, warehouse)
    try:
        name = compute_index(con, defn, period=period)
        st = rank_stability(con, defn, name, period=period, draws=draws, weights=weights, rules=rules, seed=seed)
        corr = correlations(con, defn, name)
    except (IndexComputeError, ValueError) as e:
        raise _fail(str(e)) from None
    finally:
        con.close()
    m = st[["spearman", "mean_abs_rank_change", "top10_kept"]].mean()
    out.print(f"{draws} draws (weights ±{weights:.0%}, bounds ±{rules:.0%}, seed {seed}): Spearman {m.spearman:.3f}, "
              f"mean rank change {m.mean_abs_rank_change:.1f} places, top 10 kept {m.top10_kept:.0%}", highlight=False)
    pairs = corr.where(np.triu(np.ones(corr.shape, dtype=bool), 1)).stack().sort_values(key=abs, ascending=False)
    for (a, b), r in pairs.head(5).items():
        out.print(f"  corr({a}, {b}) = {r:+.2f}", highlight=False, markup=False)
