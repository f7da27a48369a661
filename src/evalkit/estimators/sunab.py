"""Sun & Abraham (2021) interaction-weighted (IW) event study.

The saturated TWFE regression

    y_it = a_i + l_t + sum_{g, e != ref} d_{g,e} 1{G_i = g, t - g = e} + u_it

is fitted on the treated cohorts plus a clean control group (never-treated units, or the
last-treated cohort on the periods before it is treated), with the unit effects absorbed
exactly and the time effects as sparse dummies (:mod:`evalkit.estimators._fe`).  The cohort x
relative-period coefficients are aggregated with cohort shares as in fixest's ``sunab()``:

* event time ``e``: ``sum_g n_{g,e} d_{g,e} / sum_g n_{g,e}`` (``n`` = observations in the cell),
* overall ATT: ``sum_{e >= 0} sum_g n_{g,e} d_{g,e} / sum_{e >= 0} sum_g n_{g,e}``
  (fixest ``sunab(..., att = TRUE)`` / ``aggregate(x, "att")``),

with delta-method SEs from the cluster-robust covariance of the ``d_{g,e}`` (fixest default
small-sample factor, see :func:`evalkit.estimators._fe.small_sample`) and t(G-1).

``max_e=H`` restricts the overall ATT (and the event-time rows) to ``e <= H`` by aggregating only
the interaction cells ``0 <= e <= H`` with the same cell-size weights, i.e. the average of the
cell effects over adopter-months ``0..H`` (the headline estimand, :mod:`evalkit.estimand`). The
cells after ``H`` stay in the regression with their own dummies (never pooled into an end bin,
which would force one effect on them and move the time effects), so every other cell is the
unrestricted fit's; they are reported as ``gt`` rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result
from evalkit.estimators._cs_schedule import blas_pinned
from evalkit.estimators._fe_grid import GRID_SPARSE_MIN_ROWS, grid_fit, nested_grid_clusters
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators._sample import bin_event_time, check_event_window
from evalkit.results import EstimationResult, make_estimates


@blas_pinned  # small dense products: threaded OpenBLAS only spins on a busy machine
def estimate_sunab(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    weights: str | None = None,
    control: str = "never",
    anticipation: int = 0,
    bin_e: tuple[int | None, int | None] | None = None,
    max_e: int | None = None,
    **options,
) -> EstimationResult:
    """Sun & Abraham interaction-weighted event study.

    Parameters
    ----------
    weights: column of observation weights (fixest ``weights``): weighted least squares for the
        cohort x relative-period cells, and the cells are aggregated with weight sums instead of
        observation counts.
    control: ``"never"`` (never-treated units are the control cohort; default) or
        ``"lastcohort"`` (the last-treated cohort is the control; the sample is cut to the
        periods before that cohort is treated, minus anticipation; never-treated units dropped).
    anticipation: periods of anticipation; the reference period is ``e = -1 - anticipation``.
    bin_e: ``(lo, hi)``: bin relative periods below ``lo`` into ``lo`` and above ``hi`` into ``hi``
        (fixest ``bin.rel``-style endpoint binning; ``None`` ends are open).  Relative periods are
        ``time - cohort`` in the units of ``time``.  (Trimming, ``trim_e``, is not offered: drop
        the cells instead of pooling them would change the estimand of every other cell.)
    max_e: last event time of the overall ATT and of the event-time rows (module docstring; the
        headline estimand over adopter-months ``0..max_e``). ``bin_e``'s upper end must then be
        ``None`` or above ``max_e``. ``None`` (default, as fixest): every cell with ``e >= 0``.
    """
    _fe.check_options("sa", options, ("unit", "time", "cohort", "cluster", "alpha", "weights", "control",
                                      "anticipation", "bin_e", "max_e"))
    if control not in ("never", "lastcohort"):
        raise ValueError("control must be 'never' or 'lastcohort'")
    ref = -1 - int(anticipation)
    bin_lo, bin_hi = check_event_window(bin_e, "bin_e") or (None, None)
    if bin_lo is not None and bin_lo > ref:
        raise ValueError(f"bin_e lower end ({bin_lo}) must be <= the reference period {ref}")
    if bin_hi is not None and bin_hi < 0:
        raise ValueError("bin_e upper end must be >= 0")
    if max_e is not None:
        if isinstance(max_e, bool) or not isinstance(max_e, (int, np.integer)) or max_e < 0:
            raise ValueError(f"sa: max_e must be an integer >= 0 (last event time of the overall ATT), got {max_e!r}")
        if bin_hi is not None and bin_hi <= max_e:
            raise ValueError(f"sa: bin_e upper end {bin_hi} pools event times after max_e={max_e} into the overall "
                             f"ATT; pass bin_e=({bin_lo}, None)")

    cluster = unit if cluster is None else cluster
    smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    g, t = smp.cohort, smp.period
    w_all = smp.weights
    n_always = int(smp.info.dropped_units.get("treated_from_first_period", 0))
    keep = np.ones(g.size, dtype=bool)
    note = []
    if control == "lastcohort":
        if not np.isfinite(g).any():
            raise ValueError("no treated cohort in the sample")
        gl = np.max(g[np.isfinite(g)])
        keep &= np.isfinite(g) & (t < gl - anticipation)
        is_control = g == gl
        control_label = f"last-treated cohort ({gl:g})"
        note.append("never-treated units dropped; sample cut to periods before the last cohort is treated")
    else:
        is_control = ~np.isfinite(g)
        if not is_control.any():
            raise ValueError("no never-treated units: use control='lastcohort'")
        control_label = "never treated"
    # cohorts never observed at the reference period are not identified: drop them (reported)
    e_raw = t - np.where(np.isfinite(g), g, 0)
    has_ref = np.isin(g, np.unique(g[(e_raw == ref) & keep]))  # the cohort has a kept row at e = ref (no groupby)
    no_ref = keep & ~is_control & ~has_ref
    dropped_cohorts = sorted({float(v) for v in g[no_ref]})
    keep &= ~no_ref
    if dropped_cohorts:
        note.append(f"cohorts without an observation at e={ref} dropped: {dropped_cohorts}")
    g, t, is_control = g[keep], t[keep], is_control[keep]
    w = None if w_all is None else w_all[keep]
    y = smp.y[keep]

    # codes of the kept rows (the shared sample's codes of sorted labels, re-compacted)
    uc, n_units = _fe.compact_codes(smp.unit[keep])
    tc, n_times = _fe.compact_codes(smp.time[keep])
    cc, G = _fe.compact_codes(smp.cluster[keep])

    # relative period (binned) for treated cohorts
    treated_unit_obs = ~is_control
    e = np.where(treated_unit_obs, t - np.where(np.isfinite(g), g, 0), np.nan)
    e = bin_event_time(e, (bin_lo, bin_hi))
    inter = treated_unit_obs & (e != ref)
    # cells sorted by (cohort, event time); ids from one numpy pass (no MultiIndex)
    gc, gu = _fe.codes(g[inter])
    ec, eu = _fe.codes(e[inter])
    cell_id, key = _fe.codes(gc * eu.size + ec)  # sorted keys = (cohort, event time) order
    cells = pd.DataFrame({"g": gu[key // eu.size], "e": eu[key % eu.size]})
    rows = np.flatnonzero(inter)
    K = len(cells)
    Zint = sp.csr_matrix((np.ones(rows.size), (rows, cell_id)), shape=(y.size, K))
    grid = smp.grid if keep.all() and y.size >= GRID_SPARSE_MIN_ROWS else None
    if grid is not None and nested_grid_clusters(cc, *grid):
        # national scale: the cells on the complete grid, unit and period effects double-demeaned (_fe_grid)
        gf = grid_fit(y, Zint, grid[0], grid[1], cc, G)
        keep_int, nested = gf.keep, True
        k_coef = int(keep_int.sum())
        factor, dfk, df_t = _fe.small_sample(y.size, k_coef, "CRV1", fe_levels=[n_units, n_times],
                                             fe_nested=[nested, G == 1], n_clusters=G)
        b, V = gf.coef, _fe.sandwich(gf.bread, gf.meat, factor)
    else:
        Ztime = _fe.time_dummies(tc, n_times)
        fit = _fe.absorb_fit(y, uc, sp.hstack([Ztime, Zint], format="csr"), w, n_units=n_units)
        nt = Ztime.shape[1]
        kept_time = int(fit.keep[:nt].sum())
        keep_int = fit.keep[nt:]
        nested = _fe.nested_in(uc, cc)
        meat = _fe.cluster_meat(fit.Z, fit.resid if w is None else w * fit.resid, cc, uc, fit.unit_means,
                                nested=nested)
        k_coef = int(keep_int.sum())
        factor, dfk, df_t = _fe.small_sample(y.size, k_coef, "CRV1", fe_levels=[n_units, n_times],
                                             fe_nested=[nested, _fe.nested_in(tc, cc)], n_clusters=G)
        V_all = _fe.sandwich(fit.bread, meat, factor)
        b = fit.theta[kept_time:]
        V = V_all[kept_time:, kept_time:]
    cells = cells[keep_int].reset_index(drop=True)
    # cell sizes (weight sums when weighted): the interaction-weighting shares
    n_cell = np.bincount(cell_id, weights=None if w is None else w[rows], minlength=K)[keep_int].astype(float)
    cells["n"] = n_cell
    cells["estimate"] = b
    cells["std_error"] = np.sqrt(np.diag(V))
    cells["term"] = [f"g={gg:g},e={ee:g}" for gg, ee in zip(cells["g"], cells["e"], strict=True)]

    # IW aggregation: event time (up to max_e)
    cell_e = cells["e"].to_numpy()
    in_window = np.ones(len(cells), dtype=bool) if max_e is None else cell_e <= max_e
    evs = np.sort(np.unique(cell_e[in_window]))
    W = np.zeros((evs.size, len(cells)))
    ev_pos = np.searchsorted(evs, cell_e[in_window])
    W[ev_pos, np.flatnonzero(in_window)] = n_cell[in_window]
    W /= W.sum(axis=1, keepdims=True)
    est_e = W @ b
    V_e = W @ V @ W.T
    se_e = np.sqrt(np.clip(np.diag(V_e), 0, None))
    post = (cell_e >= 0) & in_window
    if not post.any():
        raise ValueError("no post-treatment cells" + ("" if max_e is None else f" with e <= {max_e}"))
    w_att = np.where(post, n_cell, 0.0)
    w_att /= w_att.sum()
    att = float(w_att @ b)
    se_att = float(np.sqrt(w_att @ V @ w_att))

    ev_terms = [f"e={int(v)}" if float(v).is_integer() else f"e={v}" for v in evs]
    inf_e = _fe.t_inference(est_e, se_e, df_t, alpha)
    inf_a = _fe.t_inference(np.array([att]), np.array([se_att]), df_t, alpha)
    ev_weight = np.bincount(ev_pos, weights=n_cell[in_window], minlength=evs.size)
    rows_out = [{
        "kind": "overall", "term": "ATT", "estimate": att, "std_error": se_att,
        "ci_low": inf_a["ci_low"][0], "ci_high": inf_a["ci_high"][0], "p_value": inf_a["p_value"][0],
        "weight": 1.0,
    }]
    for j, ev in enumerate(evs):
        rows_out.append({
            "kind": "event", "term": ev_terms[j], "event_time": ev, "estimate": est_e[j],
            "std_error": se_e[j], "ci_low": inf_e["ci_low"][j], "ci_high": inf_e["ci_high"][j],
            "p_value": inf_e["p_value"][j], "weight": ev_weight[j] / n_cell[in_window].sum(),
        })
    inf_c = _fe.t_inference(cells["estimate"].to_numpy(), cells["std_error"].to_numpy(), df_t, alpha)
    # the cells' columns as arrays: a pandas scalar lookup per cell and column cost ~40 ms per fit
    # (329 cells); the same numpy scalars
    c_term, c_g, c_e = list(cells["term"]), cells["g"].to_numpy(), cells["e"].to_numpy()
    c_est, c_se = cells["estimate"].to_numpy(), cells["std_error"].to_numpy()
    for j in range(len(cells)):
        rows_out.append({
            "kind": "gt", "term": c_term[j], "group": c_g[j],
            "time": c_g[j] + c_e[j] if (bin_lo is None and bin_hi is None) else np.nan,
            "event_time": c_e[j], "estimate": c_est[j],
            "std_error": c_se[j], "ci_low": inf_c["ci_low"][j],
            "ci_high": inf_c["ci_high"][j], "p_value": inf_c["p_value"][j], "weight": n_cell[j],
        })

    pre = evs < ref
    pretrend = _fe.wald_test(est_e[pre], V_e[np.ix_(pre, pre)])
    pretrend["terms"] = [ev_terms[j] for j in np.flatnonzero(pre)]
    meta = {
        "label": "Sun & Abraham (2021) interaction-weighted event study",
        "control_group": control_label,
        "reference_period": ref,
        "anticipation": int(anticipation),
        "bin_e": None if bin_e is None else (bin_lo, bin_hi),
        "max_e": None if max_e is None else int(max_e),
        "weights": weights,
        "sample": smp.info.to_dict(),
        "inference": {"se_type": "CRV1", "ssc": factor, "dof_k": dfk, "df": df_t, "n_clusters": int(G),
                      "distribution": f"t({df_t})", "ssc_rule": _fe.SSC_RULES["CRV1"]},
        # the units the cells use (n_treated / n_control: the shared sample's, set by finish_result)
        "n_treated_used": int(np.unique(uc[~is_control]).size),
        "n_control_used": int(np.unique(uc[is_control]).size),
        "n_always_treated_dropped": n_always,
        "cohorts_dropped_no_reference": dropped_cohorts,
        "n_obs": int(y.size),
        "n_periods": int(n_times),
        "n_clusters": int(G),
        "cluster": cluster,
        "se_type": f"{_fe.SSC_LABEL}; factor={factor:.8f}, K={dfk}, t({df_t})",
        "ssc_factor": factor,
        "n_cells": int(len(cells)),
        "n_dropped_collinear": int((~keep_int).sum()),
        "alpha": alpha,
        "baseline_mean": _fe.baseline_mean(y, np.where(is_control, np.inf, g), t),
        "pretrend": pretrend,
        "notes": note,
    }
    vcov = {
        "event": pd.DataFrame(V_e, index=ev_terms, columns=ev_terms),
        "gt": pd.DataFrame(V, index=cells["term"], columns=cells["term"]),
    }
    tables = {"cells": cells[["g", "e", "n", "estimate", "std_error"]].rename(
        columns={"g": "cohort", "e": "event_time"})}
    res = EstimationResult("sa", outcome, make_estimates(rows_out), meta=meta, vcov=vcov, tables=tables)
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "weights": weights, "alpha": alpha,
            "control": control, "anticipation": anticipation, "bin_e": bin_e, "max_e": max_e}
    se_type = meta["se_type"]  # finish_result sets meta["se_type"] to the short type
    finish_result(res, smp.sample, spec="sa", options=opts, inference=meta["inference"])
    res.meta["se_type"] = se_type
    return res
