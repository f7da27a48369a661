"""Run the further analyses an evaluation's params ask for (issue 17) into ``Evaluation.analyses``.

Called by :func:`evalkit.evaluation.evaluate` after the headline and its robustness steps (staggered
design only). For every asked kind (:data:`evalkit.analyses.KINDS` order) and every outcome one
:class:`~evalkit.analyses.AnalysisSection`:

``dose``           :func:`evalkit.estimators.dose.estimate_dose` on the panel's ``dose`` column (the
                   reforms' ``intensity``), the estimator's defaults unless ``params.dose`` says
                   otherwise; ``control``/``cluster``/``alpha``/``seed`` from the params. Adopters without
                   an intensity make it "not available" (never imputed).
``switching``      :func:`evalkit.estimators.switching.estimate_switching` on the panel's ``treatment``
                   column (on from ``adopted_on``, off from the month of ``ended_on``).
``spillover``      :func:`evalkit.estimators.spillover.estimate_spillover` with the warehouse
                   ``adjacency`` table (pairs with a station outside the evaluation's panel — another
                   region, an excluded station — are left out and counted); ``max_e`` defaults to the end
                   of ``event_window``. ``facts`` add the effect on neighbours in percent of the exposed
                   stations' mean outcome before their first neighbour adopted (``spillover_pct``).
``heterogeneity``  :func:`evalkit.heterogeneity.subgroup_effects` of the headline fit for each grouping,
                   rated by :func:`evalkit.verdict.decide` with the headline's floors, its pre-trend p and
                   its estimator disagreement (no subgroup sensitivity analysis: ``robust`` unknown). A
                   Callaway–Sant'Anna headline cannot be split by a grouping that cuts across cohorts;
                   the imputation fit of the same evaluation (same estimand) is then used and named in
                   ``facts["estimator"]``.

On a synthetic (demo) warehouse each section's ``facts["planted_truth"]`` holds the effect the demo
world planted, on the section's own sample and estimand (:func:`planted_truth`, from the warehouse's
``demo_truth_cells`` through :mod:`evalkit.demo.truth`): in outcome units and in percent of the same base
as the estimate beside it. Never on real data; left out when the truth does not cover the sample.

Each section is wrapped: a failure is recorded in ``error`` (one line) and never stops the evaluation.
Each kind is one progress step (:mod:`evalkit.progress`) and one key of ``Evaluation.timings``. The kinds
that read none of the later steps (all but :data:`AFTER_STEPS`) run while a forked child computes the
pre-trend tests (:mod:`evalkit.step_ahead`), else after the steps; the sections are the same.

:func:`evaluation_notes` states what the brief must say about the data whatever was asked: a reform
that some stations stopped makes the headline intent-to-treat (note ``itt_stopped``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evalkit import progress
from evalkit.analyses import AnalysisSection
from evalkit.evaluation_steps import estimator_options
from evalkit.registry import NEVER_TREATED

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.evaluation import Evaluation


def _reason(exc: BaseException) -> str:
    """One line: the exception's message (its type when it has none)."""
    msg = " ".join(str(exc).split())
    return msg or type(exc).__name__


def evaluation_notes(panel: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Notes about the evaluation's data, key → facts (words: :func:`evalkit.brief_words.note_sentence`).
    ``itt_stopped``: ``n_stopped`` adopters stopped the reform inside the window, so the headline
    (``first_treat``) is intent-to-treat: their months after the stop still count as treated."""
    n = int(panel.attrs.get("n_stopped", 0) or 0)
    return {"itt_stopped": {"n_stopped": n}} if n > 0 else {}


#: the kinds that read the evaluation's later steps (the headline's pre-trend p-value, the disagreement of
#: its estimators): the others read only the params, the panel and the estimators' fits, and may run
#: while the steps ahead still compute (evalkit.evaluation)
AFTER_STEPS = ("heterogeneity",)


def run_analyses(ev: Evaluation, fits: dict[str, dict[str, Any]] | None = None, *,
                 kinds: tuple[str, ...] | None = None, truth_cells: dict[str, pd.DataFrame] | None = None) -> None:
    """Fill ``ev.analyses`` (kind → outcome → section) and ``ev.timings[kind]`` for the kinds asked
    (``kinds``: those of them only, else every kind not run yet). ``fits``: outcome → estimator → the
    result as the estimator returned it (with its stored fit, which the copies in ``ev.results`` made by
    the small-sample steps do not carry); default ``ev.results``. ``truth_cells``: the demo truth cells
    by outcome, shared by the calls of one evaluation (read once for every kind)."""
    p = ev.params
    truth_cells = {} if truth_cells is None else truth_cells
    for kind in p.analyses:
        if kind in ev.analyses or (kinds is not None and kind not in kinds):
            continue
        progress.report(kind)
        t1 = time.perf_counter()
        shared: dict[str, Any] = {"fits": fits if fits is not None else ev.results, "truth_cells": truth_cells}
        if kind == "spillover":
            try:
                shared["adjacency"] = _adjacency(ev)
            except Exception as exc:  # noqa: BLE001 - every section then says why
                shared["error"] = _reason(exc)
        ev.analyses[kind] = {o: _section(kind, ev, o, shared) for o in p.outcomes}
        ev.timings[kind] = time.perf_counter() - t1


def _section(kind: str, ev: Evaluation, outcome: str, shared: dict[str, Any]) -> AnalysisSection:
    sec = AnalysisSection(kind, outcome)
    try:
        if "error" in shared:
            raise ValueError(shared["error"])
        RUNNERS[kind](ev, outcome, sec, shared)
    except Exception as exc:  # noqa: BLE001 - shown in the brief as "not available: reason"
        sec.result, sec.error = None, _reason(exc)
        return sec
    if getattr(ev.facts, "synthetic", False):  # demo data only: never a truth for real records
        truth = planted_truth(kind, ev, outcome, sec, shared)
        if truth:
            sec.facts["planted_truth"] = truth
    return sec


# ------------------------------------------------------------------------------ dose
def _dose(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any]) -> None:
    p, panel = ev.params, ev.panel
    adopters = int((panel.groupby("station_id")["first_treat"].first() != NEVER_TREATED).sum())
    sec.facts.update(n_adopters=adopters, n_dose_missing=int(panel.attrs.get("n_dose_missing", 0) or 0))
    if "dose" not in panel.columns:
        raise ValueError(f"the reforms table has no intensity (覆盖比例) for {p.reform}; load a reforms file with "
                         "that column (`evalkit ingest reforms FILE --replace`)")
    if sec.facts["n_dose_missing"]:
        raise ValueError(f"{sec.facts['n_dose_missing']} of {adopters} adopters of {p.reform} have no intensity "
                         "(覆盖比例) in the reforms table; fill it for every adopter")
    from evalkit.estimators.dose import estimate_dose

    o = p.dose
    opts = {**estimator_options("dose", p), "dose": "dose", "control": p.control, "degree": o.degree,
            "knots": o.knots, "bootstrap": o.bootstrap, "small_cohorts": o.small_cohorts}
    r = estimate_dose(panel, outcome, **opts)
    m = r.meta
    sec.result = r
    sec.facts.update(n_dose_levels=m.get("n_doses"), dose_min=m.get("dose_range", [None, None])[0],
                     dose_max=m.get("dose_range", [None, None])[1], n_treated_used=m.get("n_treated_used"))


# ------------------------------------------------------------------------------ switching
def switch_counts(panel: pd.DataFrame, treatment: str = "treatment") -> tuple[int, int]:
    """(stations switching in, stations switching out) inside the panel: a 0 → 1 / 1 → 0 step of
    ``treatment`` between consecutive months."""
    f = panel.sort_values(["station_id", "period"])
    step = f.groupby("station_id")[treatment].diff()
    ins = f.loc[step > 0, "station_id"].nunique()
    outs = f.loc[step < 0, "station_id"].nunique()
    return int(ins), int(outs)


def _switching(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any]) -> None:
    p, panel = ev.params, ev.panel
    n_in, n_out = switch_counts(panel)
    sec.facts.update(n_stopped=int(panel.attrs.get("n_stopped", 0) or 0), n_switch_in=n_in, n_switch_out=n_out)
    from evalkit.estimators.switching import estimate_switching

    o = p.switching
    opts = {**estimator_options("switching", p), "treatment": "treatment", "effects": o.effects,
            "placebo": o.placebo}
    start = stop_window_start(panel) if n_out and o.switchers in ("both", "out") else None
    if start is None:  # no station stops (or only switching in was asked): one fit, as asked
        sec.result = estimate_switching(panel, outcome, **opts, switchers=o.switchers)
        return
    # dCDH groups stations by their first change: a station that adopts inside the window and stops
    # later is a switcher *in*. Switching *off* is estimated from the first month in which every
    # stopping station runs the reform: there they start treated and switch out, against stations
    # still running it (same baseline treatment), as in did_multiplegt_dyn's switchers-out.
    fits: dict[str, Any] = {}
    if o.switchers == "both":
        fits["in"] = estimate_switching(panel, outcome, **opts, switchers="in")
    late = panel[panel["period"] >= start]
    sec.facts.update(out_window_start=int(start))
    try:
        fits["out"] = estimate_switching(late, outcome, **opts, switchers="out")
    except Exception as exc:  # noqa: BLE001 - the switching-in fit stands; the reason is kept
        if not fits:
            raise
        # in this window every stopping station starts treated, so "no unit switches out" means none kept
        # a comparison: no station was still running the reform, unstopped, when they stopped
        sec.facts["out_error"] = (NO_STOP_COMPARISON if "no unit switches out" in str(exc)
                                  else f"{type(exc).__name__}: {exc}")
    sec.result = fits


#: why switching off has no estimate when no station keeps the reform running past the stops
NO_STOP_COMPARISON = ("no station keeps running the reform, without stopping, past the month the stopping "
                      "stations stop: the effect of stopping has no comparison")


def stop_window_start(panel: pd.DataFrame, treatment: str = "treatment") -> int | None:
    """The first period in which every station that stops (a 1 → 0 step of ``treatment``) runs the
    reform, when each of them stops after it; ``None`` when no station stops or when their spells do
    not overlap (then no window has all of them start treated)."""
    f = panel.sort_values(["station_id", "period"])
    step = f.groupby("station_id")[treatment].diff()
    stoppers = f.loc[step < 0, "station_id"].unique()
    if len(stoppers) == 0:
        return None
    g = f[f["station_id"].isin(stoppers)]
    first_on = g[g[treatment] == 1].groupby("station_id")["period"].min()
    first_off = g[(step < 0).reindex(g.index, fill_value=False)].groupby("station_id")["period"].min()
    start = int(first_on.max())
    return start if bool((first_off > start).all()) else None


# ------------------------------------------------------------------------------ spillover
def _adjacency(ev: Evaluation) -> pd.DataFrame:
    """The warehouse adjacency pairs (``station_id``, ``neighbor_id``); one-line error when absent."""
    from evalkit.evaluation import open_warehouse

    with open_warehouse(ev.facts.path) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        adj = (con.execute("SELECT station_id, neighbor_id FROM adjacency").df() if "adjacency" in tables
               else pd.DataFrame(columns=["station_id", "neighbor_id"]))
    if adj.empty:
        raise ValueError("the warehouse has no adjacency table; load one with `evalkit ingest adjacency FILE`")
    return adj


def _spillover(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any]) -> None:
    from evalkit.estimators.spillover import check_adjacency, estimate_spillover, exposure_onset

    p, panel = ev.params, ev.panel
    adj = shared["adjacency"]
    stations = pd.Index(panel["station_id"].unique())
    inside = adj["station_id"].isin(stations) & adj["neighbor_id"].isin(stations)
    adj = adj[inside].reset_index(drop=True)
    sec.facts.update(n_pairs_outside_panel=int((~inside).sum()))
    if adj.empty:
        raise ValueError("no adjacency pair joins two stations of this evaluation's panel (region, excluded "
                         "reforms); check the adjacency table's station ids")
    o = p.spillover
    opts = estimator_options("spillover", p)
    if o.max_e is not None:
        opts.update(max_e=o.max_e, horizons=o.max_e)
    opts["leaveout"] = o.leaveout
    r = estimate_spillover(panel, outcome, adjacency=adj, **opts)
    sec.result = r
    m = r.meta
    sec.facts.update(n_adjacency_pairs=m.get("n_adjacency_pairs"), n_exposed_stations=m.get("n_exposed_stations"),
                     n_exposed_obs=m.get("n_exposed_obs"))
    # the neighbours' effect in percent of their own level before exposure (not of the adopters' level)
    cohorts = panel.groupby("station_id")["first_treat"].first()
    last = int(panel["period"].max())
    onset = exposure_onset(cohorts, check_adjacency(adj), last)
    g = cohorts.astype(float).where((cohorts != NEVER_TREATED) & (cohorts <= last), np.inf)
    exposed = onset[onset < g].index
    rows = panel[panel["station_id"].isin(exposed)]
    pre = rows[rows["period"] < rows["station_id"].map(onset)][outcome]
    base = float(pre.mean()) if pre.notna().any() else float("nan")
    spill = r.rows("spillover")
    spill = spill[spill["term"] == "spillover"]
    sec.facts["baseline_exposed"] = base
    if not spill.empty and np.isfinite(base) and base != 0:
        row = spill.iloc[0]
        sec.facts.update({k: 100.0 * float(row[src]) / base for k, src in
                          (("spillover_pct", "estimate"), ("spillover_pct_low", "ci_low"),
                           ("spillover_pct_high", "ci_high"))})


# ------------------------------------------------------------------------------ heterogeneity
def _heterogeneity(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any]) -> None:
    from evalkit.heterogeneity import subgroup_effects

    p = ev.params
    fits = shared["fits"].get(outcome, {})
    if p.headline not in fits:
        raise ValueError(f"the headline estimator {p.headline} has no result for {outcome}")
    try:
        disagree = bool(ev.disagreeing_estimators(outcome))
    except KeyError:
        disagree = False
    kw = {"alpha": p.alpha, "pretrend_p": ev.pretrend_p(outcome), "disagree": disagree}
    out: dict[str, Any] = {}
    used: dict[str, str] = {}
    errors: dict[str, str] = {}
    for by in p.heterogeneity:
        try:
            out[by] = subgroup_effects(fits[p.headline], by, ev.panel, **kw)
        except ValueError as exc:
            # a CS fit splits only by groupings constant within cohorts: use the imputation fit
            if fits[p.headline].estimator == "cs" and "imputation" in fits:
                try:
                    out[by] = subgroup_effects(fits["imputation"], by, ev.panel, **kw)
                except ValueError as exc2:
                    errors[by] = _reason(exc2)
                    continue
            else:
                errors[by] = _reason(exc)
                continue
        used[by] = out[by].estimator
    sec.facts.update(by=list(p.heterogeneity), estimator=used, errors=errors)
    if not out:
        raise ValueError("; ".join(f"{by}: {msg}" for by, msg in errors.items()))
    sec.result = out


# ------------------------------------------------------------------------------ planted truths (demo)
def planted_truth(kind: str, ev: Evaluation, outcome: str, sec: AnalysisSection,
                  shared: dict[str, Any]) -> dict[str, Any] | None:
    """The demo world's truth of section ``sec`` on its own sample (see :data:`TRUTHS`), ``None`` when
    the warehouse has no truth cells or they do not cover the sample (regenerate with ``evalkit demo-data``)."""
    import duckdb

    from evalkit.demo.truth import read_truth_cells
    from evalkit.evaluation import EvaluationError, open_warehouse

    try:
        cache = shared.setdefault("truth_cells", {})
        if outcome not in cache:
            with open_warehouse(ev.facts.path) as con:
                cache[outcome] = read_truth_cells(con, ev.params.reform, outcome)
        return TRUTHS[kind](ev, outcome, sec, shared, cache[outcome]) or None
    except (LookupError, EvaluationError, duckdb.Error):
        return None


def _pct(result: Any, level: float) -> float | None:
    """``level`` in percent of ``result``'s baseline (as the estimate beside it); ``None`` without one."""
    v = result.percent(level)
    return float(v) if v is not None and np.isfinite(v) else None


def _dose_truth(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any],
                cells: pd.DataFrame) -> dict[str, Any]:
    """True ATT^o and slope per unit of dose over the cohort-period cells the dose fit averaged, with
    the fit's cell weights (adopters of cohort g observed at t and at the base period)."""
    from evalkit.demo.truth import cells_truth

    r = sec.result
    post = r.tables["cells"]
    post = post[post["post"].astype(bool) & (post["weight"] > 0)]
    panel = ev.panel
    wide = panel.pivot(index="station_id", columns="period", values=outcome)
    g_of = panel.groupby("station_id")["first_treat"].first()
    # stations (sorted, as g_of) x periods: observed outcome; one boolean mask per cell, one frame at the end
    seen = wide.reindex(g_of.index).notna().to_numpy()
    g = g_of.to_numpy()
    pos, per, wts = [], [], []
    for c in post.itertuples(index=False):
        t, b = wide.columns.get_loc(int(c.time)), wide.columns.get_loc(int(c.base))  # KeyError: no truth
        ids = np.flatnonzero((g == c.group) & seen[:, t] & seen[:, b])
        pos.append(ids)
        per.append(np.full(ids.size, int(c.time), dtype=np.int64))
        wts.append(np.full(ids.size, float(c.weight) / len(ids)))
    rows = pd.DataFrame({"station_id": g_of.index.take(np.concatenate(pos)), "period": np.concatenate(per),
                         "weight": np.concatenate(wts)})
    got = cells_truth(cells, rows, kinds=("treated",))
    return {"att_o": got["level"], "att_o_pct": _pct(r, got["level"]), "acr_o": got["per_dose"],
            "acr_o_pct": _pct(r, got["per_dose"]), "n_cells": got["n_cells"]}


def switch_rows(panel: pd.DataFrame, outcome: str, effects: int, direction: int,
                treatment: str = "treatment") -> pd.DataFrame:
    """Station-months of the dCDH effects ``ℓ = 1..effects`` of the stations whose first change of
    ``treatment`` in ``panel`` goes in ``direction`` (+1 on, −1 off): months ``F .. F + effects − 1``
    from their first changed month ``F`` inside the panel, with an observed outcome there and in ``F − 1``."""
    tr = panel.pivot(index="station_id", columns="period", values=treatment).sort_index(axis=1)
    y = panel.pivot(index="station_id", columns="period", values=outcome).reindex_like(tr)
    d, yv, periods = tr.to_numpy(float), y.notna().to_numpy(), tr.columns.to_numpy()
    rows = []
    for i, sid in enumerate(tr.index):
        step = np.flatnonzero(np.nan_to_num(np.diff(d[i])) != 0)
        if not len(step) or np.sign(d[i, step[0] + 1] - d[i, step[0]]) != direction:
            continue
        f = step[0] + 1
        if not yv[i, f - 1]:
            continue
        k = np.arange(f, min(f + effects, len(periods)))
        k = k[yv[i, k]]
        rows.append(pd.DataFrame({"station_id": sid, "period": periods[k].astype(np.int64)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["station_id", "period"])


def _switching_truth(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any],
                     cells: pd.DataFrame) -> dict[str, Any]:
    """By direction the fit shows: switching on (``y1 − y0`` over the switchers-in's effect months) and
    switching off (``y1 − y_on`` over the stopped months of the out-fit's window), in the sign of the
    change (switching off: the effect of stopping, as the brief states it)."""
    from evalkit.brief_analyses import switch_fits
    from evalkit.demo.truth import cells_truth

    out: dict[str, Any] = {}
    for d, r in switch_fits(sec.result).items():
        n_in, n_out = int(r.meta.get("n_switchers_in") or 0), int(r.meta.get("n_switchers_out") or 0)
        if d == "both":  # a pooled fit has a truth only when it holds one direction
            if n_in and n_out:
                continue
            d = "in" if n_in else "out"
        L = int(r.meta.get("effects") or 1)
        if d == "in":
            got = cells_truth(cells, switch_rows(ev.panel, outcome, L, +1))
        else:
            start = sec.facts.get("out_window_start", int(ev.panel["period"].min()))
            got = cells_truth(cells, switch_rows(ev.panel[ev.panel["period"] >= start], outcome, L, -1),
                              kinds=("stopped",), against="y_on")
        out[d] = {"level": got["level"], "pct": _pct(r, got["level"]), "n_cells": got["n_cells"], "effects": L}
    return out


def _spillover_truth(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any],
                     cells: pd.DataFrame) -> dict[str, Any]:
    """The effect on the exposed untreated neighbours (``spillover`` cells, months ``0..max_e`` since a
    neighbour adopted, in percent of their mean expected outcome without it) and the direct effect
    (adopters' months ``0..max_e``, in percent of the fit's baseline) over the rows the fit used."""
    from evalkit.demo.truth import cells_truth
    from evalkit.estimators.spillover import check_adjacency, exposure_onset

    r, panel = sec.result, ev.panel
    adj = shared["adjacency"]
    st = pd.Index(panel["station_id"].unique())
    adj = adj[adj["station_id"].isin(st) & adj["neighbor_id"].isin(st)].reset_index(drop=True)
    cohorts = panel.groupby("station_id")["first_treat"].first()
    first, last = int(panel["period"].min()), int(panel["period"].max())
    onset = exposure_onset(cohorts, check_adjacency(adj), last)
    g = cohorts.astype(float).where((cohorts != NEVER_TREATED) & (cohorts <= last), np.inf)
    max_e = r.meta.get("max_e")
    max_e = np.inf if max_e is None else float(max_e)
    rows = panel.loc[panel[outcome].notna(), ["station_id", "period"]]
    t = rows["period"].to_numpy(float)
    G, E = rows["station_id"].map(g).to_numpy(float), rows["station_id"].map(onset).to_numpy(float)
    exposed = (E <= t) & (t < G) & (t - E <= max_e) & (E > first)  # exposed from the start: dropped by the fit
    direct = (t >= G) & (t - G <= max_e)
    sp = cells_truth(cells, rows[exposed], kinds=("spillover",))
    dr = cells_truth(cells, rows[direct])
    return {"spillover": sp["level"], "spillover_pct": 100.0 * sp["level"] / sp["base"] if sp["base"] else None,
            "n_spillover_cells": sp["n_cells"], "direct": dr["level"], "direct_pct": _pct(r, dr["level"]),
            "n_direct_cells": dr["n_cells"]}


def _heterogeneity_truth(ev: Evaluation, outcome: str, sec: AnalysisSection, shared: dict[str, Any],
                         cells: pd.DataFrame) -> dict[str, Any]:
    """Grouping → subgroup → the headline estimand's truth (adopter-months ``0..H`` of the fit's sample
    with an observed outcome) on the subgroup's stations, in percent of the fit's baseline (as the
    subgroup table's percentages)."""
    from evalkit.demo.truth import cells_truth
    from evalkit.heterogeneity import COHORT, station_groups

    fits = shared["fits"].get(outcome, {})
    last = int(ev.params.event_window[1])
    out: dict[str, Any] = {}
    for by, sgr in (sec.result or {}).items():
        fit = fits[sgr.estimator]
        frame = fit.context.sample.frame if fit.context is not None else ev.panel
        g, t = frame["first_treat"], frame["period"]
        keep = (g != NEVER_TREATED) & (g <= t.max()) & (t - g >= 0) & (t - g <= last) & frame[outcome].notna()
        rows = frame.loc[keep, ["station_id", "period"]]
        labels = (frame.groupby("station_id")["first_treat"].first() if by == COHORT
                  else station_groups(ev.panel, by))
        shown = {str(x) for x in sgr.table["group"]}
        per: dict[str, Any] = {}
        for grp, sub in rows.groupby(rows["station_id"].map(labels).astype(str)):
            if grp in shown:
                got = cells_truth(cells, sub)
                per[grp] = {"level": got["level"], "pct": _pct(fit, got["level"]), "n_cells": got["n_cells"]}
        if per:
            out[by] = per
    return out


TRUTHS = {"dose": _dose_truth, "switching": _switching_truth, "spillover": _spillover_truth,
          "heterogeneity": _heterogeneity_truth}

RUNNERS = {"dose": _dose, "switching": _switching, "spillover": _spillover, "heterogeneity": _heterogeneity}
