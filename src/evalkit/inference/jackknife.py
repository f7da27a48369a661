"""Delete-one-cluster jackknife (CV3) standard error for a headline estimate.

Callaway–Sant'Anna's analytic (influence-function) standard error misses the treated-side
variance of small cohorts: a cohort of one station contributes none at all. On the demo world's
placebo reform (9 adopting stations in cohorts of 1–7) it declares the no-effect reform
significant 10.7 % of the time at the 5 % level; the jackknife below with a t(G−1) reference
does so 5.4 % of the time (`benchmarks/mc_pretrend.py`-style redraws, `docs/inference.md` §6).

:func:`jackknife` re-runs the fit's estimator on the fit's own sample with its own options ``G``
times, each time without one cluster (station, or county when the fit clusters by county) —
every cluster, treated or not: ``se² = (G−1)/G · Σ (θ₍g₎ − θ̄)²`` and the interval is
``θ̂ ± t_{1−α/2}(G−1) · se``. It needs no variance formula, is conservative rather than liberal
when effects are heterogeneous (MacKinnon, Nielsen & Webb 2023 recommend it for few treated
clusters), and costs ``G`` fits — except for imputation (balanced or not) and CS's ``ATT`` on a
balanced sample, with clusters of whole stations, whose leave-one-out estimates come without re-fits
(:func:`evalkit.inference._leave_out.imputation_leave_out`, :func:`~evalkit.inference._leave_out.cs_leave_out`;
the same numbers, checked against the fit's estimate every time). Re-fits skip the estimator's own
pre-trend test (``Refit.fit(pretrend=False)``).

With a single treated cluster, deleting it leaves nothing to estimate: the delete-one jackknife is
not defined and the result is ``not_available`` (route such a design to the single-station
design). A leave-one-out fit that fails makes the whole jackknife ``failed`` — it is never
computed over the fits that happened to succeed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evalkit.distributions import t_ppf, t_sf
from evalkit.inference._refit import (
    Refit,
    cs_aggregations,
    headline_of,
    headline_term,
    refit_of,
    revalidates_unchanged,
    short_reason,
)
from evalkit.inference.results import JackknifeResult
from evalkit.results import EstimationResult


def jackknife(result: EstimationResult, *, cluster: str | None = None, alpha: float | None = None
              ) -> JackknifeResult:
    """Delete-one-cluster jackknife of ``result``'s headline (its ``overall`` row).

    ``cluster``: the column deleted one value at a time (default: the fit's cluster, else its
    unit). ``alpha``: interval level (default: the fit's). Same unit as the estimate. Attach with
    ``result.with_inference("jackknife", jk)``.
    """
    alpha = float(result.meta.get("alpha", 0.05) if alpha is None else alpha)
    return jackknife_refit(refit_of(result), float(result.overall["estimate"]), headline_term(result),
                           cluster=cluster, alpha=alpha, fit=result)


def jackknife_refit(refit: Refit, estimate: float, term: str, *, cluster: str | None = None,
                    alpha: float = 0.05, fit: EstimationResult | None = None) -> JackknifeResult:
    """The jackknife on a :class:`~evalkit.inference._refit.Refit` (``estimate``: the full-sample
    headline, ``term``: its row's term; ``fit``: the fitted result, which CS's route without
    re-fits reads its (g, t) cells from)."""
    col = cluster or refit.cluster or refit.unit
    frame = refit.frame
    base = {"term": term, "estimate": estimate, "alpha": alpha, "cluster": col}
    if col not in frame.columns:
        return JackknifeResult(status="failed", reason=f"jackknife cluster column {col!r} is not in the sample", **base)
    codes, uniques = pd.factorize(frame[col], sort=True)
    G = len(uniques)
    treated = frame[refit.cohort].fillna(0).to_numpy() > 0
    treated_clusters = np.unique(codes[treated])
    base.update(n_clusters=G, n_treated_clusters=int(treated_clusters.size))
    if G < 3:
        return JackknifeResult(status="not_available", reason=f"the jackknife needs at least 3 clusters; {col} has {G}",
                               **base)
    if treated_clusters.size < 2:
        who = f" ({uniques[treated_clusters[0]]})" if treated_clusters.size else ""
        return JackknifeResult(
            status="not_available",
            reason=f"only {treated_clusters.size} {col} adopts{who}: deleting it leaves no adopting unit, so the "
                   "delete-one jackknife is not defined (use the single-station design)", **base)
    aggs = cs_aggregations(refit, term)
    fast = _fast_thetas(refit, term, estimate, codes, G, fit)
    thetas = np.empty(G)
    for g in range(G):
        if fast is not None and math.isfinite(fast[g]):
            thetas[g] = fast[g]
            continue
        try:  # only the estimate is needed: the re-fit skips the estimator's own pre-trend test
            th, _ = headline_of(refit.fit(frame.loc[codes != g], aggregations=aggs, pretrend=False), term)
        except Exception as exc:  # noqa: BLE001 - reported as the jackknife's failure, with the reason
            return JackknifeResult(status="failed", reason=f"the fit without {col} {uniques[g]} failed: "
                                   f"{short_reason(exc)}", **base)
        if not math.isfinite(th):
            return JackknifeResult(status="failed", reason=f"the fit without {col} {uniques[g]} has no finite "
                                   f"{term} estimate", **base)
        thetas[g] = th
    se = float(np.sqrt((G - 1) / G * np.sum((thetas - thetas.mean()) ** 2)))
    df = G - 1
    crit = float(t_ppf(1 - alpha / 2, df))
    p = float(2 * t_sf(abs(estimate) / se, df)) if se > 0 else float("nan")
    return JackknifeResult(std_error=se, ci_low=estimate - crit * se, ci_high=estimate + crit * se, p_value=p,
                           df=df, leave_out=tuple(float(t) for t in thetas), **base)


def _fast_thetas(refit: Refit, term: str, estimate: float, codes: np.ndarray, G: int,
                 fit: EstimationResult | None = None) -> np.ndarray | None:
    """The leave-one-cluster-out estimates without refitting (clusters that nest stations:
    imputation's overall ATT, :func:`evalkit.inference._leave_out.imputation_leave_out`, balanced or
    not; CS's simple ATT from ``fit``'s cells on a balanced sample,
    :func:`evalkit.inference._leave_out.cs_leave_out`), NaN where that route has no number (the loop
    refits those and reports the estimator's own error), also for a cluster whose deletion would
    make the re-fit's validation change the remaining rows (:func:`_same_window`); ``None``: not covered (another estimator or term, an unbalanced CS
    sample, a cluster that splits a station), or the route's estimate on all rows does not reproduce
    the fit's ``estimate`` (to 1e-9; checked every time)."""
    from evalkit.inference._fast import agrees
    from evalkit.inference._leave_out import cs_leave_out, imputation_leave_out

    s = refit.sample
    if refit.estimator not in ("imputation", "cs") or term != "ATT" or s is None:
        return None
    if not s.info.balanced and refit.estimator != "imputation":
        return None
    if refit.estimator == "cs" and (fit is None or getattr(fit, "context", None) is None
                                    or fit.context.sample is not s):
        return None
    by_unit = pd.Series(codes).groupby(refit.frame[refit.unit].to_numpy(), sort=True)
    if int(by_unit.nunique().max()) != 1:
        return None
    first = by_unit.first()
    _, units, cohorts = refit.unit_cohorts()
    if not units.equals(pd.Index(first.index)):
        return None
    try:
        if refit.estimator == "cs":
            got = cs_leave_out(fit, refit.frame, refit.outcome, unit=refit.unit, time=refit.time, units=units,
                               cohorts=cohorts, groups=first.to_numpy())
        else:
            got = imputation_leave_out(refit.frame, refit.outcome, unit=refit.unit, time=refit.time,
                                       weights=refit.weights, options=refit.options, units=units,
                                       cohorts=cohorts, groups=first.to_numpy())
    except (KeyError, ValueError, np.linalg.LinAlgError):
        return None
    if got is None or got[1].size != G or not agrees(got[0], estimate):
        return None
    # a re-fit re-validates the remaining rows: where that would change them, refit (as the loop does)
    f = refit.frame
    same = _same_window(f[refit.time].to_numpy(), f[refit.cohort].fillna(0).to_numpy(), codes, G)
    return got[1] if same.all() else np.where(same, got[1], np.nan)


def _same_window(t: np.ndarray, cohort: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    """Per cluster: whether re-validating the rows without it keeps every one of them
    (:func:`~evalkit.inference._refit.revalidates_unchanged`; ``t``: period, ``cohort``: 0 = never,
    ``codes``: cluster, per row)."""
    out = np.zeros(G, dtype=bool)
    if t.size == 0:
        return out
    if revalidates_unchanged(t, cohort):
        # a subset of the adopters on the same first and last period keeps them too: only a cluster
        # that alone holds the first or the last period needs its own check
        out[:] = True
        lo, hi = t.min(), t.max()
        sole = {int(h[0]) for h in (np.unique(codes[t == lo]), np.unique(codes[t == hi])) if h.size == 1}
    else:
        sole = set(range(G))
    for g in sole:
        out[g] = revalidates_unchanged(t, cohort, codes != g)
    return out


__all__ = ["jackknife", "jackknife_refit"]
