"""Goodman-Bacon (2021) decomposition of the static TWFE coefficient.

For a balanced panel with a binary absorbing treatment ``D_it = 1{t >= G_i}`` the TWFE
coefficient of ``y_it = a_i + l_t + b D_it + u_it`` equals a weighted average of all 2x2 DiD
comparisons between timing groups (Goodman-Bacon 2021, Theorem 1):

* ``earlier_vs_later``: an earlier cohort ``k`` (treated) vs a later cohort ``l`` (not yet
  treated), window ``t < G_l``;
* ``later_vs_earlier``: a later cohort ``l`` (treated) vs an earlier, already-treated cohort
  ``k`` as control, window ``t >= G_k`` (the "forbidden" comparison);
* ``treated_vs_never``: a cohort vs the never-treated units, whole panel;
* ``treated_vs_always``: a cohort vs the units treated from the first period on (their ``D`` is
  constant, so they act as a control), whole panel.

Weights use the closed forms of Theorem 1 (unit shares ``n``, treated-period shares
``Dbar`` in period positions, so non-contiguous calendar periods are fine) divided by the
variance of the two-way demeaned treatment; they sum to one and ``sum w * beta_2x2`` equals the
TWFE coefficient to machine precision.  Everything is computed from the cohort x period mean
matrix, so the cost is one groupby plus O(cohorts^2) arithmetic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators import _fe
from evalkit.estimators._common import finish_result
from evalkit.estimators._fe_sample import fe_sample
from evalkit.results import EstimationResult, make_estimates

TYPES = ("earlier_vs_later", "later_vs_earlier", "treated_vs_never", "treated_vs_always")


def estimate_bacon(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    **options,
) -> EstimationResult:
    """Goodman-Bacon decomposition (balanced panel required).

    Rows: ``overall`` = TWFE coefficient (fixest-CR1 clustered SE), ``component`` = one row per
    comparison type (estimate = weighted average of its 2x2s, weight = total weight).
    ``tables['components']``: every 2x2 with type, treated_cohort, control_cohort, estimate, weight
    (control_cohort is NaN for never-/always-treated controls).
    """
    _fe.check_options("bacon", options, ("unit", "time", "cohort", "cluster", "alpha"))
    cluster = unit if cluster is None else cluster
    smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster)
    df = smp.frame
    uc, tc, tvals = smp.unit, smp.time, smp.times
    n_units, T = smp.n_units, smp.n_times
    if df.shape[0] != n_units * T:
        raise ValueError("Bacon decomposition needs a balanced panel (one row per unit and period)")
    g_obs = smp.cohort
    g_u = np.full(n_units, np.inf)
    g_u[uc] = g_obs  # cohort is constant within unit (validated by the shared sample)
    # first treated period position (0..T-1); T = never within the sample
    first_pos = np.searchsorted(tvals.astype(float), g_u, side="left")
    first_pos = np.where(np.isfinite(g_u), first_pos, T)
    y = smp.y
    D = (tc >= first_pos[uc]).astype(float)

    # ---- TWFE coefficient with clustered SE: the shared engine, as estimate_twfe
    fit = _fe.feols(y, D, [uc, tc], cluster=smp.cluster, names=["treated_post"])
    if not fit.keep[0]:
        raise ValueError("treatment is collinear with the fixed effects (no timing variation)")
    G, factor, dfk = int(fit.n_clusters), fit.ssc, fit.dof_k
    beta, se = float(fit.coef[0]), float(fit.se[0])

    # ---- timing groups: position p in 0..T (0 = always treated, T = never treated)
    grp_pos, grp_code = np.unique(first_pos, return_inverse=True)
    n_g = np.bincount(grp_code, minlength=grp_pos.size).astype(float)
    share = n_g / n_units
    # group x period mean outcomes
    ybar = np.zeros((grp_pos.size, T))
    np.add.at(ybar, (grp_code[uc], tc), y)
    ybar /= n_g[:, None]
    dbar = (T - grp_pos) / T  # share of periods treated
    # variance of the two-way demeaned treatment (balanced closed form)
    Dm = D - (T - first_pos[uc]) / T
    Dm -= np.bincount(tc, weights=Dm, minlength=T)[tc] / n_units
    VD = float(np.mean(Dm**2))

    def seg(gi: int, lo: int, hi: int) -> float:
        return float(ybar[gi, lo:hi].mean())

    comps = []
    timing = [i for i, p in enumerate(grp_pos) if 0 < p < T]
    const_ctrl = [(i, "treated_vs_never" if p == T else "treated_vs_always") for i, p in enumerate(grp_pos)
                  if p in (0, T)]
    gval = {i: (tvals[grp_pos[i]] if 0 < grp_pos[i] < T else np.nan) for i in range(grp_pos.size)}
    for k in timing:
        pk = grp_pos[k]
        for c, typ in const_ctrl:
            nkc = share[k] / (share[k] + share[c])
            w = (share[k] + share[c]) ** 2 * nkc * (1 - nkc) * dbar[k] * (1 - dbar[k]) / VD
            b = (seg(k, pk, T) - seg(k, 0, pk)) - (seg(c, pk, T) - seg(c, 0, pk))
            comps.append((typ, gval[k], np.nan, b, w))
        for m in timing:
            pl = grp_pos[m]
            if pl <= pk:
                continue
            # k earlier, m later
            nkl = share[k] / (share[k] + share[m])
            dk, dl = dbar[k], dbar[m]
            w_k = (((share[k] + share[m]) * (1 - dl)) ** 2 * nkl * (1 - nkl)
                   * ((dk - dl) / (1 - dl)) * ((1 - dk) / (1 - dl)) / VD)
            b_k = (seg(k, pk, pl) - seg(k, 0, pk)) - (seg(m, pk, pl) - seg(m, 0, pk))
            comps.append(("earlier_vs_later", gval[k], gval[m], b_k, w_k))
            w_l = (((share[k] + share[m]) * dk) ** 2 * nkl * (1 - nkl)
                   * (dl / dk) * ((dk - dl) / dk) / VD)
            b_l = (seg(m, pl, T) - seg(m, pk, pl)) - (seg(k, pl, T) - seg(k, pk, pl))
            comps.append(("later_vs_earlier", gval[m], gval[k], b_l, w_l))
    comp = pd.DataFrame(comps, columns=["type", "treated_cohort", "control_cohort", "estimate", "weight"])
    comp["treated_cohort"] = pd.to_numeric(comp["treated_cohort"])
    comp["control_cohort"] = pd.to_numeric(comp["control_cohort"])
    decomp_sum = float((comp["estimate"] * comp["weight"]).sum())

    inf = fit.inference(np.array([beta]), np.array([se]), alpha)
    rows = [{"kind": "overall", "term": "TWFE", "estimate": beta, "std_error": se,
             "ci_low": inf["ci_low"][0], "ci_high": inf["ci_high"][0], "p_value": inf["p_value"][0],
             "weight": float(comp["weight"].sum())}]
    for typ in TYPES:
        sub = comp[comp["type"] == typ]
        if sub.empty:
            continue
        wsum = float(sub["weight"].sum())
        est = float((sub["estimate"] * sub["weight"]).sum() / wsum) if wsum > 0 else np.nan
        rows.append({"kind": "component", "term": typ, "estimate": est, "weight": wsum})

    treated_units = np.isfinite(g_u) & (first_pos > 0)
    meta = {
        "label": "Goodman-Bacon (2021) decomposition of the TWFE coefficient",
        "control_group": "all comparisons (never, not-yet, already treated)",
        "n_treated_used": int(treated_units.sum()),  # n_treated / n_control: the shared sample's (finish_result)
        "n_control_used": int((first_pos == T).sum()),
        "n_always_treated": int((first_pos == 0).sum()),
        "n_obs": int(y.size),
        "n_periods": int(T),
        "n_clusters": int(G),
        "cluster": cluster,
        "se_type": f"{_fe.SSC_LABEL}; factor={factor:.8f}, K={dfk}, t({G - 1}) (TWFE row only)",
        "inference": fit.meta(),
        "sample": smp.info.to_dict(),
        "alpha": alpha,
        "baseline_mean": smp.baseline_mean(),
        "decomposition_sum": decomp_sum,
        "decomposition_error": decomp_sum - beta,
        "weight_sum": float(comp["weight"].sum()),
        "variance_treatment": VD,
        "forbidden_weight": float(comp.loc[comp["type"] == "later_vs_earlier", "weight"].sum()),
    }
    res = EstimationResult("bacon", outcome, make_estimates(rows), meta=meta, tables={"components": comp})
    opts = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "alpha": alpha}
    se_type = meta["se_type"]  # finish_result sets meta["se_type"] to the short type
    finish_result(res, smp.sample, spec="bacon", options=opts, inference=fit.meta())
    res.meta["se_type"] = se_type
    return res
