"""Borusyak, Jaravel & Spiess (2024) imputation estimator.

1. Fit ``y_it = a_i + l_t + e_it`` on the untreated observations ``Omega_0`` (never-treated and
   not-yet-treated, i.e. ``t < G_i - anticipation``), unit effects absorbed exactly, time effects
   as sparse dummies.
2. Impute ``Y_it(0) = a_i + l_t`` for the treated observations ``Omega_1`` and set
   ``tau_it = y_it - Y_it(0)``.
3. Estimands are weighted sums ``sum w_it tau_it``: the overall ATT (equal weights over treated
   observations with ``e >= 0``, or ``0 <= e <= max_e``: the headline estimand of
   :mod:`evalkit.estimand`) and one per event time (horizon).

Variance (BJS Theorem 3, "conservative"): with imputation weights ``v_it = w_it`` on
``Omega_1`` and ``v_0 = -Z_0 (Z_0'Z_0)^{-1} Z_1' w_1`` on ``Omega_0``,
``Var = sum_clusters (sum_it v_it e~_it)^2`` where ``e~`` is the first-stage residual on
``Omega_0`` and ``tau_it - tau_bar_{g,e}`` on ``Omega_1`` (``tau_bar`` = v^2-weighted mean within
cohort x event-time cells, which is the plain cell mean for these equal-weight estimands).
No small-sample factor (as in BJS and R ``didimputation``).  ``v_0`` is never formed as an
``N x H`` matrix: ``(Z_0'Z_0)^{-1} Z_1'w_1`` is solved through the unit-block Schur complement and
the cluster sums are sparse products.

Observation weights (``weights=``; R didimputation ``wname``, did2s ``weights``): the ``Omega_0``
model is weighted least squares, the estimands average ``tau`` with ``w_it / sum w`` over their
target set (these are ``v_it`` on ``Omega_1``), ``v_0 = -W_0 Z_0 (Z_0'W_0Z_0)^{-1} Z_1' v_1``, and
the cell averages of ``tau`` in the residuals are ``w^2``-weighted (``v`` is proportional to ``w``
within a cohort x event-time cell); the leave-out average uses weight sums for ``n``.

Leave-out variance (default, ``leaveout=True``; BJS Section 4.3 / Appendix A.6, Stata
``did_imputation, leaveout``): the residual of a treated observation of cluster ``c`` in cell
``k`` is ``tau_it - tau_bar_{k,-c}``, where ``tau_bar_{k,-c}`` excludes every observation of the
own cluster (= unit with the default clustering). It is the did_imputation "smart" average
``sum_{c' != c} n_{kc'} T_{kc'} / sum_{c' != c} n_{kc'}^2`` (``n``: observations, ``T``: sum of
``tau`` of cluster ``c'`` in the cell), i.e. the plain leave-one-unit-out cell mean when each
cluster has one observation per cell (a unit-clustered panel). With the in-sample mean the
own-observation part shrinks the residual by about ``(n-1)/n`` and a one-unit cohort contributes
nothing, so the non-leave-out variance is biased downwards in small cohorts.
Singleton cells: the leave-out mean does not exist when only one cluster has observations in the
cohort x event-time cell. did_imputation stops with an error there and tells the user to pass
coarser ``avgeffectsby`` groups (e.g. event time ``K``, pooling across cohorts, or ``D``). We pool
automatically, for those observations only: the leave-out mean over the event-time cell across all
cohorts; if that is also a one-cluster cell, over all treated observations (``avgeffectsby(D)``);
if there is only one treated cluster at all, the in-sample cohort x event-time mean (non-leave-out)
is used and a warning is issued. Counts are in ``meta['leaveout_pooled']``.

Pre-trend test (BJS Test 1): on ``Omega_0`` only, regress ``y`` on unit + time FE and lead
dummies ``1{t - G_i = e}`` for ``e = ref, ref-1, ...``; cluster-robust (fixest CR1) Wald test
that all leads are zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result, inference_meta
from evalkit.estimators._cs_schedule import blas_pinned
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators._sample import _validate_weights
from evalkit.results import EstimationResult, make_estimates, normal_inference


@blas_pinned  # small dense products: threaded OpenBLAS only spins on a busy machine
def estimate_imputation(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    anticipation: int = 0,
    horizons: int | Sequence[int] | None = None,
    max_e: int | None = None,
    pretrend_leads: int | None = None,
    leaveout: bool = True,
    repeated_cross_section: bool = False,
    weights: str | None = None,
    **options,
) -> EstimationResult:
    """BJS imputation estimator.

    Parameters
    ----------
    anticipation: periods of anticipation; observations with ``G - anticipation <= t < G`` are
        excluded from the ``Y(0)`` model and reported as negative event times.
    horizons: event times to report (``None``: all; an int ``H``: ``0..H``; or a list).
        They do not change the overall ATT (see ``max_e``).
    max_e: the overall ATT averages the treated observations with ``0 <= e <= max_e`` (equal
        weights: the headline estimand over adopter-months ``0..max_e``, ``meta["estimand"]``
        and ``meta["horizon"]``). ``None`` (default, as did_imputation / didimputation): every
        treated observation with ``e >= 0``.
    pretrend_leads: number of leads in the pre-trend test (default: all available leads, minus
        the earliest one when there are no never-treated units).
    leaveout: leave-out BJS variance (default): the cohort x event-time average of ``tau`` used
        for a treated observation's residual excludes its own cluster's observations; one-cluster
        cells are pooled to event time, then to all treated observations (see module docstring).
        ``False``: in-sample cell means as in BJS Theorem 3 / R ``didimputation`` (biased
        downwards with small cohorts).
    repeated_cross_section: ``False`` (default): the panel is one row per unit and period and goes
        through the shared sample (``_sample.build_sample``: validation, late adopters never treated,
        units treated from the first period dropped, missing cells dropped; ``meta["sample"]``,
        ``result.context``). ``True``: several rows per unit and period are allowed (fixed effects at
        a coarser level than the rows, e.g. ``unit="state"`` with individual rows, as in the R did2s
        examples); rows with a missing outcome, unit or period are dropped and the result carries no
        shared sample and no fit context.
    weights: column of non-negative observation weights (e.g. station population; R didimputation
        ``wname``, did2s/pyfixest ``weights``): weighted least squares on ``Omega_0``, ``tau`` averaged
        with the weights, the weighted BJS variance (module docstring). Rows with weight 0 are left out.
    """
    _fe.check_options("imputation", options, ("unit", "time", "cohort", "cluster", "alpha", "anticipation",
                                              "horizons", "max_e", "pretrend_leads", "leaveout",
                                              "repeated_cross_section", "weights"))
    if max_e is not None and (isinstance(max_e, bool) or not isinstance(max_e, (int, np.integer)) or max_e < 0):
        raise ValueError(f"imputation: max_e must be an integer >= 0 (last event time of the overall ATT), "
                         f"got {max_e!r}")
    cluster = unit if cluster is None else cluster
    smp = None
    if repeated_cross_section:
        # several rows per unit and period (the R did2s / pyfixest references fit the fixed effects at a
        # level coarser than the rows), which the shared sample rejects as duplicated unit-period rows
        cols = list(dict.fromkeys([unit, time, cohort, cluster, outcome, *([weights] if weights else [])]))
        df = panel[cols].dropna(subset=[outcome, unit, time]).reset_index(drop=True)
        n_zero = 0
        if weights:  # the shared sample's checks; weight-0 rows left out as in fe_sample (fixest)
            df[weights] = _validate_weights(df, weights, unit, time)
            n_zero = int((df[weights] == 0).sum())
            df = df[df[weights] > 0].reset_index(drop=True)
        g_all = _fe.cohort_values(df, cohort)
        w_all = None if weights is None else df[weights].to_numpy(dtype=float)
        uc_all, tc_all = _fe.codes(df[unit])[0], _fe.codes(df[time])[0]
        cc_all = pd.factorize(df[cluster], sort=True)[0].astype(np.int64)  # -1: missing (checked on kept rows)
    else:
        smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
        df = smp.frame
        g_all = smp.cohort
        w_all = smp.weights
        n_zero = smp.n_zero_weight
        uc_all, tc_all, cc_all = smp.unit, smp.time, smp.cluster  # codes of sorted labels, as _fe.codes
    y_all = df[outcome].to_numpy(dtype=float)
    t_all = df[time].to_numpy(dtype=float)
    e_all = t_all - np.where(np.isfinite(g_all), g_all, 0.0)
    treated_all = np.isfinite(g_all) & (t_all >= g_all - anticipation)
    untreated_all = ~treated_all

    # imputability: the unit and the period must appear in Omega_0
    unit_in_0 = np.bincount(uc_all[untreated_all], minlength=int(uc_all.max()) + 1) > 0
    time_in_0 = np.bincount(tc_all[untreated_all], minlength=int(tc_all.max()) + 1) > 0
    ok = untreated_all | (unit_in_0[uc_all] & time_in_0[tc_all])
    n_not_imputable = int((~ok).sum())
    keep = ok
    y, g, t, e = y_all[keep], g_all[keep], t_all[keep], e_all[keep]
    treated = treated_all[keep]
    untreated = ~treated
    w = np.ones(y.size) if w_all is None else w_all[keep]  # observation weights (1 = unweighted)

    # codes of the kept rows (sorted labels, as before the filter; time codes: all kept periods are in Omega_0)
    uc, n_units = _fe.compact_codes(uc_all[keep])
    tc, n_times = _fe.compact_codes(tc_all[keep])
    if (cc_all[keep] < 0).any():
        raise ValueError("missing values in a fixed-effect / cluster variable")
    cc, G = _fe.compact_codes(cc_all[keep])

    # ---- first stage on Omega_0
    i0 = np.flatnonzero(untreated)
    i1 = np.flatnonzero(treated)
    Zt = _fe.time_dummies(tc, n_times)
    Z0 = Zt[i0]
    w0, w1 = w[i0], w[i1]
    fit = _fe.absorb_fit(y[i0], uc[i0], Z0, w=None if w_all is None else w0, n_units=n_units)
    if not fit.keep.all():
        raise ValueError("untreated observations do not identify all time effects (disconnected design)")
    lam = np.concatenate([[0.0], fit.theta])  # time effects, first period normalised to 0
    alpha_u = fit.alpha
    y0hat = alpha_u[uc[i1]] + lam[tc[i1]]
    tau = y[i1] - y0hat
    e1 = e[i1]
    g1 = g[i1]

    # ---- estimands: overall (e >= 0) and horizons
    ev_all = np.unique(e1)
    if horizons is None:
        evs = ev_all
    elif isinstance(horizons, (int, np.integer)):
        evs = ev_all[(ev_all >= -anticipation) & (ev_all <= int(horizons))]
    else:
        evs = np.array(sorted(set(float(h) for h in horizons) & set(ev_all.tolist())))
    post = e1 >= 0
    if max_e is not None:
        post &= e1 <= max_e
    if not post.any():
        raise ValueError("no treated observations with e >= 0" + ("" if max_e is None else f" and e <= {max_e}"))
    n1 = i1.size
    H = 1 + evs.size
    # W1: n1 x H sparse weights of the treated observations
    rows = [np.flatnonzero(post)]
    colsw = [np.zeros(post.sum(), dtype=np.int64)]
    vals = [w1[post] / w1[post].sum()]
    hpos = np.searchsorted(evs, e1)
    inh = (hpos < evs.size) & (evs[np.minimum(hpos, max(evs.size - 1, 0))] == e1) if evs.size else np.zeros(n1, bool)
    n_h = np.bincount(hpos[inh], minlength=evs.size).astype(float)
    w_h = np.bincount(hpos[inh], weights=w1[inh], minlength=evs.size)
    rows.append(np.flatnonzero(inh))
    colsw.append(1 + hpos[inh])
    vals.append(w1[inh] / w_h[hpos[inh]])
    W1 = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(colsw))), shape=(n1, H))
    est = np.asarray(W1.T @ tau).ravel()

    # residuals e~ (on Omega_0 times the observation weight: v0 = -w0 (alpha_v[i] + lam_v[t]))
    state = ImputationFit(tau=tau, e=e1, g=g1, w=w1, unit=df[unit].to_numpy()[keep][i1], cc1=cc[i1], uc1=uc[i1], Z1=Zt[i1],
                          Z0=Z0, cc0=cc[i0], uc0=uc[i0], eps0=w0 * fit.resid, fit=fit, n_units=n_units,
                          n_clusters=G, max_e=max_e, leaveout=bool(leaveout))
    if leaveout:
        tau_bar, pooled = _leaveout_means(tau, g1, e1, cc[i1], w1)
    else:  # v^2-weighted cell means; v is proportional to w within a cohort x event-time cell
        tau_bar = _cell_means(tau, w1**2, g1, e1)
        pooled = None
    s = cluster_scores(state, W1, tau - tau_bar)
    V = s.T @ s
    se = np.sqrt(np.clip(np.diag(V), 0, None))

    terms = ["ATT"] + [f"e={int(v)}" if float(v).is_integer() else f"e={v}" for v in evs]
    inf = normal_inference(est, se, alpha)
    rows_out = [{
        "kind": "overall", "term": "ATT", "estimate": est[0], "std_error": se[0],
        "ci_low": inf["ci_low"][0], "ci_high": inf["ci_high"][0], "p_value": inf["p_value"][0],
        "weight": float(post.sum()),
    }]
    for j, ev in enumerate(evs, start=1):
        rows_out.append({
            "kind": "event", "term": terms[j], "event_time": ev, "estimate": est[j], "std_error": se[j],
            "ci_low": inf["ci_low"][j], "ci_high": inf["ci_high"][j], "p_value": inf["p_value"][j],
            "weight": n_h[j - 1],
        })

    # ---- pre-trend test on Omega_0
    pretrend, pre_table = _pretrend(y[i0], uc[i0], tc[i0], n_units, n_times, e[i0], g[i0], cc[i0],
                                    anticipation, pretrend_leads, alpha, None if w_all is None else w0)
    ev_terms = terms[1:]
    meta = {
        "label": "Borusyak-Jaravel-Spiess (2024) imputation estimator",
        "control_group": "never treated + not yet treated",
        "anticipation": int(anticipation),
        # the units the estimator uses (n_treated / n_control: the shared sample's, from finish_result)
        "n_treated_used": int(np.unique(uc[treated]).size),
        "n_control_used": int(np.unique(uc[~np.isfinite(g)]).size),
        "n_obs": int(y.size),
        "n_obs_untreated": int(i0.size),
        "n_obs_treated": int(n1),
        "n_not_imputable_dropped": n_not_imputable,
        "n_periods": int(n_times),
        "n_clusters": int(G),
        "cluster": cluster,
        "se_type": ("BJS conservative imputation variance, clustered; no small-sample factor; "
                    + ("leave-out tau_bar by cohort x event time excluding the own cluster "
                       "(one-cluster cells pooled to event time, then to all treated)" if leaveout
                       else "tau_bar by cohort x event time (in-sample, not leave-out)")),
        "leaveout": bool(leaveout),
        "weights": weights,
        "dropped_zero_weight": n_zero,
        "leaveout_pooled": pooled,
        "alpha": alpha,
        "baseline_mean": _fe.baseline_mean(y, g, t),
        "pretrend": pretrend,
    }
    vcov = {"event": pd.DataFrame(V[1:, 1:], index=ev_terms, columns=ev_terms)}
    tables = {"pretrend_leads": pre_table}
    res = EstimationResult("imputation", outcome, make_estimates(rows_out), meta=meta, vcov=vcov, tables=tables)
    res._imputation = state  # tau and the first stage: subgroup effects without refitting (evalkit.heterogeneity)
    if smp is None:  # repeated cross-sections: no shared sample; counts of the rows' units
        res.meta.update(n_treated=meta["n_treated_used"], n_control=meta["n_control_used"])
        return res
    se_type = meta["se_type"]
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "alpha": alpha,
            "anticipation": anticipation, "horizons": horizons, "max_e": max_e, "pretrend_leads": pretrend_leads,
            "leaveout": leaveout, "weights": weights}
    finish_result(res, smp.sample, spec="imputation", options=opts,
                  inference=inference_meta("BJS conservative imputation variance (clustered)", n_clusters=int(G),
                                           cluster=cluster, ssc=None, df=None, leaveout=bool(leaveout),
                                           weighted=weights is not None))
    res.meta["se_type"] = se_type
    return res


def leave_own_cluster_out(k: np.ndarray, kc: np.ndarray, w1: np.ndarray, tau: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """One level of :func:`_leaveout_means`: ``(ok, means)`` for cells ``k`` and cell × cluster ids
    ``kc`` (both dense codes): ``ok`` where another cluster has observations in the cell (weights are
    > 0), ``means`` the leave-own-cluster-out average there (undefined elsewhere). Shared with the
    fast permutation refits (``evalkit.inference._fast``)."""
    n_kc = np.bincount(kc, weights=w1)
    t_kc = np.bincount(kc, weights=w1 * tau)
    k_of = np.zeros(n_kc.size, dtype=np.int64)
    k_of[kc] = k
    s1 = np.bincount(k_of, weights=n_kc * t_kc)
    s2 = np.bincount(k_of, weights=n_kc**2)
    ok = np.bincount(k_of)[k] > 1
    means = np.full(tau.size, np.nan)
    means[ok] = (s1[k[ok]] - n_kc[kc[ok]] * t_kc[kc[ok]]) / (s2[k[ok]] - n_kc[kc[ok]] ** 2)
    return ok, means


@dataclass
class ImputationFit:
    """What a fit keeps so that other weighted sums of ``tau`` (e.g. subgroup averages,
    :mod:`evalkit.heterogeneity`) get the BJS variance without refitting: the treated observations
    (``tau``, event time ``e``, cohort ``g``, weight ``w``, station ``unit``, cluster / unit codes,
    time dummies ``Z1``) and the ``Omega_0`` first stage (``fit``, ``Z0``, codes, weighted residuals
    ``eps0``)."""

    tau: np.ndarray
    e: np.ndarray
    g: np.ndarray
    w: np.ndarray
    unit: np.ndarray
    cc1: np.ndarray
    uc1: np.ndarray
    Z1: sp.csr_matrix
    Z0: sp.csr_matrix
    cc0: np.ndarray
    uc0: np.ndarray
    eps0: np.ndarray
    fit: Any
    n_units: int
    n_clusters: int
    max_e: int | None
    leaveout: bool


def cluster_scores(st: ImputationFit, W1: sp.spmatrix, eps1: np.ndarray) -> np.ndarray:
    """Cluster sums ``s_c = sum_{Omega_1 in c} v eps1 + sum_{Omega_0 in c} v0 e~`` (G x k) of the
    estimands ``W1' tau`` (``W1``: n_treated x k weights), ``v0 = -W0 Z0 (Z0'W0Z0)^{-1} Z1' W1``;
    ``Var = s' s`` (BJS Theorem 3). ``eps1``: ``tau - tau_bar`` on the treated observations."""
    n1 = st.tau.size
    G = st.n_clusters
    fit = st.fit
    U1 = sp.csr_matrix((np.ones(n1), (st.uc1, np.arange(n1))), shape=(st.n_units, n1))
    r_a = (U1 @ W1).toarray()  # n_units x k
    r_l = (st.Z1.T @ W1).toarray()  # (T-1) x k
    n0_unit = fit.w_unit
    inv_n0 = np.divide(1.0, n0_unit, out=np.zeros_like(n0_unit), where=n0_unit > 0)
    # Schur: S lam = r_l - A' (r_a / n0),  A = D0' Z0  (unit_means = A / n0)
    rhs = r_l - fit.unit_means.T @ r_a
    lam_v = fit.bread @ rhs  # (T-1) x k
    Av = (fit.unit_means @ lam_v)  # n_units x k : (A lam)/n0
    alpha_v = r_a * inv_n0[:, None] - Av
    # s_c = sum_{Omega_1 in c} w eps1 - sum_{Omega_0 in c} eps0 (alpha_v[i] + lam_v[t])
    C1 = sp.csr_matrix((eps1, (st.cc1, np.arange(n1))), shape=(G, n1))
    s = (C1 @ sp.csr_matrix(W1)).toarray()
    n0 = st.eps0.size
    CU = sp.csr_matrix((st.eps0, (st.cc0, st.uc0)), shape=(G, st.n_units))
    CT = (sp.csr_matrix((st.eps0, (st.cc0, np.arange(n0))), shape=(G, n0)) @ st.Z0)
    return s - (CU @ alpha_v + CT @ lam_v)


def _leaveout_means(tau, g1, e1, c1, w1, strata=None):
    """Leave-own-cluster-out averages of ``tau`` for the BJS residuals (did_imputation ``leaveout``).

    For cell ``k`` and cluster ``c`` with weight sum ``n_kc`` (observation count when unweighted)
    and weighted ``tau`` sum ``T_kc``:
    ``tau_bar_{k,-c} = (S1_k - n_kc T_kc) / (S2_k - n_kc^2)``, ``S1 = sum n T``, ``S2 = sum n^2``
    (did_imputation's cluster-weighted "smart" average with equal weights in the cell). Cells are
    cohort x event time; observations whose cell has no other cluster use event time, then all
    treated observations; only if there is a single treated cluster the in-sample cell mean.
    ``strata`` (integer codes, e.g. subgroups of :mod:`evalkit.heterogeneity`): every level is
    taken within a stratum, as a fit on that stratum's treated observations alone would.
    Returns the averages and the number of observations resolved at each level.
    """
    n1 = tau.size
    out = np.full(n1, np.nan)
    pending = np.ones(n1, dtype=bool)
    zeros = np.zeros(n1) if strata is None else np.asarray(strata, dtype=float)
    if strata is not None:  # cohort within stratum
        g1 = pd.MultiIndex.from_arrays([zeros, g1]).factorize()[0].astype(float)
    levels = {"cohort_event": (g1, e1), "event_time": (zeros, e1), "all_treated": (zeros, zeros)}
    counts: dict[str, int] = {}
    for name, (a, b) in levels.items():
        if not pending.any():
            counts[name] = 0
            continue
        k = _group_codes(a, b)
        kc = _group_codes(k, c1)
        ok, means = leave_own_cluster_out(k, kc, w1, tau)
        ok &= pending
        out[ok] = means[ok]
        counts[name] = int(ok.sum())
        pending &= ~ok
    counts["not_leaveout"] = int(pending.sum())
    if pending.any():
        warnings.warn("only one treated cluster: leave-out variance impossible, using in-sample "
                      "cohort x event-time means for its residuals", RuntimeWarning, stacklevel=4)
        out[pending] = _cell_means(tau, w1**2, g1, e1)[pending]
    return out, counts


def _cluster_time_sums(v: np.ndarray, cl: np.ndarray, tc: np.ndarray, G: int, n_times: int):
    """``G x (n_times - 1)`` sums of ``v`` by cluster and period (period 0 dropped, as ``time_dummies``):
    one bincount into a dense table when it is small, else the sparse product."""
    if G * n_times <= 4 * v.size + 1_000_000:
        return np.bincount(cl * n_times + tc, weights=v, minlength=G * n_times).reshape(G, n_times)[:, 1:]
    return sp.csr_matrix((v, (cl, np.arange(v.size))), shape=(G, v.size)) @ _fe.time_dummies(tc, n_times)


def _group_codes(*cols: np.ndarray) -> np.ndarray:
    """Integer codes of the distinct value combinations of ``cols`` (numpy, no pandas MultiIndex)."""
    key = np.zeros(len(cols[0]), dtype=np.int64)
    for c in cols:
        cc, u = _fe.codes(c)
        key = key * max(len(u), 1) + cc
    return _fe.codes(key)[0]


def _cell_means(v: np.ndarray, wt: np.ndarray, *cols: np.ndarray) -> np.ndarray:
    """Per row: the ``wt``-weighted mean of ``v`` within the row's cell of ``cols``."""
    k = _group_codes(*cols)
    return (np.bincount(k, weights=wt * v) / np.bincount(k, weights=wt))[k]


def _pretrend(y, uc, tc, n_units, n_times, e, g, cc, anticipation, leads, alpha, w=None):
    """BJS Test 1: lead dummies in the untreated sample, fixest-CR1 Wald test (weighted with ``w``)."""
    ref = -1 - int(anticipation)
    treated_unit = np.isfinite(g)
    avail = np.unique(e[treated_unit & (e <= ref)])[::-1]  # ref, ref-1, ...
    has_never = (~treated_unit).any()
    if leads is None:
        leads = avail.size if has_never else max(avail.size - 1, 0)
    lead_vals = avail[: int(leads)]
    empty = pd.DataFrame(columns=["event_time", "estimate", "std_error", "p_value"])
    if lead_vals.size == 0:
        return {"stat": float("nan"), "df": 0, "p_value": float("nan"), "leads": []}, empty
    order = np.argsort(lead_vals, kind="stable")  # position of e in lead_vals, -1 if absent (no hash of N floats)
    srt = lead_vals[order]
    at = np.minimum(np.searchsorted(srt, e), srt.size - 1)
    pos = np.where(srt[at] == e, order[at], -1)
    m = treated_unit & (pos >= 0)
    rows = np.flatnonzero(m)
    L = sp.csr_matrix((np.ones(rows.size), (rows, pos[m])), shape=(y.size, lead_vals.size))
    fit = _fe.feols(y, L, [uc, tc], weights=w, cluster=cc)  # the shared engine: fixest CR1, t(G-1)
    keepL, b, V = fit.keep, fit.coef, fit.vcov
    res = _fe.wald_test(b, V)
    lv = lead_vals[keepL]
    res["leads"] = [float(v) for v in lv]
    se = np.sqrt(np.diag(V))
    table = pd.DataFrame({"event_time": lv, "estimate": b, "std_error": se,
                          "p_value": fit.inference(b, se, alpha)["p_value"]})
    return res, table
