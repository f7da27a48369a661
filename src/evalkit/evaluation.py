"""One evaluation: params → panel → estimators → numbers (estimates, verdict code, diagnostics).

This is what the notebook calls::

    ev = evalkit.evaluate(params)          # EvaluationParams or dict
    ev.headline()                          # effect, percent, CI, p, verdict code (numbers only)
    ev.estimates()                         # robustness rows (estimators, control groups, inference)
    ev.sensitivity                         # Rambachan–Roth sensitivity of the primary outcome
    ev.multiple                            # BH / Romano–Wolf adjusted p-values across outcomes
    ev.save("outputs/x/results.json")

The evaluation returns numbers only; the zh/en sentences and formatted tables of the brief are
rendered from them by :mod:`evalkit.brief_text` and shown by :mod:`evalkit.report`.

For the staggered design, besides the estimators of ``params.estimators`` every evaluation runs
cheap robustness variants (Callaway–Sant'Anna with never-treated and with not-yet-treated
controls, CS with the multiplier bootstrap), the optional inference of ``params.inference``
(wild cluster bootstrap and randomization inference for TWFE), the sensitivity analysis
(:mod:`evalkit.sensitivity_run`), the multiple-testing adjustment (:mod:`evalkit.evaluation_steps`)
and the further analyses the params ask for (dose, switching, spillover, heterogeneity:
:mod:`evalkit.analyses_run`, into ``ev.analyses``). Each of these is wrapped: a failure is recorded with its reason (shown in the brief as
"not available: reason") and never stops the evaluation. Nothing here depends on the clock:
``seconds`` and ``timings`` are the only time-dependent fields of ``results.json``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from evalkit import __version__, progress
from evalkit.analyses import AnalysisSection
from evalkit.analyses_run import AFTER_STEPS, evaluation_notes, run_analyses
from evalkit.estimand import HEADLINE_ESTIMAND, horizon
from evalkit.estimators import SPECS, names
from evalkit.estimators._sample import share_samples, with_sample_scope
from evalkit.evaluation_steps import (
    VARIANT_KINDS,
    BackgroundImports,
    fit_estimators,
    headline_jackknife,
    headline_sign,
    multiple_testing,
    pretrend_source,
    robustness_variants,
    small_sample_headline_se,
    small_sample_pretrends,
    steps_ahead,
)
from evalkit.fileperm import public_mode
from evalkit.headline_choice import HeadlineChoice, choose_headline
from evalkit.index.outcome import add_index_outcomes, panel_with_index
from evalkit.panel_source import read_panel_file
from evalkit.params import EvaluationParams, validate_params
from evalkit.registry import NEVER_TREATED, OUTCOMES
from evalkit.results import EstimationResult, dumps_readable
from evalkit.sensitivity_run import Sensitivity, reason, run_sensitivity
from evalkit.verdict import decide

# shown as diagnostics, not as rows of the robustness table
DIAGNOSTIC_ESTIMATORS = tuple(names(role="diagnostic"))
# the event-study chart's estimator after the CS bootstrap run and the headline: estimators with an
# event study, those ranked for the headline first (by rank), then registry order
EVENT_STUDY_SOURCES = tuple(sorted(names(event_study=True),
                                   key=lambda n: (SPECS[n].headline_rank is None, SPECS[n].headline_rank or 0)))
# keys of results.json that depend on the clock (everything else is a function of params and data)
TIMING_KEYS = ("seconds", "timings")
# clock readings inside an estimator's meta (e.g. CS stage timings); moved to the timing block
RESULT_TIMING_META = ("timing", "seconds")
# covariance kinds results.json leaves out: Sun–Abraham's saturated cohort × event-time matrix (329
# terms, 2–3 MB of JSON per outcome on the small world, half of the file; no reader uses it — the
# brief and the sensitivity analysis read ``vcov["event"]``); the fitted result keeps it
RESULTS_JSON_OMIT_VCOV = ("gt",)


class EvaluationError(RuntimeError):
    """The evaluation cannot run (missing warehouse, no adopters, headline estimator failed)."""


@dataclass
class WarehouseFacts:
    """What the brief's data note says about the source (aggregates only)."""

    path: str
    synthetic: bool
    quarantined: int
    rows: dict[str, int]
    meta: dict[str, str] = field(default_factory=dict)
    # live accepted rows whose category was mapped to ``other`` at ingest, by table
    rows_other: dict[str, int] = field(default_factory=dict)


def warehouse_facts(con: duckdb.DuckDBPyConnection, path: str) -> WarehouseFacts:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    meta: dict[str, str] = {}
    if "meta" in tables:
        meta = {k: str(v) for k, v in con.execute("SELECT key, value FROM meta").fetchall()}
    quarantined = 0
    if "quarantine" in tables:
        quarantined = int(con.execute("SELECT count(*) FROM quarantine").fetchone()[0])
    rows = {}
    for name in ("stations", "reforms", "incidents", "disputes"):
        if name in tables:
            rows[name] = int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
    synthetic = meta.get("synthetic", "false").lower() in ("true", "1", "yes")
    rows_other: dict[str, int] = {}
    if "ingest_log" in tables:
        from evalkit.warehouse import live_facts

        rows_other = live_facts(con)["rows_other"]
    return WarehouseFacts(path=path, synthetic=synthetic, quarantined=quarantined, rows=rows, meta=meta,
                          rows_other=rows_other)


def impossible_stat(stat: Any) -> bool:
    """A Wald / F statistic that cannot be one: negative or infinite (a singular covariance);
    ``None`` or NaN (no statistic) is not impossible, only missing."""
    try:
        x = float(stat)
    except (TypeError, ValueError):
        return False
    return x < 0 or math.isinf(x)


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: panel, every estimate, and the numbers the brief needs."""

    params: EvaluationParams
    panel: pd.DataFrame
    results: dict[str, dict[str, EstimationResult]]
    failures: dict[str, dict[str, str]]
    facts: WarehouseFacts
    seconds: float = 0.0
    # robustness variants by outcome: cs_never, cs_notyet, cs_mboot, twfe_wild, ri
    robustness: dict[str, dict[str, EstimationResult]] = field(default_factory=dict)
    robustness_failures: dict[str, dict[str, str]] = field(default_factory=dict)
    sensitivity: Sensitivity | None = None
    sensitivity_error: str | None = None  # why the sensitivity analysis is not available
    multiple: pd.DataFrame | None = None  # adjusted p-values across outcomes
    multiple_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # which estimator is the headline and by which rule (evalkit.headline_choice); ``params.headline``
    # is that concrete estimator
    headline_choice: HeadlineChoice | None = None
    # further analyses asked for (evalkit.analyses_run): kind → outcome → AnalysisSection
    analyses: dict[str, dict[str, AnalysisSection]] = field(default_factory=dict)
    # notes about the data the brief states, key → facts (evalkit.analyses_run.evaluation_notes)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ----------------------------------------------------------------- facts
    @property
    def lang(self) -> str:
        return self.params.lang

    @property
    def primary_outcome(self) -> str:
        return self.params.outcomes[0]

    def result(self, outcome: str | None = None, estimator: str | None = None) -> EstimationResult:
        outcome = outcome or self.primary_outcome
        estimator = estimator or self.params.headline
        try:
            return self.results[outcome][estimator]
        except KeyError:
            err = self.failures.get(outcome, {}).get(estimator, "not requested")
            raise KeyError(f"no {estimator} result for {outcome}: {err}") from None

    def n_units(self, outcome: str | None = None) -> tuple[int, int]:
        """(adopting, comparison) stations of the headline estimate's sample (``meta["sample"]``:
        late adopters count as comparison, dropped stations not at all); the panel's counts when
        the headline result carries no sample or did not run."""
        try:
            info = self.result(outcome).meta.get("sample") or {}
        except KeyError:
            info = {}
        if "n_treated" in info and "n_control" in info:
            return int(info["n_treated"]), int(info["n_control"])
        first = self.panel.groupby("station_id")["first_treat"].first()
        treated = int((first != NEVER_TREATED).sum())
        return treated, int(len(first) - treated)

    def pretrend_info(self, outcome: str | None = None) -> dict[str, Any] | None:
        """The joint pre-trend test the verdict reads: the headline estimator's, else event-study
        TWFE, Sun–Abraham or imputation (first available). ``method`` says which p-value it is."""
        res = self.results.get(outcome or self.primary_outcome, {})
        name = pretrend_source(self.params, res)
        if name is None:  # none computed: the headline's own "not available, because …" (no p-value)
            own = (res[self.params.headline].meta.get("pretrend") or {}) if self.params.headline in res else {}
            return {"estimator": self.params.headline, **own} if own.get("status") == "not_available" else None
        return {"estimator": name, **res[name].meta["pretrend"]}

    def pretrend_p(self, outcome: str | None = None) -> float | None:
        """p-value of the joint pre-trend test (see :meth:`pretrend_info`); ``None`` when there is
        none or the chosen test failed (``status == "failed"``, never replaced by the χ² p-value)."""
        info = self.pretrend_info(outcome)
        pv = None if info is None else info.get("p_value")
        if info is not None and impossible_stat(info.get("stat")):
            return None  # a negative Wald statistic (singular covariance) tests nothing
        return None if pv is None or math.isnan(float(pv)) else float(pv)

    def robust(self, outcome: str | None = None) -> bool | None:
        """Sensitivity verdict input: robust CI excludes zero (primary outcome only; None = not run)."""
        outcome = outcome or self.primary_outcome
        s = self.sensitivity
        if s is None or s.outcome != outcome:
            return None
        return s.robust

    def is_share(self, outcome: str) -> bool:
        return OUTCOMES[outcome].kind == "share"

    def no_data(self, outcome: str | None = None) -> bool:
        """Whether ``outcome`` carries no information: every cell missing, or one value everywhere
        (zero variance, e.g. zero everywhere) — the verdict is then ``no_data``, never "no effect"."""
        y = self.panel[outcome or self.primary_outcome].dropna()
        return y.empty or y.nunique() <= 1

    def disagreeing_estimators(self, outcome: str | None = None) -> list[str]:
        """Other estimators (rows ``kind == "estimator"`` of :meth:`estimates`) whose 95% interval
        does not overlap the headline's (the naive year-on-year row aside); such a disagreement is stated on page 1 and caps the verdict."""
        outcome = outcome or self.primary_outcome
        o = self.result(outcome).overall
        lo, hi = float(o["ci_low"]), float(o["ci_high"])
        if math.isnan(lo) or math.isnan(hi):
            return []
        rows = self._estimates_cached(outcome)  # read only here
        rows = rows[(rows["kind"] == "estimator") & (rows["name"] != self.params.headline)
                    & ~rows["name"].isin(names(role="naive"))]  # year-on-year is not a causal estimate
        return [r.name for r in rows.itertuples(index=False) if r.ci_high < lo or r.ci_low > hi]

    # ----------------------------------------------------------------- headline
    def headline(self, outcome: str | None = None) -> dict[str, Any]:
        """Numbers of page 1: effect (level and percent; share outcomes in proportions), 95% CI, p,
        verdict code and reason, pre-trend test, sensitivity input, adopters / comparison stations,
        the headline estimand (``estimand``, ``horizon`` = [0, H]) and the rule that chose the
        headline estimator (``headline_rule``, :mod:`evalkit.headline_choice`), and the naive
        year-on-year change when it was run."""
        outcome = outcome or self.primary_outcome
        r = self.result(outcome)
        row = r.overall
        est, lo, hi, p = (float(row[k]) for k in ("estimate", "ci_low", "ci_high", "p_value"))
        n_t, n_c = self.n_units(outcome)
        disagree = self.disagreeing_estimators(outcome)
        verdict = decide(p, self.pretrend_p(outcome), alpha=self.params.alpha, robust=self.robust(outcome),
                         n_treated=n_t, n_control=n_c, design=self.params.design or "staggered",
                         no_data=self.no_data(outcome), disagree=bool(disagree))
        out = {
            "outcome": outcome, "estimator": r.estimator, "estimate": est, "ci_low": lo, "ci_high": hi,
            "p_value": p, "pct": r.percent(est), "pct_ci_low": r.percent(lo), "pct_ci_high": r.percent(hi),
            "share": self.is_share(outcome), "verdict": verdict.code, "verdict_reason": verdict.reason or verdict.code,
            "pretrend_p": verdict.pretrend_p, "pretrend": self.pretrend_info(outcome), "robust": verdict.robust,
            "n_treated": n_t, "n_control": n_c, "verdict_caps": list(verdict.caps), "disagree_with": disagree,
            **self._estimand(r), "headline_rule": None if self.headline_choice is None else self.headline_choice.rule,
        }
        naive = self.results.get(outcome, {}).get("naive_yoy")
        if naive is not None:
            out["naive_estimate"] = float(naive.att)
            out["naive_pct"] = float(naive.meta["pct_change"])
        return out

    def _estimand(self, r: EstimationResult) -> dict[str, Any]:
        """``estimand`` (the headline result's ``meta["estimand"]``, else its spec's) and ``horizon``
        ([0, H] when that is the headline estimand of :mod:`evalkit.estimand`, else the result's own)."""
        estimand = r.meta.get("estimand") or (SPECS[r.estimator].estimand if r.estimator in SPECS else None)
        hz = list(horizon(self.params.event_window)) if estimand == HEADLINE_ESTIMAND else r.meta.get("horizon")
        return {"estimand": estimand, "horizon": hz}

    def planted_truth(self, outcome: str | None = None) -> float | None:
        """For synthetic demo data: the planted truth (percent) of the headline estimand on this
        evaluation's own sample (the headline's sample rows, adopter-months 0..H; the single-station
        design: every post month; evalkit.demo.truth), in percent of the headline's baseline mean like
        :meth:`headline`'s ``pct``. ``None`` when the warehouse is not a demo world or has no truth
        cells (regenerate it with ``evalkit demo-data``)."""
        outcome = outcome or self.primary_outcome
        if not self.facts.synthetic:
            return None
        from evalkit.demo.truth import truth_for_sample

        try:
            r = self.result(outcome)
            frame = r.context.sample.frame if r.context is not None else self.panel
            last = None if self.params.design == "single_station" else self.params.event_window[1]
            with open_warehouse(self.facts.path) as con:
                level = truth_for_sample(con, self.params.reform, outcome, frame, last)
        except (KeyError, LookupError, EvaluationError, duckdb.Error):
            return None
        base = r.meta.get("baseline_mean")
        return 100.0 * level / float(base) if base else None

    def bacon_summary(self, outcome: str | None = None) -> pd.DataFrame:
        """Goodman-Bacon decomposition by comparison type (weight, estimate), if it was run."""
        outcome = outcome or self.primary_outcome
        r = self.results.get(outcome, {}).get("bacon")
        if r is None:
            return pd.DataFrame()
        comp = r.rows("component")
        return comp[["term", "weight", "estimate"]].reset_index(drop=True)

    # ----------------------------------------------------------------- tables
    def estimates(self, outcome: str | None = None) -> pd.DataFrame:
        """Rows of the robustness table: estimators side by side, then control-group and inference
        variants. Columns: ``kind`` (estimator / control / inference), ``name`` (estimator or
        variant key), ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``pct``, ``n_treated``,
        ``n_control`` (outcome units; share outcomes in proportions).

        A copy of a table built once per outcome (the brief's cells ask ~40 times): rebuilt
        when a result of the outcome is replaced, added or removed, or its ``estimates`` frame is."""
        return self._estimates_cached(outcome or self.primary_outcome).copy()

    def _estimates_cached(self, outcome: str) -> pd.DataFrame:
        """The cached table of :meth:`estimates` (not to be modified)."""
        done = self.results.get(outcome, {}), self.robustness.get(outcome, {})
        key = [(k, r, r.estimates) for by in done for k, r in by.items()]
        cache = self.__dict__.setdefault("_estimates_cache", {})
        hit = cache.get(outcome)
        if hit is not None and len(hit[0]) == len(key) and all(
                a[0] == b[0] and a[1] is b[1] and a[2] is b[2] for a, b in zip(hit[0], key, strict=True)):
            return hit[1]
        table = self._estimates_table(outcome)
        cache[outcome] = (key, table)
        return table

    def _estimates_table(self, outcome: str) -> pd.DataFrame:
        """The table of :meth:`estimates`, built from the results."""
        rows = []

        def row(kind: str, name: str, r: EstimationResult) -> dict[str, Any]:
            o = r.overall
            return {"kind": kind, "name": name, "estimate": float(o["estimate"]), "ci_low": float(o["ci_low"]),
                    "ci_high": float(o["ci_high"]), "p_value": float(o["p_value"]),
                    "pct": r.percent(float(o["estimate"])),
                    "n_treated": r.meta.get("n_treated"), "n_control": r.meta.get("n_control")}

        for name, r in self.results.get(outcome, {}).items():
            if r.rows("overall").empty or name in DIAGNOSTIC_ESTIMATORS:
                continue
            rows.append(row("estimator", name, r))
        for key, r in self.robustness.get(outcome, {}).items():
            if r.rows("overall").empty:
                continue
            rows.append(row(VARIANT_KINDS.get(key, "inference"), key, r))
        cols = ["kind", "name", "estimate", "ci_low", "ci_high", "p_value", "pct", "n_treated", "n_control"]
        return pd.DataFrame(rows, columns=cols)

    def trends(self, outcome: str | None = None) -> pd.DataFrame:
        """Monthly mean outcome of adopting vs non-adopting stations (wide: month × group)."""
        outcome = outcome or self.primary_outcome
        grp = np.where(self.panel["first_treat"] != NEVER_TREATED, "treated", "control")
        return (self.panel.assign(group=grp).groupby(["month", "group"])[outcome].mean()
                .unstack("group").reindex(columns=["treated", "control"]))

    def event_study(self, outcome: str | None = None) -> tuple[str, pd.DataFrame]:
        """(estimator name, event-time rows) for the event-study chart.

        With a Callaway–Sant'Anna headline, prefers its multiplier-bootstrap run (pre and post
        periods, uniform 95% bands; not run with fewer than 12 clusters), then the headline's own
        event study, then the first estimator with event-time rows.
        """
        outcome = outcome or self.primary_outcome
        boot = self.robustness.get(outcome, {}).get("cs_mboot") if self.params.headline == "cs" else None
        if boot is not None and not boot.rows("event").empty and boot.rows("event")["band_low"].notna().any():
            return "cs", boot.event_study()
        for name in (self.params.headline, *EVENT_STUDY_SOURCES):
            r = self.results.get(outcome, {}).get(name)
            if r is not None and not r.rows("event").empty:
                return name, r.event_study()
        return "", pd.DataFrame()

    # ----------------------------------------------------------------- export
    def to_dict(self, text: dict[str, Any] | None = None) -> dict[str, Any]:
        """``results.json`` as a dict: numbers, then ``text`` (the brief's sentences, when given by
        :func:`evalkit.brief_text.results_text`), then the timing block (:data:`TIMING_KEYS`): the
        evaluation's steps and the estimators' own stage timings, which are moved out of their meta."""
        stages: dict[str, Any] = {}
        d = {
            "schema_version": 2,
            "evalkit_version": __version__,
            "evaluation_id": self.params.evaluation_id,
            "params": self.params.model_dump(mode="json"),
            "headline_choice": None if self.headline_choice is None else self.headline_choice.to_dict(),
            "synthetic": self.facts.synthetic,
            "panel": {"rows": int(len(self.panel)), "stations": int(self.panel["station_id"].nunique()),
                      "months": int(self.panel["period"].nunique())},
            "headline": {o: _safe_headline(self, o) for o in self.params.outcomes},
            "results": {o: {k: _result_dict(r, stages, f"results/{o}/{k}") for k, r in by.items()}
                        for o, by in self.results.items()},
            "failures": self.failures,
            "robustness": {o: {k: _result_dict(r, stages, f"robustness/{o}/{k}") for k, r in by.items()}
                           for o, by in self.robustness.items()},
            "robustness_failures": self.robustness_failures,
            "sensitivity": None if self.sensitivity is None else self.sensitivity.to_dict(),
            "sensitivity_error": self.sensitivity_error,
            "multiple_testing": None if self.multiple is None else self.multiple.to_dict(orient="records"),
            "multiple_testing_error": self.multiple_error,
            "quarantined_rows": self.facts.quarantined,
            "analyses": {k: {o: _section_dict(sec, stages, f"analyses/{k}/{o}") for o, sec in by.items()}
                         for k, by in self.analyses.items()},
            "notes": self.notes,
        }
        if text is not None:
            d["text"] = text
        # the clock-dependent block, last and separate (the determinism test drops exactly these keys)
        d["timings"] = {"steps": self.timings, "stages": stages}
        d["seconds"] = self.seconds
        return d

    def save(self, path: str | Path, text: dict[str, Any] | None = None) -> Path:
        """Write ``results.json`` atomically (temp file + rename); ``text``: see :meth:`to_dict`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict(text)
        # results and robustness come from EstimationResult.to_dict, JSON-safe already (_clean):
        # not walked twice (they hold most of the file's numbers)
        safe = {k: v if k in ("results", "robustness") else _json_safe(v) for k, v in d.items()}
        body = dumps_readable(safe)  # rows of scalars on one line
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
        public_mode(fd)  # mkstemp makes 0600; results follow the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.replace(tmp, path)
        return path


def _result_dict(r: EstimationResult, stages: dict[str, Any], where: str) -> dict[str, Any]:
    """``r.to_dict()`` without clock readings in its meta (collected in ``stages[where]``) and
    without the covariance kinds of :data:`RESULTS_JSON_OMIT_VCOV`."""
    d = r.to_dict(omit_vcov=RESULTS_JSON_OMIT_VCOV)
    meta = dict(d.get("meta") or {})
    clock = {k: meta.pop(k) for k in RESULT_TIMING_META if k in meta}
    if clock:
        stages[where] = clock
        d["meta"] = meta
    return d


def _section_dict(sec: AnalysisSection, stages: dict[str, Any], where: str) -> dict[str, Any]:
    """``sec.to_dict()`` without clock readings in its result's meta (as :func:`_result_dict`)."""
    d = sec.to_dict()
    meta = dict((d["result"] or {}).get("meta") or {}) if sec.kind != "heterogeneity" else {}
    clock = {k: meta.pop(k) for k in RESULT_TIMING_META if k in meta}
    if clock:
        stages[where] = clock
        d["result"] = {**d["result"], "meta": meta}
    return d


def _safe_headline(ev: Evaluation, outcome: str) -> dict[str, Any] | None:
    try:
        return ev.headline(outcome)
    except KeyError:
        return None


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.integer):
        return int(v)
    return v


def open_warehouse(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only (relative paths are also looked up from parent folders)."""
    from evalkit.warehouse import WarehouseError, find_existing, open_db

    p = find_existing(path)
    if not p.is_file():
        raise EvaluationError(
            f"warehouse {p} not found: create it with `evalkit demo-data` (demo) or `evalkit ingest` (real data)"
        )
    try:
        return open_db(p, read_only=True)
    except WarehouseError as exc:
        raise EvaluationError(str(exc)) from None


@with_sample_scope  # with share_samples(panel) below: one validated sample per outcome for every step
def evaluate(params: EvaluationParams | dict[str, Any], *, panel: pd.DataFrame | None = None) -> Evaluation:
    """Run one evaluation: build the panel from the warehouse (or use ``panel``), choose the headline
    estimator (:func:`evalkit.headline_choice.choose_headline`; ``ev.params`` is a copy of the params
    with the concrete ``headline``, ``ev.headline_choice`` says which rule chose it) and run every
    estimator.

    A failing secondary estimator is recorded in ``failures`` (and shown in the brief); a
    failing headline estimator raises :class:`EvaluationError`.
    """
    p = params if isinstance(params, EvaluationParams) else validate_params(params)
    t0 = time.perf_counter()
    progress.report("build_panel")
    imports = None
    try:
        with open_warehouse(p.warehouse) as con:
            facts = warehouse_facts(con, p.warehouse)
            # Python imports are not the evaluation's compute: done meanwhile in a thread, the wait not in `seconds`
            imports = BackgroundImports(p, facts.synthetic)
            if panel is None and p.panel_file:  # a ready station-month Parquet (evalkit.panel_source)
                panel = add_index_outcomes(con, read_panel_file(con, p.panel_file, p), p)
            elif panel is None:  # build_panel + index/capability scores joined, one pass (evalkit.index.outcome)
                panel = panel_with_index(con, p)
    finally:  # joined before anything else imports or forks; a failed import must not hide the panel's error
        waited = 0.0 if imports is None else imports.wait(retry=False)
    imports.retry()  # a failed import raised here, in the evaluation's thread, as when it imported in line
    first = panel.groupby("station_id")["first_treat"].first()
    if (first == NEVER_TREATED).all():
        raise EvaluationError(
            f"no station in the selected region adopted reform {p.reform!r} ({p.reform_info.zh}) — check the "
            f"region filter {p.region.as_filter()} and the reforms table"
        )
    share_samples(panel)  # evaluate() does not change the panel: its samples are built once (scope: decorator)
    choice = choose_headline(panel, p)
    p = p.model_copy(update={"headline": choice.estimator})
    progress.report("estimators")  # the headline's fits first: the steps ahead may start after them
    with ExitStack() as children:  # the one place that stops the steps-ahead child (Ahead.__exit__), if one runs
        results, failures, ahead = fit_estimators(panel, p, lambda name, o, exc, tb: EvaluationError(
            f"headline estimator {name} failed on {o}: {exc}\n{tb}"), own=children.enter_context)
        ev = Evaluation(p, panel, results, failures, facts, headline_choice=choice, notes=evaluation_notes(panel))
        ev.timings["estimators"] = time.perf_counter() - t0 - waited
        ev.timings["imports"] = imports.seconds  # beside the panel's queries; `imports_wait` of it not hidden by them
        ev.timings["imports_wait"] = waited  # not part of ev.seconds
        if p.design == "staggered":
            fits = {o: dict(by) for o, by in results.items()}  # the fits themselves: later steps store copies
            from evalkit.inference._shared import shared_designs

            truth: dict[str, Any] = {}  # the demo truth cells the analyses read, by outcome (read once)
            with shared_designs():  # permutation draws of several steps and outcomes share their designs
                _staggered_extras(ev, ahead or children.enter_context(steps_ahead(p, results)), fits, truth)
            # dose, switching, spillover, heterogeneity (those not run while the child computed): each
            # failure recorded, never raised
            run_analyses(ev, fits, truth_cells=truth)
    ev.seconds = time.perf_counter() - t0 - waited
    progress.report(progress.DONE)
    return ev


def _staggered_extras(ev: Evaluation, ahead: Any, fits: dict[str, dict[str, EstimationResult]],
                      truth: dict[str, Any]) -> None:
    """Small-sample inference, robustness variants, sensitivity and multiple testing (in place); when
    ``ahead`` (:func:`evaluation_steps.steps_ahead`; stopped by the caller) is a forked child, the pre-trend
    tests and Romano–Wolf draws run there meanwhile, and here the steps that read none of them: the
    robustness variants, the sensitivity analysis, the headline's jackknife (applied after the pre-trend
    test, as in the serial order) and the further analyses but :data:`analyses_run.AFTER_STEPS` (``fits``,
    ``truth``: as :func:`run_analyses`)."""
    p, panel, results = ev.params, ev.panel, ev.results

    def step(name: str, fn: Any) -> Any:
        progress.report(name)
        t1 = time.perf_counter()
        value = fn()
        ev.timings[name] = ev.timings.get(name, 0.0) + time.perf_counter() - t1  # a step in two parts adds up
        return value

    def robustness() -> None:
        for o in p.outcomes:
            ev.robustness[o], ev.robustness_failures[o] = robustness_variants(panel, o, p, results[o])

    def sensitivity() -> None:
        try:
            ev.sensitivity = run_sensitivity(panel, ev.primary_outcome, p, sign=headline_sign(ev))
        except Exception as exc:  # noqa: BLE001 - shown in the brief as "not available: reason"
            ev.sensitivity_error = reason(exc)

    # robustness and sensitivity read neither the tests nor the jackknife
    either = [("robustness", robustness), ("sensitivity", sensitivity)][:2 if p.sensitivity else 1]
    jks: dict[str, Any] = {}
    if ahead.forked:  # while the child computes the tests
        for name, fn in either:
            step(name, fn)
        run_analyses(ev, fits, kinds=tuple(k for k in p.analyses if k not in AFTER_STEPS), truth_cells=truth)
        jks = step("headline_se", lambda: {o: headline_jackknife(panel, p, results[o].get(p.headline))
                                           for o in p.outcomes})
    step("pretrend_test", lambda: small_sample_pretrends(panel, p, results, ahead.forked and ahead.result()[0]))
    step("headline_se", lambda: [small_sample_headline_se(panel, o, p, results[o], *([jks[o]] if jks else []))
                                 for o in p.outcomes])
    for name, fn in () if ahead.forked else either:  # their usual place
        step(name, fn)
    if p.multiple_testing and len(p.outcomes) > 1:
        def multiple() -> None:
            try:
                ev.multiple, ev.multiple_error = multiple_testing(panel, p, results,
                                                                  ahead.forked and ahead.result()[1])
            except Exception as exc:  # noqa: BLE001
                ev.multiple_error = reason(exc)

        step("multiple_testing", multiple)
