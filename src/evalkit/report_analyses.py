"""The brief's sections of the further analyses (issue 17): dose, switching, spillover, heterogeneity.

:func:`show_analyses` displays, for each kind of ``Evaluation.analyses`` present (in
:data:`evalkit.analyses.KINDS` order): a heading, the page-1 sentence, a chart of the primary
outcome, the table of every outcome, the joint tests (switching placebos, subgroup equality) and
"… not available: reason" for an outcome whose analysis could not run. A kind that was not asked
for adds nothing. Words and numbers: :mod:`evalkit.brief_analyses`; charts: :mod:`evalkit.viz`.
"""

from __future__ import annotations

import html
from typing import Any

from evalkit.analyses import KINDS
from evalkit.brief_analyses import (
    analysis_sentence,
    analysis_sentences,
    analysis_table,
    by_label,
    dose_numbers,
    group_label,
    joint_tests,
    primary,
    section_notes,
    sections,
    switch_fits,
    switching_numbers,
)
from evalkit.brief_words import at, effect_form
from evalkit.i18n import outcome_label, outcome_unit, t


def _html(s: str) -> None:
    from IPython.display import HTML, display

    display(HTML(s))


def _esc(s: str) -> str:
    return html.escape(s)


def page1_html(ev: Any) -> str:
    """Page 1's block of further-analysis sentences (one per kind present; "" when none)."""
    sents = analysis_sentences(ev)
    if not sents:
        return ""
    items = "".join(f"<li>{_esc(s)}</li>" for s in sents.values())
    return f'<div class="ek-block ek-analyses"><h2>{_esc(at("page1_h", ev.lang))}</h2><ul>{items}</ul></div>'


def _axis(outcome: str, lang: str) -> tuple[str, float]:
    """(y-axis label, scale): effects in the outcome's unit, shares in percentage points."""
    unit = outcome_unit(outcome, lang)
    return t("effect_axis", lang, unit=unit or "—"), 100.0 if effect_form(outcome) == "share" else 1.0


def chart(ev: Any, kind: str):
    """The chart of ``kind`` for its primary outcome (a matplotlib figure or axes), ``None`` when the
    kind is absent or its primary outcome's analysis did not run."""
    got = primary(ev, kind)
    if got is None or got[1].error is not None or got[1].result is None:
        return None
    outcome, sec = got
    lang = ev.lang
    ylabel, scale = _axis(outcome, lang)
    if kind == "dose":
        from evalkit.viz.dose import plot_dose

        n = dose_numbers(sec)
        share = n["share_dose"]
        labels = {k: at(k, lang) for k in ("att_d", "acrt_d", "acr_o", "band")}
        unit = outcome_unit(outcome, lang) or "—"
        labels |= {"x": at("x_dose_share" if share else "x_dose_unit", lang) + (" (%)" if share else ""), "y": ylabel,
                   "y_slope": at("y_slope", lang, step=at(f"dose_step_{'share' if share else 'unit'}", lang), unit=unit)}
        # the slopes per step of dose, as the sentence and the table state them (dose_numbers)
        return plot_dose(sec.result, labels=labels, scale=scale, dose_scale=100.0 if share else 1.0,
                         slope_scale=n["step"])
    if kind == "switching":
        from evalkit.viz.switching import plot_switching

        fits = switch_fits(sec.result)
        nums = switching_numbers(sec)
        # one direction only: name it as the numbers do ("both" with no switch-out is switching on)
        if len(fits) == 1 and len(nums) == 1:
            fits = {next(iter(nums)): next(iter(fits.values()))}
        labels = {"x": at("x_switch", lang), "y": ylabel, "placebos": at("placebos", lang),
                  "in": at("dir_in", lang), "out": at("dir_out", lang), "both": at("effects", lang)}
        return plot_switching(fits, labels=labels, scale=scale, signs={"out": -1.0})
    if kind == "spillover":
        from evalkit.viz.spillover import plot_spillover

        labels = {"direct": at("direct", lang), "neighbours": at("neighbours", lang), "x": at("x_spill", lang),
                  "y": ylabel, "title": outcome_label(outcome, lang)}
        return plot_spillover(sec.result, labels=labels, scale=scale)
    from evalkit.viz.heterogeneity import plot_subgroups

    if not sec.result:
        return None
    by, sg = next(iter(sec.result.items()))
    unit = outcome_unit(outcome, lang)
    pct = "pct" in sg.table.columns  # plot_subgroups draws percent of the baseline whenever the table has it
    xlabel = t("effect_axis", lang, unit="%" if pct else unit or "—")
    names = {str(g): group_label(by, str(g), lang) for g in sg.table["group"]}
    return plot_subgroups(sg, title=f"{outcome_label(outcome, lang)} — {by_label(by, lang)}", xlabel=xlabel,
                          overall_label=at("overall_line", lang), n_label=at("n_label", lang), group_labels=names)


def show_analysis(ev: Any, kind: str) -> None:
    """One kind's section: heading, sentence, chart (primary outcome), table, joint tests, notes."""
    secs = sections(ev, kind)
    if not secs:
        return
    from evalkit.viz import ahead
    from evalkit.viz.style import show_png

    lang = ev.lang
    out, _ = primary(ev, kind)
    parts = [f'<h2>{_esc(at(f"h_{kind}", lang))} — {_esc(outcome_label(out, lang))}</h2>',
             f"<p>{_esc(analysis_sentence(ev, kind))}</p>"]
    _html("".join(parts))
    show_png(ahead.png(ev, ("analysis", kind), lambda: chart(ev, kind)))
    table = analysis_table(ev, kind)
    tail = ""
    if not table.empty:
        tail += table.to_html(index=False, classes="ek-table", border=0, escape=True)
    tests = joint_tests(ev, kind)
    if not tests.empty:
        tail += tests.to_html(index=False, classes="ek-table", border=0, escape=True)
    tail += "".join(f'<p class="ek-note">{_esc(n)}</p>' for n in section_notes(ev, kind))
    _html(tail)


def analysis_charts(ev: Any) -> list[tuple[tuple[str, str], Any]]:
    """(key, builder) of each kind's chart, in :func:`show_analyses` order (:func:`evalkit.viz.ahead.start`)."""
    return [(("analysis", kind), lambda kind=kind: chart(ev, kind)) for kind in KINDS if sections(ev, kind)]


def show_analyses(ev: Any) -> None:
    """Every further analysis asked for, in :data:`~evalkit.analyses.KINDS` order (nothing when none)."""
    for kind in KINDS:
        show_analysis(ev, kind)


__all__ = ["analysis_charts", "chart", "page1_html", "show_analyses", "show_analysis"]
