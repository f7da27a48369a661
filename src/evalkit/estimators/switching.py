"""Event-study DiD for treatments that switch on and off (de Chaisemartin & D'Haultfœuille 2024).

``did_multiplegt_dyn``: a group's *first switch* is the first period its treatment differs from its
first-period (baseline) value. For ``ℓ = 1..L`` the effect ``DID_ℓ`` compares each switcher's outcome
change from the period before its switch to ``ℓ − 1`` periods after it, with the same change of the
groups that share its baseline and have not switched yet (Y_{F−1+ℓ} − Y_{F−1}); placebos ``ℓ = 1..P``
compare Y_{F−1−ℓ} − Y_{F−1} with the same controls. Switchers in (treatment goes up) and out (down)
are estimated separately (out with the outcome's sign flipped, so both measure the effect of more
treatment) and pooled with their numbers of switchers. The *average total effect* (the ``overall``
row) is Σ_ℓ w_ℓ DID_ℓ / Σ_ℓ w_ℓ δ^D_ℓ, w_ℓ ∝ switchers at ℓ and δ^D_ℓ the switchers' mean absolute
treatment change: the effect per unit of treatment change, summed over the period of the change and
the following ones (up to ``effects``).

Analytic SEs from the per-group influence functions with the paper's cohort demeaning (the package's
default "conservative" SEs), summed within clusters; no small-sample factor. See docs/estimators-other.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evalkit.distributions import norm_ppf, norm_sf
from evalkit.estimators._common import finish_result, inference_meta, wald_test
from evalkit.estimators._sample import PanelInputError, SampleInfo, StaggeredSample
from evalkit.estimators._switching_core import Component, component, group_facts
from evalkit.results import EstimationResult

_SWITCHERS = {"in": (1,), "out": (-1,), "both": (1, -1)}


def check_switching_panel(panel: pd.DataFrame, outcome: str, treatment: str, unit: str, time: str,
                          cluster: str | None) -> None:
    """One-line :class:`PanelInputError` for a missing column, a missing or non-finite treatment, an
    infinite outcome, a duplicated unit-period or a unit without a row in some period."""
    if not isinstance(panel, pd.DataFrame):
        raise PanelInputError(f"switching: panel must be a pandas DataFrame, got {type(panel).__name__}")
    for col in (outcome, treatment, unit, time) + ((cluster,) if cluster else ()):
        if col not in panel.columns:
            raise PanelInputError(f"switching: column {col!r} not in the panel; columns are {list(panel.columns)[:12]}")
    for col in (treatment, outcome):
        v = pd.to_numeric(panel[col], errors="coerce")
        bad = panel.index[v.isna() & panel[col].notna()]
        if len(bad):
            raise PanelInputError(f"column {col!r}: non-numeric values in rows {list(bad[:5])}; fix the input")
    d = panel[treatment].to_numpy(dtype=float)
    if np.isnan(d).any():
        rows = list(panel.index[np.isnan(d)][:5])
        raise PanelInputError(f"column {treatment!r}: missing treatment in rows {rows}; every unit-period needs one")
    if not np.isfinite(d).all():
        rows = list(panel.index[~np.isfinite(d)][:5])
        raise PanelInputError(f"column {treatment!r}: non-finite treatment in rows {rows}; fix the input")
    y = panel[outcome].to_numpy(dtype=float)
    if np.isinf(y).any():
        rows = list(panel.index[np.isinf(y)][:5])
        raise PanelInputError(f"column {outcome!r}: infinite values in rows {rows}; use NaN for a missing outcome")
    dup = panel.duplicated([unit, time])
    if dup.any():
        raise PanelInputError(f"columns {unit!r}/{time!r}: duplicated unit-period in rows {list(panel.index[dup][:5])}")
    n_t = panel[time].nunique()
    per_unit = panel.groupby(unit)[time].nunique()
    short = per_unit[per_unit < n_t]
    if len(short):
        raise PanelInputError(f"column {time!r}: unit {short.index.tolist()[0]!r} has {int(short.iloc[0])} of {n_t} periods; "
                              f"the estimator needs each unit's treatment in every period (outcome may be NaN)")


def _pool(comps: list[Component]) -> tuple[np.ndarray, np.ndarray, int]:
    n = sum(c.n_switchers for c in comps)
    if n == 0:
        return comps[0].U * np.nan, comps[0].U_var * np.nan, 0
    return (sum(c.n_switchers / n * c.U for c in comps), sum(c.n_switchers / n * c.U_var for c in comps), n)


def estimate_switching(
    panel: pd.DataFrame,
    outcome: str,
    *,
    treatment: str = "treatment",
    unit: str = "station_id",
    time: str = "period",
    cluster: str | None = None,
    alpha: float = 0.05,
    effects: int = 1,
    placebo: int = 0,
    switchers: str = "both",
) -> EstimationResult:
    """dCDH event study: effects ``ℓ = 1..effects`` after the first switch (``event_time = ℓ − 1``, in
    periods), placebos ``ℓ = 1..placebo`` (``event_time = −ℓ``), the average total effect (``overall``;
    outcome units per unit of treatment) and the joint placebo test (``meta["pretrend"]``).

    ``treatment``: the unit-period treatment (binary or ordered levels; may go up and down).
    ``switchers``: ``"in"``, ``"out"`` or ``"both"`` (pooled). ``cluster``: column constant within units
    (default: the unit).
    """
    if switchers not in _SWITCHERS:
        raise ValueError(f"switching: switchers must be one of {tuple(_SWITCHERS)}, got {switchers!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"switching: alpha must be in (0, 1), got {alpha!r}")
    for name, v, lo in (("effects", effects, 1), ("placebo", placebo, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"switching: {name} must be an integer >= {lo}, got {v!r}")
    if isinstance(panel, StaggeredSample):  # a refit from result.context: its frame is the checked panel
        panel = panel.frame
    check_switching_panel(panel, outcome, treatment, unit, time, cluster)
    if cluster is not None and cluster != unit and (panel.groupby(unit)[cluster].nunique() > 1).any():
        raise PanelInputError(f"column {cluster!r}: varies within a unit; clusters must nest units")

    f = panel.sort_values([unit, time]).reset_index(drop=True)
    units = pd.Index(pd.unique(f[unit]))
    periods = np.sort(f[time].unique())
    ucode = units.get_indexer(f[unit])
    tcode = np.searchsorted(periods, f[time].to_numpy())
    G0, T = len(units), len(periods)
    y = np.full((G0, T), np.nan)
    d = np.full((G0, T), np.nan)
    y[ucode, tcode] = f[outcome].to_numpy(dtype=float)
    d[ucode, tcode] = f[treatment].to_numpy(dtype=float)
    _, keep, cells_out = group_facts(d)
    y, d = y[keep], d[keep]
    gr, _, cells_out = group_facts(d)
    n_out = int((cells_out & np.isfinite(y)).sum())
    y[cells_out] = np.nan
    G = int(keep.sum())
    clus = None
    n_clusters = G
    if cluster is not None and cluster != unit:
        cl = f.groupby(unit, sort=False)[cluster].first().reindex(units).to_numpy()[keep]
        clus, _cl = pd.factorize(cl)
        n_clusters = len(_cl)
    dirs = _SWITCHERS[switchers]
    if not (np.isin(gr.S, dirs)).any():
        raise PanelInputError(f"column {treatment!r}: no unit switches {'in or out' if switchers == 'both' else switchers}; "
                              f"nothing to estimate")

    cols: list[np.ndarray] = []
    cols_var: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    # average total effect: per direction Σ w_ℓ U_ℓ / Σ w_ℓ δ^D_ℓ, directions pooled by den × Σ N
    ate_num = {s: (np.zeros(G), np.zeros(G)) for s in dirs}
    ate_den, ate_n = dict.fromkeys(dirs, 0.0), dict.fromkeys(dirs, 0)
    eff_comps = {}
    for ell in range(1, effects + 1):
        comps = [component(y, d, gr, ell, s, False, clus) for s in dirs]
        eff_comps[ell] = comps
        for s, c in zip(dirs, comps, strict=True):
            ate_n[s] += c.n_switchers
        U, V, n = _pool(comps)
        cols.append(U)
        cols_var.append(V)
        rows.append({"kind": "event", "term": f"Effect_{ell}", "event_time": ell - 1, "weight": float(n)})
    for s in dirs:
        if ate_n[s] == 0:
            continue
        for ell in range(1, effects + 1):
            c = eff_comps[ell][dirs.index(s)]
            if c.n_switchers:
                w = c.n_switchers / ate_n[s]
                ate_num[s][0][:] += w * c.U
                ate_num[s][1][:] += w * c.U_var
                ate_den[s] += w * c.delta_d
    tot = sum(ate_den[s] * ate_n[s] for s in dirs)
    U_ate, V_ate = np.zeros(G), np.zeros(G)
    for s in dirs:
        if ate_n[s]:
            w = ate_den[s] * ate_n[s] / tot
            U_ate += w * ate_num[s][0] / ate_den[s]
            V_ate += w * ate_num[s][1] / ate_den[s]
    for ell in range(1, placebo + 1):
        U, V, n = _pool([component(y, d, gr, ell, s, True, clus) for s in dirs])
        cols.append(U)
        cols_var.append(V)
        rows.append({"kind": "event", "term": f"Placebo_{ell}", "event_time": -ell, "weight": float(n)})
    rows.insert(0, {"kind": "overall", "term": "Av_tot_effect", "weight": float(sum(ate_n.values()))})
    Um = np.column_stack([U_ate, *cols])
    Vm = np.column_stack([V_ate, *cols_var])
    if clus is not None:
        Vm = np.vstack([np.bincount(clus, weights=Vm[:, j], minlength=n_clusters) for j in range(Vm.shape[1])]).T
    est = Um.sum(axis=0) / G
    cov = (Vm.T @ Vm) / G ** 2
    se = np.sqrt(np.diag(cov))
    tab = pd.DataFrame(rows)
    tab["estimate"], tab["std_error"] = est, se
    z = norm_ppf(1 - alpha / 2)
    tab["ci_low"], tab["ci_high"] = est - z * se, est + z * se
    with np.errstate(divide="ignore", invalid="ignore"):
        tab["p_value"] = np.where(se > 0, 2 * norm_sf(np.abs(est / se)), np.nan)
    pl = np.arange(1 + effects, 1 + effects + placebo)
    terms = list(tab["term"])
    ev = np.arange(1, len(terms))
    vcov = {"event": pd.DataFrame(cov[np.ix_(ev, ev)], index=terms[1:], columns=terms[1:])}
    pretrend = wald_test(est[pl], cov[np.ix_(pl, pl)]) if placebo else {"stat": float("nan"), "df": 0,
                                                                        "p_value": float("nan")}

    n_sw = int((gr.S != 0).sum())
    # The placebos' covariance comes from the switchers' influence terms: with few switchers the χ² test
    # over-rejects (docs/monte-carlo.md: 40-64 % at a true null in a county). Hotelling's F with the
    # switchers as the sample is the small-sample reading; p_value stays the χ² of did_multiplegt_dyn.
    from evalkit.inference.pretrend import hotelling_f_pvalue

    pretrend["p_value_f"] = hotelling_f_pvalue(pretrend["stat"], int(pretrend["df"]), n_sw) if placebo else float("nan")
    pretrend["n_switchers"] = n_sw
    # mean outcome of the switchers before their first switch (for percent effects, as other estimators)
    pre = (gr.S != 0)[:, None] & (np.arange(T)[None, :] < gr.F[:, None])
    baseline = float(np.nanmean(y[pre])) if np.isfinite(y[pre]).any() else float("nan")
    info = SampleInfo(n_units=G, n_treated=n_sw, n_control=G - n_sw, n_periods=T,
                      n_obs=int(np.isfinite(y).sum()), first_period=int(periods[0]), last_period=int(periods[-1]),
                      balanced=bool(np.isfinite(y).all()),
                      dropped_units={"no_switch_direction": int((~keep).sum())} if (~keep).any() else {},
                      dropped_cells={k: v for k, v in (("missing_outcome", int(np.isnan(y).sum()) - n_out),
                                                       ("above_and_below_baseline", n_out)) if v})
    meta: dict[str, Any] = {
        "label": "de Chaisemartin & D'Haultfœuille (2024) event study (did_multiplegt_dyn)",
        "control_group": "not yet switched, same baseline treatment", "base_period": "period before the first switch",
        "treatment": treatment, "switchers": switchers, "effects": int(effects), "placebo": int(placebo),
        "n_obs": info.n_obs, "n_periods": T, "n_clusters": int(n_clusters), "cluster": cluster or unit,
        "alpha": alpha, "n_switchers_in": int((gr.S == 1).sum()), "n_switchers_out": int((gr.S == -1).sum()),
        "pretrend": pretrend, "baseline_mean": baseline,
        "delta_d": {("in" if s == 1 else "out"): ate_den[s] for s in dirs},
    }
    res = EstimationResult("switching", outcome, tab, meta=meta, vcov=vcov)
    sample = StaggeredSample(frame=f, outcome=outcome, unit=unit, time=time, cohort=treatment, cluster=cluster,
                             weights=None, info=info)
    options = {"treatment": treatment, "unit": unit, "time": time, "cluster": cluster, "alpha": alpha,
               "effects": effects, "placebo": placebo, "switchers": switchers}
    inf = inference_meta("influence function, cohort-demeaned (dCDH 2024; no small-sample factor)",
                         n_clusters=int(n_clusters), cluster=cluster or unit)
    return finish_result(res, sample, spec="switching", options=options, inference=inf)
