"""Multiple outcomes of one evaluation: adjusted p-values.

* :func:`adjust_pvalues` — Benjamini–Hochberg (``bh``, false discovery rate), Benjamini–Yekutieli
  (``by``), Holm (``holm``) and Bonferroni (``bonferroni``) adjustments (same numbers as
  ``statsmodels.stats.multitest.multipletests``).
* :func:`romano_wolf` — Romano–Wolf stepdown adjusted p-values (family-wise error rate) for the
  headline of several fitted results (one per outcome, all from the same estimator — the
  evaluation's headline), from a joint null distribution of their t statistics: the adoption
  dates are permuted across stations (one permutation shared by every outcome, so the dependence
  between the outcomes is kept) and every outcome re-fitted on its own sample with its own
  options.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evalkit.inference._refit import (
    Refit,
    cs_aggregations,
    headline_of,
    headline_term,
    is_own_refit,
    refit_of,
    short_reason,
)
from evalkit.inference.results import RomanoWolfResult
from evalkit.results import EstimationResult


def _bh(p: np.ndarray, m: int, c: float = 1.0) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m * c / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def _holm(p: np.ndarray, m: int) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    ranked = p[order] * (m - np.arange(m))
    adj = np.maximum.accumulate(ranked)
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def adjust_pvalues(pvalues: dict[str, float] | pd.Series, method: str = "bh") -> dict[str, float]:
    """Adjusted p-values (``bh``/``fdr_bh``, ``by``/``fdr_by``, ``holm``, ``bonferroni``).

    Missing p-values (NaN) are left NaN and not counted in the family.
    """
    items = dict(pvalues)
    keys = list(items)
    p = np.array([items[k] for k in keys], dtype=float)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    method = method.lower()
    if m == 0:
        adj = q
    elif method in ("bh", "fdr_bh"):
        adj = _bh(q, m)
    elif method in ("by", "fdr_by"):
        adj = _bh(q, m, float(np.sum(1.0 / np.arange(1, m + 1))))
    elif method == "holm":
        adj = _holm(q, m)
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    else:
        raise ValueError(f"unknown method {method!r}: bh, by, holm, bonferroni")
    out = np.full(p.size, np.nan)
    out[ok] = adj
    return {k: float(v) for k, v in zip(keys, out, strict=True)}


def stepdown(t: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Romano–Wolf stepdown p-values from actual ``|t|`` (m) and bootstrap null ``|t*|`` (B x m)."""
    ta, tba = np.abs(t), np.abs(tb)
    order = np.argsort(-ta, kind="stable")
    m = ta.size
    # running max over the remaining (less significant) hypotheses: suffix maxima in `order`
    rem_max = np.maximum.accumulate(tba[:, order[::-1]], axis=1)[:, ::-1]  # B x m
    tol = 1e-10 * np.maximum(1.0, ta[order])
    p_step = np.mean(rem_max >= (ta[order] - tol)[None, :], axis=0)
    p_step = np.maximum.accumulate(p_step)
    out = np.empty(m)
    out[order] = p_step
    return out


def romano_wolf(results: list[EstimationResult], *, draws: int = 999, seed: int = 0) -> RomanoWolfResult:
    """Romano–Wolf stepdown p-values for the headlines of ``results`` (one per outcome).

    Every result must come from the same estimator (the evaluation's headline) and carry its fit
    context. Null distribution: ``draws`` permutations of the adoption dates across the stations
    (``np.random.default_rng(seed)``), the same permutation for every outcome; in each draw every
    outcome is re-fitted on its own sample with its own options and ``t_b = θ_b / se_b`` (analytic
    SE) recorded. The observed ``t`` comes from the same re-fit of the unpermuted samples. A draw in
    which any outcome's re-fit fails is left out (``draws_failed``); if all fail the result is
    ``failed``. Valid under the sharp null of no effect on any outcome and exchangeable adoption.
    CS (unweighted, balanced, no covariates) and imputation fits take every draw's estimate and SE
    from :mod:`evalkit.inference._fast` instead of a re-fit (same numbers; ``extra["fast_outcomes"]``).
    """
    results = list(results)
    outcomes = tuple(r.outcome for r in results)
    base: dict[str, Any] = {"outcomes": outcomes, "draws": int(draws), "seed": seed}
    if not results:
        raise ValueError("romano_wolf needs at least one result")
    names = sorted({r.estimator for r in results})
    if len(names) > 1:
        raise ValueError(f"romano_wolf needs results of one estimator (the headline's), got {names}")
    if len(set(outcomes)) < len(outcomes):
        raise ValueError(f"romano_wolf got the same outcome twice: {list(outcomes)}")
    refits = [refit_of(r) for r in results]
    base["estimator"] = refits[0].estimator
    terms = [headline_term(r) for r in results]
    aggs = [cs_aggregations(rf, term) for rf, term in zip(refits, terms, strict=True)]
    try:
        units, cohorts = _shared_assignment(refits)
    except ValueError as exc:
        return RomanoWolfResult(status="failed", reason=str(exc), **base)

    def tstats() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[EstimationResult]]:
        """The observed statistics, from re-fits of the unpermuted samples (kept: the fast routes start from
        them) — or from the result itself where such a re-fit would return it again (``is_own_refit``: an
        imputation fit as the estimator returned it, no inference attached — e.g. no jackknife SE on its
        headline row; its pre-trend regression, which the re-fit leaves out, is apart from the overall
        estimate and SE)."""
        est, se = np.empty(len(refits)), np.empty(len(refits))
        fits = []
        for j, (rf, term, agg, r) in enumerate(zip(refits, terms, aggs, results, strict=True)):
            fits.append(r if not r.inference and is_own_refit(rf, r) else rf.fit(aggregations=agg, pretrend=False))
            est[j], se[j] = headline_of(fits[-1], term)
        with np.errstate(divide="ignore", invalid="ignore"):
            return est, se, np.where(se > 0, est / se, np.nan), fits

    try:
        est, se, t, fits0 = tstats()
    except Exception as exc:  # noqa: BLE001 - reported
        return RomanoWolfResult(status="failed", reason=f"a re-fit on the sample failed: {short_reason(exc)}", **base)
    base.update(estimate=tuple(map(float, est)), std_error=tuple(map(float, se)), t_stat=tuple(map(float, t)))
    if not np.all(np.isfinite(t)):
        bad = [o for o, v in zip(outcomes, t, strict=True) if not np.isfinite(v)]
        return RomanoWolfResult(status="failed", reason=f"no finite t statistic for {bad}", **base)
    rng = np.random.default_rng(seed)
    assigns = np.array([rng.permutation(cohorts) for _ in range(int(draws))]).reshape(int(draws), len(cohorts))
    tb = np.full((int(draws), len(refits)), np.nan)
    first_error: str | None = None
    # outcomes whose fits the fast route covers: every draw's estimate and SE without a refit
    fast = _fast_tstats(results, fits0, refits, units, assigns, est, se)
    slow = [j for j in range(len(refits)) if j not in fast]
    for j, tj in fast.items():
        tb[:, j] = tj
    # each refitted sample's row -> station positions (only for refits: 4.8 M string lookups per national sample)
    codes = {j: units.get_indexer(refits[j].frame[refits[j].unit]) for j in slow}
    for b in range(int(draws) if slow else 0):
        assign = assigns[b]
        try:
            for j in slow:
                rf = refits[j]
                e_b, s_b = headline_of(rf.fit(rf.permuted(assign[codes[j]]), aggregations=aggs[j], pretrend=False), terms[j])
                with np.errstate(divide="ignore", invalid="ignore"):
                    tb[b, j] = e_b / s_b if s_b > 0 else np.nan
        except Exception as exc:  # noqa: BLE001 - the draw is left out, counted
            tb[b] = np.nan
            first_error = first_error or short_reason(exc)
    ok = np.all(np.isfinite(tb), axis=1)
    tb = tb[ok]
    base.update(draws_valid=int(ok.sum()), draws_failed=int((~ok).sum()))
    if not ok.any():
        return RomanoWolfResult(status="failed", reason=f"every one of the {int(draws)} permutation draws failed "
                                f"({first_error or 'no finite t statistic'})", **base)
    tol = 1e-10 * np.maximum(1.0, np.abs(t))
    p_raw = np.mean(np.abs(tb) >= (np.abs(t) - tol)[None, :], axis=0)
    p_rw = stepdown(t, tb)
    bh = adjust_pvalues(dict(zip(outcomes, p_raw, strict=True)), "bh")
    extra = {"first_draw_error": first_error} if first_error else {}
    extra["fast_outcomes"] = [outcomes[j] for j in sorted(fast)]
    return RomanoWolfResult(p_value=tuple(map(float, p_raw)), p_romano_wolf=tuple(map(float, p_rw)),
                            p_bh=tuple(bh[o] for o in outcomes), extra=extra, **base)


def _fast_tstats(results: list[EstimationResult], fits0: list[EstimationResult], refits: list[Refit],
                 units: pd.Index, assigns: np.ndarray, est: np.ndarray, se: np.ndarray) -> dict[int, np.ndarray]:
    """``{outcome position: t statistic per draw}`` for the fits :mod:`evalkit.inference._fast` (or, CS
    on an unbalanced sample, :mod:`evalkit.inference._fast_cs_rc`) covers, checked on the unpermuted
    sample against the full re-fit's estimate and SE; ``fits0``: those re-fits (their stored
    ATT(g,t) stand in for a result without one, e.g. a copy)."""
    from evalkit.inference._fast import agrees, fast_headline
    from evalkit.inference._fast_cs_rc import cs_unbalanced_headline

    out: dict[int, np.ndarray] = {}
    for j, (res, rf) in enumerate(zip(results, refits, strict=True)):
        own = pd.Index(np.sort(pd.unique(rf.frame[rf.unit])))
        pos = units.get_indexer(own)
        if rf.estimator == "cs" and getattr(res, "_gt", None) is None:  # e.g. a copy: its ATT(g,t) from the re-fit
            res = fits0[j]
        stats = fast_headline(rf.estimator, res, rf.frame, rf.outcome, unit=rf.unit, time=rf.time,
                              weights=rf.weights, cluster=rf.cluster, options=rf.options, units=own)
        if stats is None and rf.estimator == "cs":  # an unbalanced sample (R did's repeated cross sections)
            stats = cs_unbalanced_headline(res, rf.frame, unit=rf.unit, cohort=rf.cohort, units=own)
        if stats is None:
            continue
        g0 = pd.Series(rf.frame.groupby(rf.unit, sort=True)[rf.cohort].first().fillna(0)).reindex(own).to_numpy(float)
        try:
            e0, s0 = stats(g0[None, :], se=True)
            if not (agrees(e0[0], est[j]) and agrees(s0[0], se[j])):
                continue
            e_b, s_b = stats(assigns[:, pos], se=True)
        except (ValueError, np.linalg.LinAlgError):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            out[j] = np.where(s_b > 0, e_b / s_b, np.nan)
    return out


def _shared_assignment(refits: list[Refit]) -> tuple[pd.Index, np.ndarray]:
    """The stations of all samples (sorted) and their adoption dates; a station with two different
    adoption dates in two samples is an error."""
    per = [rf.frame.groupby(rf.unit, sort=True)[rf.cohort].first().fillna(0) for rf in refits]
    allc = pd.concat(per)
    clash = allc.groupby(level=0).nunique()
    if (clash > 1).any():
        raise ValueError(f"the samples disagree on the adoption date of {list(clash.index[clash > 1][:3])}")
    first = allc.groupby(level=0).first().sort_index()
    units = pd.Index(first.index)
    return units, first.to_numpy()


__all__ = ["adjust_pvalues", "romano_wolf", "stepdown"]
