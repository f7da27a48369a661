"""The bureau's prevention-index brief: what the notebook ``prevention_index`` shows, in zh / en.

Numbers come from :mod:`evalkit.index.report`, charts from :mod:`evalkit.viz.index`; the words are
in :data:`TEXT`. The brief marker (:mod:`evalkit.brief_marker`) puts the report id, page numbers and
— on the demo world — the synthetic-data notice on every PDF page.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from evalkit.brief_marker import BRIEF_MIME
from evalkit.i18n import fmt_num, t
from evalkit.index.report import IndexReport, build_report, save_results
from evalkit.index.report_params import IndexReportParams

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{label}报告", "sub": "{region}，{at}（{period_word}）",
        "all_region": "全部派出所", "month": "月度", "quarter": "季度", "year": "年度",
        "summary": "{n} 个派出所参与排名；{label}平均 {mean} 分（上期 {prev}）。本期提醒 {k} 条，涉及 {s} 个派出所。",
        "summary_first": "{n} 个派出所参与排名；{label}平均 {mean} 分。本期提醒 {k} 条，涉及 {s} 个派出所。",
        "ranking_h": "排名", "rank": "名次", "station": "派出所", "index": "指数", "d_index": "较上期",
        "d_rank": "名次变化", "ranking_note": "各能力得分 0–100 分，越高越好；指数为各能力得分的加权平均。"
                                              "“—”表示缺少数据（不计为零）。",
        "radar_h": "七项能力雷达图", "radar_note": "每个派出所本期的能力得分（实线），虚线为辖区平均；空心圆表示该能力无数据。"
                                            "按名次排列，最多 {m} 个。",
        "mean": "辖区平均", "band": "10%–90% 派出所", "trend_h": "指数走势", "best": "本期第一：{name}",
        "worst": "本期末位：{name}", "points": "分",
        "alerts_h": "本期提醒单", "alerts_none": "本期没有指标出现异常变动。",
        "alerts_note": "规则：指标较本所近 24 个月（经同类派出所中位数调整）和同类派出所均偏离 5 个稳健标准差以上，"
                       "且方向变差时提醒（docs/prevention-index.md）。",
    },
    "en": {
        "title": "{label} report", "sub": "{region}, {at} ({period_word})",
        "all_region": "all stations", "month": "monthly", "quarter": "quarterly", "year": "yearly",
        "summary": "{n} stations ranked; mean {label} {mean} points (previous period {prev}). {k} reminder(s) this "
                   "period, at {s} station(s).",
        "summary_first": "{n} stations ranked; mean {label} {mean} points. {k} reminder(s) this period, at {s} "
                         "station(s).",
        "ranking_h": "Ranking", "rank": "Rank", "station": "Station", "index": "Index", "d_index": "Change",
        "d_rank": "Places", "ranking_note": "Capability scores 0–100 points, higher is better; the index is their "
                                            "weighted mean. \"—\": no data (never counted as zero).",
        "radar_h": "The seven capabilities", "radar_note": "Each station's capability scores this period (solid), "
                                                           "the region's mean dashed; an open circle: no data. By "
                                                           "rank, at most {m}.",
        "mean": "region mean", "band": "10–90 % of stations", "trend_h": "The index over time",
        "best": "first this period: {name}", "worst": "last this period: {name}", "points": "points",
        "alerts_h": "Reminders of the period", "alerts_none": "No indicator moved abnormally this period.",
        "alerts_note": "Rule: an indicator more than 5 robust standard deviations worse than both the station's "
                       "own last 24 months (adjusted by the comparable stations' median) and the comparable "
                       "stations (docs/prevention-index.md).",
    },
}


def w(key: str, lang: str, **kw: Any) -> str:
    """A phrase of :data:`TEXT` in ``lang``, formatted."""
    return TEXT[lang][key].format(**kw)


def _display(obj: Any, **kw: Any) -> None:
    from IPython.display import display

    display(obj, **kw)


def _html(s: str) -> None:
    from IPython.display import HTML

    _display(HTML(s))


def params_from_notebook(values: dict[str, Any]) -> IndexReportParams:
    return IndexReportParams.from_notebook(values)


def build(params: IndexReportParams) -> IndexReport:
    return build_report(params)


def _label(obj, lang: str) -> str:
    return getattr(obj.label, lang)


def _region_words(rep: IndexReport) -> str:
    f = rep.params.region.as_filter()
    return "、".join(str(v) if isinstance(v, str) else "、".join(v) for v in f.values()) or w("all_region",
                                                                                          rep.params.lang)


def show_header(rep: IndexReport) -> None:
    """Title, the synthetic-data notice, the one-paragraph summary, and the exporter marker."""
    from evalkit.viz.style import use_cjk_font

    use_cjk_font()
    lang, p = rep.params.lang, rep.params
    title = p.title or w("title", lang, label=_label(rep.defn, lang))
    marker = {"evaluation_id": p.evaluation_id, "lang": lang, "synthetic": rep.synthetic, "title": title}
    _display({BRIEF_MIME: marker, "text/plain": f"evalkit brief {p.evaluation_id}"}, raw=True)
    notice = (f'<div class="ek-synthetic">{html.escape(t("synthetic_notice", lang))}</div>'
              if rep.synthetic else "")
    r = rep.ranking
    mean = r["index"].mean()
    kw = dict(n=int(r["index"].notna().sum()), label=_label(rep.defn, lang), mean=fmt_num(mean, lang, 1),
              k=len(rep.alerts), s=rep.alerts["station_id"].nunique() if len(rep.alerts) else 0)
    if rep.previous is not None:
        prev = rep.scores.loc[rep.scores["period"] == rep.previous, "index"].mean()
        summary = w("summary", lang, prev=fmt_num(prev, lang, 1), **kw)
    else:
        summary = w("summary_first", lang, **kw)
    sub = w("sub", lang, region=_region_words(rep), at=rep.at, period_word=w(p.period, lang))
    _html(f'<div class="ek-title"><h1>{html.escape(title)}</h1><div class="ek-sub">{html.escape(sub)} · '
          f'{t("eval_id", lang)}: {html.escape(p.evaluation_id)}</div></div>{notice}'
          f'<div class="ek-block"><p>{html.escape(summary)}</p></div>')


def _signed(x: float, lang: str, digits: int = 1) -> str:
    if pd.isna(x):
        return "—"
    return ("+" if x > 0 else "") + fmt_num(x, lang, digits)


def ranking_table(rep: IndexReport) -> pd.DataFrame:
    """The ranking as shown: rank, station, index, change, places, one column per capability."""
    lang, r = rep.params.lang, rep.ranking
    out = pd.DataFrame({
        w("rank", lang): r["rank"].map(lambda x: "—" if pd.isna(x) else str(int(x))),
        w("station", lang): r["name"],
        w("index", lang): r["index"].map(lambda x: fmt_num(x, lang, 1)),
        w("d_index", lang): r["d_index"].map(lambda x: _signed(x, lang)),
        w("d_rank", lang): r["d_rank"].map(lambda x: _signed(x, lang, 0)),
    })
    for j, c in enumerate(rep.defn.capabilities, 1):
        out[_cap_header(c, j, lang)] = r[c.id].map(lambda x: fmt_num(x, lang, 0))
    return out


def _cap_header(cap, j: int, lang: str) -> str:
    """A capability's column header: its Chinese label (short), or "C1"… in English (the labels are long:
    the table would overflow the page; :func:`_cap_legend` spells them out)."""
    return cap.label.zh if lang == "zh" else f"C{j}"


def _cap_legend(rep: IndexReport) -> str:
    if rep.params.lang == "zh":
        return ""
    return " · ".join(f"C{j} {c.label.en}" for j, c in enumerate(rep.defn.capabilities, 1)) + ". "


def show_ranking(rep: IndexReport) -> pd.DataFrame:
    lang = rep.params.lang
    table = ranking_table(rep)
    _html(f'<h2>{w("ranking_h", lang)} — {html.escape(rep.at)}</h2>'
          + table.to_html(index=False, classes="ek-table", border=0, escape=True)
          + f'<p class="ek-note">{html.escape(_cap_legend(rep) + w("ranking_note", lang))}</p>')
    return table


def show_radar(rep: IndexReport) -> None:
    from evalkit.viz.index import radar_grid
    from evalkit.viz.style import show

    lang, m = rep.params.lang, rep.params.radar_max
    caps = rep.capabilities
    rows = rep.ranking.dropna(subset=["index"]).head(m)
    fig = radar_grid(rows[caps], [_cap_header(c, j, lang) for j, c in enumerate(rep.defn.capabilities, 1)],
                     reference=rep.ranking[caps].mean(), reference_label=w("mean", lang),
                     titles=[f"{int(k)}. {n}" for k, n in zip(rows["rank"], rows["name"], strict=True)])
    _html(f'<h2>{w("radar_h", lang)}</h2><p class="ek-note">{html.escape(_cap_legend(rep) + w("radar_note", lang, m=m))}'
          '</p>')
    show(fig)


def show_trend(rep: IndexReport) -> None:
    from evalkit.viz.index import index_trend
    from evalkit.viz.style import show

    lang = rep.params.lang
    ranked = rep.ranking.dropna(subset=["index"])
    lines = {}
    for key, row in (("best", ranked.iloc[0]), ("worst", ranked.iloc[-1])) if len(ranked) > 1 else ():
        s = rep.scores[rep.scores["station_id"] == row["station_id"]].set_index("period")["index"]
        lines[w(key, lang, name=row["name"])] = s
    ax = index_trend(rep.trend, lines, mean_label=w("mean", lang), band_label=w("band", lang),
                     ylabel=f'{_label(rep.defn, lang)} ({w("points", lang)})', mark=rep.at)
    _html(f'<h2>{w("trend_h", lang)}</h2>')
    show(ax)


def show_alerts(rep: IndexReport) -> None:
    lang = rep.params.lang
    parts = [f'<h2>{w("alerts_h", lang)} — {html.escape(rep.at)}</h2>']
    if not rep.notices:
        parts.append(f'<p>{html.escape(w("alerts_none", lang))}</p>')
    names = rep.scores.drop_duplicates("station_id").set_index("station_id")["name"]
    for sid, text in rep.notices.items():
        head, *items = text.split("\n")
        head = head.replace(sid, f"{names.get(sid, sid)}（{sid}）" if lang == "zh" else f"{names.get(sid, sid)} ({sid})", 1)
        parts.append(f'<div class="ek-block"><h3>{html.escape(head)}</h3><ul>'
                     + "".join(f"<li>{html.escape(i.removeprefix('- '))}</li>" for i in items) + "</ul></div>")
    parts.append(f'<p class="ek-note">{html.escape(w("alerts_note", lang))}</p>')
    _html("".join(parts))


__all__ = ["TEXT", "build", "params_from_notebook", "ranking_table", "save_results", "show_alerts", "show_header",
           "show_radar", "show_ranking", "show_trend"]
