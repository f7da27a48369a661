"""Delete-one-cluster estimates of the headline estimators without refitting (the jackknife).

Built from the blocks of :mod:`evalkit.inference._fast` (permuted adoption dates):

* imputation (BJS): :func:`imputation_leave_out` — the first stage's time-effect system is a sum over
  stations, so deleting a cluster subtracts its stations' terms (one ``T x T`` solve per cluster);
* Callaway–Sant'Anna, simple ATT: :func:`cs_leave_out` — the fit's (g, t) cells re-estimated with
  the cluster's stations given weight 0 (``_CSDraws``).

Both return the estimate on all rows too (the caller compares it with the fit's) and NaN for a
cluster they have no number for (the caller refits it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimators._cs_blas import blas_threads
from evalkit.inference._fast import _chol_solve, _CSDraws, _imp_setup, _schur_chol
from evalkit.results import EstimationResult


def imputation_leave_out(frame: pd.DataFrame, outcome: str, *, unit: str, time: str, weights: str | None,
                         options: Mapping[str, Any], units: pd.Index, cohorts: np.ndarray,
                         groups: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The imputation estimator's overall ATT without each group of units (delete-one-cluster jackknife).

    ``cohorts``: first treated period per unit of ``units`` (0 = never); ``groups``: each unit's group
    code ``0..G−1`` (its cluster). The first stage ``y = a_i + l_t`` on the untreated cells Ω0 with
    the unit effects profiled out is the time-effect system ``S l = r``, ``S = Σ_i (diag(m_i) −
    m_i m_i'/n_i)``, ``r = Σ_i (my_i − m_i Σ my_i / n_i)`` (``m_i``: unit i's Ω0 weights by period,
    ``n_i`` their sum, ``my_i`` the weighted outcomes): deleting a group subtracts its units' terms,
    one ``T x T`` solve per group (O(G·T³) in all, no refit). ``a_i = (Σ my_i − m_i'l)/n_i``,
    ``tau = y − a_i − l_t`` on the remaining treated cells with ``0 ≤ e ≤ max_e`` whose period is
    still in Ω0, averaged with the observation weights. The rows are taken as the estimator's own
    sample (balanced or not, but the caller makes sure that deleting a group re-validates nothing).

    Returns the estimate on all rows (for the caller to compare with the fit's) and the ``G``
    leave-one-group-out estimates, NaN where the design without the group is not identified or has
    no target cell (the caller refits those to report the estimator's own error); ``None``: options
    not covered."""
    setup = _imp_setup(frame, outcome, unit, time, weights, options, units)
    if setup is None:
        return None
    periods, Y, P, W, antic, hi = setup
    groups = np.asarray(groups, dtype=np.int64)
    gg = np.where(np.asarray(cohorts, float) > 0, cohorts, np.inf)
    treated = P & (periods[None, :] >= gg[:, None] - antic)
    om0 = P & ~treated & (W > 0)
    M = np.where(om0, W, 0.0)
    n_i = M.sum(axis=1)
    ok_u = n_i > 0
    e = periods[None, :] - gg[:, None]
    target = treated & ok_u[:, None] & (e >= 0) & (e <= hi)
    Cn = np.divide(M, n_i[:, None], out=np.zeros_like(M), where=ok_u[:, None])
    MY = M * Y
    ra = MY.sum(axis=1)
    G = int(groups.max()) + 1 if groups.size else 0
    members = [np.flatnonzero(groups == c) for c in range(G)]

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S, r, Ω0 cell counts by period) of the units ``idx``."""
        Mi, Ci = M[idx], Cn[idx]
        return (np.diag(Mi.sum(axis=0)) - Mi.T @ Ci, MY[idx].sum(axis=0) - Ci.T @ ra[idx],
                om0[idx].sum(axis=0))

    S, r, k = part(np.arange(units.size))
    tu = np.flatnonzero(target.any(axis=1))  # the units with cells in the overall ATT
    Yt, Mt, Vt = Y[tu], M[tu], np.where(target[tu], W[tu], 0.0)
    n_t = n_i[tu]  # > 0: a target cell needs its unit in Ω0

    def without(c: int, S_c, r_c, k_c) -> float:
        keep_t = (k - k_c) > 0  # periods still in Ω0 (the others are not imputable)
        v = Vt[:, keep_t] * (groups[tu] != c)[:, None]
        if not v.any() or keep_t.sum() < 2:
            return np.nan
        L = _schur_chol((S - S_c)[np.ix_(keep_t, keep_t)])
        if L is None:
            return np.nan
        lam = np.zeros(int(keep_t.sum()))
        lam[1:] = _chol_solve(L, (r - r_c)[keep_t][1:])
        a = (ra[tu] - Mt[:, keep_t] @ lam) / n_t
        tau = Yt[:, keep_t] - a[:, None] - lam[None, :]
        return float(np.sum(v * tau) / np.sum(v))

    zero = (np.zeros_like(S), np.zeros_like(r), np.zeros_like(k))
    with blas_threads(1):  # G small solves: BLAS threads only spin on a shared machine
        return without(-1, *zero), np.array([without(c, *part(members[c])) for c in range(G)])


def cs_leave_out(fit: EstimationResult, frame: pd.DataFrame, outcome: str, *, unit: str, time: str,
                 units: pd.Index, cohorts: np.ndarray, groups: np.ndarray) -> tuple[float, np.ndarray] | None:
    """CS's simple-aggregation ATT (``trim_e`` respected) without each group of units, from the fit's
    (g, t) cells: a deleted unit gets weight 0 in the cohort means and cohort sizes (``_CSDraws.att``
    with the unit weights masked), cells of a cohort left empty drop out of the aggregation (weight
    ``pg = 0``), as in a re-fit on the remaining rows. Balanced, covariate-free fits whose adoption
    dates are sample periods only. ``cohorts``: first treated period per unit of ``units`` (0 =
    never); ``groups``: each unit's group ``0..G−1``. Returns the estimate on all rows and the ``G``
    leave-one-group-out estimates, NaN where a remaining cell has no comparison unit (a re-fit drops
    or skips such cells: the caller refits those); ``None``: not covered."""
    gt = getattr(fit, "_gt", None)
    rows = fit.rows("overall")
    if gt is None or rows.empty or str(rows["term"].iloc[0]) != "ATT":
        return None
    d = _CSDraws(gt, frame, outcome, unit, time, units)
    if not np.isin(d.cohorts[np.isfinite(d.cohorts)], d.periods).all():
        return None  # the aggregation recodes periods by the cohorts present: not covered
    trim = (fit.context.options.get("trim_e") if fit.context is not None else None) or (None, None)
    keep = d.simple_cells(trim[1])
    if keep.size == 0:
        return None
    ix = d.codes(np.atleast_2d(np.asarray(cohorts, float)))
    groups = np.asarray(groups, dtype=np.int64)
    wu = d.wu.copy()

    def without(c: int) -> float:
        d.wu = np.where(groups == c, 0.0, wu)
        try:
            Wc, _, _, _, att = d.att(ix)
        finally:
            d.wu = wu
        att = np.where(Wc[:, d.gi] > 0, att, 0.0)  # an emptied cohort's cells: weight 0
        return float(d.combos(Wc, att, [keep])[0, 0])

    G = int(groups.max()) + 1 if groups.size else 0
    with blas_threads(1):
        return without(-1), np.array([without(c) for c in range(G)])


__all__ = ["cs_leave_out", "imputation_leave_out"]
