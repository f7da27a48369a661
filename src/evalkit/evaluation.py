"""One evaluation: params → panel → estimators → headline, verdict and tables.

This is what the notebook calls::

    ev = evalkit.evaluate(params)          # EvaluationParams or dict
    ev.headline()                          # effect in percent, CI, verdict, sentence
    ev.estimates_table()                   # robustness table (estimators side by side)
    ev.save("outputs/x/results.json")
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
from evalkit.panel import build_panel
from evalkit.params import EvaluationParams, validate_params
from evalkit.registry import NEVER_TREATED, OUTCOMES
from evalkit.results import EstimationResult
from evalkit.verdict import Verdict, decide

# shown as diagnostics, not as rows of the robustness table
DIAGNOSTIC_ESTIMATORS = ("bacon",)


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
        return {**common, "min_e": lo, "max_e": hi}
    if name == "imputation":
        return {**common, "horizons": list(range(0, hi + 1)), "pretrend_leads": -lo}
    if name in ("sdid", "sc"):
        return {"alpha": p.alpha, "se": "placebo", "reps": p.placebo_reps, "seed": p.seed}
    return common


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: panel, every estimate, and what the brief needs."""

    params: EvaluationParams
    panel: pd.DataFrame
    results: dict[str, dict[str, EstimationResult]]
    failures: dict[str, dict[str, str]]
    facts: WarehouseFacts
    seconds: float = 0.0

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

    def pretrend_p(self, outcome: str | None = None) -> float | None:
        """p-value of the joint pre-trend test: from the headline estimator, else the event-study TWFE."""
        outcome = outcome or self.primary_outcome
        for name in (self.params.headline, "event_twfe", "sa", "imputation"):
            r = self.results.get(outcome, {}).get(name)
            if r is not None and r.meta.get("pretrend"):
                p = r.meta["pretrend"].get("p_value")
                if p is not None and not (isinstance(p, float) and math.isnan(p)):
                    return float(p)
        return None

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
        verdict: Verdict = decide(p, self.pretrend_p(outcome), alpha=self.params.alpha)
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
        """Robustness table: one row per estimator with estimate, CI, p, percent, n."""
        outcome = outcome or self.primary_outcome
        lang = self.lang
        rows = []
        share = self.is_share(outcome)
        for name, r in self.results.get(outcome, {}).items():
            if r.rows("overall").empty or name in DIAGNOSTIC_ESTIMATORS:
                continue
            o = r.overall
            scale = 100.0 if share else 1.0
            rows.append({
                t("estimator", lang): estimator_label(name, lang),
                t("estimate", lang): fmt_num(scale * o["estimate"], lang, 3),
                t("ci", lang): f"[{fmt_num(scale * o['ci_low'], lang, 3)}, {fmt_num(scale * o['ci_high'], lang, 3)}]",
                t("p_value", lang): fmt_p(o["p_value"]),
                t("pct", lang): "—" if share else fmt_pct(r.percent(o["estimate"]), lang, signed=True),
                t("n_treated", lang): _suppress(r.meta.get("n_treated"), self.params.suppress_below, lang),
                t("n_control", lang): _suppress(r.meta.get("n_control"), self.params.suppress_below, lang),
            })
        return pd.DataFrame(rows)

    def trends(self, outcome: str | None = None) -> pd.DataFrame:
        """Monthly mean outcome of adopting vs non-adopting stations (wide: month × group)."""
        outcome = outcome or self.primary_outcome
        grp = np.where(self.panel["first_treat"] != NEVER_TREATED, "treated", "control")
        return (self.panel.assign(group=grp).groupby(["month", "group"])[outcome].mean()
                .unstack("group").reindex(columns=["treated", "control"]))

    def event_study(self, outcome: str | None = None) -> tuple[str, pd.DataFrame]:
        """(estimator name, event-time rows) from the first estimator that has them."""
        outcome = outcome or self.primary_outcome
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


def _suppress(n: Any, threshold: int, lang: str) -> str:
    if n is None:
        return "—"
    n = int(n)
    return t("suppressed", lang, n=threshold) if 0 < n < threshold else f"{n:,}"


def open_warehouse(path: str | Path) -> duckdb.DuckDBPyConnection:
    p = Path(path)
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
            panel = build_panel(con, p.reform, start=p.window.start, end=p.window.end, region=p.region.as_filter())
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
    return Evaluation(p, panel, results, failures, facts, seconds=time.perf_counter() - t0)
