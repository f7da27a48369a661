"""One evaluation: params → panel → estimators → headline, verdict and tables.

This is what the notebook calls::

    ev = evalkit.evaluate(params)          # EvaluationParams or dict
    ev.headline()                          # effect in percent, CI, verdict, sentence
    ev.estimates_table()                   # robustness table (estimators, control groups, inference)
    ev.sensitivity                         # Rambachan–Roth sensitivity of the primary outcome
    ev.multiple_table()                    # BH / Romano–Wolf adjusted p-values across outcomes
    ev.save("outputs/x/results.json")

For the staggered design, besides the estimators of ``params.estimators`` every evaluation runs
cheap robustness variants (Callaway–Sant'Anna with never-treated and with not-yet-treated
controls, CS with the multiplier bootstrap), the optional inference of ``params.inference``
(wild cluster bootstrap and randomization inference for TWFE), the sensitivity analysis and the
multiple-testing adjustment. Each of these is wrapped: a failure is recorded with its reason
(shown in the brief as "not available: reason") and never stops the evaluation.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from evalkit import __version__
from evalkit.estimators import get_estimator
from evalkit.i18n import (
    estimator_label,
    fmt_num,
    fmt_p,
    fmt_pct,
    outcome_label,
    outcome_unit,
    reform_label,
    t,
)
from evalkit.inference.jackknife import apply_jackknife, jackknife_overall
from evalkit.inference.pretrend import pretrend_test
from evalkit.panel import build_panel
from evalkit.params import EvaluationParams, validate_params
from evalkit.registry import NEVER_TREATED, OUTCOMES
from evalkit.results import EstimationResult
from evalkit.verdict import Verdict, decide

# shown as diagnostics, not as rows of the robustness table
DIAGNOSTIC_ESTIMATORS = ("bacon",)

CS_BOOTSTRAP_DEFAULT = 499  # CS multiplier-bootstrap variant when params.bootstrap == 0
# sensitivity (Rambachan & Roth): CS event study with a universal base period, short window
SENS_PRE, SENS_POST, SENS_POST_RM = 6, 12, 6  # RM vertex enumeration explodes beyond ~6 post coefficients
SENS_MBAR = (0.5, 1.0, 1.5, 2.0)
SENS_M_FACTORS = (0.0, 0.025, 0.05, 0.1, 0.2)  # smoothness grid M = factor × SE of the target
SENS_TIME_BOX = 10.0  # seconds: relative magnitudes / breakdown are skipped beyond this
VARIANT_KINDS = {"cs_never": "control", "cs_notyet": "control",
                 "cs_mboot": "inference", "twfe_wild": "inference", "ri": "inference"}


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
    return WarehouseFacts(path=path, synthetic=synthetic, quarantined=quarantined, rows=rows, meta=meta)


def _estimator_options(name: str, p: EvaluationParams) -> dict[str, Any]:
    lo, hi = p.event_window
    common: dict[str, Any] = {"cluster": p.cluster, "alpha": p.alpha}
    if name == "naive_yoy":
        return {"window": p.naive_window, "alpha": p.alpha}
    if name == "did2x2":
        return {**common, "window": 12}
    if name == "event_twfe":
        return {**common, "leads": -lo, "lags": hi}
    if name == "cs":
        return {**common, "control": p.control, "bootstrap": p.bootstrap, "seed": p.seed,
                "min_e": lo, "max_e": hi}
    if name == "sa":
        return {**common, "bin_e": (lo, hi)}  # SA bins the ends (fe-engine: min_e/max_e renamed)
    if name == "imputation":
        return {**common, "horizons": list(range(0, hi + 1)), "pretrend_leads": -lo}
    if name in ("sdid", "sc"):
        return {"alpha": p.alpha, "se": "placebo", "reps": p.placebo_reps, "seed": p.seed}
    return common


@dataclass
class Sensitivity:
    """Rambachan–Roth sensitivity of the primary outcome's event study (see ``docs/briefs.md``).

    ``sd``: smoothness (Δ^SD, FLCI) robust CIs for θ = mean of the first ``num_post`` post-reform
    effects; ``rm``: relative magnitudes (Δ^RM, C-LF) for θ_RM = mean of the first ``num_post_rm``
    effects; frames with columns ``M, lb, ub, method, Delta`` in outcome units. ``robust``: whether
    the reference robust CI (RM at M̄ = 0.5, else SD at the smallest positive M) excludes zero on the
    side of ``sign`` (the headline estimate's sign); ``None`` if it could not be decided.
    """

    outcome: str
    source: str  # estimator of the event study: "cs" (universal base period) or "event_twfe"
    num_pre: int
    num_post: int
    num_post_rm: int
    original: dict[str, float]
    original_rm: dict[str, float] | None = None
    sd: pd.DataFrame | None = None
    rm: pd.DataFrame | None = None
    breakdown_rm: float | None = None
    breakdown_sd: float | None = None
    robust: bool | None = None
    reference: str | None = None  # "rm" or "sd": which robust CI decided ``robust``
    skipped: dict[str, str] = field(default_factory=dict)  # part -> reason
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("outcome", "source", "num_pre", "num_post", "num_post_rm", "original",
                                           "original_rm", "breakdown_rm", "breakdown_sd", "robust", "reference",
                                           "skipped", "seconds")}
        d["sd"] = None if self.sd is None else self.sd.to_dict(orient="records")
        d["rm"] = None if self.rm is None else self.rm.to_dict(orient="records")
        return d


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: panel, every estimate, and what the brief needs."""

    params: EvaluationParams
    panel: pd.DataFrame
    results: dict[str, dict[str, EstimationResult]]
    failures: dict[str, dict[str, str]]
    facts: WarehouseFacts
    seconds: float = 0.0
    # robustness variants by outcome: cs_never, cs_notyet, cs_analytic, cs_mboot, twfe_wild, ri
    robustness: dict[str, dict[str, EstimationResult]] = field(default_factory=dict)
    robustness_failures: dict[str, dict[str, str]] = field(default_factory=dict)
    sensitivity: Sensitivity | None = None
    sensitivity_error: str | None = None  # why the sensitivity analysis is not available
    multiple: pd.DataFrame | None = None  # adjusted p-values across outcomes
    multiple_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

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

    def n_units(self) -> tuple[int, int]:
        first = self.panel.groupby("station_id")["first_treat"].first()
        treated = int((first != NEVER_TREATED).sum())
        return treated, int(len(first) - treated)

    def pretrend_info(self, outcome: str | None = None) -> dict[str, Any] | None:
        """The joint pre-trend test the verdict reads: the headline estimator's, else event-study
        TWFE, Sun–Abraham or imputation (first available). ``method`` says which p-value it is."""
        res = self.results.get(outcome or self.primary_outcome, {})
        name = _pretrend_source(self.params, res)
        return None if name is None else {"estimator": name, **res[name].meta["pretrend"]}

    def pretrend_p(self, outcome: str | None = None) -> float | None:
        """p-value of the joint pre-trend test (see :meth:`pretrend_info`)."""
        info = self.pretrend_info(outcome)
        return None if info is None else float(info["p_value"])

    def robust(self, outcome: str | None = None) -> bool | None:
        """Sensitivity verdict input: robust CI excludes zero (primary outcome only; None = not run)."""
        outcome = outcome or self.primary_outcome
        s = self.sensitivity
        if s is None or s.outcome != outcome:
            return None
        return s.robust

    def is_share(self, outcome: str) -> bool:
        return OUTCOMES[outcome].kind == "share"

    # ----------------------------------------------------------------- headline
    def headline(self, outcome: str | None = None) -> dict[str, Any]:
        """Effect (level and percent), 95% CI, verdict and the one-sentence answer."""
        outcome = outcome or self.primary_outcome
        r = self.result(outcome)
        row = r.overall
        lang = self.lang
        est, lo, hi, p = (float(row[k]) for k in ("estimate", "ci_low", "ci_high", "p_value"))
        pct, pct_lo, pct_hi = r.percent(est), r.percent(lo), r.percent(hi)
        verdict: Verdict = decide(p, self.pretrend_p(outcome), alpha=self.params.alpha,
                                  robust=self.robust(outcome))
        n_t, n_c = self.n_units()
        if self.is_share(outcome):
            sentence = t("answer_level", lang, estimator=estimator_label(r.estimator, lang),
                         reform=reform_label(self.params.reform, lang), outcome=outcome_label(outcome, lang),
                         eff=fmt_num(100 * est, lang, 1), unit=outcome_unit(outcome, lang),
                         lo=fmt_num(100 * lo, lang, 1), hi=fmt_num(100 * hi, lang, 1))
        else:
            sentence = t("answer", lang, estimator=estimator_label(r.estimator, lang),
                         reform=reform_label(self.params.reform, lang), outcome=outcome_label(outcome, lang),
                         direction=t("down" if est < 0 else "up", lang), pct=fmt_pct(abs(pct), lang),
                         lo=fmt_pct(pct_lo, lang, signed=True), hi=fmt_pct(pct_hi, lang, signed=True))
        question = t("question", lang, reform=reform_label(self.params.reform, lang),
                     outcome=outcome_label(outcome, lang),
                     stations=t("stations_desc", lang, n_treated=n_t, n_control=n_c),
                     start=self.params.window.start, end=self.params.window.end)
        out = {
            "outcome": outcome, "estimator": r.estimator, "estimate": est, "ci_low": lo, "ci_high": hi,
            "p_value": p, "pct": pct, "pct_ci_low": pct_lo, "pct_ci_high": pct_hi,
            "verdict": verdict.code, "verdict_label": verdict.label(lang),
            "verdict_explanation": verdict.explanation(lang), "pretrend_p": verdict.pretrend_p,
            "pretrend": self.pretrend_info(outcome),
            "robust": verdict.robust,
            "question": question, "sentence": sentence, "n_treated": n_t, "n_control": n_c,
        }
        naive = self.results.get(outcome, {}).get("naive_yoy")
        if naive is not None:
            npct = naive.meta["pct_change"]
            causal = (fmt_num(100 * est, lang, 1) + " " + outcome_unit(outcome, lang)) if self.is_share(outcome) \
                else fmt_pct(pct, lang, signed=True)
            naive_val = (fmt_num(100 * naive.att, lang, 1) + " " + outcome_unit(outcome, lang)) \
                if self.is_share(outcome) else fmt_pct(abs(npct), lang)
            out["naive_pct"] = npct
            out["naive_sentence"] = t("naive", lang, outcome=outcome_label(outcome, lang),
                                      direction=t("down" if naive.att < 0 else "up", lang),
                                      pct=naive_val, causal=causal)
            out["naive_why"] = t("naive_why", lang)
        return out

    def planted_truth(self, outcome: str | None = None) -> float | None:
        """For synthetic demo data: the true overall effect (percent) planted for this reform and outcome."""
        outcome = outcome or self.primary_outcome
        if not self.facts.synthetic or "manifest" not in self.facts.meta:
            return None
        try:
            manifest = json.loads(self.facts.meta["manifest"])
        except ValueError:
            return None
        for r in manifest.get("reforms", []):
            if r.get("reform") == self.params.reform:
                if r.get("placebo"):
                    return 0.0
                v = r.get("true_overall_att_pct", {}).get(outcome)
                return None if v is None else float(v)
        return None

    def bacon_summary(self, outcome: str | None = None) -> pd.DataFrame:
        """Goodman-Bacon decomposition by comparison type (weight, estimate), if it was run."""
        outcome = outcome or self.primary_outcome
        r = self.results.get(outcome, {}).get("bacon")
        if r is None:
            return pd.DataFrame()
        comp = r.rows("component")
        return comp[["term", "weight", "estimate"]].reset_index(drop=True)

    # ----------------------------------------------------------------- tables
    def estimates_table(self, outcome: str | None = None) -> pd.DataFrame:
        """Robustness table: estimators side by side, then control-group and inference variants.

        Columns: check type, row label, estimate, CI, p, percent, n treated, n control.
        """
        outcome = outcome or self.primary_outcome
        lang = self.lang
        rows = []
        share = self.is_share(outcome)
        scale = 100.0 if share else 1.0

        def row(kind: str, label: str, r: EstimationResult) -> dict[str, Any]:
            o = r.overall
            lo, hi = o["ci_low"], o["ci_high"]
            ci = "—" if _nan(lo) or _nan(hi) else f"[{fmt_num(scale * lo, lang, 3)}, {fmt_num(scale * hi, lang, 3)}]"
            return {
                t("check", lang): t(f"check_{kind}", lang),
                t("estimator", lang): label,
                t("estimate", lang): fmt_num(scale * o["estimate"], lang, 3),
                t("ci", lang): ci,
                t("p_value", lang): fmt_p(o["p_value"]),
                t("pct", lang): "—" if share else fmt_pct(r.percent(o["estimate"]), lang, signed=True),
                t("n_treated", lang): _suppress(r.meta.get("n_treated"), self.params.suppress_below, lang),
                t("n_control", lang): _suppress(r.meta.get("n_control"), self.params.suppress_below, lang),
            }

        for name, r in self.results.get(outcome, {}).items():
            if r.rows("overall").empty or name in DIAGNOSTIC_ESTIMATORS:
                continue
            rows.append(row("estimator", estimator_label(name, lang), r))
        for key, r in self.robustness.get(outcome, {}).items():
            if r.rows("overall").empty:
                continue
            rows.append(row(VARIANT_KINDS.get(key, "inference"), self.variant_label(key), r))
        return pd.DataFrame(rows)

    def variant_label(self, key: str) -> str:
        """Plain label of a robustness variant row (zh / en)."""
        p, lang = self.params, self.lang
        boot = p.bootstrap or CS_BOOTSTRAP_DEFAULT
        kw = {"boot": boot, "wild": p.wild_draws, "ri": p.ri_draws,
              "weights": t(f"weights_{p.wild_weights}", lang), "control": t(f"control_{p.control}", lang)}
        return t(f"row_{key}", lang, **kw)

    def multiple_table(self) -> pd.DataFrame:
        """Adjusted p-values across outcomes (BH on the headline p-values; Romano–Wolf on TWFE)."""
        if self.multiple is None or self.multiple.empty:
            return pd.DataFrame()
        lang, m = self.lang, self.multiple
        out = pd.DataFrame({
            t("outcome", lang): [outcome_label(o, lang) for o in m["outcome"]],
            t("p_headline", lang, estimator=estimator_label(self.params.headline, lang)): [fmt_p(x) for x in m["p_value"]],
            t("p_bh", lang): [fmt_p(x) for x in m["p_bh"]],
        })
        if "p_rw_raw" in m:
            out[t("p_wild_raw", lang)] = [fmt_p(x) for x in m["p_rw_raw"]]
            out[t("p_rw", lang)] = [fmt_p(x) for x in m["p_romano_wolf"]]
        return out

    def trends(self, outcome: str | None = None) -> pd.DataFrame:
        """Monthly mean outcome of adopting vs non-adopting stations (wide: month × group)."""
        outcome = outcome or self.primary_outcome
        grp = np.where(self.panel["first_treat"] != NEVER_TREATED, "treated", "control")
        return (self.panel.assign(group=grp).groupby(["month", "group"])[outcome].mean()
                .unstack("group").reindex(columns=["treated", "control"]))

    def event_study(self, outcome: str | None = None) -> tuple[str, pd.DataFrame]:
        """(estimator name, event-time rows) for the event-study chart.

        Prefers the Callaway–Sant'Anna multiplier-bootstrap run (pre and post periods, uniform
        95% bands), then the first estimator with event-time rows.
        """
        outcome = outcome or self.primary_outcome
        boot = self.robustness.get(outcome, {}).get("cs_mboot")
        if boot is not None and not boot.rows("event").empty and boot.rows("event")["band_low"].notna().any():
            return "cs", boot.event_study()
        for name in (self.params.headline, "imputation", "cs", "sa", "event_twfe"):
            r = self.results.get(outcome, {}).get(name)
            if r is not None and not r.rows("event").empty:
                return name, r.event_study()
        return "", pd.DataFrame()

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "evalkit_version": __version__,
            "evaluation_id": self.params.evaluation_id,
            "params": self.params.model_dump(mode="json"),
            "synthetic": self.facts.synthetic,
            "panel": {"rows": int(len(self.panel)), "stations": int(self.panel["station_id"].nunique()),
                      "months": int(self.panel["period"].nunique())},
            "headline": {o: _safe_headline(self, o) for o in self.params.outcomes},
            "results": {o: {k: r.to_dict() for k, r in by.items()} for o, by in self.results.items()},
            "failures": self.failures,
            "robustness": {o: {k: r.to_dict() for k, r in by.items()} for o, by in self.robustness.items()},
            "robustness_failures": self.robustness_failures,
            "sensitivity": None if self.sensitivity is None else self.sensitivity.to_dict(),
            "sensitivity_error": self.sensitivity_error,
            "multiple_testing": None if self.multiple is None else self.multiple.to_dict(orient="records"),
            "multiple_testing_error": self.multiple_error,
            "timings": self.timings,
            "quarantined_rows": self.facts.quarantined,
            "seconds": self.seconds,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``results.json`` atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_json_safe(self.to_dict()), ensure_ascii=False, indent=2)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return path


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


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _suppress(n: Any, threshold: int, lang: str) -> str:
    if n is None:
        return "—"
    n = int(n)
    return t("suppressed", lang, n=threshold) if 0 < n < threshold else f"{n:,}"


def open_warehouse(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only (relative paths are also looked up from parent folders)."""
    from evalkit.warehouse import find_existing

    p = find_existing(path)
    if not p.is_file():
        raise EvaluationError(
            f"warehouse {p} not found: create it with `evalkit demo-data` (demo) or `evalkit ingest` (real data)"
        )
    return duckdb.connect(str(p), read_only=True)


def evaluate(params: EvaluationParams | dict[str, Any], *, panel: pd.DataFrame | None = None) -> Evaluation:
    """Run one evaluation: build the panel from the warehouse (or use ``panel``) and every estimator.

    A failing secondary estimator is recorded in ``failures`` (and shown in the brief); a
    failing headline estimator raises :class:`EvaluationError`.
    """
    p = params if isinstance(params, EvaluationParams) else validate_params(params)
    t0 = time.perf_counter()
    with open_warehouse(p.warehouse) as con:
        facts = warehouse_facts(con, p.warehouse)
        if panel is None:
            panel = build_panel(con, p.reform, start=p.window.start, end=p.window.end, region=p.region.as_filter(),
                                exclude_reforms=p.exclude_reforms)
    first = panel.groupby("station_id")["first_treat"].first()
    if (first == NEVER_TREATED).all():
        raise EvaluationError(
            f"no station in the selected region adopted reform {p.reform!r} ({p.reform_info.zh}) — check the "
            f"region filter {p.region.as_filter()} and the reforms table"
        )
    results: dict[str, dict[str, EstimationResult]] = {}
    failures: dict[str, dict[str, str]] = {}
    for outcome in p.outcomes:
        results[outcome], failures[outcome] = {}, {}
        for name in p.estimators:
            if name == "poisson" and OUTCOMES[outcome].kind != "count":
                failures[outcome][name] = "Poisson applies to count outcomes only"
                continue
            try:
                fn = get_estimator(name)
                results[outcome][name] = fn(panel, outcome, **_estimator_options(name, p))
            except Exception as exc:  # recorded, shown in the brief; headline failures re-raised below
                failures[outcome][name] = f"{type(exc).__name__}: {exc}"
                if name == p.headline:
                    raise EvaluationError(
                        f"headline estimator {name} failed on {outcome}: {exc}\n{traceback.format_exc()}"
                    ) from exc
    ev = Evaluation(p, panel, results, failures, facts)
    ev.timings["estimators"] = time.perf_counter() - t0
    if p.design == "staggered":
        t1 = time.perf_counter()
        for outcome in p.outcomes:
            _small_sample_pretrend(panel, outcome, p, results[outcome])
        ev.timings["pretrend_test"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        for outcome in p.outcomes:
            _small_sample_headline_se(panel, outcome, p, results[outcome])
        ev.timings["headline_se"] = time.perf_counter() - t1
    if p.design == "staggered":
        t1 = time.perf_counter()
        for outcome in p.outcomes:
            ev.robustness[outcome], ev.robustness_failures[outcome] = _robustness(panel, outcome, p, results[outcome])
        ev.timings["robustness"] = time.perf_counter() - t1
        if p.sensitivity:
            t1 = time.perf_counter()
            try:
                ev.sensitivity = run_sensitivity(panel, ev.primary_outcome, p, sign=_headline_sign(ev))
            except Exception as exc:  # noqa: BLE001 - shown in the brief as "not available: reason"
                ev.sensitivity_error = _reason(exc)
            ev.timings["sensitivity"] = time.perf_counter() - t1
        if p.multiple_testing and len(p.outcomes) > 1:
            t1 = time.perf_counter()
            try:
                ev.multiple = _multiple_testing(panel, ev)
            except Exception as exc:  # noqa: BLE001
                ev.multiple_error = _reason(exc)
            ev.timings["multiple_testing"] = time.perf_counter() - t1
    ev.seconds = time.perf_counter() - t0
    return ev



def _pretrend_source(p: EvaluationParams, res: dict[str, EstimationResult]) -> str | None:
    """The estimator whose joint pre-trend test the verdict reads: the headline's, else event-study
    TWFE, Sun–Abraham or imputation — the first with a finite p-value."""
    for name in (p.headline, "event_twfe", "sa", "imputation"):
        pt = (res[name].meta.get("pretrend") or {}) if name in res else {}
        pv = pt.get("p_value")
        if pt.get("df") and pv is not None and not (isinstance(pv, float) and math.isnan(pv)):
            return name
    return None


def _small_sample_pretrend(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                           res: dict[str, EstimationResult]) -> None:
    """Replace the verdict's pre-trend p-value by the small-sample-valid one (in place).

    The asymptotic χ² p-value stays in ``meta["pretrend"]["p_chi2"]``; ``method`` says which
    p-value ``p_value`` is (``evalkit.inference.pretrend``).
    """
    name = _pretrend_source(p, res)
    if name is None or p.pretrend_test == "chi2":
        return
    r = res[name]
    try:
        test = pretrend_test(panel, outcome, name, _estimator_options(name, p), result=r, method=p.pretrend_test,
                             draws=p.pretrend_draws, seed=p.seed)
    except Exception as exc:  # noqa: BLE001 - keep the χ² test and say why
        r.meta["pretrend"]["small_sample_error"] = _reason(exc)
        return
    if test is not None:
        r.meta["pretrend"] = {**r.meta["pretrend"], **test}


JACKKNIFE_MAX_TREATED = 100


def _small_sample_headline_se(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                              res: dict[str, EstimationResult]) -> None:
    """Jackknife the headline estimate's SE when the analytic one is unreliable (in place)."""
    r = res.get(p.headline)
    if r is None or p.headline_se == "analytic":
        return
    n_treated = int((panel.groupby("station_id")["first_treat"].first() != NEVER_TREATED).sum())
    if p.headline_se == "auto" and not (p.headline == "cs" and n_treated < JACKKNIFE_MAX_TREATED):
        return
    cluster = None if p.cluster == "station_id" else p.cluster
    try:
        jk = jackknife_overall(panel, outcome, p.headline, _estimator_options(p.headline, p), result=r,
                               cluster=cluster, alpha=p.alpha)
    except Exception as exc:  # noqa: BLE001 - keep the analytic SE and say why
        r.meta["headline_se"] = {"method": "analytic", "jackknife_error": _reason(exc)}
        return
    apply_jackknife(r, jk)


def _reason(exc: BaseException) -> str:
    """A short plain reason for the brief (the message, not the exception class)."""
    msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return msg or type(exc).__name__.replace("Error", "").lower() or "failed"


def _headline_sign(ev: Evaluation) -> float:
    try:
        return float(np.sign(ev.result().att)) or 1.0
    except (KeyError, ValueError):
        return 1.0


def _robustness(panel: pd.DataFrame, outcome: str, p: EvaluationParams,
                done: dict[str, EstimationResult]) -> tuple[dict[str, EstimationResult], dict[str, str]]:
    """Control-group and inference variants for one outcome (each wrapped; failures recorded)."""
    lo, hi = p.event_window
    cs_kw = {"cluster": p.cluster, "alpha": p.alpha, "min_e": lo, "max_e": hi,
             "aggregations": ("simple",)}
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
    jobs["cs_mboot"] = lambda: get_estimator("cs")(panel, outcome, control=p.control, bootstrap=boot, seed=p.seed,
                                                   **(cs_kw | {"aggregations": ("simple", "dynamic")}))
    if "wild_bootstrap" in p.inference:
        from evalkit.inference.wild import wild_bootstrap

        jobs["twfe_wild"] = lambda: wild_bootstrap(panel, outcome, cluster=p.cluster, weights=p.wild_weights,
                                                   B=p.wild_draws, seed=p.seed, alpha=p.alpha)
    if "randomization" in p.inference:
        from evalkit.inference.randomization import randomization_inference

        jobs["ri"] = lambda: randomization_inference(panel, outcome, estimator="twfe", scheme="permute",
                                                     draws=p.ri_draws, seed=p.seed, cluster=p.cluster,
                                                     alpha=p.alpha)
    out: dict[str, EstimationResult] = {}
    fails: dict[str, str] = {}
    for key, job in jobs.items():
        try:
            out[key] = job()
        except Exception as exc:  # noqa: BLE001 - recorded, shown under the table
            fails[key] = _reason(exc)
    return out, fails


def _sens_event_study(panel: pd.DataFrame, outcome: str, p: EvaluationParams) -> tuple[str, np.ndarray,
                                                                                         np.ndarray, int, int]:
    """(source, β̂, Σ, num_pre, num_post) for HonestDiD: CS with a universal base period (as the
    HonestDiD documentation recommends for CS), else the event-study TWFE; window ≤ 6 pre / 12 post."""
    from evalkit.sensitivity import event_inputs

    errors = []
    for source in ("cs", "event_twfe"):
        try:
            if source == "cs":
                r = get_estimator("cs")(panel, outcome, control=p.control, base_period="universal",
                                        cluster=p.cluster, alpha=p.alpha, min_e=-(SENS_PRE + 1),
                                        max_e=SENS_POST - 1, aggregations=("dynamic",))
            else:
                r = get_estimator("event_twfe")(panel, outcome, cluster=p.cluster, alpha=p.alpha,
                                                leads=SENS_PRE + 1, lags=SENS_POST - 1)
            beta, sigma, npre, npost = event_inputs(r)
            keep_pre, keep_post = min(npre, SENS_PRE), min(npost, SENS_POST)
            idx = np.r_[np.arange(npre - keep_pre, npre), np.arange(npre, npre + keep_post)]
            beta, sigma = beta[idx], sigma[np.ix_(idx, idx)]
            if keep_pre < 2 or keep_post < 1:
                raise ValueError(f"only {keep_pre} pre-reform and {keep_post} post-reform coefficients")
            if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
                raise ValueError("event-study estimates or their covariance are not finite")
            eig = np.linalg.eigvalsh((sigma + sigma.T) / 2)
            if eig.min() <= 1e-10 * max(eig.max(), 1e-300):
                n_cl = int(panel[p.cluster].nunique()) if p.cluster in panel else 0
                raise ValueError(f"the covariance of the {len(beta)} event-study coefficients is singular "
                                 f"(too few clusters: {n_cl} {p.cluster} clusters)")
            return source, beta, sigma, keep_pre, keep_post
        except Exception as exc:  # noqa: BLE001 - try the fallback
            errors.append(f"{source}: {_reason(exc)}")
    raise ValueError("no event study usable for the sensitivity analysis (" + "; ".join(errors) + ")")


def _excludes_zero(lb: float, ub: float, sign: float) -> bool | None:
    if _nan(lb) or _nan(ub):
        return None
    return bool(lb > 0) if sign > 0 else bool(ub < 0)


def _covers(df: pd.DataFrame) -> bool:
    lb, ub = df["lb"].iloc[0], df["ub"].iloc[0]
    return bool(not _nan(lb) and lb <= 0 <= ub)


def _breakdown(covers: Any, grid: list[tuple[float, bool]], upper: float, tol: float,
               deadline: float) -> float | None:
    """Smallest M at which the robust CI covers 0: bracketed by the already computed ``grid``
    (M, covers), then bisection; ``inf`` beyond ``upper``; ``None`` when the deadline passes."""
    grid = sorted(grid)
    lo = 0.0
    hi = None
    for m, c in grid:
        if c:
            hi = m
            break
        lo = m
    if hi is None:
        if covers(upper):
            hi = upper
        else:
            return float("inf")
    if lo == 0.0 and covers(0.0):
        return 0.0
    while hi - lo > tol:
        if time.perf_counter() > deadline:
            return None
        mid = 0.5 * (lo + hi)
        if covers(mid):
            hi = mid
        else:
            lo = mid
    return hi


def run_sensitivity(panel: pd.DataFrame, outcome: str, p: EvaluationParams, *, sign: float = 1.0,
                    time_box: float = SENS_TIME_BOX) -> Sensitivity:
    """Rambachan–Roth sensitivity for ``outcome`` (see :class:`Sensitivity` and ``docs/briefs.md``).

    Smoothness (FLCI) always; relative magnitudes for M̄ in 0.5, 1, 1.5, 2 and the breakdown value
    while the time box (``time_box`` seconds) lasts (the smoothness breakdown only when relative
    magnitudes are not available).
    """
    from evalkit.sensitivity import honest_did, original_ci

    t0 = time.perf_counter()
    deadline = t0 + time_box
    source, beta, sigma, npre, npost = _sens_event_study(panel, outcome, p)
    lv = np.full(npost, 1.0 / npost)
    orig = original_ci(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, alpha=p.alpha)
    se = max(float(orig["se"]), 1e-12)
    sd = honest_did(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, type="sd", alpha=p.alpha,
                    M=[f * se for f in SENS_M_FACTORS])
    sd["M_factor"] = list(SENS_M_FACTORS)
    sens = Sensitivity(outcome=outcome, source=source, num_pre=npre, num_post=npost,
                       num_post_rm=min(npost, SENS_POST_RM), original={k: float(v) for k, v in orig.items()}, sd=sd)
    # relative magnitudes on the first ≤ 6 post coefficients (vertex enumeration explodes beyond)
    nrm = sens.num_post_rm
    b_rm, s_rm = beta[: npre + nrm], sigma[: npre + nrm, : npre + nrm]
    lv_rm = np.full(nrm, 1.0 / nrm)
    rm_kw = {"num_pre": npre, "num_post": nrm, "l_vec": lv_rm, "type": "rm", "alpha": p.alpha,
             "grid_points": 300, "seed": p.seed % (2**32)}
    try:
        orm = original_ci(b_rm, s_rm, num_pre=npre, num_post=nrm, l_vec=lv_rm, alpha=p.alpha)
        sens.original_rm = {k: float(v) for k, v in orm.items()}
        rows = []
        for mb in SENS_MBAR:
            if time.perf_counter() > deadline:
                sens.skipped["rm"] = f"time limit of {time_box:.0f} s reached before M̄ = {mb}"
                break
            rows.append(honest_did(b_rm, s_rm, Mbar=[mb], **rm_kw))
        if rows:
            sens.rm = pd.concat(rows, ignore_index=True)
    except Exception as exc:  # noqa: BLE001
        sens.skipped["rm"] = _reason(exc)
    if sens.rm is not None and "rm" not in sens.skipped:
        try:
            grid = [(float(r.M), _covers(pd.DataFrame([r]))) for r in sens.rm.itertuples()]
            sens.breakdown_rm = _breakdown(lambda m: _covers(honest_did(b_rm, s_rm, Mbar=[m], **rm_kw)),
                                           grid, upper=5.0, tol=0.05, deadline=deadline)
            if sens.breakdown_rm is None:
                sens.skipped["breakdown_rm"] = f"time limit of {time_box:.0f} s reached"
        except Exception as exc:  # noqa: BLE001
            sens.skipped["breakdown_rm"] = _reason(exc)
    if sens.breakdown_rm is None:
        try:
            grid = [(float(r.M), _covers(pd.DataFrame([r]))) for r in sd.itertuples()]
            sens.breakdown_sd = _breakdown(
                lambda m: _covers(honest_did(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, type="sd",
                                             alpha=p.alpha, M=[m])),
                grid, upper=1.0 * se, tol=0.01 * se, deadline=deadline)
        except Exception as exc:  # noqa: BLE001
            sens.skipped["breakdown_sd"] = _reason(exc)
    # the verdict's robustness input: RM at M̄ = 0.5, else SD at the smallest positive M
    if sens.rm is not None and (sens.rm["M"] == SENS_MBAR[0]).any():
        r0 = sens.rm[sens.rm["M"] == SENS_MBAR[0]].iloc[0]
        sens.robust, sens.reference = _excludes_zero(r0["lb"], r0["ub"], sign), "rm"
    else:
        r0 = sd[sd["M"] > 0].iloc[0] if (sd["M"] > 0).any() else sd.iloc[0]
        sens.robust, sens.reference = _excludes_zero(r0["lb"], r0["ub"], sign), "sd"
    sens.seconds = time.perf_counter() - t0
    return sens


def _multiple_testing(panel: pd.DataFrame, ev: Evaluation) -> pd.DataFrame:
    """BH-adjusted headline p-values across outcomes, and Romano–Wolf on TWFE (wild bootstrap)."""
    from evalkit.inference.multiple import adjust_pvalues, romano_wolf

    p = ev.params
    pv = {}
    for o in p.outcomes:
        r = ev.results.get(o, {}).get(p.headline)
        pv[o] = float(r.overall["p_value"]) if r is not None and not r.rows("overall").empty else float("nan")
    bh = adjust_pvalues(pv, "bh")
    out = pd.DataFrame({"outcome": list(pv), "p_value": list(pv.values()), "p_bh": [bh[o] for o in pv]})
    try:
        rw = romano_wolf(panel, list(p.outcomes), estimator="twfe", B=p.wild_draws, seed=p.seed,
                         cluster=p.cluster, weights=p.wild_weights, alpha=p.alpha).set_index("outcome")
        out["p_rw_raw"] = [float(rw.loc[o, "p_value"]) for o in out["outcome"]]
        out["p_romano_wolf"] = [float(rw.loc[o, "p_romano_wolf"]) for o in out["outcome"]]
        out.attrs["rw_method"] = str(rw["method"].iloc[0])
    except Exception as exc:  # noqa: BLE001 - BH alone is still shown
        ev.multiple_error = _reason(exc)
    return out
