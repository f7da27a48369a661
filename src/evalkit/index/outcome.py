"""The prevention index as an outcome of a reform evaluation.

A params file may list ``index`` (the index), ``index:<capability>`` (a sub-score) or
``index:<indicator>`` (an indicator's score), each by id or by its Chinese/English label
(``index:防警情``, ``index:prevent_calls``, ``index:fights_10k``). They resolve to the panel columns
``index_score``, ``index_<capability id>`` and ``index_<indicator id>`` (0–100 points, higher is
better), registered in :data:`evalkit.registry.OUTCOMES` with their labels so the estimators,
diagnostics and brief treat them as any other outcome. The definition file is the params key
``index_definition`` (default :data:`DEFAULT_DEFINITION`).

The scores come from the monthly index query (:func:`evalkit.index.compute.index_sql`) over the
evaluation's region and the source tables' whole span (so ``carry`` and ``yoy`` rules see the
months before the window; peers of ``rank``/``zscore`` rules are the region's stations), cut to the
window and joined to the panel on station × month in DuckDB; a missing score stays missing.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from evalkit.index.definition import IndexDefinition, load_definition
from evalkit.registry import OUTCOMES, Outcome, add_outcomes

DEFAULT_DEFINITION = "params/index/prevention_index.yaml"
INDEX_COLUMN = "index_score"  # not "index": a panel column named "index" clashes with reset_index()


def is_index_name(name: str) -> bool:
    """True for the index spellings (``index``, ``index:…``) and their resolved ids (``index_…``)."""
    s = str(name).strip()
    return s == "index" or s.startswith(("index:", "index_"))


def index_outcomes(defn: IndexDefinition) -> dict[str, Outcome]:
    """The outcomes an index definition offers: the index, each capability, each indicator's score."""
    zh, en = defn.label.zh, defn.label.en
    out = [Outcome(INDEX_COLUMN, zh, en, "score", "分", "points", better="higher")]
    for c in defn.capabilities:
        out.append(Outcome(f"index_{c.id}", f"{zh}·{c.label.zh}", f"{en}: {c.label.en}", "score", "分", "points",
                           better="higher"))
    for _, i in defn.indicators:
        out.append(Outcome(f"index_{i.id}", f"{zh}·{i.label.zh}得分", f"{en}: {i.label.en} score", "score", "分",
                           "points", better="higher"))
    return {o.id: o for o in out}


def source_column(outcome: str, defn: IndexDefinition) -> str:
    """The column of the index table behind an index outcome id: ``index``, a capability's sub-score
    (``index_prevent_calls`` → ``prevent_calls``) or an indicator's score (``score_fights_10k``)."""
    if outcome == INDEX_COLUMN:
        return "index"
    key = outcome.removeprefix("index_")
    return key if key in {c.id for c in defn.capabilities} else f"score_{key}"


def resolve(name: str, defn: IndexDefinition, source: str) -> str:
    """The outcome id of an index spelling; registers the definition's outcomes. ``ValueError`` (one
    line, naming the definition file and the choices) for a name the definition does not have."""
    offered = index_outcomes(defn)
    key = str(name).strip()
    if key == "index":
        oid = INDEX_COLUMN
    elif key.startswith("index:"):
        want = key.removeprefix("index:").strip()
        hits = [f"index_{c.id}" for c in defn.capabilities if want in (c.id, c.label.zh, c.label.en)]
        hits += [f"index_{i.id}" for _, i in defn.indicators if want in (i.id, i.label.zh, i.label.en)]
        oid = hits[0] if hits else ""
    else:
        oid = key
    if oid not in offered:
        ids = [c.id for c in defn.capabilities] + [i.id for _, i in defn.indicators]
        raise ValueError(f"outcomes: unknown index outcome {name!r} (definition {source}): use index, or "
                         f"index:<id or label> with one of {', '.join(ids)}")
    clash = [o for o in offered.values() if o.id in OUTCOMES and OUTCOMES[o.id].kind != "score"]
    if clash:
        raise ValueError(f"outcomes: index outcome id {clash[0].id!r} of {source} clashes with a panel outcome")
    add_outcomes(offered.values())
    return oid


def load_for_params(path: str | Path) -> IndexDefinition:
    """The definition named by a params file's ``index_definition`` (one-line error when absent)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"index_definition {p} not found: give the path of an index definition YAML "
                         f"(e.g. {DEFAULT_DEFINITION})")
    return load_definition(p)


def score_span(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, start: str, end: str) -> tuple[int, int]:
    """The months (period indices) the scores are computed over: the definition's source tables'
    whole span (:func:`evalkit.index.compute.default_window`) and the window ``start``..``end``
    (``YYYY-MM``) — ``carry`` and ``yoy`` rules see the months before the window."""
    from evalkit.index.compute import default_window
    from evalkit.registry import period_of

    d0, d1 = default_window(con, defn)
    return min(d0, period_of(start + "-01")), max(d1, period_of(end + "-01"))


def index_scores(con: duckdb.DuckDBPyConnection, defn: IndexDefinition, outcomes: list[str], *,
                 start: str, end: str, region: dict | None = None,
                 span: tuple[int, int] | None = None) -> pd.DataFrame:
    """Monthly scores ``station_id``, ``period`` (month index), one column per index outcome, for the
    region's stations and the months ``start``..``end`` (``YYYY-MM``). Computed in DuckDB over
    :func:`score_span` (``span``: that span, when the caller has it already); only the window's rows
    of the asked columns come back."""
    from evalkit.index.compute import index_sql, panel_cells

    p0, p1 = span or score_span(con, defn, start, end)
    sql, named = index_sql(defn, "month", p0, p1, region, panel_cells(con, defn, p0, p1, region))
    cols = ", ".join(f'q."{source_column(o, defn)}" AS "{o}"' for o in outcomes)
    named |= {"w0": start, "w1": end}
    return con.execute(
        f"SELECT q.station_id, CAST(substr(q.period, 1, 4) AS BIGINT) * 12 + CAST(substr(q.period, 6, 2) AS BIGINT)"
        f" - 1 AS period, {cols} FROM ({sql}) q WHERE q.period BETWEEN $w0 AND $w1", named).df()


def panel_with_index(con: duckdb.DuckDBPyConnection, params) -> pd.DataFrame:
    """The evaluation's panel from the warehouse (:func:`evalkit.panel.build_panel` with the params'
    reform, window, region and ``exclude_reforms``) with its index outcomes (:func:`add_index_outcomes`).
    When an index outcome reads the panel's own counts, both read one computation of the station-month
    cells (:func:`evalkit.panel.panel_cache`, over the window and the index's span): one pass over
    the records instead of two, the same numbers. The definition is read and its span computed once."""
    from contextlib import nullcontext

    from evalkit.coverage import coverage_source
    from evalkit.panel import build_panel, cached_cells, panel_cache

    region = params.region.as_filter()
    defn = load_for_params(params.index_definition) if any(is_index_name(o) for o in params.outcomes) else None
    span = None if defn is None else score_span(con, defn, params.window.start, params.window.end)
    shared = _shared_span(defn, span)
    with panel_cache(con) if shared is not None else nullcontext():
        if shared is not None:  # every cell of the index's span (index_scores'), containing the window's
            cached_cells(con, region, *shared, *(coverage_source(con, t) for t in ("incidents", "disputes")))
        panel = build_panel(con, params.reform, start=params.window.start, end=params.window.end, region=region,
                            exclude_reforms=params.exclude_reforms)
        return add_index_outcomes(con, panel, params, defn=defn, span=span)


def _shared_span(defn: IndexDefinition | None, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """``span`` when the index reads the panel's own counts (the panel and the index then share its cells)."""
    return span if defn is not None and "panel" in defn.tables() else None


def cells_span(con: duckdb.DuckDBPyConnection, params) -> tuple[int, int] | None:
    """The months (first, last period) of the station-month cells :func:`panel_with_index` computes once for
    the panel and the index: the index's :func:`score_span`, when an index outcome reads the panel's counts;
    ``None`` otherwise (the panel then reads the window's cells only)."""
    if not any(is_index_name(o) for o in params.outcomes):
        return None
    defn = load_for_params(params.index_definition)
    return score_span(con, defn, params.window.start, params.window.end) if "panel" in defn.tables() else None


def add_index_outcomes(con: duckdb.DuckDBPyConnection, panel: pd.DataFrame, params,
                       defn: IndexDefinition | None = None, span: tuple[int, int] | None = None) -> pd.DataFrame:
    """``panel`` with the params' index outcomes joined on station × month (NaN where a score is
    missing, never zero); ``panel`` itself when the params list none. ``defn``, ``span``: the params'
    definition and its :func:`score_span`, when the caller has them already."""
    wanted = [o for o in params.outcomes if is_index_name(o)]
    if not wanted:
        return panel
    defn = defn or load_for_params(params.index_definition)
    scores = index_scores(con, defn, wanted, start=params.window.start, end=params.window.end,
                          region=params.region.as_filter(), span=span)
    out = panel.merge(scores, on=["station_id", "period"], how="left", validate="one_to_one")
    for o in wanted:
        out[o] = out[o].astype("float64")
    out.attrs = dict(panel.attrs)
    out.attrs["index_definition"] = str(params.index_definition)
    return out


__all__ = ["DEFAULT_DEFINITION", "INDEX_COLUMN", "add_index_outcomes", "cells_span", "index_outcomes",
           "index_scores", "is_index_name", "panel_with_index", "resolve", "score_span"]
