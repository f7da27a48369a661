"""The steps of an evaluation after its estimators (numbers only; each step wrapped).

* estimator options from the params (:func:`estimator_options`);
* the small-sample pre-trend test and the headline's jackknife SE (:func:`small_sample_pretrend`,
  :func:`small_sample_headline_se`) — on failure the analytic value stays and ``meta`` says why;
* control-group and inference variants of the robustness table (:func:`robustness_variants`);
* multiple-testing adjustment across outcomes (:func:`multiple_testing`).

A failing step is recorded with its reason and shown as failed in the brief; it is never replaced
by another method without saying so.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimators import get_estimator, get_spec, names
from evalkit.params import EvaluationParams
from evalkit.registry import NEVER_TREATED, OUTCOMES
from evalkit.results import EstimationResult
from evalkit.sensitivity_run import reason

CS_BOOTSTRAP_DEFAULT = 499  # CS multiplier-bootstrap variant when params.bootstrap == 0
JACKKNIFE_MAX_TREATED = 100  # headline_se "auto": jackknife a CS / imputation headline below this many adopters
# headline_se "auto" jackknifes these headline estimators (their analytic SEs are unreliable with few adopters:
# CS's influence function misses small cohorts' treated-side variance, imputation's BJS variance leans on
# many adopters per cohort — one rule, the delete-one-station jackknife, for both)
JACKKNIFE_ESTIMATORS = ("cs", "imputation")
# the CS multiplier bootstrap resamples clusters: with fewer than this many it is far too narrow (6 county
# clusters gave an interval 10x narrower than the analytic one) and is not shown as a robustness row
MBOOT_MIN_CLUSTERS = 12
# which rows of the robustness table each variant belongs to
VARIANT_KINDS = {"cs_never": "control", "cs_notyet": "control",
                 "cs_mboot": "inference", "twfe_wild": "inference", "ri": "inference"}
# estimators with a joint pre-trend test, tried after the headline's (registry order)
PRETREND_SOURCES = tuple(names(pretrend_test=True))


def headline_sign(ev: Any) -> float:
    """The sign of the evaluation's headline estimate (1.0 when it has none): the direction the
    sensitivity analysis calls robust."""
    try:
        return float(np.sign(ev.result().att)) or 1.0
    except (KeyError, ValueError):
        return 1.0


def estimator_options(name: str, p: EvaluationParams) -> dict[str, Any]:
    """Options of estimator ``name`` from the params: its spec's ``from_params`` (one place)."""
    return get_spec(name).from_params(p)


def pretrend_source(p: EvaluationParams, res: dict[str, EstimationResult]) -> str | None:
    """The estimator whose joint pre-trend test the verdict reads: the headline's, else the first of
    :data:`PRETREND_SOURCES` with a finite p-value (a small-sample test that failed on it keeps it
    the source, so the brief reports the failure instead of moving to another estimator)."""
    for name in (p.headline, *PRETREND_SOURCES):
        pt = (res[name].meta.get("pretrend") or {}) if name in res else {}
        pv = pt.get("p_value")
        finite = pv is not None and not (isinstance(pv, float) and math.isnan(pv))
        if pt.get("df") and (finite or pt.get("status") == "failed"):  # a failed test stays the source
            return name
    return None


def small_sample_pretrend(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                          res: dict[str, EstimationResult], test: Any = None) -> None:
    """Replace the verdict's pre-trend p-value by the small-sample-valid one.

    The test runs on the fitted result (``evalkit.inference.pretrend_test(result, ...)``: its own
    sample and options); ``res[name]`` is replaced by a copy with the
    :class:`~evalkit.inference.results.PretrendResult` attached (``result.with_inference``) and
    ``meta["pretrend"]`` updated — the fitted result itself is not changed. The asymptotic χ²
    p-value stays in ``meta["pretrend"]["p_chi2"]``; ``method`` says which p-value ``p_value`` is.
    When the small-sample test fails, ``status`` is ``failed`` with the ``reason`` and ``p_value`` is
    ``None``: the χ² p-value it was chosen to replace is kept as ``p_chi2`` but never used in its
    place (the brief says so). ``test``: the test already computed by :func:`pretrend_of` on ``res``
    (e.g. in a child, :func:`steps_ahead`). ``panel`` is unused (kept for the step's signature).
    """
    name, test = pretrend_of(p, res) if test is None else test
    if name is None:
        return
    r = res[name]
    pt = r.meta["pretrend"]
    if isinstance(test, str):  # the test raised: keep the χ² test and say why
        out = _copy(r)
        out.meta["pretrend"] = {**pt, "p_chi2": pt.get("p_value"), "p_value": None, "status": "failed",
                                "reason": test}
        res[name] = out
        return
    if test.status == "not_available" and not test.df:  # no leads on this sample: nothing to replace
        return
    out = r.with_inference("pretrend", test)
    if test.ok:
        out.meta["pretrend"] = {**pt, "stat": test.stat, "df": test.df, "p_value": test.p_value,
                                "method": test.test, "p_chi2": test.p_chi2, "p_f": test.p_f,
                                "p_permutation": test.p_permutation, "draws": test.draws_valid,
                                "n_treated": test.n_treated, "estimator": test.estimator,
                                "statistic": test.statistic}
    else:
        out.meta["pretrend"] = {**pt, "p_chi2": pt.get("p_value"), "p_value": None, "status": "failed",
                                "reason": test.reason}
    res[name] = out


def pretrend_of(p: EvaluationParams, res: dict[str, EstimationResult]) -> tuple[str | None, Any]:
    """``(source estimator, test)`` of :func:`small_sample_pretrend` without changing ``res``: the
    :class:`~evalkit.inference.results.PretrendResult`, or the reason (a ``str``) when it raised;
    ``(None, None)`` when there is nothing to test."""
    from evalkit.inference.pretrend import pretrend_test

    name = pretrend_source(p, res)
    if name is None or p.pretrend_test == "chi2":
        return None, None
    try:
        return name, pretrend_test(res[name], method=p.pretrend_test, draws=p.pretrend_draws, seed=p.seed)
    except Exception as exc:  # noqa: BLE001 - keep the χ² test and say why
        return name, reason(exc)


def small_sample_pretrends(panel: pd.DataFrame, p: EvaluationParams,
                           results: dict[str, dict[str, EstimationResult]], tests: dict[str, Any] | None = None
                           ) -> None:
    """:func:`small_sample_pretrend` for every outcome of ``p``; the outcomes' permutation draws share
    their outcome-free designs (``inference._shared.shared_designs``: same numbers, computed once).
    ``tests``: outcome → the tests computed ahead (:func:`pretrend_tests`)."""
    from evalkit.inference._shared import shared_designs

    with shared_designs():
        for o in p.outcomes:
            small_sample_pretrend(panel, o, p, results[o], tests[o] if tests else None)


def pretrend_tests(p: EvaluationParams, results: dict[str, dict[str, EstimationResult]]) -> dict[str, Any]:
    """outcome → :func:`pretrend_of` (the tests of :func:`small_sample_pretrends`, nothing changed)."""
    from evalkit.inference._shared import shared_designs

    with shared_designs():
        return {o: pretrend_of(p, results[o]) for o in p.outcomes}


def n_treated_units(panel: pd.DataFrame) -> int:
    return int((panel.groupby("station_id")["first_treat"].first() != NEVER_TREATED).sum())


def headline_jackknife(panel: pd.DataFrame, p: EvaluationParams, r: EstimationResult | None) -> Any:
    """The jackknife :func:`small_sample_headline_se` applies to the headline fit ``r`` (``headline_se``
    rules below): the :class:`~evalkit.inference.results.JackknifeResult`, the exception it raised, or
    ``None`` when none is asked. It reads only the fit (its sample, options, estimate), so it may be
    computed before the pre-trend step replaces ``r`` by a copy (same fit) — e.g. while a child computes the
    tests (:func:`evalkit.evaluation.evaluate`)."""
    from evalkit.inference.jackknife import jackknife

    if r is None or p.headline_se == "analytic":
        return None
    if p.headline_se == "auto" and not (p.headline in JACKKNIFE_ESTIMATORS
                                        and n_treated_units(panel) < JACKKNIFE_MAX_TREATED):
        return None
    cluster = None if p.cluster == "station_id" else p.cluster
    try:
        return jackknife(r, cluster=cluster, alpha=p.alpha)
    except Exception as exc:  # noqa: BLE001 - the analytic SE is kept and the reason said
        return exc


_NOT_YET = object()  # small_sample_headline_se: the jackknife is computed there


def small_sample_headline_se(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                             res: dict[str, EstimationResult], jk: Any = _NOT_YET) -> None:
    """Jackknife the headline estimate's SE when the analytic one is unreliable (``headline_se: auto``:
    a Callaway–Sant'Anna or imputation headline with fewer than :data:`JACKKNIFE_MAX_TREATED` adopters).

    ``evalkit.inference.jackknife(result)`` refits on the headline fit's own sample; ``res[headline]``
    is replaced by a copy with the :class:`~evalkit.inference.results.JackknifeResult` attached and,
    when it is ``ok``, the jackknife SE, interval and p-value on the headline row (the analytic ones
    move to ``meta["analytic_overall"]``). When the jackknife is ``failed`` or ``not_available``
    (e.g. one adopting station) the analytic SE stays — the verdict never reads a p-value from it —
    and ``meta["headline_se"]`` gives its ``jackknife_status`` and ``jackknife_error`` (the reason).
    ``jk``: :func:`headline_jackknife` of the headline fit, computed earlier.
    """
    r = res.get(p.headline)
    jk = headline_jackknife(panel, p, r) if jk is _NOT_YET else jk
    if r is None or jk is None:
        return
    if isinstance(jk, Exception):
        out = _copy(r)
        out.meta["headline_se"] = {"method": "analytic", "jackknife_status": "failed", "jackknife_error": reason(jk)}
        res[p.headline] = out
        return
    out = r.with_inference("jackknife", jk)
    if not jk.ok:
        out.meta["headline_se"] = {"method": "analytic", "jackknife_status": jk.status, "jackknife_error": jk.reason}
        res[p.headline] = out
        return
    est = out.estimates.copy()
    i = est.index[est["kind"] == "overall"][0]
    keys = ("std_error", "ci_low", "ci_high", "p_value")
    out.meta["analytic_overall"] = {k: float(est.at[i, k]) for k in keys}
    for k in keys:
        est.at[i, k] = getattr(jk, k)
    out.estimates = est
    out.meta["headline_se"] = {
        "method": "jackknife", "cluster": jk.cluster, "df": jk.df, "n_fits": jk.n_clusters,
        "n_clusters": jk.n_clusters,
        "note": f"delete-one-{jk.cluster} jackknife (CV3) standard error, t({jk.df}) interval",
    }
    res[p.headline] = out


def _copy(r: EstimationResult) -> EstimationResult:
    """A copy of ``r`` whose meta can be changed without touching ``r``."""
    return dataclasses.replace(r, meta=copy.deepcopy(r.meta))


def robustness_variants(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                        done: dict[str, EstimationResult]) -> tuple[dict[str, EstimationResult], dict[str, str]]:
    """Control-group and inference variants for one outcome (each wrapped; failures recorded).

    Randomization inference tests the headline estimator (its own options from the params). The CS
    multiplier bootstrap needs clusters to resample: with fewer than :data:`MBOOT_MIN_CLUSTERS`
    (stations, or counties / cities when the params cluster by them) it is not run and
    ``fails["cs_mboot"]`` says why (the event-study chart then uses the headline's own event study).
    """
    lo, hi = p.event_window
    cs_kw = {"cluster": p.cluster, "alpha": p.alpha, "trim_e": (lo, hi), "aggregations": ("simple",)}
    boot = p.bootstrap or CS_BOOTSTRAP_DEFAULT
    main_cs = done.get("cs")
    jobs: dict[str, Any] = {}

    def cs(control: str, bootstrap: int) -> Any:
        if main_cs is not None and control == p.control and bootstrap == p.bootstrap:
            return lambda: main_cs
        return lambda: get_estimator("cs")(panel, outcome, control=control, bootstrap=bootstrap, seed=p.seed,
                                           **cs_kw)

    jobs["cs_never"] = cs("never", 0)
    jobs["cs_notyet"] = cs("notyet", 0)
    # the bootstrap variant also gives the event study with simultaneous (uniform) bands for the chart
    n_clusters = n_cluster_values(panel, outcome, p.cluster)
    if n_clusters < MBOOT_MIN_CLUSTERS:
        few = (f"only {n_clusters} {'stations' if p.cluster == 'station_id' else p.cluster + ' clusters'}: the "
               f"multiplier bootstrap needs at least {MBOOT_MIN_CLUSTERS} clusters to resample (with fewer its "
               "interval is far too narrow), so it is not used")
        jobs["cs_mboot"] = lambda: _raise(few)
    else:
        jobs["cs_mboot"] = lambda: _cs_bootstrap(panel, outcome, p, main_cs, boot, cs_kw)
    if "wild_bootstrap" in p.inference:
        from evalkit.inference.wild import WILD_MAX_CLUSTERS, wild_bootstrap

        jobs["twfe_wild"] = lambda: wild_bootstrap(panel, outcome, cluster=p.cluster, weights=p.wild_weights,
                                                   B=p.wild_draws, seed=p.seed, alpha=p.alpha,
                                                   max_clusters=p.wild_max_clusters or WILD_MAX_CLUSTERS)
    if "randomization" in p.inference:
        from evalkit.inference.randomization import randomization_inference

        jobs["ri"] = lambda: randomization_inference(panel, outcome, estimator=p.headline, scheme="permute",
                                                     draws=p.ri_draws, seed=p.seed, cluster=p.cluster,
                                                     alpha=p.alpha, **ri_options(p))
    out: dict[str, EstimationResult] = {}
    fails: dict[str, str] = {}
    for key, job in jobs.items():
        try:
            out[key] = job()
        except Exception as exc:  # noqa: BLE001 - recorded, shown under the table
            fails[key] = reason(exc)
    return out, fails


def _cs_bootstrap(panel: pd.DataFrame, outcome: str, p: EvaluationParams, main_cs: EstimationResult | None,
                  boot: int, cs_kw: dict[str, Any]) -> EstimationResult:
    """The CS multiplier-bootstrap variant (simple and dynamic aggregations, ``boot`` draws): the
    params' own CS fit re-aggregated (``evalkit.estimators.cs.reaggregate``: the same numbers as a
    refit with the same options and seed, without refitting ATT(g,t)); refitted when that fit is
    absent or no longer carries its ATT(g,t) (e.g. a copy with the jackknife attached)."""
    if main_cs is not None:
        from evalkit.estimators.cs import reaggregate

        try:
            return reaggregate(main_cs, bootstrap=boot, seed=p.seed, aggregations=("simple", "dynamic"))
        except ValueError:
            pass
    return get_estimator("cs")(panel, outcome, control=p.control, bootstrap=boot, seed=p.seed,
                               **(cs_kw | {"aggregations": ("simple", "dynamic")}))


class StepSkipped(RuntimeError):
    """A robustness step that is not run on this design (the message says why)."""


def _raise(why: str) -> Any:
    raise StepSkipped(why)


def n_cluster_values(panel: pd.DataFrame, outcome: str, cluster: str) -> int:
    """Clusters (distinct ``cluster`` values) among the stations with an observed ``outcome``."""
    rows = panel[panel[outcome].notna()] if outcome in panel.columns else panel
    col = cluster if cluster in rows.columns else "station_id"
    return int(rows[col].nunique())


def ri_options(p: EvaluationParams) -> dict[str, Any]:
    """The headline estimator's options for randomization inference: its params options (so every
    draw estimates the headline's estimand) without those ``randomization_inference`` takes itself
    (``cluster``, ``alpha``), its bootstrap and its own pre-trend test (not needed per draw); CS
    computes only the "simple" aggregation."""
    from evalkit.inference._refit import PRETREND_OFF

    opts = {k: v for k, v in estimator_options(p.headline, p).items()
            if k not in ("cluster", "alpha", "bootstrap", "seed", "pretrend_leads")}
    # switched off, not left to the estimator's default: imputation's default tests every available
    # lead (a second regression on each fit whose p-value randomization inference never reads)
    opts.update(PRETREND_OFF.get(p.headline, {}))
    if p.headline == "cs":
        opts["aggregations"] = ("simple",)
    return opts


# the modules the steps import on first use (inference, sensitivity, the steps-ahead child; pandas' reshape:
# the naive estimator's unstack); with the estimators' own modules, what import_modules() loads while
# evaluate() builds the panel
STEP_MODULES = ("evalkit.inference.pretrend", "evalkit.inference.jackknife", "evalkit.inference.wild",
                "evalkit.inference.randomization", "evalkit.inference.multiple", "evalkit.inference._fast",
                "evalkit.inference._bjs", "evalkit.inference._fast_cs_rc", "evalkit.inference._leave_out",
                "evalkit.estimators.cs", "evalkit.sensitivity", "evalkit.step_ahead", "pandas.core.reshape.reshape")
# the modules of each further analysis (evalkit.analyses_run), and of their planted truths on a demo world
ANALYSIS_MODULES = {"dose": ("evalkit.estimators.dose",), "switching": ("evalkit.estimators.switching",),
                    "spillover": ("evalkit.estimators.spillover",), "heterogeneity": ("evalkit.heterogeneity",)}
TRUTH_MODULES = ("evalkit.demo.truth",)


def import_modules(p: EvaluationParams, synthetic: bool = False) -> None:
    """Import the modules the evaluation of ``p`` will use (its estimators, and for a staggered design
    the inference and sensitivity modules and those of its further analyses; ``synthetic``: a demo
    world, whose planted truths the analyses read), so that a fresh process (an ``evalkit run`` kernel)
    pays for Python imports — scipy's submodules alone ~0.3 s — apart from the evaluation's compute
    (:class:`BackgroundImports`: while the panel is built) rather than inside its first estimator.
    Importing computes nothing: no number depends on it."""
    from importlib import import_module

    for name in p.estimators:
        try:
            get_spec(name).load()
        except Exception:  # noqa: BLE001 - an unknown or broken estimator fails (and is reported) when run
            pass
    if p.design == "staggered":
        analyses = [m for kind in p.analyses for m in ANALYSIS_MODULES.get(kind, ())]
        for module in (*STEP_MODULES, *analyses, *(TRUTH_MODULES if analyses and synthetic else ())):
            import_module(module)


class BackgroundImports:
    """:func:`import_modules` in a thread, started while :func:`evalkit.evaluation.evaluate` builds the panel:
    DuckDB's queries release the GIL, so on a free core the imports (0.15–0.4 s of the small world's
    evaluations) no longer wait in line before the panel. :meth:`wait` joins the thread before anything
    else imports or forks (the steps-ahead child): the panel's code imports nothing new (the kernel
    pre-imports it), so no module is imported by both threads at once. ``seconds``: the imports' own time."""

    def __init__(self, p: EvaluationParams, synthetic: bool = False) -> None:
        import threading

        self.p, self.synthetic, self.seconds = p, synthetic, 0.0
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="evalkit-imports", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import time

        t = time.perf_counter()
        try:
            import_modules(self.p, self.synthetic)
        except BaseException:  # noqa: BLE001 - imported again by wait(), where the error is raised as without the thread
            self._failed = True
        self.seconds = time.perf_counter() - t

    def wait(self, retry: bool = True) -> float:
        """Join the thread; the seconds spent waiting for it. A failed import is tried again here (its
        error raised in the evaluation's own thread, as when it imported in line) unless ``retry`` is
        false: then :meth:`retry` does it (only once the panel is built: its error is the one to show)."""
        import time

        t = time.perf_counter()
        self._thread.join()
        waited = time.perf_counter() - t
        if retry:
            self.retry()
        return waited

    def retry(self) -> None:
        """Import again (raising its error) what failed in the thread; nothing if it all imported."""
        if self._failed:
            import_modules(self.p, self.synthetic)
            self._failed = False


def steps_ahead(p: EvaluationParams, results: dict[str, dict[str, EstimationResult]], complete: bool = True) -> Any:
    """The permutation steps that read only the estimators' fits — the pre-trend tests
    (:func:`pretrend_tests`) and the Romano–Wolf draws of :func:`multiple_testing` — started in a
    forked child on a free core (:func:`evalkit.step_ahead.run_ahead`) right after the estimators; its
    value is ``(pre-trend tests, Romano–Wolf result or None)``. The evaluation meanwhile runs the
    robustness variants and the sensitivity analysis (they read neither), then applies the tests
    and goes on as before. Not forked (``forked`` false) on a busy machine, and when the pre-trend
    source is CS (its copy would make the CS bootstrap variant refit instead of re-aggregating):
    the steps then run in their usual order, as before. ``complete=False``: ``results`` holds the
    headline's fits only (:func:`fit_estimators` starts the child before the other estimators) —
    not forked unless the headline is every outcome's pre-trend source (the others cannot change it)."""
    from evalkit.step_ahead import Ahead, run_ahead

    rw = p.multiple_testing and len(p.outcomes) > 1 and all(p.headline in results.get(o, {}) for o in p.outcomes)
    sources = {pretrend_source(p, results[o]) for o in p.outcomes}
    if "cs" in sources or not (complete or p.pretrend_test == "chi2" or sources == {p.headline}):
        return Ahead(lambda: None)
    if not rw and (p.pretrend_test == "chi2" or sources == {None}):  # no permutation draws: nothing to fork for
        return Ahead(lambda: None)
    fits = [results[o][p.headline] for o in p.outcomes] if rw else []
    return run_ahead(lambda: (pretrend_tests(p, results),
                              _rw_or_error(fits, p) if rw else None))


def fit_estimators(panel: pd.DataFrame, p: EvaluationParams, headline_failed: Any, own: Any = None
                   ) -> tuple[dict[str, dict[str, EstimationResult]], dict[str, dict[str, str]], Any]:
    """Every estimator of ``p`` on every outcome → ``(results, failures, ahead)`` (both in the order of
    ``p.outcomes`` and ``p.estimators``; ``failures``: the reason of each failed fit). The headline's
    fits come first — its failure raises ``headline_failed(name, outcome, exc, traceback)`` — so that,
    for a staggered design, :func:`steps_ahead` can start its child while the other estimators are
    fitted here (``ahead``: that child, or ``None``: not started, the evaluation tries after). ``own``:
    the caller's owner of the child (e.g. ``ExitStack.enter_context``: it returns the handle and stops
    the child when the caller's block ends, whatever happens here); without it no child is started."""
    import traceback

    def fit(o: str, name: str) -> Any:
        if name == "poisson" and OUTCOMES[o].kind != "count":
            return "Poisson applies to count outcomes only"
        try:
            return get_estimator(name)(panel, o, **estimator_options(name, p))
        except Exception as exc:  # recorded, shown in the brief; a headline failure is raised
            if name == p.headline:
                raise headline_failed(name, o, exc, traceback.format_exc()) from exc
            return f"{type(exc).__name__}: {exc}"

    done = {(o, p.headline): fit(o, p.headline) for o in p.outcomes if p.headline in p.estimators}
    ahead = None
    if (own is not None and done and p.design == "staggered"
            and all(isinstance(v, EstimationResult) for v in done.values())):
        ahead = steps_ahead(p, {o: {p.headline: done[(o, p.headline)]} for o in p.outcomes}, complete=False)
        ahead = own(ahead) if ahead.forked else None
    for o in p.outcomes:
        for name in p.estimators:
            if (o, name) not in done:
                done[(o, name)] = fit(o, name)
    results: dict[str, dict[str, EstimationResult]] = {o: {} for o in p.outcomes}
    failures: dict[str, dict[str, str]] = {o: {} for o in p.outcomes}
    for o in p.outcomes:
        for name in p.estimators:
            v = done[(o, name)]
            (failures if isinstance(v, str) else results)[o][name] = v
    return results, failures, ahead


def _rw_or_error(fits: list[EstimationResult], p: EvaluationParams) -> Any:
    """Romano–Wolf of ``fits``, or the exception it raised (raised again where the step reads it)."""
    from evalkit.inference.multiple import romano_wolf

    try:
        return romano_wolf(fits, draws=p.ri_draws, seed=p.seed)
    except Exception as exc:  # noqa: BLE001 - multiple_testing reports it as it would its own
        return exc


def multiple_testing(panel: pd.DataFrame, p: EvaluationParams,
                     results: dict[str, dict[str, EstimationResult]], rw: Any = None
                     ) -> tuple[pd.DataFrame, str | None]:
    """(table, Romano–Wolf error): BH-adjusted headline p-values across outcomes, and Romano–Wolf
    stepdown p-values of the HEADLINE estimator's fits (``evalkit.inference.romano_wolf``: the
    adoption dates permuted across stations, every outcome re-fitted on its own sample; ``p_rw_raw``
    is the unadjusted permutation p-value from the same draws) — its columns are absent and the
    error says why when it failed. ``rw``: the Romano–Wolf result (or the exception it raised)
    computed ahead by :func:`steps_ahead`. ``panel`` is unused (kept for the step's signature)."""
    from evalkit.inference.multiple import adjust_pvalues, romano_wolf

    pv = {}
    for o in p.outcomes:
        r = results.get(o, {}).get(p.headline)
        pv[o] = float(r.overall["p_value"]) if r is not None and not r.rows("overall").empty else float("nan")
    bh = adjust_pvalues(pv, "bh")
    out = pd.DataFrame({"outcome": list(pv), "p_value": list(pv.values()), "p_bh": [bh[o] for o in pv]})
    missing = [o for o in p.outcomes if p.headline not in results.get(o, {})]
    if missing:
        return out, f"no {p.headline} fit for {missing}"
    try:
        if isinstance(rw, Exception):
            raise rw
        rw = rw or romano_wolf([results[o][p.headline] for o in p.outcomes], draws=p.ri_draws, seed=p.seed)
    except Exception as exc:  # noqa: BLE001 - BH alone is still shown
        return out, reason(exc)
    if not rw.ok:
        return out, rw.reason
    by = dict(zip(rw.outcomes, zip(rw.p_value, rw.p_romano_wolf, strict=True), strict=True))
    out["p_rw_raw"] = [by[o][0] for o in out["outcome"]]
    out["p_romano_wolf"] = [by[o][1] for o in out["outcome"]]
    out.attrs["rw_method"] = (f"Romano–Wolf stepdown over the {p.headline} fits, {rw.draws_valid} permutations of "
                              f"the adoption dates (seed {rw.seed})")
    for o in p.outcomes:  # the result is attached to every outcome's headline fit (copies)
        results[o][p.headline] = results[o][p.headline].with_inference("romano_wolf", rw)
    return out, None


__all__ = ["CS_BOOTSTRAP_DEFAULT", "JACKKNIFE_ESTIMATORS", "JACKKNIFE_MAX_TREATED", "MBOOT_MIN_CLUSTERS",
           "PRETREND_SOURCES", "VARIANT_KINDS", "StepSkipped", "estimator_options", "multiple_testing",
           "n_cluster_values", "n_treated_units", "pretrend_source", "ri_options", "robustness_variants",
           "small_sample_headline_se", "headline_jackknife", "small_sample_pretrend", "small_sample_pretrends", "import_modules", "STEP_MODULES",
           "ANALYSIS_MODULES", "TRUTH_MODULES", "BackgroundImports",
           "steps_ahead", "pretrend_of", "pretrend_tests", "headline_sign",
           "fit_estimators"]
