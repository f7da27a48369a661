"""The estimator registry: one :class:`EstimatorSpec` per estimator.

Params validation, the evaluation's option mapping, i18n labels, the CLI's ``--method`` help and
the pre-trend / event-study preference lists iterate :data:`SPECS` instead of naming estimators.
Adding an estimator = one module + one spec here (docs/architecture.md, "How to add an estimator").

This module imports only the standard library: ``evalkit validate`` and the i18n layer read it
without loading the statistics stack; estimator functions are imported on first call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.params import EvaluationParams
    from evalkit.results import EstimationResult

ROLES = ("headline", "robustness", "naive", "diagnostic", "single_station", "dose", "switching", "spillover")
DESIGNS = ("staggered", "single_station")
#: keyword arguments every panel estimator takes (``cluster`` is left out where it has no meaning)
SAMPLE_ARGS = ("unit", "time", "cohort")


@dataclass(frozen=True)
class EstimatorSpec:
    """What the rest of evalkit needs to know about one estimator.

    ``options`` lists every keyword argument accepted after ``(panel, outcome)``; anything else is
    rejected with a ``TypeError`` (:func:`check_options`). ``from_params`` maps evaluation params
    to those options. ``designs`` are the evaluation designs that run it by default, and
    ``headline_rank`` orders the default headline choice (lower first; ``None`` = never default).
    ``estimand`` is the plain-words key stored in ``result.meta["estimand"]``. ``horizon_option``
    names the option whose (upper) end ``H`` makes the overall row the headline estimand
    (:data:`evalkit.estimand.HEADLINE_ESTIMAND`: adopter-months ``0..H``, equal weights); when it is
    set the result carries that estimand instead and ``meta["horizon"] = [0, H]``
    (:func:`evalkit.estimators._common.headline_horizon`).
    """

    name: str
    function: str
    label: dict[str, str]
    role: str
    event_study: bool
    pretrend_test: bool
    weights: bool
    options: tuple[str, ...]
    from_params: Callable[[EvaluationParams], dict[str, Any]]
    estimand: str
    designs: tuple[str, ...] = ()
    headline_rank: int | None = None
    horizon_option: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"spec {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if self.weights != ("weights" in self.options):
            raise ValueError(f"spec {self.name!r}: weights={self.weights} but 'weights' "
                             f"{'not ' if self.weights else ''}in options")
        if set(self.label) != {"zh", "en"}:
            raise ValueError(f"spec {self.name!r}: label needs 'zh' and 'en'")

    def load(self) -> Callable[..., EstimationResult]:
        """The estimator function itself (imported now)."""
        module, func = self.function.split(":")
        return getattr(import_module(module), func)

    def check(self, options: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` naming the first unknown option and listing the accepted ones."""
        check_options(self.name, options, self.options)

    def __call__(self, panel: Any, outcome: str, **options: Any) -> EstimationResult:
        """Check ``options`` against the spec, then run the estimator."""
        return _run(self, self.load(), panel, outcome, options)


@functools.cache
def _swallowed(fn: Callable[..., Any]) -> frozenset[str] | None:
    """Names ``fn`` takes explicitly when it also has a ``**`` catch-all (``None`` otherwise, or when
    it takes nothing by name and only forwards ``**kwargs``)."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = frozenset(p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD)
    return named or None


def _run(spec: EstimatorSpec, fn: Callable[..., Any], panel: Any, outcome: str,
         options: dict[str, Any]) -> EstimationResult:
    spec.check(options)
    named = _swallowed(fn)
    if named is not None:
        # an option the spec accepts but a ``**_`` catch-all would swallow is refused, never ignored
        ignored = [k for k in options if k not in named]
        if ignored:
            raise TypeError(f"{spec.name}: option {ignored[0]!r} is in the spec but {fn.__name__} does not "
                            f"implement it yet; leave it out")
    return fn(panel, outcome, **options)


def check_options(name: str, options: Iterable[str], accepted: Iterable[str] | None = None) -> None:
    """Reject option names that estimator ``name`` does not accept (one ``TypeError`` wording everywhere).

    Estimators that take ``**options`` call ``check_options("x", options)`` so a typo raises even
    when the function is called directly; ``accepted`` defaults to the spec's list.
    """
    allowed = tuple(SPECS[name].options if accepted is None else accepted)
    bad = [k for k in options if k not in allowed]
    if bad:
        raise TypeError(f"{name}: unknown option {bad[0]!r}" + (f" (also {bad[1:]})" if len(bad) > 1 else "")
                        + f"; accepted options: {', '.join(allowed)}")


# ----------------------------------------------------------------------------- params -> options
def _common(p: EvaluationParams) -> dict[str, Any]:
    return {"cluster": p.cluster, "alpha": p.alpha}


def _naive(p: EvaluationParams) -> dict[str, Any]:
    return {"window": p.naive_window, "alpha": p.alpha}


def _did2x2(p: EvaluationParams) -> dict[str, Any]:
    return {**_common(p), "window": 12}


def _event_twfe(p: EvaluationParams) -> dict[str, Any]:
    lo, hi = p.event_window
    return {**_common(p), "leads": -lo, "lags": hi}


def _cs(p: EvaluationParams) -> dict[str, Any]:
    lo, hi = p.event_window
    return {**_common(p), "control": p.control, "bootstrap": p.bootstrap, "seed": p.seed, "trim_e": (lo, hi)}


def _sa(p: EvaluationParams) -> dict[str, Any]:
    lo, hi = p.event_window
    # the overall row over event times 0..hi only: event times after hi keep their own cells (no
    # end bin, which would pool e > hi into the overall row and force one effect on them)
    return {**_common(p), "bin_e": (lo, None), "max_e": hi}


def _imputation(p: EvaluationParams) -> dict[str, Any]:
    lo, hi = p.event_window
    return {**_common(p), "horizons": list(range(0, hi + 1)), "max_e": hi, "pretrend_leads": -lo}


def _synth(p: EvaluationParams) -> dict[str, Any]:
    return {"alpha": p.alpha, "se": "placebo", "reps": p.placebo_reps, "seed": p.seed}


def _dose(p: EvaluationParams) -> dict[str, Any]:
    # not wired into evaluations yet (no design runs it): the shared options only
    return {**_common(p), "bootstrap": p.bootstrap, "seed": p.seed}


def _switching(p: EvaluationParams) -> dict[str, Any]:
    # not wired into evaluations yet (no design runs it): the shared options only
    return _common(p)


def _spillover(p: EvaluationParams) -> dict[str, Any]:
    # not wired into evaluations yet (no design runs it; the adjacency table is a call argument)
    lo, hi = p.event_window
    return {**_common(p), "horizons": hi, "max_e": hi}


def _labels(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


_FE = ("unit", "time", "cohort", "cluster", "alpha", "weights")
_SYNTH = ("unit", "time", "cohort", "cluster", "alpha", "se", "reps", "seed")

SPECS: dict[str, EstimatorSpec] = {s.name: s for s in [
    EstimatorSpec(
        "naive_yoy", "evalkit.estimators.naive:estimate_naive_yoy",
        _labels("同比口径（改革前后对比）", "Naive year-on-year (before/after)"), "naive",
        event_study=False, pretrend_test=False, weights=False,
        options=("unit", "time", "cohort", "alpha", "window"), from_params=_naive,
        estimand="adopters_after_minus_before", designs=DESIGNS),
    EstimatorSpec(
        "did2x2", "evalkit.estimators.did2x2:estimate_did2x2",
        _labels("经典 2×2 双重差分", "Canonical 2×2 DiD"), "robustness",
        event_study=False, pretrend_test=False, weights=True,
        options=(*_FE, "treated_cohort", "window"), from_params=_did2x2,
        estimand="att_one_cohort_vs_never_treated", designs=("staggered",)),
    EstimatorSpec(
        "twfe", "evalkit.estimators.twfe:estimate_twfe",
        _labels("双向固定效应（TWFE）", "Two-way fixed effects (TWFE)"), "robustness",
        event_study=False, pretrend_test=False, weights=True, options=(*_FE, "vcov"), from_params=_common,
        estimand="twfe_static_coefficient", designs=DESIGNS, headline_rank=4),
    EstimatorSpec(
        "event_twfe", "evalkit.estimators.twfe:estimate_event_twfe",
        _labels("动态双向固定效应（事件研究）", "Dynamic TWFE (event study)"), "robustness",
        event_study=True, pretrend_test=True, weights=True,
        options=(*_FE, "vcov", "leads", "lags", "bin_e", "reference"), from_params=_event_twfe,
        estimand="twfe_mean_post_event_coefficients", designs=("staggered",)),
    EstimatorSpec(
        "cs", "evalkit.estimators.cs:estimate_cs",
        _labels("Callaway–Sant'Anna 交错双重差分", "Callaway–Sant'Anna staggered DiD"), "headline",
        event_study=True, pretrend_test=True, weights=True,
        options=(*_FE, "control", "covariates", "est_method", "base_period", "anticipation", "bootstrap",
                 "seed", "aggregations", "trim_e", "balance_e", "allow_unbalanced", "executor", "progress"),
        from_params=_cs, estimand="att_simple_average_over_treated_cells", designs=("staggered",),
        headline_rank=1, horizon_option="trim_e"),
    EstimatorSpec(
        "sa", "evalkit.estimators.sunab:estimate_sunab",
        _labels("Sun–Abraham 交互加权", "Sun–Abraham interaction-weighted"), "robustness",
        event_study=True, pretrend_test=True, weights=True,
        options=(*_FE, "control", "anticipation", "bin_e", "max_e"), from_params=_sa,
        estimand="att_cohort_share_weighted_post_periods", designs=("staggered",), headline_rank=3,
        horizon_option="max_e"),
    EstimatorSpec(
        "imputation", "evalkit.estimators.imputation:estimate_imputation",
        _labels("插补估计（Borusyak 等）", "Imputation (Borusyak et al.)"), "robustness",
        event_study=True, pretrend_test=True, weights=True,
        options=(*_FE, "anticipation", "horizons", "max_e", "pretrend_leads", "leaveout",
                 "repeated_cross_section"),
        from_params=_imputation,
        estimand="att_average_over_treated_cells", designs=("staggered",), headline_rank=2,
        horizon_option="max_e"),
    EstimatorSpec(
        "bacon", "evalkit.estimators.bacon:estimate_bacon",
        _labels("Goodman-Bacon 分解", "Goodman-Bacon decomposition"), "diagnostic",
        event_study=False, pretrend_test=False, weights=False,
        options=("unit", "time", "cohort", "cluster", "alpha"), from_params=_common,
        estimand="twfe_static_coefficient", designs=("staggered",)),
    EstimatorSpec(
        "poisson", "evalkit.estimators.poisson:estimate_poisson",
        _labels("泊松固定效应（PPML）", "Poisson fixed effects (PPML)"), "robustness",
        event_study=False, pretrend_test=False, weights=True,
        options=(*_FE, "event_study", "anticipation", "bin_e", "tol", "maxiter"),
        from_params=_common,
        estimand="percent_change_treated_post"),
    EstimatorSpec(
        "sdid", "evalkit.estimators.sdid:estimate_sdid",
        _labels("合成双重差分（SDID）", "Synthetic difference-in-differences (SDID)"), "single_station",
        event_study=False, pretrend_test=False, weights=False, options=(*_SYNTH, "method"),
        from_params=_synth, estimand="att_treated_block_post_periods", designs=("single_station",), headline_rank=0),
    EstimatorSpec(
        "sc", "evalkit.estimators.sdid:estimate_sc",
        _labels("合成控制法（SC）", "Synthetic control (SC)"), "single_station",
        event_study=False, pretrend_test=False, weights=False, options=_SYNTH, from_params=_synth,
        estimand="treated_minus_synthetic_post_periods", designs=("single_station",)),
    EstimatorSpec(
        # design "dose" is not in DESIGNS: it never joins an evaluation's default estimators
        "dose", "evalkit.estimators.dose:estimate_dose",
        _labels("剂量反应双重差分（连续处理强度）", "Dose-response DiD (continuous treatment)"), "dose",
        event_study=False, pretrend_test=False, weights=False,
        options=("unit", "time", "cohort", "cluster", "alpha", "dose", "control", "degree", "knots", "dvals",
                 "bootstrap", "seed", "small_cohorts", "ssc"),
        from_params=_dose, estimand="att_average_over_adopters_doses", designs=("dose",)),
    EstimatorSpec(
        # design "switching" is not in DESIGNS: it never joins an evaluation's default estimators; the
        # event-study / pre-trend flags stay off so staggered evaluations never pick it (its result still
        # has event rows and meta["pretrend"])
        "switching", "evalkit.estimators.switching:estimate_switching",
        _labels("处理可开可关的事件研究（dCDH）", "Switching treatments event study (dCDH)"), "switching",
        event_study=False, pretrend_test=False, weights=False,
        options=("unit", "time", "treatment", "cluster", "alpha", "effects", "placebo", "switchers"),
        from_params=_switching, estimand="average_total_effect_per_treatment_unit", designs=("switching",)),
    EstimatorSpec(
        # design "spillover" is not in DESIGNS: it never joins an evaluation's default estimators; the
        # overall row is the direct effect with contaminated controls removed (the headline estimand
        # with max_e), the kind-"spillover" rows the effect on untreated neighbours
        "spillover", "evalkit.estimators.spillover:estimate_spillover",
        _labels("含邻近派出所溢出效应的双重差分", "DiD with spillovers to neighbouring stations"), "spillover",
        event_study=False, pretrend_test=False, weights=False,
        options=("unit", "time", "cohort", "cluster", "alpha", "adjacency", "horizons", "max_e", "leaveout"),
        from_params=_spillover, estimand="att_treated_cells_clean_controls", designs=("spillover",),
        horizon_option="max_e"),
]}


def get_spec(name: str) -> EstimatorSpec:
    """The spec registered under ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown estimator {name!r}; choose from {', '.join(SPECS)}") from None


def get_estimator(name: str) -> Callable[..., EstimationResult]:
    """A callable ``(panel, outcome, **options)`` that checks the options, then runs estimator ``name``."""
    spec = get_spec(name)
    fn = spec.load()

    @functools.wraps(fn)
    def run(panel: Any, outcome: str, **options: Any) -> EstimationResult:
        return _run(spec, fn, panel, outcome, options)

    return run


def names(*, role: str | None = None, event_study: bool | None = None, pretrend_test: bool | None = None,
          weights: bool | None = None, design: str | None = None) -> list[str]:
    """Registered names (registry order) whose spec matches every given flag."""
    out = []
    for s in SPECS.values():
        if ((role is None or s.role == role) and (event_study is None or s.event_study == event_study)
                and (pretrend_test is None or s.pretrend_test == pretrend_test)
                and (weights is None or s.weights == weights) and (design is None or design in s.designs)):
            out.append(s.name)
    return out


def default_estimators(design: str) -> list[str]:
    """Estimators an evaluation of ``design`` runs when params name none.

    Order: the naive comparison first; in a single-station design the single-station estimators
    next; then registry order.
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    chosen = [s for s in SPECS.values() if design in s.designs]
    order = {n: i for i, n in enumerate(SPECS)}
    return [s.name for s in sorted(chosen, key=lambda s: (s.role != "naive", s.role != design, order[s.name]))]


def default_headline(estimators: Iterable[str]) -> str:
    """The default headline among ``estimators``: lowest ``headline_rank``, else the first listed."""
    est = list(estimators)
    ranked = sorted((SPECS[n].headline_rank, i) for i, n in enumerate(est)
                    if n in SPECS and SPECS[n].headline_rank is not None)
    return est[ranked[0][1]] if ranked else est[0]


def labels(lang: str) -> dict[str, str]:
    """Estimator name -> label in ``lang`` (``zh`` | ``en``)."""
    return {n: s.label[lang] for n, s in SPECS.items()}
