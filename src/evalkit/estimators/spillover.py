"""Difference-in-differences with spillovers to neighbouring stations (in the spirit of Butts 2023,
"Difference-in-differences estimation with spatial spillovers").

A reform in one station can move incidents into the next station's area (displacement) or help it
too (diffusion). Untreated neighbours are then no clean controls, and the ordinary estimators mix
the spillover into the counterfactual. Here a station-period is

- *treated* when the station has adopted (``t >= G_i``, staggered absorbing adoption),
- *exposed* when it is not treated and at least one neighbour (``adjacency``) is treated
  (``E_i <= t < G_i``, ``E_i`` = the earliest adoption among its neighbours),
- *clean* otherwise.

Estimation (the Borusyak-Jaravel-Spiess imputation logic, :mod:`evalkit.estimators.imputation`):
the two-way fixed-effects model ``y_it = a_i + l_t`` is fitted on the clean rows only, which is
exactly BJS's ``Omega_0`` for the synthetic adoption date ``min(G_i, E_i)`` (the first period the
station is treated or exposed; exposure is absorbing because adoption is). ``Y(0)`` is imputed for
every treated and exposed row, ``tau = y - Y(0)``, and

- the **direct effect** (``overall`` row; event rows ``e=k`` by months since own adoption) is the
  equal-weight average of ``tau`` over treated station-months ``0 <= t - G_i <= max_e``,
- the **spillover effect** (kind ``spillover``, term ``spillover``; rows ``spillover_e=k`` by months
  since the first neighbour adopted) is the average of ``tau`` over exposed untreated station-months
  ``0 <= t - E_i <= max_e``: the effect on untreated neighbours (negative = the outcome fell there,
  positive = it rose, e.g. displaced incidents).

Both are weighted sums of the same ``tau``, so their SEs are the BJS conservative clustered variance
of one first stage (:func:`evalkit.estimators.imputation.cluster_scores`), with the residual averages
``tau_bar`` taken by (treated | exposed) x cohort x event time (leave-own-cluster-out by default).
Assumptions (Butts): exposure is "any treated neighbour" (one ring, no intensity), spillovers reach
only listed neighbours, and parallel trends hold for clean rows.

Stations that are exposed from the first period (a neighbour treated from the start) have no clean
row and are dropped (``meta["dropped_exposed_from_start"]``), as units treated from the first period
are by the shared sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators._common import baseline_mean, finish_result, inference_meta
from evalkit.estimators._sample import PanelInputError, StaggeredSample, build_sample
from evalkit.estimators.imputation import _cell_means, _leaveout_means, cluster_scores, estimate_imputation
from evalkit.registry import NEVER_TREATED
from evalkit.results import EstimationResult, make_estimates, normal_inference

STATION, NEIGHBOR = "station_id", "neighbor_id"
_ONSET = "_spill_onset"  # synthetic adoption date: first period treated or exposed


def _id(v: Any) -> Any:
    """A plain Python value for messages (``2``, not ``np.int64(2)``)."""
    return v.item() if isinstance(v, np.generic) else v


def check_adjacency(adjacency: pd.DataFrame, stations: pd.Index | None = None) -> pd.DataFrame:
    """Validated, symmetric adjacency: one row per ordered pair (``station_id``, ``neighbor_id``).

    A pair may be listed in one direction or in both; the other direction is added. One-line
    :class:`PanelInputError` for a non-frame, a missing column, a missing id, a station paired with
    itself, a pair listed twice in the same direction, or (when ``stations`` is given) a station that
    is not in the panel.
    """
    if not isinstance(adjacency, pd.DataFrame):
        raise PanelInputError(f"adjacency: must be a pandas DataFrame with columns {STATION!r}, {NEIGHBOR!r}, "
                              f"got {type(adjacency).__name__}")
    for col in (STATION, NEIGHBOR):
        if col not in adjacency.columns:
            raise PanelInputError(f"adjacency: column {col!r} missing; columns are {list(adjacency.columns)[:12]}")
    a = adjacency[[STATION, NEIGHBOR]]
    miss = a.isna().any(axis=1).to_numpy()
    if miss.any():
        raise PanelInputError(f"adjacency: missing station id in rows {[_id(j) for j in a.index[miss][:5]]}; every pair needs both ids")
    self_pair = (a[STATION] == a[NEIGHBOR]).to_numpy()
    if self_pair.any():
        i = a.index[self_pair][0]
        raise PanelInputError(f"adjacency: row {_id(i)!r} pairs station {_id(a.at[i, STATION])!r} with itself; remove self-pairs")
    dup = a.duplicated().to_numpy()
    if dup.any():
        i = a.index[dup][0]
        raise PanelInputError(f"adjacency: pair ({_id(a.at[i, STATION])!r}, {_id(a.at[i, NEIGHBOR])!r}) listed twice "
                              f"(rows {[_id(j) for j in a.index[a.duplicated(keep=False).to_numpy()][:5]]}); keep one row per pair")
    if stations is not None:
        for col in (STATION, NEIGHBOR):
            unknown = ~a[col].isin(stations).to_numpy()
            if unknown.any():
                i = a.index[unknown][0]
                raise PanelInputError(f"adjacency: {col} {_id(a.at[i, col])!r} (row {_id(i)!r}) is not a station of the panel "
                                      f"({int(unknown.sum())} such rows); check the ids and their type")
    both = pd.concat([a, a.rename(columns={STATION: NEIGHBOR, NEIGHBOR: STATION})], ignore_index=True)
    return both.drop_duplicates().reset_index(drop=True)


def exposure_onset(cohorts: pd.Series, adjacency: pd.DataFrame, last_period: int) -> pd.Series:
    """Per station (``cohorts``: station -> adoption period, 0 = never): the first period a neighbour
    is treated (``inf`` if none adopts by ``last_period``). ``adjacency`` as from :func:`check_adjacency`."""
    g = cohorts.astype(float)
    g = g.where((g != NEVER_TREATED) & (g <= last_period), np.inf)  # late adopters never treated, as the sample
    nb = adjacency.assign(_g=adjacency[NEIGHBOR].map(g).fillna(np.inf).to_numpy(dtype=float))
    e = nb.groupby(STATION)["_g"].min()
    return e.reindex(cohorts.index).fillna(np.inf)


def estimate_spillover(
    panel: pd.DataFrame | StaggeredSample,
    outcome: str,
    *,
    adjacency: pd.DataFrame,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    horizons: int | None = None,
    max_e: int | None = None,
    leaveout: bool = True,
) -> EstimationResult:
    """Direct effect with contaminated controls removed (``overall``) and the spillover effect on
    untreated neighbours (kind ``spillover``), both in outcome units per station-month.

    ``adjacency``: DataFrame of station pairs (``station_id``, ``neighbor_id``), see
    :func:`check_adjacency`. ``horizons``: an int ``H`` reports event rows ``0..H`` for both effects
    (``None``: every event time present). ``max_e``: the overall and spillover averages cover event
    times ``0..max_e`` (``None``: all ``e >= 0``). ``leaveout``: leave-own-cluster-out ``tau_bar`` in
    the BJS variance (as :func:`estimate_imputation`). ``cluster``: default the station.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"spillover: alpha must be in (0, 1), got {alpha!r}")
    for name, v in (("horizons", horizons), ("max_e", max_e)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise ValueError(f"spillover: {name} must be an integer >= 0 or None, got {v!r}")
    from_sample = isinstance(panel, StaggeredSample)
    s = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster)
    raw = s.frame if from_sample else panel
    # cohorts of every station of the input, also those the sample drops (treated from the first
    # period): they still contaminate their neighbours
    g_unit = raw.groupby(unit, sort=True)[cohort].first()
    last = int(pd.to_numeric(raw[time]).max())
    first = int(pd.to_numeric(raw[time]).min())
    # a refit from result.context: stations the first fit dropped may still be in the adjacency table
    adj = check_adjacency(adjacency, None if from_sample else g_unit.index)
    if from_sample:
        adj = adj[adj[STATION].isin(g_unit.index) & adj[NEIGHBOR].isin(g_unit.index)]
    e_unit = exposure_onset(g_unit, adj, last)
    g_eff = g_unit.astype(float).where((g_unit != NEVER_TREATED) & (g_unit <= last), np.inf)
    onset = np.minimum(g_eff, e_unit)
    exposed_units = (e_unit < g_eff)  # stations with at least one exposed (untreated) period
    from_start = onset.index[(onset <= first) & (g_eff > first)]
    if len(from_start):  # exposed from the first period: no clean row, drop (like always-treated units)
        s = build_sample(s.frame[~s.frame[unit].isin(from_start)].reset_index(drop=True), outcome, unit=unit,
                         time=time, cohort=cohort, cluster=cluster)
    frame = s.frame.copy()
    frame[_ONSET] = frame[unit].map(onset).replace(np.inf, NEVER_TREATED).astype(np.int64)

    imp = estimate_imputation(frame, outcome, unit=unit, time=time, cohort=_ONSET, cluster=cluster, alpha=alpha,
                              horizons=[], leaveout=leaveout)
    st = imp._imputation
    t = st.g + st.e  # calendar period of each treated-or-exposed row
    G = pd.Series(st.unit).map(g_eff).to_numpy(dtype=float)
    E = pd.Series(st.unit).map(e_unit).to_numpy(dtype=float)
    direct = t >= G
    ev = np.where(direct, t - G, t - E)  # months since own adoption / since the first neighbour adopted
    if not (direct & (ev >= 0)).any():
        raise PanelInputError(f"column {cohort!r}: no treated station-month to estimate the direct effect from")

    def in_window(mask: np.ndarray) -> np.ndarray:
        return mask & (ev >= 0) & (ev <= (np.inf if max_e is None else max_e))

    cols = [in_window(direct), in_window(~direct)]
    specs: list[dict[str, Any]] = [{"kind": "overall", "term": "ATT"}, {"kind": "spillover", "term": "spillover"}]
    for is_direct, kind, prefix in ((True, "event", "e="), (False, "spillover", "spillover_e=")):
        m = direct if is_direct else ~direct
        evs = np.unique(ev[m & (ev >= 0)])
        if horizons is not None:
            evs = evs[evs <= horizons]
        for k in evs:
            cols.append(m & (ev == k))
            specs.append({"kind": kind, "term": f"{prefix}{int(k)}", "event_time": float(k)})
    n1 = st.tau.size
    counts = np.array([c.sum() for c in cols], dtype=float)
    r_idx = np.concatenate([np.flatnonzero(c) for c in cols])
    c_idx = np.concatenate([np.full(int(c.sum()), j) for j, c in enumerate(cols)])
    vals = np.concatenate([np.full(int(c.sum()), 1.0 / max(c.sum(), 1)) for c in cols])
    W1 = sp.csr_matrix((vals, (r_idx, c_idx)), shape=(n1, len(cols)))
    est = np.asarray(W1.T @ st.tau).ravel()

    # BJS residuals: tau minus its average within (direct | exposed) x cohort x event-time cells
    strata = (~direct).astype(np.int64)
    cell_g = np.where(direct, G, E)
    if leaveout:
        tau_bar, pooled = _leaveout_means(st.tau, cell_g, ev, st.cc1, st.w, strata=strata)
    else:
        tau_bar, pooled = _cell_means(st.tau, st.w ** 2, strata, cell_g, ev), None
    scores = cluster_scores(st, W1, st.tau - tau_bar)
    V = scores.T @ scores
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    empty = counts == 0
    est[empty], se[empty] = np.nan, np.nan
    inf = normal_inference(est, se, alpha)
    rows = [{**sp_, "estimate": est[j], "std_error": se[j], "ci_low": inf["ci_low"][j], "ci_high": inf["ci_high"][j],
             "p_value": inf["p_value"][j], "weight": counts[j]} for j, sp_ in enumerate(specs)]

    kept = pd.Index(pd.unique(frame[unit]))
    meta: dict[str, Any] = {
        "label": "Imputation DiD with spillovers to neighbouring stations (Butts 2023; BJS 2024 first stage)",
        "control_group": "clean station-months: not treated and no treated neighbour",
        "exposure": "untreated station-month with at least one treated neighbour (adjacency table)",
        "n_exposed_stations": int(exposed_units.reindex(kept).sum()),
        "n_exposed_obs": int((~direct).sum()),
        "n_direct_obs": int(direct.sum()),
        "n_clean_obs": int(st.eps0.size),
        "n_adjacency_pairs": int(len(adj) // 2),
        "dropped_exposed_from_start": int(len(from_start)),
        "n_not_imputable": int(imp.meta["n_not_imputable_dropped"]),
        "n_clusters": int(st.n_clusters), "cluster": cluster or unit,
        "leaveout": bool(leaveout), "leaveout_pooled": pooled, "alpha": alpha, "max_e": max_e,
        "pretrend": imp.meta["pretrend"],  # BJS Test 1 on clean rows, leads before the contamination onset
        "baseline_mean": baseline_mean(s.frame, outcome, time=time, cohort=cohort),
    }
    res = EstimationResult("spillover", outcome, make_estimates(rows), meta=meta,
                           tables={"pretrend_leads": imp.tables["pretrend_leads"]})
    ev_terms = [r["term"] for r in specs if r["kind"] == "event"]
    ej = [j for j, r in enumerate(specs) if r["kind"] == "event"]
    res.vcov = {"event": pd.DataFrame(V[np.ix_(ej, ej)], index=ev_terms, columns=ev_terms)}
    se_type = ("BJS conservative imputation variance, clustered; clean-row first stage; tau_bar by "
               "(treated | exposed) x cohort x event time" + (", leave-own-cluster-out" if leaveout else ""))
    opts = {"adjacency": adjacency, "unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "alpha": alpha,
            "horizons": horizons, "max_e": max_e, "leaveout": leaveout}
    return finish_result(res, s, spec="spillover", options=opts,
                         inference=inference_meta(se_type, n_clusters=int(st.n_clusters), cluster=cluster or unit,
                                                  leaveout=bool(leaveout)))
