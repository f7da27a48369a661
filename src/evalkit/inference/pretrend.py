"""Joint pre-trend tests that keep their size when few stations adopt.

The textbook test is a Wald statistic ``W = β̂'V̂⁻¹β̂`` over the event-study leads, referred to
χ²(k). With a cluster-robust ``V̂`` its size depends on how many *treated* stations identify the
leads, not on the total number of clusters: ``V̂`` is estimated from about ``n_treated`` station
contributions, ``E[V̂⁻¹]`` exceeds ``V⁻¹`` (Hotelling), and a Callaway–Sant'Anna cohort of a
single station contributes no treated-side variance at all. Measured under pure noise (iid
station-month errors, 12 leads, ``benchmarks/mc_pretrend.py``): the χ² test rejects 93 % of the
time with 9 treated stations in cohorts of 1, 1, 4, 3, and still 30 % with 40 treated stations in
cohorts of 10.

:func:`pretrend_test` works on a fitted result (its own sample and options) and reports one
:class:`~evalkit.inference.results.PretrendResult` whose ``test`` says which p-value it is:

``chi2``         the asymptotic χ²(k) p-value (what R ``did``/``fixest`` print);
``f``            Hotelling's small-sample correction with the treated stations as the sample:
                 ``F = W·(g−k)/(k·(g−1)) ~ F(k, g−k)``, ``g`` = number of treated stations
                 (not available when ``g ≤ k + 1``);
``permutation``  the randomization distribution of the statistic: the stations' adoption dates
                 (one per station, never = 0) are permuted across the sample's stations ``draws``
                 times and the estimator re-fitted; ``p = (1 + #{S_b ≥ S}) / (valid draws + 1)``.
                 Valid under the sharp null that adoption is unrelated to the untreated outcome
                 path, whatever the number of stations. The statistic ``S`` is the Wald ``W`` when
                 ``k < g``; with at least as many leads as treated stations ``V̂`` is (nearly)
                 singular and ``W`` meaningless, so ``S = Σ t_e²`` (each lead over its own SE).

``method="auto"`` uses the permutation test when fewer than ``max_permutation_treated`` stations
adopt and the F test above it (the permutation test when F is not defined). A test that cannot be
computed is ``not_available``/``failed`` with the reason — never replaced by another test's p-value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from evalkit.distributions import f_sf
from evalkit.inference._refit import Refit, is_own_refit, refit_of, short_reason
from evalkit.inference.results import PretrendResult
from evalkit.results import EstimationResult

METHODS = ("auto", "chi2", "f", "permutation")


def hotelling_f_pvalue(stat: float, k: int, g: int) -> float:
    """p-value of a Wald statistic ``stat`` with ``k`` restrictions from ``g`` treated stations."""
    if not (k and g > k + 1 and math.isfinite(stat)):
        return float("nan")
    f = stat * (g - k) / (k * (g - 1))
    return float(f_sf(f, k, g - k))


def pretrend_test(result: EstimationResult, /, *args: Any, method: str = "auto", draws: int = 199, seed: int = 0,
                  max_permutation_treated: int = 100, **kwargs: Any) -> PretrendResult:
    """Joint test that every event-study lead of ``result`` is zero → :class:`PretrendResult`.

    ``result``: a fitted result whose ``meta["pretrend"]`` holds ``{"stat", "df", "p_value"}``
    (``cs``, ``sa``, ``imputation``, ``event_twfe``); re-fits use ``result.context``.
    ``method``: one of :data:`METHODS`; ``draws``/``seed``: the permutation test's draws (every
    draw from ``np.random.default_rng(seed)``). Attach with ``result.with_inference("pretrend", t)``.
    """
    if args or kwargs:
        raise TypeError(f"pretrend_test(result, ...) got unexpected arguments {list(kwargs) or list(args)}: it takes a "
                        "fitted result (fit the estimator on the panel first)")
    return pretrend_refit(refit_of(result), result, method=method, draws=draws, seed=seed,
                          max_permutation_treated=max_permutation_treated)


def pretrend_permutation(result: EstimationResult, *, draws: int = 999, seed: int = 0) -> PretrendResult:
    """The permutation pre-trend test of ``result`` (see :func:`pretrend_test`)."""
    return pretrend_test(result, method="permutation", draws=draws, seed=seed)


def pretrend_refit(refit: Refit, result: EstimationResult, *, method: str = "auto", draws: int = 199,
                   seed: int = 0, max_permutation_treated: int = 100) -> PretrendResult:
    """The test on a :class:`~evalkit.inference._refit.Refit` whose full-sample fit is ``result``."""
    if method not in METHODS:
        raise ValueError(f"unknown pre-trend test method {method!r}; choose from {METHODS}")
    codes, _, cohorts = refit.unit_cohorts()
    g = int((cohorts > 0).sum())
    pt = (result.meta or {}).get("pretrend") or {}
    base: dict[str, Any] = {"estimator": refit.estimator, "n_treated": g, "seed": seed}
    if not pt.get("df"):
        return PretrendResult(status="not_available", reason=f"the {refit.estimator} fit has no event-study leads "
                              "to test on this sample", **base)
    # the number of leads tested (imputation reports the covariance's rank as "df" and the leads apart:
    # with more leads than that rank its "Wald statistic" is a pseudo-inverse of a singular matrix)
    k = len(pt["leads"]) if pt.get("leads") else int(pt["df"])
    stat = float(pt["stat"]) if pt.get("stat") is not None and not _rank_deficient(pt) else math.nan
    # a cluster-robust covariance is a sum of G cluster score products that sum to zero: rank ≤ G − 1,
    # so with k ≥ G leads it is singular and any "W" printed for it is numerical noise (±1e17)
    n_clusters = int(refit.frame[refit.cluster or refit.unit].nunique())
    wald_ok = math.isfinite(stat) and stat >= 0 and k < n_clusters
    why = (f"the covariance of the {k} leads from {n_clusters} clusters is singular (rank at most {n_clusters - 1})"
           if k >= n_clusters else pt.get("reason") or "their covariance is singular")
    p_chi2 = float(pt["p_value"]) if wald_ok and pt.get("p_value") is not None else None
    p_f = hotelling_f_pvalue(stat, k, g) if wald_ok else math.nan
    base.update(df=k, stat=stat if wald_ok else math.nan, p_chi2=p_chi2, p_f=None if math.isnan(p_f) else p_f)
    test = method
    if method == "auto":
        test = "permutation" if g < max_permutation_treated or base["p_f"] is None else "f"
    base["others"] = _others(test, k, g, wald_ok, why, base["p_f"] is not None)
    if test in ("chi2", "f") and not wald_ok:
        return PretrendResult(test=test, status="not_available", reason=f"the Wald statistic of the {k} leads is "
                              f"not defined ({why})", **base)
    if test == "chi2":
        return PretrendResult(test="chi2", p_value=p_chi2 if p_chi2 is not None else math.nan, **base)
    if test == "f":
        if base["p_f"] is None:
            return PretrendResult(test="f", status="not_available", reason=f"Hotelling's F needs more treated "
                                  f"stations than leads + 1 ({g} treated, {k} leads)", **base)
        return PretrendResult(test="f", p_value=base["p_f"], **base)
    return _permutation(refit, codes, cohorts, k, g, wald_ok, draws, seed, base, result)


def _others(test: str, k: int, g: int, wald_ok: bool, why: str, f_defined: bool) -> dict[str, str]:
    """Why each test other than ``test`` is not the one reported (for the brief's explanation)."""
    out = {}
    if test != "chi2":
        out["chi2"] = (f"not defined: {why}" if not wald_ok else
                       f"asymptotic: treats the covariance of the {k} leads as known, but it is estimated from about "
                       f"{g} treated stations, so the χ² test rejects too often in small designs")
    if test != "f":
        out["f"] = (f"not defined: {why}" if not wald_ok else
                    f"not defined: needs more treated stations than leads + 1 ({g} treated, {k} leads)"
                    if not f_defined else "valid but conservative when the treated stations are few relative to the leads")
    if test != "permutation":
        out["permutation"] = "not run (chosen test: " + test + ")"
    return out


def _rank_deficient(pt: dict) -> bool:
    """Whether a pre-trend test's covariance has lower rank than its number of leads (imputation's
    ``df`` is that rank): its Wald statistic is then numerical noise, not a statistic."""
    return bool(pt.get("leads")) and int(pt.get("df") or 0) < len(pt["leads"])


def _statistic(fit: EstimationResult, kind: str, anticipation: int) -> float:
    """The permutation test's statistic on one fit: the estimator's Wald ``W`` or ``Σ t_e²`` (a Wald
    statistic of a singular covariance is no statistic: NaN, the draw counts as failed)."""
    if kind == "wald":
        pt = (fit.meta or {}).get("pretrend") or {}
        return float(pt["stat"]) if pt.get("stat") is not None and not _rank_deficient(pt) else math.nan
    leads = fit.tables.get("pretrend_leads")  # imputation keeps its leads in a table
    if leads is None or leads.empty:
        leads = fit.rows("event")
        et = pd.to_numeric(leads["event_time"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        leads = leads[et < -anticipation]
    b = pd.to_numeric(leads["estimate"], errors="coerce").to_numpy(dtype=float)
    se = pd.to_numeric(leads["std_error"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(b) & np.isfinite(se) & (se > 0)
    return float(np.sum((b[ok] / se[ok]) ** 2)) if ok.any() else math.nan


def _batched_event_twfe(refit: Refit, kind: str, anticipation: int) -> Any:
    """For an event TWFE fit on a balanced, unweighted sample with CRV1 clusters that nest the units:
    ``stat(cohort per unit) -> float`` from :class:`~evalkit.estimators._fe_batch.PermutedTWFE` (the
    same statistic as :func:`_statistic` on a full refit, to rounding); else ``None`` (full refits)."""
    if refit.estimator != "event_twfe" or refit.weights is not None:
        return None
    opts = refit.options
    if opts.get("vcov", "CRV1") != "CRV1":
        return None
    from evalkit.estimators import _fe
    from evalkit.estimators._fe_batch import PermutedTWFE, event_pattern
    from evalkit.estimators._fe_sample import fe_sample

    leads, lags, reference = int(opts.get("leads", 12)), int(opts.get("lags", 24)), int(opts.get("reference", -1))
    s = fe_sample(refit.sample if refit.sample is not None else refit.frame, refit.outcome, unit=refit.unit,
                      time=refit.time, cohort=refit.cohort, cluster=refit.cluster)
    if s.y.size != s.n_units * s.n_times or not _fe.nested_in(s.unit, s.cluster):
        return None
    pattern, names = event_pattern(leads, lags, reference)
    try:
        batch = PermutedTWFE(s, pattern, names)
    except ValueError:
        return None
    ks = np.array([int(nm.split("=")[1]) for nm in batch.names])
    cols = np.flatnonzero(ks < reference) if kind == "wald" else np.flatnonzero(ks < -anticipation)
    if cols.size == 0:
        return None

    def stat(cohorts: np.ndarray) -> float:
        g = np.where(cohorts == 0, np.inf, cohorts.astype(float))
        b, V = batch.fit(g)
        bb, vv = b[0, cols], V[0][np.ix_(cols, cols)]
        if kind == "wald":
            return float(bb @ np.linalg.pinv(vv) @ bb)
        se = np.sqrt(np.clip(np.diag(vv), 0, None))
        ok = np.isfinite(bb) & np.isfinite(se) & (se > 0)
        return float(np.sum((bb[ok] / se[ok]) ** 2)) if ok.any() else math.nan

    return stat


def _batched_imputation(refit: Refit, kind: str) -> Any:
    """For an imputation fit (panel sample): ``stat(cohort per unit) -> float`` from BJS test 1 alone
    (the lead regression on the draw's untreated rows, :func:`evalkit.inference._fast.bjs_pretrend`)
    — the imputation, its variance and the result frame are not recomputed per draw. Same
    statistic as :func:`_statistic` on a full refit (checked by the caller); else ``None``."""
    if refit.estimator != "imputation" or refit.options.get("repeated_cross_section"):
        return None
    from evalkit.inference._fast import bjs_pretrend

    units = pd.Index(np.sort(pd.unique(refit.frame[refit.unit])))
    return bjs_pretrend(refit.frame, refit.outcome, unit=refit.unit, time=refit.time, cohort_units=units,
                        weights=refit.weights, cluster=refit.cluster,
                        anticipation=int(refit.options.get("anticipation", 0) or 0),
                        leads=refit.options.get("pretrend_leads"), kind=kind)


def _batched_cs(refit: Refit, fit: EstimationResult, kind: str) -> Any:
    """For a balanced, unweighted CS fit without covariates: ``stat(cohort per unit) -> float`` of the
    event-study leads without a refit per draw (:func:`evalkit.inference._fast.cs_pretrend`; the
    caller checks it against the full refit ``fit``); else ``None``."""
    if refit.estimator != "cs":
        return None
    from evalkit.inference._fast import cs_pretrend

    units = pd.Index(np.sort(pd.unique(refit.frame[refit.unit])))
    return cs_pretrend(fit, refit.frame, refit.outcome, unit=refit.unit, time=refit.time, units=units, kind=kind)


def _permutation(refit: Refit, codes: np.ndarray, cohorts: np.ndarray, k: int, g: int, wald_ok: bool,
                 draws: int, seed: int, base: dict[str, Any], result: EstimationResult | None = None
                 ) -> PretrendResult:
    kind = "wald" if wald_ok and k < g else "t2sum"
    notes = [] if kind == "wald" else [f"statistic: sum of squared lead t-statistics (the Wald statistic needs "
                                       f"fewer leads ({k}) than treated stations ({g}))"]
    base = {**base, "test": "permutation", "statistic": kind, "draws": int(draws)}
    aggs = ("dynamic",) if refit.estimator == "cs" else None  # the leads are the event-time aggregation
    anticipation = int(refit.options.get("anticipation", 0) or 0)
    # the observed statistic comes from the same re-fit as the draws (analytic SEs, same options) —
    # or from ``result`` itself when that re-fit would reproduce it (_refit.is_own_refit)
    try:
        own = result is not None and is_own_refit(refit, result)
        obs_fit = result if own else refit.fit(aggregations=aggs, pretrend=True)
        observed = _statistic(obs_fit, kind, anticipation)
    except Exception as exc:  # noqa: BLE001 - reported
        return PretrendResult(status="failed", reason=f"the re-fit on the sample failed: {short_reason(exc)}", **base)
    if not math.isfinite(observed):
        return PretrendResult(status="not_available", reason="the leads have no finite statistic on this sample",
                              **base)
    rng = np.random.default_rng(seed)
    null: list[float] = []
    first_error: str | None = None
    batch = _batched_event_twfe(refit, kind, anticipation)
    how = "batched TWFE refits (_fe_batch.PermutedTWFE)"
    if batch is None:
        batch = _batched_imputation(refit, kind) if refit.estimator == "imputation" else _batched_cs(refit, obs_fit, kind)
        how = ("BJS test 1 alone per draw (inference._fast.bjs_pretrend: two-way effects by one Cholesky solve)"
               if refit.estimator == "imputation" else
               "CS event-time leads per draw from the cohort means (inference._fast.cs_pretrend)")
        if batch is not None:  # it must reproduce the full re-fit's statistic on the sample
            try:
                same = math.isclose(batch(cohorts), observed, rel_tol=1e-9, abs_tol=1e-12)
            except Exception:  # noqa: BLE001 - full re-fits instead
                same = False
            batch = batch if same else None
    if batch is not None:  # every draw without refitting the whole estimator (same numbers)
        notes.append(f"permutation draws: {how}")
        for _ in range(int(draws)):
            try:
                s = batch(rng.permutation(cohorts))
            except Exception as exc:  # noqa: BLE001 - counted, reason kept (as a failed re-fit)
                first_error = first_error or short_reason(exc)
                continue
            if math.isfinite(s):
                null.append(s)
            else:
                first_error = first_error or "no finite statistic"
    for _ in range(0 if batch is not None else int(draws)):
        data = refit.permuted(rng.permutation(cohorts)[codes])
        try:
            s = _statistic(refit.fit(data, aggregations=aggs, pretrend=True), kind, anticipation)
        except Exception as exc:  # noqa: BLE001 - counted, reason kept
            first_error = first_error or short_reason(exc)
            continue
        if math.isfinite(s):
            null.append(s)
        else:
            first_error = first_error or "no finite statistic"
    n_failed = int(draws) - len(null)
    base.update(draws_valid=len(null), draws_failed=n_failed)
    if kind == "t2sum":
        base["stat"] = observed
    if not null:
        return PretrendResult(status="failed", reason=f"every one of the {int(draws)} permutation draws failed "
                              f"({first_error or 'no draws'})", notes=tuple(notes), **base)
    if n_failed:
        notes.append(f"{n_failed} of {int(draws)} permutation draws failed ({first_error}); the p-value uses the others")
    arr = np.asarray(null)
    p = float((1 + np.sum(arr >= observed - 1e-12 * abs(observed))) / (arr.size + 1))
    return PretrendResult(p_value=p, p_permutation=p, notes=tuple(notes), **base)


__all__ = ["METHODS", "hotelling_f_pvalue", "pretrend_permutation", "pretrend_refit", "pretrend_test"]
