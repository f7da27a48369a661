"""What the notebook shows: HTML blocks and charts, in the evaluation's language.

Each ``show_*`` function displays one section of the brief. The first one also emits a
small machine-readable marker (MIME type ``application/vnd.evalkit.brief+json``) that the
exporter reads to put the evaluation id, page numbers and — for synthetic data — the
synthetic-data notice on every PDF page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit import __version__
from evalkit.brief_marker import BRIEF_MIME
from evalkit.brief_text import (
    data_note,
    different_question,
    estimates_table,
    headline,
    headline_text,
    method_note,
    multiple_table,
    one_headline,
    outcome_line,
    outcome_lines,
    pretrend_method_label,
    pretrend_table,
    pretrend_table_note,
    results_text,
    sensitivity_sentences,
    variant_label,
)
from evalkit.brief_words import (
    change_words,
    failed_step_sentence,
    reason_words,
    sensitivity_steps,
    technical_reasons,
)
from evalkit.estimators import names
from evalkit.evaluation import Evaluation
from evalkit.i18n import estimator_label, fmt_num, fmt_p, fmt_pct, outcome_label, outcome_unit, t
from evalkit.inference._refit import clip_text
from evalkit.registry import NEVER_TREATED, period_start
from evalkit.report_analyses import analysis_charts, page1_html, show_analyses
from evalkit.viz import ahead
from evalkit.viz.event_study import event_study_plot
from evalkit.viz.placebo import plot_placebo
from evalkit.viz.sensitivity import plot_sensitivity
from evalkit.viz.style import month_axis, plt, show_png, tight_layout, use_cjk_font
from evalkit.viz.synthetic import plot_synthetic
from evalkit.viz.trends import trends_plot


def _display(obj: Any, **kw: Any) -> None:
    from IPython.display import display

    display(obj, **kw)


def _html(s: str) -> None:
    from IPython.display import HTML

    _display(HTML(s))


def brief_marker(ev: Evaluation) -> dict[str, Any]:
    return {"evaluation_id": ev.params.evaluation_id, "lang": ev.lang, "synthetic": ev.facts.synthetic,
            "title": ev.params.title or "", "reform": ev.params.reform}


def show_header(ev: Evaluation) -> None:
    """Title block, synthetic-data notice and the exporter marker."""
    use_cjk_font()
    marker = brief_marker(ev)
    _display({BRIEF_MIME: marker, "text/plain": f"evalkit brief {marker['evaluation_id']}"}, raw=True)
    lang = ev.lang
    title = ev.params.title or (f"{ev.params.reform_info.zh}改革效果评估" if lang == "zh"
                                else f"Evaluation of {ev.params.reform_info.en}")
    notice = (f'<div class="ek-synthetic">{html.escape(t("synthetic_notice", lang))}</div>'
              if ev.facts.synthetic else "")
    _html(f'<div class="ek-title"><h1>{html.escape(title)}</h1>'
          f'<div class="ek-sub">{t("eval_id", lang)}: {html.escape(ev.params.evaluation_id)}</div></div>{notice}')
    ahead.start(ev, brief_charts(ev))  # under `evalkit run`, on a free core: the charts drawn beside the other cells


def brief_charts(ev: Evaluation) -> list[tuple[tuple[str, ...], Any]]:
    """The brief's charts in the order its notebook shows them: (key, builder of the figure or ``None``),
    for :func:`evalkit.viz.ahead.start` (the builders are the ones the ``show_*`` functions use)."""
    o = ev.primary_outcome
    if ev.params.design == "single_station":  # notebooks/pilot_station.ipynb
        return [(("synthetic", o), lambda: _synthetic_chart(ev, o)), (("trends", o), lambda: _trends_chart(ev, o))]
    charts = [(("event_study", o), lambda: _event_study_chart(ev, o)), (("trends", o), lambda: _trends_chart(ev, o))]
    if ev.params.sensitivity and ev.params.design == "staggered" and ev.sensitivity is not None:
        charts.append((("sensitivity",), lambda: _sensitivity_chart(ev)))
    if "randomization" in ev.params.inference:
        charts.append((("randomization", o), lambda: _placebo_chart(ev, o)))
    return charts + analysis_charts(ev)


def _outcome_lines_html(ev: Evaluation) -> str:
    lines = "".join(f"<li>{html.escape(x)}</li>" for x in outcome_lines(ev))
    return f'<div class="ek-block ek-outcomes"><h2>{t("outcomes_h", ev.lang)}</h2><ul>{lines}</ul></div>'


@one_headline
def show_headline(ev: Evaluation, outcome: str | None = None) -> None:
    """Page 1: question, one-sentence answer (no method names) and its estimand, one line per
    outcome (effect in its unit and in percent, interval, verdict), verdict, and the naive
    year-on-year figure."""
    lang = ev.lang
    try:
        h = headline(ev, outcome) | headline_text(ev, outcome)
    except KeyError:  # the headline estimator did not run for this outcome: say why, in words
        _html(f'<div class="ek-block ek-answer"><h2>{t("answer_h", lang)}</h2><p class="ek-sentence">'
              f'{html.escape(outcome_line(ev, outcome or ev.primary_outcome))}</p></div>' + _outcome_lines_html(ev)
              + page1_html(ev))
        return
    pre_txt = h["pretrend_sentence"]
    parts = [
        f'<div class="ek-block"><h2>{t("question_h", lang)}</h2><p>{html.escape(h["question"])}</p></div>',
        f'<div class="ek-block ek-answer"><h2>{t("answer_h", lang)}</h2><p class="ek-sentence">'
        f'{html.escape(h["sentence"])}</p>'
        + (f'<p class="ek-note">{html.escape(h["estimand_sentence"])}</p>' if h["estimand_sentence"] else "")
        + (f'<p class="ek-disagree">{html.escape(h["disagree_sentence"])}</p>' if h["disagree_sentence"] else "")
        + '</div>',
        _outcome_lines_html(ev),
        f'<div class="ek-block ek-verdict ek-verdict-{h["verdict"]}"><h2>{t("verdict_h", lang)}</h2>'
        f'<p><span class="ek-badge">{html.escape(h["verdict_label"])}</span> '
        f'{html.escape(h["verdict_explanation"])} {html.escape(pre_txt)}</p></div>',
        page1_html(ev),  # one sentence per further analysis asked for (dose, switching, spillover, subgroups)
    ]
    truth = ev.planted_truth(outcome)
    if truth is not None and not ev.is_share(outcome or ev.primary_outcome):
        words = change_words(truth, truth, truth, lang, noun=True) if truth else fmt_pct(0.0, lang)  # one sign, in words
        parts.append(f'<p class="ek-note">{html.escape(t("truth_note", lang, truth=words))}</p>')
    if "naive_sentence" in h:
        parts.append(f'<div class="ek-block"><h2>{t("naive_h", lang)}</h2><p>{html.escape(h["naive_sentence"])}</p>'
                     + (f'<p class="ek-note">{html.escape(h["naive_why"])}</p>' if h["naive_why"] else "") + '</div>')
    _html("".join(parts))


@one_headline
def show_estimates(ev: Evaluation, outcome: str | None = None) -> pd.DataFrame:
    """Robustness table (estimators, control-group and inference variants), failures listed below it."""
    lang = ev.lang
    outcome = outcome or ev.primary_outcome
    table = estimates_table(ev, outcome)
    unit = outcome_unit(outcome, lang)
    note = (f'<p class="ek-note">{html.escape(t("robustness_note", lang))}</p>'
            if ev.robustness.get(outcome) else "")
    if different_question(ev, outcome):
        note += f'<p class="ek-note">{html.escape(t("different_question", lang))}</p>'
    _html(f'<h2>{t("estimates_h", lang)} — {html.escape(outcome_label(outcome, lang))}'
          f'{" (" + html.escape(unit) + ")" if unit else ""}</h2>'
          + table.to_html(index=False, classes="ek-table", border=0, escape=True) + note)
    failed = [(estimator_label(k, lang), v) for k, v in ev.failures.get(outcome, {}).items()]
    failed += [(variant_label(ev, k, outcome), v) for k, v in ev.robustness_failures.get(outcome, {}).items()]
    if failed:  # localized reasons; the English technical ones are in results.json and the appendix
        items = "".join(f"<li>{html.escape(failed_step_sentence(k, v, lang))}</li>" for k, v in failed)
        _html(f'<ul class="ek-note">{items}</ul>')
    return table


def _not_available(what: str, reason: str | None, lang: str) -> None:
    words = reason_words(reason, lang)
    _html(f'<p class="ek-note">{html.escape(t("not_available", lang, what=t(what, lang), reason=words))}</p>')


def show_sensitivity(ev: Evaluation) -> None:
    """Rambachan–Roth sensitivity of the primary outcome: chart(s) and plain sentences.

    Never fails the notebook: if the analysis did not run the brief says why."""
    lang = ev.lang
    if not ev.params.sensitivity or ev.params.design != "staggered":
        return
    s = ev.sensitivity
    if s is None:
        _not_available("sensitivity_what", ev.sensitivity_error, lang)
        return
    try:
        steps = sensitivity_steps(getattr(s, "bin_months", 1), lang)
        src = t(f"sens_source_{s.source}", lang, **steps)
        _html(f'<h2>{t("sensitivity_h", lang)} — {html.escape(outcome_label(s.outcome, lang))}</h2>'
              f'<p>{html.escape(t("sensitivity_intro", lang, n=s.months, source=src, **steps))}</p>')

        show_png(ahead.png(ev, ("sensitivity",), lambda: _sensitivity_chart(ev)))
        notes = sensitivity_sentences(ev)
        _html("".join(f"<p>{html.escape(n)}</p>" for n in notes))
    except Exception as exc:  # noqa: BLE001 - the brief says what is missing, the notebook goes on
        _not_available("sensitivity_what", clip_text(f"{type(exc).__name__}: {exc}"), lang)  # generic words


def _sensitivity_chart(ev: Evaluation):
    """The sensitivity figure: relative-magnitude and smoothness bounds side by side (or smoothness alone)."""
    lang, s = ev.lang, ev.sensitivity
    scale = 100.0 if ev.is_share(s.outcome) else 1.0

    def scaled(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(lb=df["lb"] * scale, ub=df["ub"] * scale)

    panels = ([(s.rm, s.original_rm, "sens_chart_rm", s.months)]
              if s.rm is not None and not s.rm.empty else [])
    panels.append((s.sd, s.original, "sens_chart_sd", s.months))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (df, orig, title, n) in zip(axes[0], panels, strict=True):
        o = None if orig is None else {"lb": orig["lb"] * scale, "ub": orig["ub"] * scale}
        plot_sensitivity(scaled(df), o, ax=ax, lang=lang, title=t(title, lang, n=n), bin_months=s.bin_months)
    tight_layout(fig)
    return fig


def _placebo_chart(ev: Evaluation, outcome: str):
    """The randomization-inference placebo distribution of ``outcome`` (``None``: not run)."""
    r = ev.robustness.get(outcome, {}).get("ri")
    return None if r is None else plot_placebo(r, lang=ev.lang)


def show_randomization(ev: Evaluation, outcome: str | None = None) -> None:
    """Randomization inference (if requested): p-value and the placebo distribution chart."""
    lang = ev.lang
    if "randomization" not in ev.params.inference:
        return
    outcome = outcome or ev.primary_outcome
    r = ev.robustness.get(outcome, {}).get("ri")
    if r is None:
        reason = reason_words(ev.robustness_failures.get(outcome, {}).get("ri"), lang)
        _html(f'<p class="ek-note">{html.escape(t("not_available", lang, what=t("ri_h", lang), reason=reason))}</p>')
        return
    tested = estimator_label(r.meta.get("statistic") or "twfe", lang)

    p = float(r.overall["p_value"])
    _html(f'<h2>{t("ri_h", lang)} — {html.escape(outcome_label(outcome, lang))}</h2>'
          f'<p>{html.escape(t("ri_text", lang, draws=r.meta.get("draws_ok", r.meta.get("draws")), p=fmt_p(p), share=fmt_pct(100 * (1 - p), lang, 1), estimator=tested))}</p>')
    show_png(ahead.png(ev, ("randomization", outcome), lambda: _placebo_chart(ev, outcome)))


def show_multiple(ev: Evaluation) -> None:
    """Adjusted p-values across outcomes (BH, Romano–Wolf), when more than one outcome was tested."""
    lang = ev.lang
    if not ev.params.multiple_testing or len(ev.params.outcomes) < 2 or ev.params.design != "staggered":
        return
    table = multiple_table(ev)
    if table.empty:
        _not_available("multiple_what", ev.multiple_error, lang)
        return
    extra = (f'<p class="ek-note">{html.escape(t("not_available", lang, what="Romano–Wolf", reason=reason_words(ev.multiple_error, lang)))}</p>'
             if ev.multiple_error else "")
    note = t("multiple_note", lang, draws=ev.params.ri_draws, estimator=estimator_label(ev.params.headline, lang))
    _html(f'<h2>{t("multiple_h", lang)}</h2>' + table.to_html(index=False, classes="ek-table", border=0)
          + f'<p class="ek-note">{html.escape(note)}</p>' + extra)


def _event_study_chart(ev: Evaluation, outcome: str, found: tuple[str, pd.DataFrame] | None = None):
    """The event-study axes of ``outcome`` (``found``: ``ev.event_study(outcome)`` if read already);
    ``None`` without event-time rows."""
    lang = ev.lang
    name, events = found or ev.event_study(outcome)
    if events.empty:
        return None
    unit = outcome_unit(outcome, lang)
    return event_study_plot(events, title=estimator_label(name, lang), xlabel=t("months_since", lang),
                            ylabel=t("effect_axis", lang, unit=unit or "—"), scale=100.0 if ev.is_share(outcome) else 1.0)


def show_event_study(ev: Evaluation, outcome: str | None = None) -> None:
    lang = ev.lang
    outcome = outcome or ev.primary_outcome
    found = ev.event_study(outcome)
    if found[1].empty:
        return
    _html(f'<h2>{t("event_h", lang)} — {html.escape(outcome_label(outcome, lang))}</h2>')
    show_png(ahead.png(ev, ("event_study", outcome), lambda: _event_study_chart(ev, outcome, found)))


def show_synthetic(ev: Evaluation, outcome: str | None = None) -> None:
    """Single-station pilot: the treated station against its synthetic counterpart."""
    lang = ev.lang
    outcome = outcome or ev.primary_outcome
    if _synthetic_result(ev, outcome) is None:
        return
    _html(f'<h2>{t("synthetic_h", lang)} — {html.escape(outcome_label(outcome, lang))}</h2>')
    show_png(ahead.png(ev, ("synthetic", outcome), lambda: _synthetic_chart(ev, outcome)))


def _synthetic_result(ev: Evaluation, outcome: str):
    done = ev.results.get(outcome, {})
    return next((done[n] for n in names(role="single_station") if n in done), None)


def _synthetic_chart(ev: Evaluation, outcome: str):
    """The single-station trajectory against its synthetic counterpart (``None``: no such result)."""
    lang, r = ev.lang, _synthetic_result(ev, outcome)
    if r is None:
        return None
    labels = {"treated": t("pilot_station", lang), "x": t("month_axis", lang)}
    ax = plot_synthetic(r, lang=lang, title=estimator_label(r.estimator, lang), labels=labels)
    month_axis(ax)  # the trajectory's time is the period index: shown as YYYY-MM
    return ax


def show_trends(ev: Evaluation, outcome: str | None = None) -> None:
    lang = ev.lang
    outcome = outcome or ev.primary_outcome
    _html(f'<h2>{t("trends_h", lang)} — {html.escape(outcome_label(outcome, lang))}</h2>')
    show_png(ahead.png(ev, ("trends", outcome), lambda: _trends_chart(ev, outcome)))


def _trends_chart(ev: Evaluation, outcome: str):
    """Treated and comparison stations' mean of ``outcome`` by month, adoption span shaded."""
    lang = ev.lang
    tr = ev.trends(outcome)
    cohorts = sorted(set(ev.panel.loc[ev.panel["first_treat"] != NEVER_TREATED, "first_treat"]))
    adoption = (period_start(cohorts[0]), period_start(cohorts[-1])) if cohorts else None
    unit = outcome_unit(outcome, lang)
    return trends_plot(tr, labels=(t("treated_group", lang), t("control_group", lang)), adoption=adoption,
                       adoption_label=t("adoption", lang), xlabel=t("month_axis", lang),
                       ylabel=f"{outcome_label(outcome, lang)}{' (' + unit + ')' if unit else ''}",
                       scale=100.0 if ev.is_share(outcome) else 1.0)


def show_diagnostics(ev: Evaluation, outcome: str | None = None) -> None:
    """Pre-trend tests by estimator and the Goodman-Bacon decomposition of TWFE."""
    lang = ev.lang
    outcome = outcome or ev.primary_outcome
    rows = pretrend_table(ev, outcome)  # "not available, because …" in place of an impossible statistic
    parts = [f'<h2>{t("diagnostics_h", lang)} — {html.escape(outcome_label(outcome, lang))}</h2>']
    if not rows.empty:
        note = pretrend_table_note(ev, outcome)  # which test drives the rating, why the others differ
        parts.append(f"<h3>{t('pretrend_table_h', lang)}</h3>"
                     + rows.to_html(index=False, classes="ek-table", border=0)
                     + (f'<p class="ek-note">{html.escape(note)}</p>' if note else ""))
    bacon = ev.bacon_summary(outcome)
    if not bacon.empty:
        names = dict(item.split("=", 1) for item in t("bacon_types", lang).split(";"))
        share = ev.is_share(outcome)
        table = pd.DataFrame({
            t("comparison", lang): [names.get(x, x) for x in bacon["term"]],
            t("weight", lang): [fmt_num(w, lang, 3) for w in bacon["weight"]],
            t("estimate", lang): [fmt_num((100 if share else 1) * e, lang, 3) for e in bacon["estimate"]],
        })
        parts.append(f"<h3>{t('bacon_h', lang)}</h3>" + table.to_html(index=False, classes="ek-table", border=0)
                     + f'<p class="ek-note">{html.escape(t("bacon_note", lang))}</p>')
    _html("".join(parts))


def show_notes(ev: Evaluation) -> None:
    """Method note in plain language (what was run) and the data note (aggregates only)."""
    ahead.finish(ev)  # the notebooks' last cell: the charts' child is reaped even if some chart was never asked
    lang = ev.lang
    data = data_note(ev)
    _html(f'<div class="ek-block"><h2>{t("method_h", lang)}</h2><p>{html.escape(method_note(ev))}</p></div>'
          f'<div class="ek-block"><h2>{t("data_h", lang)}</h2><p>{html.escape(data)}</p>'
          f'<p class="ek-note">{html.escape(t("generated", lang, version=__version__))}</p></div>')
    reasons = technical_reasons(ev)
    if lang == "en" and reasons:  # the raw English reasons: English brief only (and results.json)
        items = "".join(f"<li>{html.escape(where)}: {html.escape(clip_text(why))}</li>" for where, why in reasons)
        _html(f'<div class="ek-block ek-appendix"><h2>{t("tech_h", lang)}</h2><ul class="ek-note">{items}</ul></div>')


def show_brief(ev: Evaluation) -> None:
    """Every section, in brief order: header, page-1 answer, charts, tables, notes."""
    show_header(ev)
    show_headline(ev)
    show_event_study(ev)
    show_trends(ev)
    for outcome in ev.params.outcomes:
        show_estimates(ev, outcome)
    show_multiple(ev)
    show_sensitivity(ev)
    show_randomization(ev)
    show_analyses(ev)
    show_diagnostics(ev)
    show_notes(ev)


def save_results(ev: Evaluation, path: str | Path) -> Path:
    """Write ``results.json``: the evaluation's numbers plus the brief's page-1 sentences (``text``)."""
    return ev.save(path, text=results_text(ev))


__all__ = ["save_results", "pretrend_method_label", "show_brief", "show_header", "show_headline", "show_estimates", "show_event_study", "show_trends",
           "show_diagnostics", "show_notes", "show_sensitivity", "show_randomization", "show_multiple", "show_analyses",
           "method_note", "sensitivity_sentences", "BRIEF_MIME"]
