"""The brief's words: zh/en sentences and formatted tables rendered from an evaluation's numbers.

:mod:`evalkit.evaluation` returns numbers only; this module turns them into the question, the
one-sentence answer, the verdict's label and explanation, the robustness and multiple-testing
tables, the sensitivity sentences and the method note, in the evaluation's language
(:mod:`evalkit.i18n`). :mod:`evalkit.report` displays them; :func:`results_text` is the ``text``
block of ``results.json``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from evalkit.evaluation import Evaluation, impossible_stat
from evalkit.evaluation_steps import CS_BOOTSTRAP_DEFAULT
from evalkit.i18n import (
    estimator_label,
    fmt_num,
    fmt_p,
    fmt_pct,
    outcome_label,
    outcome_unit,
    reform_label,
    t,
    verdict_explanation,
    verdict_label,
)


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _suppress(n: Any, threshold: int, lang: str) -> str:
    """Small counts (1 … threshold-1) are shown as "<threshold" (statistical disclosure control)."""
    if n is None:
        return "—"
    n = int(n)
    return t("suppressed", lang, n=threshold) if 0 < n < threshold else f"{n:,}"


# ----------------------------------------------------------------------------- page 1
def _magnitude(x: float, share: bool, unit: str, lang: str) -> str:
    """|x| in the page-1 form: percent (count outcomes, ``x`` in percent) or in the outcome's own
    unit (share outcomes, ``x`` in proportions: shown in percentage points)."""
    return f"{fmt_num(100 * abs(x), lang, 1)} {unit}" if share else fmt_pct(abs(x), lang)


def change_range(lo: float, hi: float, lang: str, *, share: bool = False, unit: str = "") -> str:
    """An interval in words whose signs never mix: "下降 47.1%–69.7%", "上升 2.0%–9.5%", or
    "下降 8.0% 至上升 19.2%" when it spans zero (inputs: percent, or proportions when ``share``)."""
    if _nan(lo) or _nan(hi):
        return "—"
    lo, hi = sorted((float(lo), float(hi)))
    if hi <= 0:
        a, b, key = -hi, -lo, "range_down"
    elif lo >= 0:
        a, b, key = lo, hi, "range_up"
    else:
        a, b, key = -lo, hi, "range_mixed"
    if share:  # the unit once, after the range ("下降 1.0–3.6 百分点")
        if key == "range_mixed":
            return t(key, lang, a=_magnitude(a, True, unit, lang), b=_magnitude(b, True, unit, lang))
        return t(key, lang, a=fmt_num(100 * a, lang, 1), b=_magnitude(b, True, unit, lang))
    return t(key, lang, a=fmt_pct(a, lang), b=fmt_pct(b, lang))


def change_words(x: float, lo: float, hi: float, lang: str, *, share: bool = False, unit: str = "") -> str:
    """A point estimate in words: "下降 58.4%", or "未见明显变化" when the interval [lo, hi] spans zero."""
    if _nan(x) or _nan(lo) or _nan(hi) or lo <= 0 <= hi:
        return t("no_change", lang)
    return f'{t("down" if x < 0 else "up", lang)} {_magnitude(x, share, unit, lang)}'


def headline_text(ev: Evaluation, outcome: str | None = None) -> dict[str, str]:
    """Question, answer sentence, verdict label and explanation (each requirement the verdict
    missed), pre-trend sentence, the estimators' disagreement (only when intervals do not overlap)
    and the naive year-on-year sentences (when the naive estimator ran) for ``outcome``."""
    lang = ev.lang
    h = ev.headline(outcome)
    outcome = h["outcome"]
    reform, olabel, unit = reform_label(ev.params.reform, lang), outcome_label(outcome, lang), outcome_unit(outcome, lang)
    share = h["share"]
    est, lo, hi = (h["estimate"], h["ci_low"], h["ci_high"]) if share else (h["pct"], h["pct_ci_low"], h["pct_ci_high"])
    kw = {"estimator": estimator_label(h["estimator"], lang), "reform": reform, "outcome": olabel,
          "range": change_range(lo, hi, lang, share=share, unit=unit)}
    if h["verdict"] == "no_data":
        sentence = t("answer_no_data", lang, outcome=olabel, reform=reform)
    elif _nan(est) or _nan(lo) or _nan(hi) or lo <= 0 <= hi:
        sentence = t("answer_null", lang, **kw)
    else:
        sentence = t("answer", lang, direction=t("down" if est < 0 else "up", lang),
                     eff=_magnitude(est, share, unit, lang), **kw)
    question = t("question", lang, reform=reform, outcome=olabel,
                 stations=t("stations_desc", lang, n_treated=h["n_treated"], n_control=h["n_control"]),
                 start=ev.params.window.start, end=ev.params.window.end)
    out = {"question": question, "sentence": sentence, "verdict_label": verdict_label(h["verdict"], lang),
           "verdict_explanation": verdict_explanation(h["verdict_reason"], lang, tuple(h.get("verdict_caps") or ()),
                                                      n_treated=h["n_treated"], n_control=h["n_control"]),
           "pretrend_sentence": pretrend_sentence(ev, h),
           "disagree_sentence": t("disagree", lang) if h.get("disagree_with") and h["verdict"] != "no_data" else ""}
    if "naive_pct" in h and h["verdict"] != "no_data":
        naive = h["naive_estimate"] if share else h["naive_pct"]
        causal = change_words(est, lo, hi, lang, share=share, unit=unit)
        out["naive_sentence"] = t("naive", lang, outcome=olabel, direction=t("down" if naive < 0 else "up", lang),
                                  pct=_magnitude(naive, share, unit, lang), causal=causal)
        # "they differ because …" only when they differ: the year-on-year figure outside the interval
        differ = _nan(lo) or _nan(hi) or not (lo <= naive <= hi)
        out["naive_why"] = t("naive_why", lang) if differ else ""
    return out


def pretrend_method_label(pt: dict | None, lang: str) -> str:
    """Which pre-trend test a p-value comes from (``evalkit.inference.pretrend``)."""
    method = (pt or {}).get("method", "chi2")
    return t(f"pt_method_{method}", lang, draws=(pt or {}).get("draws", 0))


def pretrend_sentence(ev: Evaluation, h: dict[str, Any]) -> str:
    """The verdict block's sentence on the pre-trend test (and on a small-sample test that failed)."""
    lang, pre, pt = ev.lang, h["pretrend_p"], h.get("pretrend") or {}
    if pt.get("status") == "failed":
        return t("pretrend_small_failed", lang, reason=pt.get("reason") or "—")
    if pt.get("status") == "not_available":  # e.g. a singular covariance: never a statistic
        return t("pretrend_unavailable", lang, reason=pt.get("reason") or "—")
    if impossible_stat(pt.get("stat")):
        return t("pretrend_unavailable", lang, reason=t("pt_stat_impossible", lang))
    if pre is None:  # said once: the verdict's explanation already names a missing test when it capped
        return "" if "no_pretrend" in (h.get("verdict_caps") or ()) else t("pretrend_na", lang)
    return t("pretrend_bad" if pre < ev.params.alpha else "pretrend_ok", lang, p=fmt_p(pre),
             method=pretrend_method_label(pt, lang))


def pretrend_table(ev: Evaluation, outcome: str | None = None) -> pd.DataFrame:
    """Joint pre-trend tests by estimator (localized headers). A test that is not available, failed,
    or whose Wald statistic is not a finite non-negative number (a singular covariance) shows
    "not available, because …" in place of the statistic and p-value — never an impossible number."""
    lang = ev.lang
    rows = []
    for name, r in ev.results.get(outcome or ev.primary_outcome, {}).items():
        pt = r.meta.get("pretrend")
        if not pt or not pt.get("df"):
            continue
        stat = pt.get("stat")
        usable = pt.get("status", "ok") == "ok" and not _nan(stat) and not impossible_stat(stat) \
            and not _nan(pt.get("p_value"))
        if usable:
            shown, p = fmt_num(float(stat), lang, 2), fmt_p(pt.get("p_value"))
        else:
            why = pt.get("reason") or t("pt_stat_impossible", lang)
            shown, p = t("pt_not_available", lang, reason=why), "—"
        rows.append({t("estimator", lang): estimator_label(name, lang), t("test_stat", lang): shown,
                     t("df", lang): int(pt["df"]), t("test_method", lang): pretrend_method_label(pt, lang),
                     t("p_value", lang): p})
    return pd.DataFrame(rows)


def results_text(ev: Evaluation) -> dict[str, Any]:
    """The ``text`` block of ``results.json``: language and page-1 sentences by outcome."""
    out: dict[str, Any] = {"lang": ev.lang, "headline": {}}
    for o in ev.params.outcomes:
        try:
            out["headline"][o] = headline_text(ev, o)
        except KeyError:
            out["headline"][o] = None
    return out


# ----------------------------------------------------------------------------- tables
def variant_label(ev: Evaluation, key: str) -> str:
    """Plain label of a robustness variant row (zh / en)."""
    p, lang = ev.params, ev.lang
    kw = {"boot": p.bootstrap or CS_BOOTSTRAP_DEFAULT, "wild": p.wild_draws, "ri": p.ri_draws,
          "weights": t(f"weights_{p.wild_weights}", lang), "control": t(f"control_{p.control}", lang)}
    return t(f"row_{key}", lang, **kw)


def estimates_table(ev: Evaluation, outcome: str | None = None) -> pd.DataFrame:
    """Robustness table with localized headers: check type, row label, estimate, CI, p, percent,
    adopters and comparison stations (small counts suppressed)."""
    outcome = outcome or ev.primary_outcome
    lang, share = ev.lang, ev.is_share(outcome)
    scale = 100.0 if share else 1.0
    rows = []
    for r in ev.estimates(outcome).itertuples(index=False):
        label = estimator_label(r.name, lang) if r.kind == "estimator" else variant_label(ev, r.name)
        ci = "—" if _nan(r.ci_low) or _nan(r.ci_high) else \
            f"[{fmt_num(scale * r.ci_low, lang, 3)}, {fmt_num(scale * r.ci_high, lang, 3)}]"
        rows.append({
            t("check", lang): t(f"check_{r.kind}", lang),
            t("estimator", lang): label,
            t("estimate", lang): fmt_num(scale * r.estimate, lang, 3),
            t("ci", lang): ci,
            t("p_value", lang): fmt_p(r.p_value),
            t("pct", lang): "—" if share else fmt_pct(r.pct, lang, signed=True),
            t("n_treated", lang): _suppress(r.n_treated, ev.params.suppress_below, lang),
            t("n_control", lang): _suppress(r.n_control, ev.params.suppress_below, lang),
        })
    return pd.DataFrame(rows)


def multiple_table(ev: Evaluation) -> pd.DataFrame:
    """Adjusted p-values across outcomes (BH on the headline p-values; Romano–Wolf on the headline estimator)."""
    if ev.multiple is None or ev.multiple.empty:
        return pd.DataFrame()
    lang, m = ev.lang, ev.multiple
    out = pd.DataFrame({
        t("outcome", lang): [outcome_label(o, lang) for o in m["outcome"]],
        t("p_headline", lang, estimator=estimator_label(ev.params.headline, lang)): [fmt_p(x) for x in m["p_value"]],
        t("p_bh", lang): [fmt_p(x) for x in m["p_bh"]],
    })
    if "p_rw_raw" in m:
        out[t("p_wild_raw", lang)] = [fmt_p(x) for x in m["p_rw_raw"]]
        out[t("p_rw", lang)] = [fmt_p(x) for x in m["p_romano_wolf"]]
    return out


# ----------------------------------------------------------------------------- sensitivity
def sensitivity_sentences(ev: Evaluation) -> list[str]:
    """The plain sentences under the sensitivity chart: which event study, breakdown values, the
    robustness verdict input, and every part that failed (with its reason)."""
    s, lang = ev.sensitivity, ev.lang
    if s is None:
        return []
    out = []
    if "cs" in s.source_errors and s.source != "cs":
        out.append(t("sens_source_fallback", lang, reason=s.source_errors["cs"]))
    share = ev.is_share(s.outcome)
    if s.rm is not None and s.original_rm is not None:
        o = s.original_rm
        if o["lb"] <= 0 <= o["ub"]:
            out.append(t("sens_not_sig", lang, n=s.months))
        elif s.breakdown_rm is not None:
            b = s.breakdown_rm
            if math.isinf(b):
                out.append(t("sens_rm_inf", lang, x=fmt_num(5.0, lang, 1), n=s.months))
            elif b <= 0.05:
                out.append(t("sens_rm_zero", lang))
            else:
                out.append(t("sens_rm_sentence", lang, x=fmt_num(b, lang, 2), n=s.months))
    elif s.original["lb"] <= 0 <= s.original["ub"]:
        out.append(t("sens_not_sig", lang, n=s.months))
    if s.breakdown_sd is not None and not (s.original["lb"] <= 0 <= s.original["ub"]):
        if s.breakdown_sd <= 0:
            out.append(t("sens_sd_zero", lang))
        elif not math.isinf(s.breakdown_sd):
            unit = outcome_unit(s.outcome, lang)
            out.append(t("sens_sd_sentence", lang, m=fmt_num((100 if share else 1) * s.breakdown_sd, lang, 3),
                         unit=(" " if lang == "en" and unit else "") + unit if unit else ""))
    try:
        h = ev.headline(s.outcome)
        significant = h["p_value"] < ev.params.alpha and h["verdict"] != "pretrend_doubtful"
    except KeyError:
        significant = False
    if s.robust is not None and significant:
        out.append(t("sens_robust_yes" if s.robust else "sens_robust_no", lang))
    for part, why in s.failed.items():
        out.append(t("sens_part_failed", lang, part=t(f"sens_part_{part}", lang), reason=why))
    return out


# ----------------------------------------------------------------------------- notes
def method_note(ev: Evaluation) -> str:
    """The plain-language method note: the base text plus what was actually run."""
    lang, p = ev.lang, ev.params
    parts = [t("method_note", lang, cluster=t(f"cluster_{p.cluster}", lang))]
    if p.design == "staggered":
        hs = ev.result().meta.get("headline_se") or {}
        if hs.get("method") == "jackknife":
            parts.append(t("method_jackknife", lang, unit=t(f"cluster_{p.cluster}", lang), df=hs["df"]))
        elif hs.get("jackknife_error"):
            parts.append(t("method_jackknife_failed", lang, reason=hs["jackknife_error"]))
        rob = ev.robustness.get(ev.primary_outcome, {})
        if "cs_never" in rob or "cs_notyet" in rob:
            parts.append(t("method_controls", lang, control=t(f"control_{p.control}", lang)))
        if "cs_mboot" in rob:
            parts.append(t("method_boot", lang, boot=p.bootstrap or CS_BOOTSTRAP_DEFAULT))
        if "twfe_wild" in rob:
            parts.append(t("method_wild", lang, draws=p.wild_draws, weights=t(f"weights_{p.wild_weights}", lang),
                           p=fmt_p(float(rob["twfe_wild"].overall["p_value"]))))
        if "ri" in rob:
            parts.append(t("method_ri", lang, draws=p.ri_draws, p=fmt_p(float(rob["ri"].overall["p_value"]))))
        if ev.sensitivity is not None:
            parts.append(t("method_sens", lang))
        if ev.multiple is not None:
            parts.append(t("method_multiple", lang))
        parts.append(t("method_verdict", lang))
    return ("" if lang == "zh" else " ").join(parts)


def data_note(ev: Evaluation) -> str:
    """The data note: sources, window, counts and quarantined rows (aggregates only)."""
    lang = ev.lang
    sources = t("sources_demo", lang) if ev.facts.synthetic else t("sources_wh", lang)
    data = t("data_note", lang, sources=sources, start=ev.params.window.start, end=ev.params.window.end,
             stations=f"{ev.panel['station_id'].nunique():,}", months=ev.panel["period"].nunique(),
             rows=f"{len(ev.panel):,}", quarantined=f"{ev.facts.quarantined:,}")
    excluded = {r: n for r, n in (ev.panel.attrs.get("excluded_stations") or {}).items() if n}
    if excluded:
        sep = "、" if lang == "zh" else ", "
        data += ("" if lang == "zh" else " ") + t(
            "excluded_note", lang, n=sum(excluded.values()),
            reforms=sep.join(f"{reform_label(r, lang)} ({n})" for r, n in excluded.items()))
    space = "" if lang == "zh" else " "
    for table in ("incidents", "disputes"):
        n_other, n_rows = ev.facts.rows_other.get(table, 0), ev.facts.rows.get(table, 0)
        if n_other and n_rows:
            data += space + t(f"other_note_{table}", lang, n=f"{n_other:,}", share=f"{n_other / n_rows:.1%}")
    # coverage gaps of the record tables the evaluated outcomes come from (a table the evaluation
    # does not read, e.g. an unloaded dispute ledger, is not a gap of this evaluation)
    used = {"disputes" if o.startswith("dispute") else "incidents" for o in ev.params.outcomes}
    gaps = {t_: g for t_, g in (ev.panel.attrs.get("coverage_gaps") or {}).items() if t_ in used}
    gap_stations = sorted({s for per_table in gaps.values() for s in per_table})
    if gap_stations:
        cells = sum(sum(g.values()) for g in gaps.values())
        data += space + t("gaps_note", lang, stations=len(gap_stations), cells=f"{cells:,}")
    return data


__all__ = ["change_range", "change_words", "data_note", "estimates_table", "headline_text", "method_note", "multiple_table", "pretrend_method_label",
           "pretrend_sentence", "pretrend_table", "results_text", "sensitivity_sentences", "variant_label"]
