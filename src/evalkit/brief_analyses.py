"""The words and tables of the further analyses (issue 17): dose, switching, spillover, heterogeneity.

``Evaluation.analyses`` (kind → outcome → :class:`evalkit.analyses.AnalysisSection`) holds the
numbers; this module reads each number once (:func:`dose_numbers`, :func:`switching_numbers`,
:func:`spillover_numbers`, :func:`subgroup_numbers`) and renders from those same dicts the page-1
sentence of each kind (:func:`analysis_sentences`) and the section's tables — so the sentence and the
table can never state two different numbers for one question. Nothing is re-estimated here: the only
arithmetic is a change of unit (percent of the result's own ``baseline_mean``, as
:meth:`EstimationResult.percent`; the dose per 10 percentage points of coverage; the sign of an
effect of switching *off*, which the estimator reports as the effect of the treatment).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from evalkit.analyses import KINDS
from evalkit.brief_words import (
    ANALYSIS_TEXTS,
    analysis_reason,
    at,
    change_range,
    change_words,
    effect_form,
    magnitude,
)
from evalkit.i18n import fmt_num, fmt_p, fmt_pct, outcome_label, outcome_unit, t, verdict_label
from evalkit.registry import period_label
from evalkit.verdict import MIN_ADOPTERS, MIN_COMPARISON, floor_caps

#: a dose whose adopters' values all lie in (0, 1] is a share (e.g. of villages covered): stated per
#: 10 percentage points
DOSE_STEP_SHARE = 0.1


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _cap(s: str, lang: str) -> str:
    return s[:1].upper() + s[1:] if lang == "en" else s


def sections(ev: Any, kind: str) -> dict[str, Any]:
    """``ev.analyses[kind]`` (outcome → section), empty when the kind was not asked for (or the
    evaluation predates ``analyses``)."""
    return dict((getattr(ev, "analyses", None) or {}).get(kind) or {})


def primary(ev: Any, kind: str) -> tuple[str, Any] | None:
    """(outcome, section) of ``kind`` shown on page 1 and in the chart: the evaluation's primary
    outcome when it has one, else the first outcome of the kind; ``None`` when the kind is absent."""
    secs = sections(ev, kind)
    if not secs:
        return None
    o = ev.primary_outcome if ev.primary_outcome in secs else next(iter(secs))
    return o, secs[o]


# ----------------------------------------------------------------------------- numbers (read once)
def _effect(result: Any, outcome: str, est: float, lo: float, hi: float, p: float | None = None,
            *, sign: float = 1.0) -> dict[str, Any]:
    """An effect of ``result`` in outcome units and in percent of the result's ``baseline_mean``;
    ``form``: how page 1 states it (percent, own unit or percentage points, :func:`effect_form`)."""
    est, lo, hi = sign * float(est), sign * float(lo), sign * float(hi)
    lo, hi = min(lo, hi), max(lo, hi)
    pct = [result.percent(v) for v in (est, lo, hi)]
    form = effect_form(outcome)
    if form == "pct" and any(_nan(v) for v in pct):  # no baseline: the outcome's own unit
        form = "level"
    return {"estimate": est, "ci_low": lo, "ci_high": hi, "p_value": None if _nan(p) else float(p),
            "pct": pct[0], "pct_low": pct[1], "pct_high": pct[2], "form": form}


def _row(result: Any, kind: str, term: str | None = None) -> pd.Series | None:
    rows = result.estimates[result.estimates["kind"] == kind]
    if term is not None:
        rows = rows[rows["term"] == term]
    return None if rows.empty else rows.iloc[0]


def dose_numbers(section: Any) -> dict[str, Any]:
    """ACR^o per step of dose (10 percentage points for a share dose, else 1 unit) and ATT^o, with
    the adopters used and the number of dose levels."""
    r, o = section.result, section.outcome
    lo_d, hi_d = (r.meta.get("dose_range") or [float("nan")] * 2)[:2]
    share = not _nan(lo_d) and not _nan(hi_d) and 0 < float(lo_d) and float(hi_d) <= 1
    step = DOSE_STEP_SHARE if share else 1.0
    acr, att = _row(r, "aggregate", "ACR"), r.overall
    return {"share_dose": share, "step": step,
            "acr": _effect(r, o, step * acr["estimate"], step * acr["ci_low"], step * acr["ci_high"], acr["p_value"]),
            "att": _effect(r, o, att["estimate"], att["ci_low"], att["ci_high"], att["p_value"]),
            "n_treated": r.meta.get("n_treated_used"), "n_doses": r.meta.get("n_doses"),
            "pretrend": r.meta.get("pretrend") or {}}


def switch_fits(result: Any) -> dict[str, Any]:
    """Direction → fit: a dict of fits by direction (``in``/``out``/``both``) as given, or one fit
    under its ``meta["switchers"]`` (default ``both``)."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k in ("in", "out", "both") and v is not None}
    return {str(result.meta.get("switchers") or "both"): result}


def switching_numbers(section: Any) -> dict[str, Any]:
    """By direction: the average total effect (switching *off* with the sign of stopping: the estimator
    reports it as the effect of the treatment), switchers in / out and the joint placebo test."""
    out: dict[str, Any] = {}
    for d, r in switch_fits(section.result).items():
        ov = r.overall
        n_in, n_out = int(r.meta.get("n_switchers_in") or 0), int(r.meta.get("n_switchers_out") or 0)
        if d == "both" and not (n_in and n_out):  # one direction only: say which
            d = "in" if n_in else "out"
        sign = -1.0 if d == "out" else 1.0
        out[d] = {**_effect(r, section.outcome, ov["estimate"], ov["ci_low"], ov["ci_high"], ov["p_value"], sign=sign),
                  "n_in": n_in, "n_out": n_out, "placebo": int(r.meta.get("placebo") or 0),
                  "pretrend": r.meta.get("pretrend") or {}}
    return out


def spillover_numbers(section: Any) -> dict[str, Any]:
    """The effect on untreated neighbours (kind ``spillover``) and the direct effect without
    contaminated controls (``overall``), with the exposed and comparison station counts."""
    r, o = section.result, section.outcome
    sp, ov = _row(r, "spillover", "spillover"), r.overall
    info = r.meta.get("sample") or {}
    spill = _effect(r, o, sp["estimate"], sp["ci_low"], sp["ci_high"], sp["p_value"])
    # the neighbours' effect in percent of their own mean before exposure when the evaluation gives it
    # (``facts["spillover_pct"]`` …, evalkit.analyses_run); else of the adopters' mean (the result's)
    f = section.facts or {}
    own = [f.get(k) for k in ("spillover_pct", "spillover_pct_low", "spillover_pct_high")]
    if not any(_nan(v) for v in own):
        lo, hi = sorted(float(v) for v in own[1:])
        spill.update(pct=float(own[0]), pct_low=lo, pct_high=hi, own_base=True,
                     form="pct" if effect_form(o) == "pct" else spill["form"])
    return {"spill": spill,
            "direct": _effect(r, o, ov["estimate"], ov["ci_low"], ov["ci_high"], ov["p_value"]),
            "n_exposed": r.meta.get("n_exposed_stations"), "n_treated": info.get("n_treated"),
            "n_control": info.get("n_control")}


def subgroup_numbers(section: Any) -> dict[str, Any]:
    """Grouping → rows (one per subgroup: effect, counts, verdict code, floors missed) and the
    equality test, from the :class:`~evalkit.heterogeneity.SubgroupResult` of each grouping."""
    out: dict[str, Any] = {}
    for by, sg in (section.result or {}).items():
        rows = []
        for r in sg.table.to_dict("records"):
            pct = [r.get(k, float("nan")) for k in ("pct", "pct_low", "pct_high")]
            form = effect_form(section.outcome)
            if form == "pct" and any(_nan(v) for v in pct):
                form = "level"
            floors = floor_caps(int(r["n_adopters"]), int(r["n_comparison"]))
            rows.append({"group": str(r["group"]), "estimate": r["estimate"], "ci_low": r["ci_low"],
                         "ci_high": r["ci_high"], "p_value": r["p_value"], "pct": pct[0], "pct_low": pct[1],
                         "pct_high": pct[2], "form": form, "n_adopters": int(r["n_adopters"]),
                         "n_comparison": int(r["n_comparison"]), "verdict": r.get("verdict"),
                         "floors": floors})
        out[by] = {"rows": rows, "equality": dict(sg.equality)}
    return out


# ----------------------------------------------------------------------------- words
def _pick(e: dict[str, Any]) -> tuple[float, float, float]:
    if e["form"] == "pct":
        return e["pct"], e["pct_low"], e["pct_high"]
    return e["estimate"], e["ci_low"], e["ci_high"]


def effect_words(e: dict[str, Any], outcome: str, lang: str, *, up: str | None = None) -> tuple[str, str]:
    """(effect, interval) of one effect dict in words with signs that never mix ("下降 6.1%",
    "下降 2.0%–10.2%"); ``up`` replaces the rising verb (e.g. "回升" after a reform stopped)."""
    from evalkit.i18n import outcome_unit

    unit = outcome_unit(outcome, lang)
    x, lo, hi = _pick(e)
    words = change_words(x, lo, hi, lang, form=e["form"], unit=unit)
    if up and not (_nan(lo) or _nan(hi) or lo <= 0 <= hi) and x > 0:
        words = words.replace(t("up", lang) if lang == "en" else "上升", up, 1)
    return words, change_range(lo, hi, lang, form=e["form"], unit=unit)


def _sig(e: dict[str, Any]) -> int:
    """+1 / −1 when the interval lies above / below zero, 0 when it contains zero (or is missing)."""
    _, lo, hi = _pick(e)
    if _nan(lo) or _nan(hi) or lo <= 0 <= hi:
        return 0
    return 1 if lo > 0 else -1


def p_words(p: Any) -> str:
    """"p = 0.003" / "p < 0.001" (never "p = <0.001")."""
    s = fmt_p(None if _nan(p) else float(p))
    return f"p {s[0]} {s[1:]}" if s.startswith("<") else f"p = {s}"


def not_available(kind: str, reason: Any, lang: str) -> str:
    """"剂量反应分析暂不可用：<reason>" / "The dose-response analysis not available: <reason>"."""
    return at("not_available", lang, what=at(f"what_{kind}", lang), reason=analysis_reason(reason, lang))


def dose_sentence(section: Any, lang: str) -> str:
    n = dose_numbers(section)
    o = outcome_label(section.outcome, lang)
    eff, rng = effect_words(n["acr"], section.outcome, lang)
    eff_o, rng_o = effect_words(n["att"], section.outcome, lang)
    kind = "share" if n["share_dose"] else "unit"
    return at("dose_sentence", lang, step=at(f"dose_step_{kind}", lang), outcome=o, effect=eff, range=rng,
              level=at(f"dose_level_{kind}", lang), effect_o=eff_o, range_o=rng_o)


def switching_sentence(section: Any, lang: str) -> str:
    parts = []
    o = outcome_label(section.outcome, lang)
    for d, e in switching_numbers(section).items():
        eff, rng = effect_words(e, section.outcome, lang, up=at("rebound", lang) if d == "out" else None)
        if d == "both":
            parts.append(at("switch_both", lang, n_in=e["n_in"], n_out=e["n_out"], outcome=o, effect=eff, range=rng))
        else:
            parts.append(at(f"switch_{d}", lang, outcome=o, effect=eff, range=rng,
                            n=e["n_in"] if d == "in" else e["n_out"]))
    return ("" if lang == "zh" else " ").join(_cap(p, lang) for p in parts)


def spillover_sentence(section: Any, lang: str) -> str:
    n = spillover_numbers(section)
    e = n["spill"]
    eff, rng = effect_words(e, section.outcome, lang)
    sig = _sig(e)
    incidents = section.outcome.startswith("incidents")  # more incidents next door = displacement
    reading = ("spill_none" if sig == 0 else ("spill_displacement" if sig > 0 else "spill_diffusion")
               if incidents else "spill_effect")
    return at("spill_sentence", lang, outcome=outcome_label(section.outcome, lang), effect=eff, range=rng,
              reading=at(reading, lang))


def group_label(by: str, group: str, lang: str) -> str:
    """A subgroup's name in words ("城区派出所", "stations adopting in 2021-07")."""
    key = f"group_{group}"
    if by in ("area_type", "size_class") and key in ANALYSIS_KEYS[lang]:
        return at(key, lang)
    if by == "cohort":
        try:
            return at("group_cohort", lang, p=period_label(int(float(group))))
        except (TypeError, ValueError):
            pass
    return at("group_other", lang, g=group)


def by_label(by: str, lang: str) -> str:
    key = f"by_{by}"
    return at(key, lang) if key in ANALYSIS_KEYS[lang] else by


def unrated_why(row: dict[str, Any], lang: str) -> str:
    """Why a subgroup is not rated: the headline's floors it misses, in the verdict's words."""
    from evalkit.i18n import VERDICT_CAPS

    counts = {"few_adopters": (row["n_adopters"], MIN_ADOPTERS), "few_comparison": (row["n_comparison"], MIN_COMPARISON)}
    sep = "；" if lang == "zh" else "; "
    return sep.join(VERDICT_CAPS[c][lang].format(n=counts.get(c, (None, None))[0], min=counts.get(c, (None, None))[1])
                    for c in row["floors"])


def heterogeneity_sentence(section: Any, lang: str) -> str:
    """The first grouping asked: each subgroup's effect (below the floors: "not rated") and the equality test."""
    nums = subgroup_numbers(section)
    if not nums:
        return ""
    by, g = next(iter(nums.items()))
    o = outcome_label(section.outcome, lang)
    groups = []
    for row in g["rows"]:
        eff, rng = effect_words(row, section.outcome, lang)
        groups.append(at("hetero_group", lang, group=group_label(by, row["group"], lang), outcome=o, effect=eff,
                         range=rng, unrated=at("unrated", lang) if row["floors"] else ""))
    eq = g["equality"]
    test = (at("hetero_test", lang, p=p_words(eq.get("p_value"))) if eq.get("status") == "ok" else
            at("hetero_test_na", lang, reason=analysis_reason(eq.get("reason"), lang)))
    return at("hetero_sentence", lang, by=by_label(by, lang), groups=at("hetero_sep", lang).join(groups), test=test)


# ----------------------------------------------------------------------------- planted truths (demo)
def planted(ev: Any, section: Any) -> dict[str, Any] | None:
    """``section.facts["planted_truth"]`` (evalkit.analyses_run) when the warehouse is synthetic demo
    data; ``None`` otherwise — a truth is never stated for real data."""
    if not getattr(getattr(ev, "facts", None), "synthetic", False):
        return None
    return (section.facts or {}).get("planted_truth") or None


def _truth(level: Any, pct: Any, outcome: str) -> dict[str, Any] | None:
    """A planted truth as an effect dict (:func:`_effect`'s keys, the interval collapsed on the value):
    percent of the same base as the estimate beside it, or the outcome's own unit / percentage points."""
    if _nan(level):
        return None
    form = effect_form(outcome)
    if form == "pct" and _nan(pct):
        form = "level"
    lv, pc = float(level), float("nan") if _nan(pct) else float(pct)
    return {"estimate": lv, "ci_low": lv, "ci_high": lv, "p_value": None, "pct": pc, "pct_low": pc, "pct_high": pc,
            "form": form}


def truth_words(e: dict[str, Any], outcome: str, lang: str) -> str:
    """A truth in the headline truth sentence's words ("下降 6.1%" / "a decrease of 6.1%"; no change:
    "0.0%")."""
    x = _pick(e)[0]
    unit = outcome_unit(outcome, lang)
    if x == 0:
        return magnitude(0.0, e["form"], unit, lang)
    return change_words(x, x, x, lang, form=e["form"], unit=unit, noun=True)


def truth_effects(ev: Any, section: Any) -> dict[Any, dict[str, Any]]:
    """Quantity → the planted truth beside it: dose ``acr`` (per step of dose, as :func:`dose_numbers`)
    and ``att``; switching ``in``/``out``; spillover ``spill`` and ``direct``; heterogeneity
    ``(by, group)``. Empty for real data or without a truth."""
    tr, o = planted(ev, section), section.outcome
    if not tr:
        return {}
    k = section.kind
    out: dict[Any, Any] = {}
    if k == "dose":
        step = dose_numbers(section)["step"]
        out = {"acr": _truth(step * float(tr["acr_o"]) if not _nan(tr.get("acr_o")) else None,
                             None if _nan(tr.get("acr_o_pct")) else step * float(tr["acr_o_pct"]), o),
               "att": _truth(tr.get("att_o"), tr.get("att_o_pct"), o)}
    elif k == "switching":
        out = {d: _truth(v.get("level"), v.get("pct"), o) for d, v in tr.items() if isinstance(v, dict)}
    elif k == "spillover":
        out = {"spill": _truth(tr.get("spillover"), tr.get("spillover_pct"), o),
               "direct": _truth(tr.get("direct"), tr.get("direct_pct"), o)}
    elif k == "heterogeneity":
        out = {(by, g): _truth(v.get("level"), v.get("pct"), o) for by, grp in tr.items() for g, v in grp.items()}
    return {q: e for q, e in out.items() if e is not None}


def truth_sentence(ev: Any, section: Any) -> str:
    """"演示数据中植入的真实效果约为：…。" for ``section`` on synthetic data ("" otherwise), the
    quantities of its page-1 sentence in the same order."""
    tr, lang, o = truth_effects(ev, section), ev.lang, section.outcome
    if not tr:
        return ""
    k = section.kind

    def w(q: Any) -> str:
        return truth_words(tr[q], o, lang)

    parts: list[str] = []
    if k == "dose" and {"acr", "att"} <= set(tr):
        kind = "share" if dose_numbers(section)["share_dose"] else "unit"
        step = at(f"dose_step_{kind}", lang)
        parts.append(at("truth_dose", lang, step=step[:1].lower() + step[1:] if lang == "en" else step,
                        slope=w("acr"), level=at(f"dose_level_{kind}", lang), att=w("att")))
    elif k == "switching":
        parts += [at(f"truth_switch_{d}", lang, x=w(d)) for d in switching_numbers(section) if d in tr]
    elif k == "spillover" and {"spill", "direct"} <= set(tr):
        parts.append(at("truth_spill", lang, x=w("spill"), direct=w("direct")))
    elif k == "heterogeneity":
        nums = subgroup_numbers(section)
        if nums:
            by, g = next(iter(nums.items()))
            parts += [at("truth_group", lang, group=group_label(by, r["group"], lang), x=w((by, r["group"])))
                      for r in g["rows"] if (by, r["group"]) in tr]
    return at("truth_sentence", lang, parts=at("truth_sep", lang).join(parts)) if parts else ""


_SENTENCE = {"dose": dose_sentence, "switching": switching_sentence, "spillover": spillover_sentence,
             "heterogeneity": heterogeneity_sentence}
ANALYSIS_KEYS = {lang: set(words) for lang, words in ANALYSIS_TEXTS.items()}


def analysis_sentence(ev: Any, kind: str) -> str:
    """Page 1's sentence of ``kind`` for its primary outcome ("" when the kind was not asked for);
    "… not available: reason" when the analysis could not run."""
    got = primary(ev, kind)
    if got is None:
        return ""
    _, sec = got
    if sec.error is not None or sec.result is None:
        return not_available(kind, sec.error or "not requested", ev.lang)
    truth = truth_sentence(ev, sec)  # demo data: the planted truth right after the estimate
    return _SENTENCE[kind](sec, ev.lang) + (("" if ev.lang == "zh" else " ") + truth if truth else "")


def analysis_sentences(ev: Any) -> dict[str, str]:
    """Kind → page-1 sentence, in :data:`evalkit.analyses.KINDS` order, only the kinds present."""
    out = {k: analysis_sentence(ev, k) for k in KINDS}
    return {k: v for k, v in out.items() if v}


# ----------------------------------------------------------------------------- tables
def _ci(e: dict[str, Any], lang: str, scale: float) -> str:
    if _nan(e["ci_low"]) or _nan(e["ci_high"]):
        return "—"
    return f"[{fmt_num(scale * e['ci_low'], lang, 3)}, {fmt_num(scale * e['ci_high'], lang, 3)}]"


def _cols(e: dict[str, Any], outcome: str, lang: str) -> dict[str, str]:
    share = effect_form(outcome) == "share"
    scale = 100.0 if share else 1.0
    return {at("col_estimate", lang): fmt_num(scale * e["estimate"], lang, 3), at("col_ci", lang): _ci(e, lang, scale),
            at("col_pct", lang): "—" if share else fmt_pct(e["pct"], lang, signed=True),
            at("col_p", lang): fmt_p(e["p_value"])}


def _truth_col(te: dict[str, Any] | None, outcome: str, lang: str) -> dict[str, str]:
    """The table's planted-truth cell beside an estimate (demo data only; nothing without a truth):
    the estimate's unit and scale, then its percent as in the percent column."""
    if te is None:
        return {}
    share = effect_form(outcome) == "share"
    txt = fmt_num((100.0 if share else 1.0) * te["estimate"], lang, 3)
    if not share and not _nan(te["pct"]):
        txt += f" ({fmt_pct(te['pct'], lang, signed=True)})"
    return {at("col_truth", lang): txt}


def _suppress(n: Any, ev: Any, lang: str) -> Any:
    from evalkit.brief_text import _suppress as suppress

    return suppress(n, int(getattr(ev.params, "suppress_below", 0) or 0), lang)


def analysis_table(ev: Any, kind: str) -> pd.DataFrame:
    """One row per outcome and quantity of ``kind`` (estimate, CI, percent of the pre-reform mean
    except for shares, p, station counts with small counts suppressed); an outcome whose analysis
    could not run gets one row with the reason."""
    lang, rows = ev.lang, []
    for o, sec in sections(ev, kind).items():
        base = {at("col_outcome", lang): _cap(outcome_label(o, lang), lang)}
        if sec.error is not None or sec.result is None:
            rows.append({**base, at("col_quantity", lang): not_available(kind, sec.error or "not requested", lang)})
            continue
        truth = truth_effects(ev, sec)  # demo data only: the planted truth beside each estimate
        if kind == "dose":
            n = dose_numbers(sec)
            step = at(f"dose_step_{'share' if n['share_dose'] else 'unit'}", lang)
            cnt = at("n_dose", lang, n=_suppress(n["n_treated"], ev, lang), k=n["n_doses"])
            for q, e, key in ((at("q_acr_step", lang, step=step), n["acr"], "acr"), (at("q_att_o", lang), n["att"], "att")):
                rows.append({**base, at("col_quantity", lang): q, **_cols(e, o, lang),
                             **_truth_col(truth.get(key), o, lang), at("col_n", lang): cnt})
        elif kind == "switching":
            for d, e in switching_numbers(sec).items():
                q = at({"both": "q_switch_total", "in": "q_switch_in", "out": "q_switch_out"}[d], lang)
                rows.append({**base, at("col_quantity", lang): q, **_cols(e, o, lang), **_truth_col(truth.get(d), o, lang),
                             at("col_n", lang): at("n_switch", lang, n_in=_suppress(e["n_in"], ev, lang),
                                                   n_out=_suppress(e["n_out"], ev, lang))})
        elif kind == "spillover":
            n = spillover_numbers(sec)
            cnt = at("n_spill", lang, n_exp=_suppress(n["n_exposed"], ev, lang), n_ctl=_suppress(n["n_control"], ev, lang))
            for q, e, key in ((at("q_spill", lang), n["spill"], "spill"), (at("q_direct", lang), n["direct"], "direct")):
                rows.append({**base, at("col_quantity", lang): q, **_cols(e, o, lang),
                             **_truth_col(truth.get(key), o, lang), at("col_n", lang): cnt})
        else:
            for by, why in ((sec.facts or {}).get("errors") or {}).items():  # groupings that could not run
                rows.append({**base, at("col_by", lang): by_label(by, lang),
                             at("col_group", lang): not_available(kind, why, lang)})
            for by, g in subgroup_numbers(sec).items():
                for row in g["rows"]:
                    rating = (at("unrated_col", lang, why=unrated_why(row, lang)) if row["floors"]
                              else verdict_label(row["verdict"], lang) if row["verdict"] else "—")
                    rows.append({**base, at("col_by", lang): by_label(by, lang),
                                 at("col_group", lang): group_label(by, row["group"], lang), **_cols(row, o, lang),
                                 **_truth_col(truth.get((by, row["group"])), o, lang),
                                 at("col_n", lang): at("n_group", lang, n_a=_suppress(row["n_adopters"], ev, lang),
                                                       n_c=_suppress(row["n_comparison"], ev, lang)),
                                 at("col_verdict", lang): rating})
    return pd.DataFrame(rows).fillna("")


def section_notes(ev: Any, kind: str) -> list[str]:
    """The notes under ``kind``'s table: what the percentages are of, strong parallel trends for the
    dose, stations that stopped counted as switching on, subgroups split with another fit."""
    lang, secs = ev.lang, sections(ev, kind)
    done = {o: s for o, s in secs.items() if s.error is None and s.result is not None}
    out = []
    if kind == "dose":
        out.append(at("dose_note", lang))
        for o, s in done.items():  # cells left out with small_cohorts: skip are said, never silent
            skipped = int((s.result.meta.get("skipped_cells") or {}).get("too_few_doses") or 0)
            if skipped:
                used, n = s.result.meta.get("n_treated_used"), s.result.meta.get("n_treated")
                out.append(at("dose_skipped_note", lang, outcome=outcome_label(o, lang), cells=skipped,
                              unused=int(n or 0) - int(used or 0)))
    own = kind == "spillover" and any(spillover_numbers(s)["spill"].get("own_base") for s in done.values())
    out.append(at("pct_note_spill" if own else "pct_note", lang))
    if kind == "switching":
        for s in done.values():  # stations stopped but the switch-off fit could not run: say why
            if (s.facts or {}).get("out_error") and "out" not in switching_numbers(s):
                out.append(at("switch_off_missing_note", lang, n=int(s.facts.get("n_stopped") or 0),
                              reason=analysis_reason(s.facts["out_error"], lang)))
                break
        for s in done.values():
            n = int((s.facts or {}).get("n_stopped") or 0)
            if n and set(switching_numbers(s)) == {"in"}:  # their stop is inside the effect of switching on
                out.append(at("switch_stopped_note", lang, n=n))
                break
    if kind == "heterogeneity":
        from evalkit.i18n import estimator_label

        head = getattr(getattr(ev, "params", None), "headline", None)
        used = {by: est for s in done.values() for by, est in ((s.facts or {}).get("estimator") or {}).items()}
        out += [at("hetero_estimator_note", lang, by=by_label(by, lang), estimator=estimator_label(est, lang))
                for by, est in used.items() if head and est != head]
    return out


def joint_tests(ev: Any, kind: str) -> pd.DataFrame:
    """The joint tests of ``kind``: the switching placebo test, the subgroup equality test (one row
    per outcome and grouping; "not available: reason" in place of a statistic that is not)."""
    lang, rows = ev.lang, []
    for o, sec in sections(ev, kind).items():
        if sec.error is not None or sec.result is None:
            continue
        label = _cap(outcome_label(o, lang), lang)
        if kind == "switching":
            tests = [(at("dir_" + d, lang) if d != "both" else "", e["pretrend"], e["placebo"])
                     for d, e in switching_numbers(sec).items()]
            for d, pt, k in tests:
                if k:  # placebos were asked for
                    rows.append(_test_row(label, at("placebo_test_name", lang, k=k) + (f" — {d}" if d else ""),
                                          small_sample_placebo(pt), lang))
        elif kind == "heterogeneity":
            for by, g in subgroup_numbers(sec).items():
                rows.append(_test_row(label, at("equality_row", lang, by=by_label(by, lang)), g["equality"], lang))
    return pd.DataFrame(rows)


def small_sample_placebo(pt: dict[str, Any]) -> dict[str, Any]:
    """The switching placebo test the brief reads: Hotelling's small-sample F (``p_value_f``, the
    switchers as the sample) — the χ² p-value over-rejects with few switchers (docs/monte-carlo.md);
    "not available" when there are too few switchers for it. Results without ``p_value_f`` as given."""
    if "p_value_f" not in pt:
        return pt
    if _nan(pt.get("p_value_f")):
        return {**pt, "status": "not_available",
                "reason": f"too few switchers for the small-sample test ({pt.get('n_switchers')} for {pt.get('df')} placebos)"}
    return {**pt, "p_value": pt["p_value_f"]}


def _test_row(outcome: str, test: str, pt: dict[str, Any], lang: str) -> dict[str, str]:
    ok = pt.get("status", "ok") == "ok" and not _nan(pt.get("stat")) and not _nan(pt.get("p_value"))
    stat = fmt_num(float(pt["stat"]), lang, 2) if ok else \
        at("not_available", lang, what="", reason=analysis_reason(pt.get("reason") or "", lang)).lstrip()
    return {at("col_outcome", lang): outcome, at("col_test", lang): test, at("col_stat", lang): stat,
            at("col_df", lang): str(int(pt.get("df") or 0)) if ok else "—",
            at("col_p", lang): fmt_p(pt.get("p_value")) if ok else "—"}


__all__ = ["DOSE_STEP_SHARE", "switch_fits", "analysis_sentence", "analysis_sentences", "analysis_table", "by_label", "dose_numbers",
           "effect_words", "group_label", "joint_tests", "not_available", "planted", "truth_effects", "truth_sentence", "truth_words", "small_sample_placebo", "section_notes", "primary", "sections", "spillover_numbers",
           "subgroup_numbers", "switching_numbers"]
