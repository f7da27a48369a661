"""Who gains most: the headline effect by subgroup, from ONE fit of the headline estimator.

:func:`subgroup_effects` splits the headline estimand (the average effect over the adopting
stations' months 0..H, :mod:`evalkit.estimand`) by a station-level column (``area_type``,
``county``, ...), by station size (``size_class``: terciles of ``population``) or by adoption
cohort (``cohort``), without refitting:

* **imputation** (BJS): the subgroup effect is the mean of ``tau_it`` over the subgroup's
  adopter-months ``0..H`` (equal weights, or the fit's observation weights); its variance is the
  BJS imputation variance of that weighted sum (the fit's first stage, ``result._imputation``).
  The residual averages ``tau_bar`` are taken by cohort x event time *within* each subgroup (did_imputation
  ``avgeffectsby``), so effects that differ between subgroups do not inflate the variance. Each
  subgroup effect, with its standard error, equals the estimator refitted on the same panel with
  the other subgroups' post-adoption rows removed (same untreated rows, same first stage).
* **CS** (Callaway–Sant'Anna): ATT(g,t) averages whole cohorts, so only groupings that are
  constant within a cohort are available (``cohort``, or a column on which each cohort agrees):
  the subgroup effect is the simple aggregation (cohort-size weights) over the subgroup's cohorts'
  cells ``0 <= t - g <= H``, with R ``did``'s influence function (including the estimated-weight term).
  Station-level groupings that cut across cohorts have no CS estimate from one fit.

The equality test is the Wald test of ``theta_1 = ... = theta_K`` with the joint covariance of the
subgroup effects (the same influence functions / cluster scores, so their correlation through the
shared comparison stations is accounted for, not assumed away); a singular or ill-conditioned
covariance gives "not available" with the reason. Every subgroup gets adopter and comparison
counts and a verdict code from :func:`evalkit.verdict.decide` with the same floors as the headline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.distributions import chi2_sf
from evalkit.results import normal_inference
from evalkit.verdict import decide

#: groupings computed from the panel rather than read from a column
SIZE_CLASS = "size_class"
COHORT = "cohort"
#: size-class labels (terciles of station population, smallest first)
SIZE_LABELS = ("small", "medium", "large")
#: the Wald statistic is "not available" below this reciprocal condition number (as the CS pre-tests)
RCOND_MIN = 1e-10


@dataclass
class SubgroupResult:
    """Subgroup effects of one fitted headline.

    ``table``: one row per subgroup: ``group``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
    ``p_value`` (outcome units; ``pct``/``pct_low``/``pct_high``: percent of ``baseline_mean`` when
    known), ``n_adopters``, ``n_comparison``, ``n_adopter_months``, ``verdict``, ``caps``.
    ``overall``: the headline estimate and its interval. ``vcov``: joint covariance of the subgroup
    effects. ``equality``: ``stat``, ``df``, ``p_value``, ``status`` ("ok" / "not available") and
    ``reason``.
    """

    by: str
    estimator: str
    table: pd.DataFrame
    overall: dict[str, float]
    vcov: pd.DataFrame
    equality: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def station_groups(panel: pd.DataFrame, by: str, *, unit: str = "station_id",
                   population: str = "population") -> pd.Series:
    """Subgroup label of every station (index: station id) for a station-level column ``by`` or
    :data:`SIZE_CLASS` (terciles of the stations' ``population``, every station of the panel
    counted once, labelled :data:`SIZE_LABELS`). One-line ``ValueError`` for an unknown column, a
    missing label or a column that varies within a station."""
    col = population if by == SIZE_CLASS else by
    if col not in panel.columns:
        have = ", ".join(c for c in panel.columns if c not in (unit,))
        raise ValueError(f"subgroups: no column {col!r} in the panel (by={by!r}); choose one of: {have}, "
                         f"{SIZE_CLASS}, {COHORT}")
    per = panel[[unit, col]].drop_duplicates()
    if per[col].isna().any():
        st = per.loc[per[col].isna(), unit].iloc[0]
        raise ValueError(f"subgroups: column {col!r} is missing for station {st!r}; fill it or choose another --by")
    dup = per[unit].duplicated(keep=False)
    if dup.any():
        st = per.loc[dup, unit].iloc[0]
        raise ValueError(f"subgroups: column {col!r} takes several values for station {st!r}; "
                         "subgroups need one value per station")
    s = per.set_index(unit)[col]
    if by == SIZE_CLASS:
        pop = pd.to_numeric(s, errors="raise").astype(float)
        if pop.nunique() < 3:
            raise ValueError(f"subgroups: size classes need at least 3 distinct {col!r} values, got {pop.nunique()}")
        # terciles of the station population (ranks break ties so each class gets a third of the stations)
        s = pd.qcut(pop.rank(method="first"), 3, labels=list(SIZE_LABELS)).astype(str)
    return s


def subgroup_effects(result: Any, by: str, panel: pd.DataFrame | None = None, *, alpha: float = 0.05,
                     unit: str = "station_id", pretrend_p: float | None = None, robust: bool | None = None,
                     disagree: bool = False) -> SubgroupResult:
    """Headline effect by subgroup ``by`` from a fitted headline ``result`` (imputation or CS fit
    made in this process), its joint covariance and the test that all subgroup effects are equal.

    ``panel``: the panel the result was fitted on (needed for any ``by`` other than ``cohort``).
    ``pretrend_p`` / ``robust`` / ``disagree``: the headline's diagnostics passed to each subgroup's
    :func:`~evalkit.verdict.decide` (default: none, so a significant subgroup is at most 证据有限 —
    no subgroup-specific pre-trend test or sensitivity analysis is run); the floors use each
    subgroup's own adopter count and the comparison stations the fit used.
    """
    if by != COHORT and panel is None:
        raise ValueError(f"subgroups by {by!r} need the panel the result was fitted on")
    labels = None if by == COHORT else station_groups(panel, by, unit=unit)
    if getattr(result, "_imputation", None) is not None:
        est, V, grp, n_adopt, n_months, notes = _imputation(result._imputation, labels)
    elif getattr(result, "_gt", None) is not None and result.estimator == "cs":
        est, V, grp, n_adopt, n_months, notes = _cs(result, labels, by)
    else:
        raise ValueError(f"subgroups need an imputation or CS fit made in this process (got {result.estimator!r} "
                         "without its stored fit); fit the headline estimator again")
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    inf = normal_inference(est, se, alpha)
    n_comp = int(result.meta.get("n_control", 0))
    base = result.meta.get("baseline_mean")
    rows = []
    for j, gname in enumerate(grp):
        v = decide(float(inf["p_value"][j]), pretrend_p, alpha=alpha, robust=robust, n_treated=int(n_adopt[j]),
                   n_control=n_comp, disagree=disagree)
        rows.append({"group": gname, "estimate": est[j], "std_error": se[j], "ci_low": inf["ci_low"][j],
                     "ci_high": inf["ci_high"][j], "p_value": inf["p_value"][j], "n_adopters": int(n_adopt[j]),
                     "n_comparison": n_comp, "n_adopter_months": int(n_months[j]), "verdict": v.code,
                     "caps": ",".join(v.caps)})
    table = pd.DataFrame(rows)
    if base is not None and np.isfinite(base) and base != 0:
        for c, src in (("pct", "estimate"), ("pct_low", "ci_low"), ("pct_high", "ci_high")):
            table[c] = 100.0 * table[src] / base
    ov = result.estimates.query("kind == 'overall'").iloc[0]
    overall = {"estimate": float(ov["estimate"]), "ci_low": float(ov["ci_low"]), "ci_high": float(ov["ci_high"])}
    if base is not None and np.isfinite(base) and base != 0:
        overall.update({k + "_pct": 100.0 * overall[k] / base for k in ("estimate", "ci_low", "ci_high")})
    n_clusters = int(result.meta.get("n_clusters") or result.meta.get("inference", {}).get("n_clusters") or 0)
    vdf = pd.DataFrame(V, index=list(grp), columns=list(grp))
    return SubgroupResult(by, result.estimator, table, overall, vdf, equality_test(est, V, n_clusters), notes)


def equality_test(est: np.ndarray, V: np.ndarray, n_clusters: int = 0) -> dict[str, Any]:
    """Wald test that the ``K`` effects ``est`` (joint covariance ``V``) are all equal: the ``K - 1``
    differences from the first are zero, chi-square with ``K - 1`` df; "not available" (NaN
    statistic, a reason) with fewer than 2 subgroups, too few clusters, or a singular covariance."""
    k = len(est) - 1
    if k < 1:
        return _na(0, "fewer than two subgroups with adopters: nothing to compare")
    if 0 < n_clusters <= k:
        return _na(k, f"{k} differences but only {n_clusters} clusters: their covariance is singular")
    R = np.hstack([-np.ones((k, 1)), np.eye(k)])
    d = R @ est
    W = R @ V @ R.T
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(d))):
        return _na(k, "the subgroup effects or their covariance are not finite")
    ev = np.linalg.eigvalsh((W + W.T) / 2)
    rcond = ev.min() / ev.max() if ev.max() > 0 else 0.0
    if not rcond >= RCOND_MIN:
        return _na(k, f"the covariance of the {k} subgroup differences is singular or ill-conditioned "
                      f"(reciprocal condition number {rcond:.1e} < {RCOND_MIN:g})")
    stat = float(d @ np.linalg.solve(W, d))
    return {"stat": stat, "df": k, "p_value": float(chi2_sf(stat, k)), "status": "ok", "reason": ""}


def _na(df: int, reason: str) -> dict[str, Any]:
    return {"stat": float("nan"), "df": int(df), "p_value": float("nan"), "status": "not available", "reason": reason}


def _sorted_groups(values: np.ndarray) -> list:
    vals = pd.unique(values)
    try:
        return sorted(vals.tolist())
    except TypeError:
        return sorted(vals.tolist(), key=str)


def _imputation(st: Any, labels: pd.Series | None):
    """Subgroup means of tau over adopter-months 0..H, their joint BJS covariance (see module doc)."""
    from evalkit.estimators.imputation import _leaveout_means, cluster_scores

    post = st.e >= 0
    if st.max_e is not None:
        post &= st.e <= st.max_e
    if labels is None:
        lab = st.g.astype(float)
    else:
        lab = labels.reindex(pd.Index(st.unit)).to_numpy()
        if pd.isna(lab).any():
            miss = st.unit[pd.isna(lab)][0]
            raise ValueError(f"subgroups: adopting station {miss!r} of the fit is not in the panel given; "
                             "pass the panel the result was fitted on")
    groups = _sorted_groups(lab[post])
    code = pd.Index(groups).get_indexer(lab)  # -1: treated rows outside 0..H of a group with no post rows
    notes = []
    if labels is not None:
        empty = sorted(set(labels.unique().tolist()) - set(groups), key=str)
        if empty:
            notes.append(f"no adopting station in: {', '.join(map(str, empty))}")
    k = len(groups)
    m = post & (code >= 0)
    wsum = np.bincount(code[m], weights=st.w[m], minlength=k)
    W1 = sp.csr_matrix((st.w[m] / wsum[code[m]], (np.flatnonzero(m), code[m])), shape=(st.tau.size, k))
    est = np.asarray(W1.T @ st.tau).ravel()
    strata = np.where(code >= 0, code, k)  # pre-adoption (anticipation) rows of no post group: their own stratum
    if st.leaveout:
        tau_bar, _ = _leaveout_means(st.tau, st.g, st.e, st.cc1, st.w, strata=strata)
    else:
        cell = pd.DataFrame({"s": strata, "g": st.g, "e": st.e, "w2": st.w**2, "w2tau": st.w**2 * st.tau})
        sums = cell.groupby(["s", "g", "e"])[["w2", "w2tau"]].transform("sum")
        tau_bar = (sums["w2tau"] / sums["w2"]).to_numpy()
    s = cluster_scores(st, W1, st.tau - tau_bar)
    V = s.T @ s
    n_adopt = np.array([pd.unique(st.unit[m & (code == j)]).size for j in range(k)])
    n_months = np.bincount(code[m], minlength=k)
    names = [_fmt(x) for x in groups]
    return est, V, names, n_adopt, n_months, notes


def _cs(result: Any, labels: pd.Series | None, by: str):
    """Subgroups of whole cohorts: the simple aggregation over each subgroup's cohorts' cells."""
    from evalkit.estimators._cs_aggte import _combos

    gt = result._gt
    prep, core = gt.prep, gt.core
    cohorts = prep.cohorts
    cidx = {v: i for i, v in enumerate(cohorts)}
    cells = core.cells
    gv = np.array([c[0] for c in cells], dtype=float)
    tv = prep.periods[np.array([c[1] for c in cells], dtype=np.intp)].astype(float)
    coh = np.array([cidx[g] for g in gv], dtype=np.intp)
    pg = core.pg_coh[coh]
    trim = (result.context.options.get("trim_e") if getattr(result, "context", None) is not None else None)
    hi = np.inf if trim is None or trim[1] is None else trim[1]
    recode = np.unique(np.concatenate([prep.periods, cohorts[np.isfinite(cohorts)]]))  # as _cs_aggte.aggregate
    rg, rt = np.searchsorted(recode, gv), np.searchsorted(recode, tv)
    post = (rg <= rt) & (rt <= rg + hi)
    units = np.asarray(prep.units)
    g_unit = pd.Series(np.asarray(prep.gu, dtype=float), index=units)  # np.inf = never treated
    adopters = g_unit[np.isfinite(g_unit.to_numpy())]
    if labels is None:
        lab_of_g = {g: g for g in adopters.unique()}
    else:
        lab_u = labels.reindex(adopters.index)
        if lab_u.isna().any():
            raise ValueError(f"subgroups: adopting station {lab_u.index[lab_u.isna()][0]!r} of the fit is not in "
                             "the panel given; pass the panel the result was fitted on")
        per_g = pd.DataFrame({"g": adopters.to_numpy(), "lab": lab_u.to_numpy()}).drop_duplicates()
        split = per_g["g"].duplicated(keep=False)
        if split.any():
            g0 = per_g.loc[split, "g"].iloc[0]
            raise ValueError(f"subgroups: CS averages whole adoption cohorts, but {by!r} varies within the cohort "
                             f"adopting in period {_fmt(g0)}; use the imputation headline (--method imputation) "
                             f"or --by {COHORT}")
        lab_of_g = dict(zip(per_g["g"], per_g["lab"], strict=True))
    lab_cell = np.array([lab_of_g.get(g) for g in gv], dtype=object)
    groups = _sorted_groups(np.array([lab_of_g[g] for g in gv[post] if g in lab_of_g], dtype=object))
    specs = []
    for gname in groups:
        keep = np.flatnonzero(post & (lab_cell == gname))
        specs.append((keep, pg[keep] / pg[keep].sum(), True))
    est, th = _combos(core.att, core.th_gt, coh, pg, specs, len(cohorts), core.ind0, core.th_sp)
    n = prep.y.shape[0]
    V = gt.design.quad(th) / n**2
    size = adopters.value_counts()
    n_adopt = np.array([int(sum(size[g] for g in size.index if lab_of_g[g] == gname)) for gname in groups])
    # adopter-months of a balanced panel: each post cell (g, t) counts the cohort's stations
    n_months = np.array([int(sum(size.get(g, 0) for g in gv[post & (lab_cell == gname)])) for gname in groups])
    notes = []
    return est, V, [_fmt(x) for x in groups], n_adopt, n_months, notes


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


__all__ = ["COHORT", "SIZE_CLASS", "SIZE_LABELS", "SubgroupResult", "equality_test", "station_groups",
           "subgroup_effects"]
