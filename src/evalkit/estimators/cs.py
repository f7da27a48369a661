"""Callaway & Sant'Anna (2021) group-time ATTs and their aggregations, in two steps like R ``did``.

* :func:`att_gt` — R ``att_gt``: the sample, the (g, t) cells, ATT(g,t) and their influence functions
  (a :class:`CSGroupTime`, kept in compact design form).
* :func:`aggte` — R ``aggte``: simple / group / dynamic / calendar aggregations of a stored
  :class:`CSGroupTime`, analytic or multiplier-bootstrap inference, without refitting.
* :func:`estimate_cs` — both in one call (the registry's entry point), same numbers.

Never-treated or not-yet-treated comparison units, varying or universal base period, anticipation,
covariates via DR / IPW / OR (ports of R ``DRDID``), sampling weights per unit (R ``weightsname``),
analytic influence-function SEs (optionally clustered) or the Mammen multiplier bootstrap with uniform
bands; ``allow_unbalanced=True`` follows R's ``allow_unbalanced_panel = TRUE``. See
``docs/estimators-cs.md`` for the semantics and the module map:

``_cs_prepare`` (the sample) -> ``_cs_attgt`` (cells, ATT(g,t); ``_cs_drdid``, ``_cs_rc``,
``_cs_unbalanced`` estimators; ``_cs_design`` influence-function designs) -> ``_cs_aggte``
(aggregations) -> ``_cs_infer`` (analytic SEs, Wald tests, result frame) and ``_cs_boot`` (multiplier
bootstrap). Threads and BLAS live in ``_cs_schedule``: the statistics take an ``executor`` and run
serially without one, with identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimators import _cs_boot
from evalkit.estimators._common import finish_result, inference_meta
from evalkit.estimators._cs_aggte import aggregate
from evalkit.estimators._cs_attgt import GTCore, compute, gt_cells, gt_terms
from evalkit.estimators._cs_drdid import ESTIMATORS
from evalkit.estimators._cs_infer import make_result, se_from, tidy_frame, wald_event, wald_gt
from evalkit.estimators._cs_prepare import Prepared, prepare
from evalkit.estimators._cs_sample import shared_sample
from evalkit.estimators._cs_schedule import Laps, blas_pinned, resolve_executor
from evalkit.estimators._sample import StaggeredSample
from evalkit.results import EstimationResult

AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
#: estimand of the headline row when the simple aggregation is not computed (else the spec's)
_ESTIMANDS = {"ATT_group": "att_cohort_share_weighted_cohort_averages",
              "ATT_dynamic": "att_mean_of_post_event_time_averages",
              "ATT_calendar": "att_mean_of_calendar_period_averages"}
_gt_cells = gt_cells  # the (g, t) cells (kept under its old name for callers and tests)


@dataclass
class CSInfluence:
    """Influence functions of a CS fit, kept in compact form (materialise on demand).

    ``matrix(kind)`` returns the unit-level influence functions (n_units x k, R ``did`` scaling:
    ``se = sqrt(sum IF**2) / n``) of the estimates of ``kind`` (``gt``, ``event``, ``group``,
    ``calendar``, ``overall``) with rows ordered as ``units``.
    """

    design: Any
    theta: dict[str, np.ndarray]
    terms: dict[str, list[str]]
    units: np.ndarray
    n: int

    def matrix(self, kind: str) -> pd.DataFrame:
        return pd.DataFrame(self.design.materialize(self.theta[kind]), index=self.units, columns=self.terms[kind])


@dataclass
class CSGroupTime:
    """R ``att_gt``'s result: ATT(g,t) on the sample, with what :func:`aggte` needs (influence
    functions in design form, cohort shares, the sample's units and periods). Aggregating it never
    refits; it may be aggregated any number of times."""

    outcome: str
    options: dict[str, Any]
    sample: StaggeredSample  # the shared estimation sample (STATS-CONTRACT §1)
    prep: Prepared
    core: GTCore
    timing: dict[str, float] = field(default_factory=dict)
    ahead: Any = None  # a bootstrap started beside the estimates (estimate_cs), used by the first aggte

    @property
    def design(self) -> Any:
        """The influence-function design (waits for it if it is being built on an executor)."""
        if hasattr(self.core.design, "result"):
            self.core.design = self.core.design.result()
        return self.core.design

    @property
    def n_units(self) -> int:
        return int(self.prep.y.shape[0])

    def table(self) -> pd.DataFrame:
        """ATT(g,t): one row per cell with ``group``, ``time``, ``event_time``, ``term``, ``estimate``."""
        cells = self.core.cells
        g = np.array([c[0] for c in cells], dtype=float)
        t = self.prep.periods[[c[1] for c in cells]].astype(float) if cells else np.zeros(0)
        return pd.DataFrame({"term": gt_terms(cells, self.prep.periods), "group": g, "time": t,
                             "event_time": t - g, "estimate": self.core.att})


def _check_options(control: str, base_period: str, est_method: str) -> str:
    control = {"nevertreated": "never", "notyettreated": "notyet"}.get(control, control)
    if control not in ("never", "notyet"):
        raise ValueError("control must be 'never' or 'notyet'")
    if base_period not in ("varying", "universal"):
        raise ValueError("base_period must be 'varying' or 'universal'")
    if est_method not in ESTIMATORS:
        raise ValueError("est_method must be 'dr', 'ipw' or 'reg'")
    return control


def _sample(panel, outcome, unit, time, cohort, covariates, cluster, anticipation, control, allow_unbalanced,
            weights) -> tuple[StaggeredSample, Prepared]:
    """The one sample entry point: the shared sample (``build_sample``: validation, never-treated and
    late-adopter conventions, missing cells dropped) and, from its rows, the estimator's arrays.

    ``allow_unbalanced=None`` follows the sample: an unbalanced sample (missing cells) runs R's
    ``allow_unbalanced_panel = TRUE`` path; ``False`` balances it as R's default does (units not
    observed in every period leave the estimation; ``meta["n_units_dropped_unbalanced"]``).
    """
    cl_col = None if cluster in (None, unit) else cluster
    sample, certified = shared_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cl_col,
                                      weights=weights, covariates=tuple(covariates or ()), control=control)
    unbalanced = (not sample.info.balanced) if allow_unbalanced is None else allow_unbalanced
    prep = prepare(sample.frame, outcome, unit, time, cohort, covariates or None, cl_col, anticipation, control,
                   allow_unbalanced=unbalanced, weights=weights, trusted=certified)
    if "n_obs_missing_dropped" in prep.info:  # the sample dropped the missing cells already: count them here too
        prep.info["n_obs_missing_dropped"] += sample.info.dropped_cells.get("missing_outcome", 0)
        prep.info["n_units_no_observed_outcome"] += sample.info.dropped_units.get("no_outcome", 0)
    return sample, prep


def _att_gt(panel, outcome, *, unit, time, cohort, control, covariates, est_method, base_period, anticipation,
            cluster, weights, allow_unbalanced, executor, laps: Laps, boot: tuple[int, Any] | None) -> CSGroupTime:
    control = _check_options(control, base_period, est_method)
    if weights is not None and covariates:
        raise ValueError("weights with covariates are not supported yet (weighted DRDID); drop one of them")
    sample, prep = _sample(panel, outcome, unit, time, cohort, covariates, cluster, anticipation, control,
                           allow_unbalanced, weights)
    if weights is not None and prep.unbalanced:
        raise ValueError("weights on an unbalanced panel are not supported yet; use allow_unbalanced=False")
    laps("prepare")
    glist = prep.cohorts[np.isfinite(prep.cohorts)]
    if len(glist) == 0:
        raise ValueError("no treated cohorts")
    ahead = ybar = None
    if boot is not None:
        # with an executor the bootstrap starts now, beside the estimates (same draws either way)
        ahead, ybar = _cs_boot.start(prep, boot[0], boot[1], covariates, executor)
    cells = gt_cells(prep.periods, glist, prep.cohorts, base_period, control, anticipation)
    busy = ahead is not None and (ahead.products is not None or ahead.bits is not None)
    core = compute(prep, cells, est_method, covariates, ybar, executor=None if busy else executor)
    if ahead is not None and core.zc is not None and _cs_boot.products_route(prep, covariates):
        # unbalanced: (V X)' of the [z, O] design, beside the aggregations and variances
        _cs_boot.start_products(ahead, core.zc, prep.bounds, False, executor)
    laps("gt")
    options = {"unit": unit, "time": time, "cohort": cohort, "control": control, "covariates": list(covariates or []),
               "est_method": est_method, "base_period": base_period, "anticipation": anticipation,
               "cluster": cluster, "weights": weights, "allow_unbalanced": allow_unbalanced}
    return CSGroupTime(outcome, options, sample, prep, core, laps.timing, ahead)


def _aggte(gt: CSGroupTime, aggregations, min_e, max_e, balance_e, bootstrap, seed, alpha, executor,
           laps: Laps) -> EstimationResult:
    prep, core, opt = gt.prep, gt.core, gt.options
    n, nt = prep.y.shape
    cells, att, th_gt = core.cells, core.att, core.th_gt
    aggs = aggregate(att, th_gt, cells, prep.periods, prep.cohorts, core.pg_coh, aggregations, min_e, max_e,
                     balance_e, core.ind0, core.th_sp)
    design = gt.design
    laps("aggregate")

    # ------------------------------------------------------------ analytic inference
    blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {"gt": (att, th_gt)}
    for k, a in aggs.items():
        blocks[k] = (np.array(a.est), a.theta())
    vcov: dict[str, pd.DataFrame] = {}
    terms = {"gt": gt_terms(cells, prep.periods), **{k: [r["term"] for r in a.rows] for k, a in aggs.items()}}
    qdiag: dict[str, np.ndarray] = {}  # theta' G theta on the diagonal (n^2 x variance)
    qfull: dict[str, np.ndarray] = {}
    pre_gt = np.array([c[0] > prep.periods[c[1]] for c in cells], dtype=bool)
    boot = bool(bootstrap and bootstrap > 0)
    ahead = gt.ahead.take(bootstrap, seed) if (boot and gt.ahead is not None) else None
    if gt.ahead is not None and ahead is None:
        gt.ahead.close()  # started for another bootstrap (or none): stop it
    fut_wald_gt = None
    for k, (_, th) in blocks.items():
        if k in ("event", "group", "calendar") and th.shape[1]:
            qfull[k] = design.quad(th)
            qdiag[k] = np.diagonal(qfull[k]).copy()
            labels = pd.Index(terms[k])  # one Index for rows and columns
            vcov[k] = pd.DataFrame(qfull[k] / n**2, index=labels, columns=labels, copy=False)
        else:
            qdiag[k] = design.quad_diag(th) if th.shape[1] else np.zeros(0)
        if k == "gt" and executor is not None and not boot:
            # R's pre-treatment Wald test on the executor, overlapping the other variances and the
            # tidy frame (with a bootstrap it runs later: the executor is busy until then)
            fut_wald_gt = executor.submit(wald_gt, att, th_gt, pre_gt, design, n, prep.n_clusters, qdiag["gt"])
    ses = {k: se_from(v, n) for k, v in qdiag.items()}
    laps("analytic_se")

    # ------------------------------------------------------------ multiplier bootstrap
    bands: dict[str, np.ndarray] = {}
    crit: dict[str, float] = {}
    wald_gt_args = (att, th_gt, pre_gt, design, n, prep.n_clusters, qdiag["gt"])
    pretrend_gt = tht = None
    if boot:
        if ahead is not None and ahead.products is not None:
            if ahead.fut is not None:  # work that does not need the draws, while the executor computes products
                pretrend_gt = wald_gt(*wald_gt_args)
                tht = _cs_boot.boot_rows(blocks, core.th_sp)
            vxt = _cs_boot.finish_products(ahead)
        elif ahead is not None:
            vxt = _cs_boot.multiplier_products(design, bootstrap, seed, executor, ahead.bits)
        else:
            vxt = _cs_boot.fresh_products(design, prep.bounds, prep.unbalanced, bootstrap, seed,
                                          _cs_boot.products_route(prep, opt["covariates"]), executor)
        laps("bootstrap_draws")
        ses, bands, crit = _cs_boot.bootstrap_se(blocks, core.th_sp, vxt, ses, n, alpha, executor, tht)
        laps("bootstrap")
        if executor is not None and pretrend_gt is None:
            fut_wald_gt = executor.submit(wald_gt, *wald_gt_args)

    # ------------------------------------------------------------ tidy rows
    cidx = {v: i for i, v in enumerate(prep.cohorts)}
    parts = []
    for key in ("overall", "event", "group", "calendar", "gt"):
        if key not in blocks:
            continue
        est = blocks[key][0]
        cols: dict[str, Any] = {"estimate": est, "std_error": ses[key]}
        if key == "gt":
            gv = np.array([c[0] for c in cells], dtype=float)
            tv = prep.periods[[c[1] for c in cells]].astype(float)
            post = gv <= tv
            w = np.where(post, core.pg_coh[[cidx[g] for g in gv]], np.nan)
            cols.update(group=gv, time=tv, event_time=tv - gv, weight=w / np.nansum(w))
        else:
            rows = aggs[key].rows
            for c in ("group", "time", "event_time", "weight"):
                if any(c in r for r in rows):
                    cols[c] = np.array([r.get(c, np.nan) for r in rows], dtype=float)
        if key in bands:
            cols["band_low"] = est - bands[key]
            cols["band_high"] = est + bands[key]
        if key == "overall":  # one headline row (the first: simple if computed); the others are "aggregate"
            parts.append(("overall", terms[key][:1], {c: v[:1] for c, v in cols.items()}))
            parts.append(("aggregate", terms[key][1:], {c: v[1:] for c, v in cols.items()}))
        else:
            parts.append((key, terms[key], cols))
    estimates = tidy_frame(parts, alpha)
    laps("tidy")

    # ------------------------------------------------------------ meta
    pretrend = None
    if "event" in blocks:
        pretrend = wald_event(*blocks["event"], aggs["event"].rows, ses["event"], design, n, opt["anticipation"],
                              prep.n_clusters, qfull.get("event"))
    if pretrend_gt is None:
        pretrend_gt = fut_wald_gt.result() if fut_wald_gt else wald_gt(*wald_gt_args)
    laps("wald")
    treated = np.isfinite(prep.gu)
    covariates, est_method = opt["covariates"], opt["est_method"]
    cluster = opt["cluster"]
    meta: dict[str, Any] = {
        "label": "Callaway & Sant'Anna (2021)",
        "control_group": {"never": "never treated", "notyet": "not yet treated"}[opt["control"]],
        "base_period": opt["base_period"],
        "est_method": est_method if covariates else f"{est_method} (unconditional: difference in means)",
        "covariates": list(covariates),
        "anticipation": opt["anticipation"],
        "weights": opt["weights"],
        "trim_e": None if (min_e is None and max_e is None) else [min_e, max_e],
        "balance_e": balance_e,
        "n_treated": int(treated.sum()),
        "n_control": int((~treated).sum()),
        "n_units": int(n),
        "n_obs": core.n_obs,
        "n_periods": int(nt),
        "n_cohorts": int(np.isfinite(prep.cohorts).sum()),
        "n_gt": len(cells),
        "cluster": cluster if cluster not in (None, opt["unit"]) else opt["unit"],
        "n_clusters": int(prep.n_clusters),
        "se_type": "multiplier bootstrap" if boot else "influence function",
        "se_small_sample_factor": "none (R did: se = sqrt(sum_c (sum_{i in c} IF_i)^2) / n)",
        "bootstrap": int(bootstrap or 0),
        "bootstrap_weights": "Mammen" if boot else None,
        "seed": seed,
        "alpha": alpha,
        "crit_val": crit,
        "baseline_mean": core.baseline_mean,
        "pretrend": pretrend,
        "pretrend_gt": pretrend_gt,
        "timing": laps.timing,
        **prep.info,
    }
    res = make_result(estimates, gt.outcome, meta, vcov)
    inference = inference_meta(meta["se_type"], n_clusters=int(prep.n_clusters), cluster=meta["cluster"],
                               ssc=meta["se_small_sample_factor"], df=None, bootstrap=meta["bootstrap"], seed=seed)
    context = {**opt, "aggregations": tuple(aggregations), "trim_e": meta["trim_e"], "balance_e": balance_e,
               "alpha": alpha, "bootstrap": bootstrap, "seed": seed}
    sample = gt.sample if meta["trim_e"] is None else gt.sample.with_event_window(trim_e=(min_e, max_e))
    finish_result(res, sample, spec="cs", options=context, inference=inference)
    headline = terms["overall"][0] if terms.get("overall") else None
    if headline in _ESTIMANDS:  # the headline is not the simple aggregation (it was not asked for)
        res.meta["estimand"] = _ESTIMANDS[headline]
    laps("result")
    res._influence = CSInfluence(design=design, theta={k: th for k, (_, th) in blocks.items()},
                                 terms=terms, units=prep.units, n=n)
    gt.ahead = None  # used (or closed) above: a later aggregation draws its bootstrap afresh, same draws
    res._gt = gt  # the stored ATT(g,t) and design: reaggregate() works from it without refitting
    return res


def _trim(trim_e) -> tuple[int | None, int | None]:
    """``trim_e=(lo, hi)`` → ``(lo, hi)``; ``None`` keeps every event time."""
    if trim_e is None:
        return None, None
    lo, hi = trim_e
    return lo, hi


def _aggregations(type_) -> tuple[str, ...]:
    aggs = (type_,) if isinstance(type_, str) else tuple(type_)
    bad = [a for a in aggs if a not in AGGREGATIONS]
    if bad:
        raise ValueError(f"unknown aggregation type {bad[0]!r}; choose from {AGGREGATIONS}")
    return aggs


@blas_pinned
def att_gt(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    control: str = "never",
    covariates: list[str] | None = None,
    est_method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    cluster: str | None = None,
    weights: str | None = None,
    allow_unbalanced: bool | None = None,
    executor: Any = None,
    progress: bool = False,
) -> CSGroupTime:
    """R ``att_gt``: ATT(g,t) and their influence functions, to aggregate with :func:`aggte`.

    Options as :func:`estimate_cs`. ``executor``: anything with ``submit`` (or ``"auto"``: one helper
    thread when a core is free) to overlap work; ``None`` = serial. Same numbers either way.
    """
    laps = Laps(progress)
    return _att_gt(panel, outcome, unit=unit, time=time, cohort=cohort, control=control, covariates=covariates,
                   est_method=est_method, base_period=base_period, anticipation=anticipation, cluster=cluster,
                   weights=weights, allow_unbalanced=allow_unbalanced, executor=resolve_executor(executor),
                   laps=laps, boot=None)


@blas_pinned
def aggte(
    gt: CSGroupTime,
    type: str | tuple[str, ...] = AGGREGATIONS,  # noqa: A002 - R's name
    *,
    trim_e: tuple[int | None, int | None] | None = None,
    balance_e: int | None = None,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int | None = None,
    executor: Any = None,
    progress: bool = False,
) -> EstimationResult:
    """R ``aggte`` of a stored :func:`att_gt` result, without refitting.

    ``type``: ``"simple"``, ``"group"``, ``"dynamic"``, ``"calendar"`` or several of them (default all
    four, as :func:`estimate_cs`). ``trim_e=(lo, hi)``: event times kept (R ``min_e``/``max_e``:
    trimming, not binning; ``hi`` also trims simple and group as in R). ``balance_e``: R's
    ``balance_e``. ``bootstrap`` > 0: Mammen multiplier bootstrap with ``seed`` and uniform bands.
    Returns the same :class:`~evalkit.results.EstimationResult` as :func:`estimate_cs`.
    """
    laps = Laps(progress)
    lo, hi = _trim(trim_e)
    res = _aggte(gt, _aggregations(type), lo, hi, balance_e, bootstrap, seed, alpha, resolve_executor(executor), laps)
    res.meta["timing"] = {**gt.timing, **laps.timing}
    return res


@blas_pinned
def reaggregate(
    result: EstimationResult,
    *,
    bootstrap: int = 0,
    seed: int | None = None,
    aggregations: str | tuple[str, ...] = ("simple", "dynamic"),
    alpha: float | None = None,
    executor: Any = None,
) -> EstimationResult:
    """A CS fit aggregated again (other aggregations, a multiplier bootstrap of ``bootstrap`` draws
    with ``seed``, another ``alpha``) from the ATT(g,t) and influence functions the fit keeps: the
    same numbers as ``estimate_cs(panel, ..., bootstrap=bootstrap, seed=seed, aggregations=...)``
    with the fit's other options (``trim_e``, ``balance_e``, ``alpha`` unless given), without
    refitting ATT(g,t). ``result``: a fit of :func:`estimate_cs` (or :func:`aggte`) in this process.
    """
    gt = getattr(result, "_gt", None)
    if result.estimator != "cs" or gt is None:
        raise ValueError(f"reaggregate needs a Callaway-Sant'Anna fit made in this process (got a "
                         f"{result.estimator} result without its stored ATT(g,t)): "
                         "fit estimate_cs on the panel again")
    opts = result.context.options if getattr(result, "context", None) is not None else {}
    lo, hi = _trim(opts.get("trim_e"))
    a = opts.get("alpha", 0.05) if alpha is None else alpha
    laps = Laps(False)
    res = _aggte(gt, _aggregations(aggregations), lo, hi, opts.get("balance_e"), bootstrap, seed, a,
                 resolve_executor(executor), laps)
    res.meta["timing"] = {**gt.timing, **laps.timing}
    return res


@blas_pinned
def estimate_cs(
    panel: pd.DataFrame,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    control: str = "never",
    covariates: list[str] | None = None,
    est_method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    cluster: str | None = None,
    weights: str | None = None,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int | None = None,
    aggregations: tuple[str, ...] = AGGREGATIONS,
    trim_e: tuple[int | None, int | None] | None = None,
    balance_e: int | None = None,
    allow_unbalanced: bool | None = None,
    executor: Any = "auto",
    progress: bool = False,
) -> EstimationResult:
    """Callaway–Sant'Anna ATT(g,t) with simple / dynamic / group / calendar aggregations
    (:func:`att_gt` then :func:`aggte`, in one call).

    ``cohort`` holds the first treated period (0 or NaN = never treated). Returns an
    :class:`~evalkit.results.EstimationResult` with ``gt``, ``overall`` (term ``ATT`` = simple
    aggregation first, then ``ATT_group``, ``ATT_dynamic``, ``ATT_calendar``), ``event``,
    ``group`` and ``calendar`` rows. The compact influence functions are kept in
    ``result._influence`` (:class:`CSInfluence`).

    ``weights``: a column of sampling weights per unit (constant within unit, finite, >= 0; R
    ``did`` ``weightsname``): weighted ATT(g,t) and weighted cohort shares in the aggregations; not
    yet with covariates or an unbalanced panel. ``trim_e=(lo, hi)``: event times kept in the
    aggregations (R ``aggte``'s ``min_e``/``max_e``: trimming, not binning).

    The sample is the shared one (``evalkit.estimators._sample.build_sample``; ``panel`` may also be a
    :class:`~evalkit.estimators._sample.StaggeredSample`, e.g. ``result.context.sample``): cohort 0 =
    never treated, adoption after the last period = never treated, units treated from the first period
    dropped, missing outcome cells dropped, broken input refused; ``meta["sample"]`` reports it.
    ``allow_unbalanced=None`` (default) follows the sample: unbalanced (missing cells) -> the path of
    ``allow_unbalanced=True``; ``False`` balances it as R's default does (units not observed in every
    period are left out of the estimation, ``meta["n_units_dropped_unbalanced"]``).

    ``allow_unbalanced=True``: R ``did``'s ``allow_unbalanced_panel = TRUE`` — rows with a missing
    outcome (or covariate) are unobserved and, unless the panel is then balanced (panel
    estimator, as R >= 2.2), each ATT(g,t) is a repeated-cross-section estimator on the observed
    rows of cohort g and its comparison units in t and the base period, with influence functions
    scaled by n / n1 and summed by unit. Without covariates that is the difference of means (see
    :mod:`evalkit.estimators._cs_unbalanced`); with covariates R ``DRDID``'s ``drdid_rc`` /
    ``std_ipw_did_rc`` / ``reg_did_rc`` (``est_method`` dr / ipw / reg), each row with its own
    covariate values (see :mod:`evalkit.estimators._cs_rc`).

    ``executor``: ``"auto"`` (default: one helper thread when a core is free; ``EVALKIT_CS_THREADS``),
    ``None`` (serial) or anything with ``submit``; the numbers do not depend on it. BLAS runs
    single-threaded inside (robust when the machine is shared); set the environment variable
    ``EVALKIT_BLAS_THREADS=<n>`` to change that, or ``keep`` to leave it alone.
    """
    lo, hi = _trim(trim_e)
    aggs = _aggregations(aggregations)
    ex = resolve_executor(executor)
    laps = Laps(progress)
    boot = (int(bootstrap), seed) if bootstrap and bootstrap > 0 else None
    gt = _att_gt(panel, outcome, unit=unit, time=time, cohort=cohort, control=control, covariates=covariates,
                 est_method=est_method, base_period=base_period, anticipation=anticipation, cluster=cluster,
                 weights=weights, allow_unbalanced=allow_unbalanced, executor=ex, laps=laps, boot=boot)
    return _aggte(gt, aggs, lo, hi, balance_e, bootstrap, seed, alpha, ex, laps)
