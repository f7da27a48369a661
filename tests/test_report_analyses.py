"""The brief's further-analysis sections (issue 17): page-1 sentences in zh and en carry exactly the
numbers of the section, failures show their reason, absent kinds add nothing, charts render.

Sections are real: the estimators run on a small seeded panel with planted effects (dose-linear theft
effect, a reform that switches on and off, +6 % theft at untreated neighbours, urban −20 % vs rural
−5 % disputes). Expected numbers are read here straight from the results' rows (not through
:mod:`evalkit.brief_analyses`), so a sentence that re-computed or mixed up a number would fail.
"""

from __future__ import annotations

import html
import io
import json
import re
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from evalkit import brief_analyses as ba  # noqa: E402
from evalkit import report_analyses as ra  # noqa: E402
from evalkit.analyses import AnalysisSection  # noqa: E402
from evalkit.brief_words import analysis_reason, technical_reasons  # noqa: E402
from evalkit.estimators.dose import estimate_dose  # noqa: E402
from evalkit.estimators.imputation import estimate_imputation  # noqa: E402
from evalkit.estimators.spillover import estimate_spillover  # noqa: E402
from evalkit.estimators.switching import estimate_switching  # noqa: E402
from evalkit.heterogeneity import subgroup_effects  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N, T = 80, 36


def _panel(seed: int = 0, spill: float = 0.06) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80 stations x 36 months; a quarter adopt (cohorts 13/19/25) with a dose in {.25,.5,.75,1}; theft falls
    10 % x dose at adopters and rises ``spill`` at stations not (yet) adopting next to an adopter (ring);
    disputes fall 20 % (urban) / 5 % (rural) while treated; every fifth adopter stops in month 31."""
    rng = np.random.default_rng(seed)
    i = np.arange(N)
    st = pd.DataFrame({"station_id": [f"S{k:03d}" for k in i]})
    st["area_type"] = np.where(i % 2 == 0, "urban", "rural")
    adopt = i % 8 < 2  # on the ring: 2 adopters, an exposed neighbour each side, 4 clean stations
    st["first_treat"] = np.where(adopt, np.array([13, 19, 25])[i % 3], 0)
    st["intensity"] = np.where(adopt, np.array([0.25, 0.5, 0.75, 1.0])[(i // 8) % 4], 0.0)
    st["end"] = np.where(adopt & (i % 5 == 0), 31, 10**6)
    ids = st["station_id"].tolist()
    adj = pd.DataFrame({"station_id": ids, "neighbor_id": ids[1:] + ids[:1]})
    # first month a neighbour (either side on the ring) adopted
    g = st["first_treat"].replace(0, 10**6).to_numpy()
    onset = np.minimum(np.roll(g, 1), np.roll(g, -1))
    level = rng.normal(100, 10, N)
    month = rng.normal(0, 2, T)
    p = st.loc[st.index.repeat(T)].reset_index(drop=True)
    p["period"] = np.tile(np.arange(1, T + 1), N)
    u = np.repeat(i, T)
    on = (p["first_treat"] > 0) & (p["period"] >= p["first_treat"])
    p["treatment"] = (on & (p["period"] < p["end"])).astype(float)
    p["dose"] = np.where(on, p["intensity"], 0.0)
    # exposed (the estimator's definition): not (yet) adopting, a neighbour has adopted
    exposed = ~on & (p["period"].to_numpy() >= onset[u])
    e = rng.normal(0, 1.5, (3, len(p)))
    base = level[u] + month[p["period"] - 1]
    p["incidents_theft"] = base * (1 - 0.1 * p["dose"] + spill * exposed) + e[0]
    eff = np.where(p["area_type"] == "urban", -0.20, -0.05)
    p["incidents_dispute"] = base * (1 + eff * on) + e[1]
    p["incidents_nonpolice"] = base * (1 - 0.1 * p["treatment"]) + e[2]
    return p, adj


@pytest.fixture(scope="module")
def world():
    p, adj = _panel()
    imp = estimate_imputation(p, "incidents_dispute")
    return {
        "panel": p, "adj": adj,
        "dose": estimate_dose(p, "incidents_theft", degree=1, bootstrap=199),
        "switching": estimate_switching(p, "incidents_nonpolice", effects=6, placebo=3),
        "spillover": estimate_spillover(p, "incidents_theft", adjacency=adj, max_e=12),
        "heterogeneity": {"area_type": subgroup_effects(imp, "area_type", p)},
    }


def _ev(analyses: dict, lang: str, primary: str = "incidents_theft") -> types.SimpleNamespace:
    """The part of an Evaluation the analysis sections read."""
    return types.SimpleNamespace(lang=lang, primary_outcome=primary, analyses=analyses,
                                 params=types.SimpleNamespace(outcomes=[primary], suppress_below=3),
                                 failures={}, robustness_failures={}, sensitivity=None, sensitivity_error=None,
                                 multiple_error=None, results={})


def _sec(kind: str, outcome: str, result=None, error=None) -> dict:
    return {kind: {outcome: AnalysisSection(kind, outcome, result, error)}}


def _pct(r, x: float) -> str:
    return f"{abs(100.0 * x / r.meta['baseline_mean']):.1f}%"


def _row(r, kind: str, term: str) -> pd.Series:
    e = r.estimates
    return e[(e["kind"] == kind) & (e["term"] == term)].iloc[0]


def _covers(r, row: pd.Series, truth_pct: float, scale: float = 1.0) -> bool:
    lo, hi = sorted(100.0 * scale * row[c] / r.meta["baseline_mean"] for c in ("ci_low", "ci_high"))
    return lo <= truth_pct <= hi


def test_the_fixture_recovers_its_planted_effects(world):
    """The sentences below are checked against sections whose truth is known."""
    d, s, sp = world["dose"], world["switching"], world["spillover"]
    assert _covers(d, _row(d, "aggregate", "ACR"), -1.0, scale=0.1)  # −10 % per unit of dose = −1 % per 10 pp
    assert _covers(s, s.overall, -10.0)
    assert _covers(sp, _row(sp, "spillover", "spillover"), 6.0)
    tab = world["heterogeneity"]["area_type"].table.set_index("group")
    assert tab.loc["urban", "pct_low"] <= -20 <= tab.loc["urban", "pct_high"]
    assert tab.loc["rural", "pct_low"] <= -5 <= tab.loc["rural", "pct_high"]


# ----------------------------------------------------------------------------- page-1 sentences
def test_dose_sentence_states_the_slope_per_10_points_and_att_o(world):
    r = world["dose"]
    acr, att = _row(r, "aggregate", "ACR"), r.overall
    assert acr["ci_high"] < 0 and att["ci_high"] < 0  # planted: theft falls with the dose
    an = _sec("dose", "incidents_theft", r)
    zh, en = ba.analysis_sentence(_ev(an, "zh"), "dose"), ba.analysis_sentence(_ev(an, "en"), "dose")
    step = 0.1  # the dose is a share of villages: per 10 percentage points
    assert zh.startswith("覆盖比例每提高10个百分点，盗窃警情下降 " + _pct(r, step * acr["estimate"]))
    assert f"下降 {_pct(r, step * acr['ci_high'])}–{_pct(r, step * acr['ci_low'])}" in zh
    assert f"平均下降 {_pct(r, att['estimate'])}（95% 置信区间：下降 {_pct(r, att['ci_high'])}–{_pct(r, att['ci_low'])}）" in zh
    assert en.startswith("Each 10-percentage-point increase in coverage: theft incidents fell by "
                         + _pct(r, step * acr["estimate"]))
    assert f"fell by {_pct(r, att['estimate'])} on average" in en
    # the table states the same numbers (one question, one number)
    table = ba.analysis_table(_ev(an, "zh"), "dose")
    assert f"-{_pct(r, step * acr['estimate'])}" in table["占改革前均值"].tolist()
    assert f"{step * acr['estimate']:,.3f}" in table["估计值"].tolist()


def test_switching_on_sentence_and_placebo_test(world):
    r = world["switching"]
    ov = r.overall
    assert r.meta["n_switchers_in"] == 20 and r.meta["n_switchers_out"] == 0
    an = _sec("switching", "incidents_nonpolice", r)
    zh = ba.analysis_sentence(_ev(an, "zh", "incidents_nonpolice"), "switching")
    en = ba.analysis_sentence(_ev(an, "en", "incidents_nonpolice"), "switching")
    assert zh == (f"开始实施改革后，非警务求助警情下降 {_pct(r, ov['estimate'])}（95% 置信区间：下降 "
                  f"{_pct(r, ov['ci_high'])}–{_pct(r, ov['ci_low'])}；20 个派出所开始实施）。")
    assert en.startswith(f"After switching the reform on, non-police requests incidents fell by {_pct(r, ov['estimate'])}")
    tests = ba.joint_tests(_ev(an, "zh", "incidents_nonpolice"), "switching")
    pt = r.meta["pretrend"]
    assert tests["统计量"].tolist() == [f"{pt['stat']:,.2f}"] and tests["自由度"].tolist() == [str(pt["df"])]
    assert "改革前安慰剂联合检验（3 个月，小样本 F 检验）" in tests["检验"].iloc[0]
    # the p-value shown is Hotelling's small-sample F (20 switchers), not the χ² of did_multiplegt_dyn
    from evalkit.i18n import fmt_p

    assert tests["p 值"].tolist() == [fmt_p(pt["p_value_f"])] and pt["p_value_f"] > pt["p_value"]
    few = ba.small_sample_placebo({**pt, "p_value_f": float("nan"), "n_switchers": 3})
    assert few["status"] == "not_available" and "3 for 3 placebos" in few["reason"]
    from evalkit.brief_words import analysis_reason

    assert analysis_reason(few["reason"], "zh").startswith("切换的派出所太少")


def test_switching_off_states_the_rebound_after_stopping():
    """Stations treated from the first month that stop: the estimator reports the effect of the
    treatment (sign flipped); the brief says what happened after stopping: incidents rose again."""
    rng = np.random.default_rng(4)
    n, t = 60, 24
    i = np.repeat(np.arange(n), t)
    per = np.tile(np.arange(1, t + 1), n)
    stop = np.where(np.arange(n) < 30, 13, 10**6)  # half stop in month 13, half stay on
    d = (per < stop[i]).astype(float)
    y = rng.normal(100, 10, n)[i] * (1 - 0.1 * d) + rng.normal(0, 1, n * t)
    p = pd.DataFrame({"station_id": i, "period": per, "treatment": d, "incidents_theft": y})
    r = estimate_switching(p, "incidents_theft", effects=4, placebo=2)
    assert r.meta["n_switchers_out"] == 30 and r.meta["n_switchers_in"] == 0
    ov = r.overall
    assert ov["ci_high"] < 0  # the effect of the treatment: stopping lost the 10 % fall
    an = _sec("switching", "incidents_theft", r)
    zh = ba.analysis_sentence(_ev(an, "zh"), "switching")
    en = ba.analysis_sentence(_ev(an, "en"), "switching")
    assert zh == (f"停止实施改革后，盗窃警情回升 {_pct(r, ov['estimate'])}（95% 置信区间：上升 "
                  f"{_pct(r, ov['ci_high'])}–{_pct(r, ov['ci_low'])}；30 个派出所停止实施）。")
    assert en.startswith(f"After switching the reform off, theft incidents rose by {_pct(r, ov['estimate'])}")


def test_spillover_displacement_diffusion_and_none():
    out = {}
    for spill in (0.06, -0.06, 0.0):
        p, adj = _panel(seed=1, spill=spill)
        r = estimate_spillover(p, "incidents_theft", adjacency=adj, max_e=12)
        an = _sec("spillover", "incidents_theft", r)
        out[spill] = (r, ba.analysis_sentence(_ev(an, "zh"), "spillover"), ba.analysis_sentence(_ev(an, "en"), "spillover"))
    r, zh, en = out[0.06]
    sp = _row(r, "spillover", "spillover")
    assert zh == (f"邻近未实施派出所盗窃警情上升 {_pct(r, sp['estimate'])}（95% 置信区间：上升 {_pct(r, sp['ci_low'])}–"
                  f"{_pct(r, sp['ci_high'])}）：存在警情转移。")
    assert en.endswith("incidents were displaced to the neighbours.") and f"rose by {_pct(r, sp['estimate'])}" in en
    r, zh, en = out[-0.06]
    assert zh.startswith("邻近未实施派出所盗窃警情下降") and zh.endswith("效果扩散到邻近派出所。")
    assert en.endswith("the benefit diffused to the neighbours.")
    r, zh, en = out[0.0]
    sp = _row(r, "spillover", "spillover")
    assert sp["ci_low"] < 0 < sp["ci_high"]
    assert zh.startswith("邻近未实施派出所盗窃警情未见明显变化（95% 置信区间：介于下降") and zh.endswith("未发现警情转移或效果扩散的证据。")
    assert en.endswith("no evidence of displacement or diffusion.")


def test_heterogeneity_sentence_and_equality_test(world):
    sg = world["heterogeneity"]["area_type"]
    tab = sg.table.set_index("group")
    an = _sec("heterogeneity", "incidents_dispute", world["heterogeneity"])
    zh = ba.analysis_sentence(_ev(an, "zh", "incidents_dispute"), "heterogeneity")
    en = ba.analysis_sentence(_ev(an, "en", "incidents_dispute"), "heterogeneity")
    u, r_ = tab.loc["urban"], tab.loc["rural"]
    assert f"城区派出所纠纷警情下降 {abs(u['pct']):.1f}%（95% 置信区间：下降 {abs(u['pct_high']):.1f}%–{abs(u['pct_low']):.1f}%）" in zh
    assert f"农村派出所纠纷警情下降 {abs(r_['pct']):.1f}%" in zh
    assert sg.equality["p_value"] < 0.001 and zh.endswith("各组效果相等的检验 p < 0.001。")
    assert zh.startswith("按辖区类型分组：") and "不评级" not in zh
    assert en.startswith("By area type: ") and f"urban stations: disputes incidents fell by {abs(u['pct']):.1f}%" in en
    assert en.endswith("test that the effects are equal: p < 0.001.")
    tests = ba.joint_tests(_ev(an, "zh", "incidents_dispute"), "heterogeneity")
    assert tests["统计量"].tolist() == [f"{sg.equality['stat']:,.2f}"]


@pytest.mark.filterwarnings("ignore:only one treated cluster")
def test_subgroup_below_the_floors_is_shown_but_not_rated(world):
    p = world["panel"].copy()
    # one urban adopter becomes "mixed": a subgroup of one adopting station
    first = p.loc[(p["area_type"] == "urban") & (p["first_treat"] > 0), "station_id"].iloc[0]
    p.loc[p["station_id"] == first, "area_type"] = "mixed"
    sg = subgroup_effects(estimate_imputation(p, "incidents_dispute"), "area_type", p)
    mixed = sg.table.set_index("group").loc["mixed"]
    assert mixed["n_adopters"] == 1
    an = _sec("heterogeneity", "incidents_dispute", {"area_type": sg})
    zh = ba.analysis_sentence(_ev(an, "zh", "incidents_dispute"), "heterogeneity")
    assert "城乡结合派出所纠纷警情" in zh and zh.count("（样本不足，不评级）") == 1
    assert re.search(r"城乡结合派出所[^；]*（样本不足，不评级）", zh)
    table = ba.analysis_table(_ev(an, "zh", "incidents_dispute"), "heterogeneity").set_index("分组")
    assert table.loc["城乡结合派出所", "评级"].startswith("不评级：只有一个实施改革的派出所")
    assert not table.loc["城区派出所", "评级"].startswith("不评级")
    en = ba.analysis_table(_ev(an, "en", "incidents_dispute"), "heterogeneity").set_index("Subgroup")
    assert en.loc["mixed urban-rural stations", "Rating"].startswith("not rated: one adopting station")


# ----------------------------------------------------------------------------- failures, absence
def test_failed_section_shows_the_reason_and_absent_kinds_add_nothing(world, monkeypatch):
    an = {**_sec("spillover", "incidents_theft", error="spillover: no adjacency table in the warehouse; load one"),
          **_sec("dose", "incidents_theft", world["dose"])}
    zh, en = _ev(an, "zh"), _ev(an, "en")
    s = ba.analysis_sentences(zh)
    assert list(s) == ["dose", "spillover"]  # KINDS order, only the kinds asked for
    assert s["spillover"] == "邻近派出所影响分析暂不可用：数据库中没有派出所相邻关系表（adjacency），请先导入"
    assert ba.analysis_sentences(en)["spillover"].startswith("Neighbouring-stations analysis not available: the warehouse")
    # an unknown reason: the generic words in zh (the English one in the technical appendix)
    odd = _ev(_sec("dose", "incidents_theft", error="LinAlgError: something odd"), "zh")
    assert ba.analysis_sentence(odd, "dose").startswith("剂量反应分析暂不可用：计算出错")
    assert ("incidents_theft / dose", "something odd") in technical_reasons(odd)
    assert ra.chart(zh, "spillover") is None
    shown: list[str] = []
    monkeypatch.setattr(ra, "_html", shown.append)
    monkeypatch.setattr("evalkit.viz.style.show_png", lambda png: shown.append("<chart>") if png else None)
    ra.show_analyses(zh)
    text = "".join(shown)
    assert shown.count("<chart>") == 1  # the dose chart; the failed spillover has none
    assert "实施强度与效果" in text and "对邻近派出所的影响" in text and "请先导入" in text
    assert "分组效果" not in text and "开始与停止实施" not in text
    # nothing asked for: nothing shown, no page-1 block, no results.json sentences
    for ev in (_ev({}, "zh"), types.SimpleNamespace(lang="zh", primary_outcome="incidents_theft")):
        shown.clear()
        ra.show_analyses(ev)
        assert shown == [] and ra.page1_html(ev) == "" and ba.analysis_sentences(ev) == {}


def test_page1_block_lists_one_sentence_per_kind(world):
    an = {**_sec("dose", "incidents_theft", world["dose"]), **_sec("spillover", "incidents_theft", world["spillover"]),
          **_sec("heterogeneity", "incidents_dispute", world["heterogeneity"])}
    ev = _ev(an, "zh")
    block = ra.page1_html(ev)
    assert block.count("<li>") == 3 and "进一步分析" in block
    for s in ba.analysis_sentences(ev).values():
        assert html.escape(s) in block


# ----------------------------------------------------------------------------- charts
@pytest.mark.parametrize("kind", ["dose", "switching", "spillover", "heterogeneity"])
def test_charts_render_with_chinese_labels(world, kind):
    from evalkit.viz.style import plt, use_cjk_font

    outcome = {"switching": "incidents_nonpolice", "heterogeneity": "incidents_dispute"}.get(kind, "incidents_theft")
    ev = _ev(_sec(kind, outcome, world[kind]), "zh", outcome)
    obj = ra.chart(ev, kind)
    fig = getattr(obj, "figure", obj)
    texts = [x.get_text() for ax in fig.axes for x in (ax.title, ax.xaxis.label, ax.yaxis.label,
                                                       *ax.get_yticklabels(), *(ax.get_legend().get_texts()
                                                                                if ax.get_legend() else []))]
    assert any(re.search(r"[\u4e00-\u9fff]", s) for s in texts), texts
    if use_cjk_font() is not None:
        assert plt.rcParams["font.sans-serif"][0] == use_cjk_font()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    assert buf.getvalue()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- notebook
def test_notebook_shows_the_analyses_after_sensitivity_and_randomization():
    for path in (ROOT / "notebooks" / "evaluate_reform.ipynb", ROOT / "src/evalkit/notebooks/evaluate_reform.ipynb"):
        src = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
        at = {s.strip(): k for k, s in enumerate(src)}
        k = at["report.show_analyses(ev)"]
        assert at["report.show_sensitivity(ev)"] < k and at["report.show_randomization(ev)"] < k
        assert k < next(j for j, s in enumerate(src) if "show_diagnostics" in s)


# ----------------------------------------------------------------------------- a real Evaluation
def test_real_evaluation_page1_results_text_and_sections(world, monkeypatch):
    """On a real :class:`~evalkit.evaluation.Evaluation` with ``analyses`` set: page 1 carries the
    sentences under the verdict, ``results.json``'s text block the same sentences, the brief the sections."""
    import evalkit.report as report
    from evalkit.brief_text import results_text
    from test_brief_page1 import PRE_OK, _result
    from test_brief_page1 import _ev as page1_ev

    ev = page1_ev({"incidents_theft": [_result("cs", "incidents_theft", -1.2, -1.4, -0.6, 0.001, base=2.0,
                                                pretrend=PRE_OK)]}, lang="zh")
    ev.analyses = {**_sec("dose", "incidents_theft", world["dose"]),
                   **_sec("spillover", "incidents_theft", world["spillover"])}
    shown: list[str] = []
    monkeypatch.setattr(report, "_html", shown.append)
    monkeypatch.setattr(ra, "_html", shown.append)
    monkeypatch.setattr("evalkit.viz.style.show_png", lambda png: shown.append("<chart>") if png else None)
    report.show_headline(ev)
    page1 = "".join(shown)
    sents = ba.analysis_sentences(ev)
    assert list(sents) == ["dose", "spillover"]
    assert page1.index("证据评级") < page1.index("进一步分析")
    assert all(html.escape(s) in page1 for s in sents.values())
    assert results_text(ev)["analyses"] == sents
    shown.clear()
    report.show_analyses(ev)
    assert shown.count("<chart>") == 2 and "实施强度与效果" in "".join(shown)
    ev.analyses = {}  # an evaluation without further analyses: no key in results.json
    assert "analyses" not in results_text(ev)


def test_section_facts_the_evaluation_adds_are_used(world):
    """The evaluation's facts (evalkit.analyses_run): the neighbours' effect in percent of their own
    mean before exposure is the number stated; stations that stopped are explained; a grouping that
    could not run is listed with its reason; a missing intensity has its own words."""
    r = world["spillover"]
    sp = _row(r, "spillover", "spillover")
    base = 80.0  # the exposed stations' own mean (a made-up value: the sentence must state exactly it)
    facts = {"spillover_pct": 100 * sp["estimate"] / base, "spillover_pct_low": 100 * sp["ci_low"] / base,
             "spillover_pct_high": 100 * sp["ci_high"] / base}
    an = {"spillover": {"incidents_theft": AnalysisSection("spillover", "incidents_theft", r, facts=facts)}}
    zh = ba.analysis_sentence(_ev(an, "zh"), "spillover")
    assert zh.startswith(f"邻近未实施派出所盗窃警情上升 {100 * sp['estimate'] / base:.1f}%（95% 置信区间：上升 "
                         f"{100 * sp['ci_low'] / base:.1f}%–{100 * sp['ci_high'] / base:.1f}%）")
    assert any("相邻派出所实施改革前的月均值" in n for n in ba.section_notes(_ev(an, "zh"), "spillover"))
    table = ba.analysis_table(_ev(an, "zh"), "spillover")
    assert f"+{100 * sp['estimate'] / base:.1f}%" == table["占改革前均值"].iloc[0]

    sw = {"switching": {"incidents_nonpolice": AnalysisSection("switching", "incidents_nonpolice", world["switching"],
                                                               facts={"n_stopped": 4})}}
    notes = ba.section_notes(_ev(sw, "zh", "incidents_nonpolice"), "switching")
    assert any(n.startswith("4 个派出所先开始后停止实施") for n in notes)

    het = {"heterogeneity": {"incidents_dispute": AnalysisSection(
        "heterogeneity", "incidents_dispute", world["heterogeneity"],
        facts={"estimator": {"area_type": "imputation"},
               "errors": {"county": "subgroups: no column 'county' in the panel (by='county')"}})}}
    ev = _ev(het, "zh", "incidents_dispute")
    ev.params.headline = "cs"
    t = ba.analysis_table(ev, "heterogeneity")
    assert t["分组"].iloc[0] == "分组效果分析暂不可用：数据中没有该分组所需的列" and t["分组依据"].iloc[0] == "区县"
    assert any(n.startswith("按辖区类型分组采用") for n in ba.section_notes(ev, "heterogeneity"))

    miss = _ev(_sec("dose", "incidents_theft", error="3 of 12 adopters of village_auxiliary have no intensity "
                                                    "(覆盖比例) in the reforms table; fill it for every adopter"), "zh")
    assert ba.analysis_sentence(miss, "dose") == "剂量反应分析暂不可用：部分实施改革的派出所缺少实施强度（覆盖比例），请在改革表中补齐"
    assert analysis_reason("subgroups: column 'area_type' is missing for station '3310'; fill it or choose another --by",
                              "zh") == "部分派出所缺少该分组所需的值，请在派出所名册中补齐"


def test_dose_cells_left_out_are_stated(world):
    """small_cohorts: skip leaves out the cells of a cohort with one coverage share; the notes say how
    many and how many adopters go unused (nothing dropped silently)."""
    p = world["panel"].copy()
    first = p.groupby("station_id")["first_treat"].transform("first")
    late = first == first[first > 0].max()
    p.loc[late & (p["dose"] > 0), "dose"] = 0.5  # the last cohort: every adopter at one share
    r = estimate_dose(p, "incidents_theft", degree=1, bootstrap=0, small_cohorts="skip")
    cells = r.meta["skipped_cells"]["too_few_doses"]
    unused = r.meta["n_treated"] - r.meta["n_treated_used"]
    assert cells > 0 and unused > 0
    zh = ba.section_notes(_ev(_sec("dose", "incidents_theft", r), "zh"), "dose")
    en = ba.section_notes(_ev(_sec("dose", "incidents_theft", r), "en"), "dose")
    assert any(f"{cells} 个队列-月份单元" in n and f"{unused} 个实施改革的派出所" in n for n in zh)
    assert any(f"{cells} cohort-month cells" in n and f"{unused} adopting stations" in n for n in en)
    full = estimate_dose(world["panel"], "incidents_theft", degree=1, bootstrap=0)
    assert not any("cohort-month cells" in n for n in ba.section_notes(_ev(_sec("dose", "incidents_theft", full), "en"), "dose"))


def test_stopping_without_comparison_is_stated(world):
    """Stations stopped, but no station kept the reform past their stop: the switch-off fit cannot run and
    the notes say why (never a silent absence of the switch-off sentence)."""
    from evalkit.analyses_run import NO_STOP_COMPARISON

    r = world["switching"]
    sec = AnalysisSection("switching", "incidents_nonpolice", {"in": r}, None,
                          {"n_stopped": 2, "out_error": NO_STOP_COMPARISON})
    zh = ba.section_notes(_ev({"switching": {"incidents_nonpolice": sec}}, "zh", "incidents_nonpolice"), "switching")
    en = ba.section_notes(_ev({"switching": {"incidents_nonpolice": sec}}, "en", "incidents_nonpolice"), "switching")
    assert "2 个派出所停止实施改革，但停止的效果无法估计：停止时没有仍在实施且未停止的派出所可作对照。" in zh
    assert any(n.startswith("2 station(s) stopped the reform, but the effect of stopping cannot be estimated: no station")
               for n in en)
