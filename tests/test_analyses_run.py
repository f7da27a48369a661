"""The further analyses wired end to end (issue 17): a county's own exports (``tests/realistic``: a
register with title rows, GB18030 incident exports) plus a hand-made reforms file with 停止日期 and
覆盖比例 and an adjacency file → ingest → ``evaluate`` with ``dose``, ``switching``, ``spillover``
and ``heterogeneity`` → ``Evaluation.analyses`` and results.json "analyses" (the JSON of
``evalkit estimate``); a failing analysis is recorded with its reason and never stops the evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalkit.analyses import KINDS, AnalysisSection
from evalkit.analyses_run import evaluation_notes, stop_window_start, switch_counts
from evalkit.brief_words import note_sentence
from evalkit.estimators.dose import estimate_dose
from evalkit.estimators.spillover import estimate_spillover
from evalkit.estimators.switching import estimate_switching
from evalkit.evaluation import evaluate
from evalkit.ingest import ingest
from evalkit.params import check_against_warehouse, validate_params
from evalkit.results import EstimationResult
from realistic.county import full_name
from realistic.files import write_csv
from realistic.synthetic import REFORM, write_county

DOSES = (0.25, 0.5, 0.75, 1.0, 0.5)


def _world(root, *, doses=DOSES, adjacency=True):
    c = write_county(root / "exports", n_stations=12, n_adopters=5, seed=5)
    wh = root / "wh.duckdb"
    ingest("stations", c.register, warehouse=wh, defaults=["city=临江市", "province=江南省"])
    ingest("incidents", c.incident_files, warehouse=wh)
    adopters = sorted(c.adoption)
    rows = [["临江市公安局改革推进台账（含停止情况）"], ["序号", "单位名称", "改革项目", "启动时间", "停止日期", "覆盖比例"]]
    # two cohorts (the exports plant the effect at the county's own dates; here only the wiring counts):
    # a dose curve of degree 1 needs two distinct doses in every cohort
    dates = [c.adoption[adopters[0]]] * 3 + [c.adoption[adopters[3]]] * 2
    for i, code in enumerate(adopters):
        st = next(s for s in c.stations if s.code == code)
        y, m = dates[i]
        stop = "2024-07-01" if i == 0 else ""  # the earliest adopter stops in July 2024
        dose = "" if doses[i] is None else f"{doses[i] * 100:g}%"
        rows.append([i + 1, full_name(st), REFORM, f"{y}年{m}月", stop, dose])
    rep = ingest("reforms", write_csv(root / "改革推进台账.csv", rows, encoding="gb18030"), warehouse=wh,
                 study_window=("2019-01", "2025-12"))
    assert (rep.rows_accepted, rep.rows_quarantined) == (5, 0)
    if adjacency:  # a chain of neighbours through the register order
        codes = [s.code for s in c.stations]
        pairs = [["相邻派出所情况"], ["派出所编码", "相邻派出所编码", "是否接壤"]]
        pairs += [[a, b, "是"] for a, b in zip(codes, codes[1:], strict=False)]
        ingest("adjacency", write_csv(root / "相邻派出所.csv", pairs, encoding="gb18030"), warehouse=wh)
    return c, wh


def _params(wh, **extra):
    return validate_params({"evaluation_id": "wired", "reform": REFORM, "outcomes": ["incidents_fraud", "incidents_theft"],
                            "window": {"start": "2021-01", "end": "2025-12"}, "estimators": ["cs", "imputation"],
                            "sensitivity": False, "multiple_testing": False, "seed": 7, "warehouse": str(wh),
                            "lang": "en", **extra})


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    root = tmp_path_factory.mktemp("wired")
    c, wh = _world(root)
    p = _params(wh, dose={"degree": 1, "bootstrap": 99}, switching={"effects": 6, "placebo": 3},
                spillover={"max_e": 12}, heterogeneity=["size_class", "cohort", "area_type"])
    return c, wh, p, evaluate(p)


def test_sections_for_every_kind_and_outcome(wired):
    _, wh, p, ev = wired
    assert check_against_warehouse(p, "wired", wh) == []
    assert list(ev.analyses) == list(KINDS)
    for kind in KINDS:
        assert list(ev.analyses[kind]) == p.outcomes
        assert kind in ev.timings
        for o, sec in ev.analyses[kind].items():
            assert isinstance(sec, AnalysisSection) and (sec.kind, sec.outcome) == (kind, o)
            assert sec.ok, (kind, o, sec.error)


def test_same_numbers_as_the_estimators_on_the_panel(wired):
    """Each section is its estimator on the evaluation's panel with the params' options."""
    _, wh, p, ev = wired
    o = "incidents_fraud"
    dose = estimate_dose(ev.panel, o, dose="dose", cluster="station_id", alpha=0.05, degree=1, bootstrap=99, seed=7)
    sec = ev.analyses["dose"][o]
    assert np.allclose(sec.result.estimates["estimate"], dose.estimates["estimate"], equal_nan=True)
    assert sec.facts["n_dose_levels"] == 4 and sec.facts["dose_max"] == 1.0 and sec.facts["n_adopters"] == 5
    # one station stops: switching in on the whole window, switching out from the first month in which
    # the stopping station runs the reform (there it starts treated, against adopters still running it)
    sec = ev.analyses["switching"][o]
    start = stop_window_start(ev.panel)
    stopper_on = ev.panel.loc[ev.panel["treatment"] == 1].groupby("station_id")["period"].min()
    assert start in set(stopper_on) and start > ev.panel["period"].min()
    assert sec.facts == {"n_stopped": 1, "n_switch_in": 5, "n_switch_out": 1, "out_window_start": start}
    opts = {"treatment": "treatment", "cluster": "station_id", "effects": 6, "placebo": 3}
    sw_in = estimate_switching(ev.panel, o, switchers="in", **opts)
    sw_out = estimate_switching(ev.panel[ev.panel["period"] >= start], o, switchers="out", **opts)
    assert set(sec.result) == {"in", "out"}
    assert np.allclose(sec.result["in"].estimates["estimate"], sw_in.estimates["estimate"], equal_nan=True)
    assert np.allclose(sec.result["out"].estimates["estimate"], sw_out.estimates["estimate"], equal_nan=True)
    assert (sec.result["in"].meta["n_switchers_in"], sec.result["out"].meta["n_switchers_out"]) == (5, 1)
    spill = ev.analyses["spillover"][o]
    adj = {"station_id": [s.code for s in wired[0].stations][:-1], "neighbor_id": [s.code for s in wired[0].stations][1:]}
    import pandas as pd

    ref = estimate_spillover(ev.panel, o, adjacency=pd.DataFrame(adj), cluster="station_id", horizons=12, max_e=12)
    assert np.allclose(spill.result.estimates["estimate"], ref.estimates["estimate"], equal_nan=True)
    assert spill.facts["n_adjacency_pairs"] == 11 and spill.facts["n_pairs_outside_panel"] == 0
    assert spill.facts["n_exposed_stations"] > 0 and np.isfinite(spill.facts["spillover_pct"])


def test_heterogeneity_from_the_headline_fit_with_floors(wired):
    _, _, p, ev = wired
    sec = ev.analyses["heterogeneity"]["incidents_fraud"]
    assert ev.params.headline == "imputation"  # 5 adopters: the small-design rule
    assert set(sec.result) == {"size_class", "cohort"}  # area_type is not in this register
    assert "area_type" in sec.facts["errors"] and "missing" in sec.facts["errors"]["area_type"]
    t = sec.result["cohort"].table
    assert t["n_adopters"].sum() == 5
    # one adopter per cohort: below the headline's verdict floors, shown but never rated strong
    assert not (t["verdict"] == "strong").any()
    assert sec.facts["estimator"] == {"size_class": "imputation", "cohort": "imputation"}


def test_results_json_analyses_and_notes(wired, tmp_path):
    _, _, p, ev = wired
    assert ev.notes == {"itt_stopped": {"n_stopped": 1}}
    assert "intent-to-treat" in note_sentence("itt_stopped", "en", **ev.notes["itt_stopped"])
    assert "意向处理" in note_sentence("itt_stopped", "zh", n_stopped=1)
    # the brief states it next to the estimand (what the headline number means for this data)
    from evalkit.brief_text import headline_text

    assert headline_text(ev)["estimand_sentence"].endswith(note_sentence("itt_stopped", "en", n_stopped=1))
    path = ev.save(tmp_path / "results.json")
    d = json.loads(path.read_text(encoding="utf-8"))
    assert list(d["analyses"]) == list(KINDS) and d["notes"] == {"itt_stopped": {"n_stopped": 1}}
    for kind in ("dose", "switching", "spillover"):
        for o in p.outcomes:
            s = d["analyses"][kind][o]
            assert (s["kind"], s["outcome"], s["ok"], s["error"]) == (kind, o, True, None)
            fits = ev.analyses[kind][o].result
            pairs = ([(s["result"][d], fits[d]) for d in ("in", "out")] if kind == "switching"
                     else [(s["result"], fits)])
            for js, fit in pairs:
                back = EstimationResult.from_dict(js)  # the JSON of `evalkit estimate --json`
                assert back.estimator == kind
                assert np.allclose(back.estimates["estimate"].astype(float),
                                   fit.estimates["estimate"].astype(float), equal_nan=True)
    h = d["analyses"]["heterogeneity"]["incidents_fraud"]
    assert set(h["result"]) == {"size_class", "cohort"}
    assert {"table", "equality", "overall", "by", "estimator", "vcov", "notes"} <= set(h["result"]["cohort"])
    assert h["result"]["cohort"]["table"][0].keys() >= {"group", "estimate", "ci_low", "ci_high", "verdict"}
    assert h["facts"]["errors"]["area_type"]


def test_failures_are_recorded_not_raised(tmp_path):
    """No adjacency table, an adopter without an intensity: the evaluation completes, the sections say why;
    the same params are refused before any notebook by the warehouse check."""
    _, wh = _world(tmp_path, doses=(0.5, None, 1.0, 0.25, 0.5), adjacency=False)
    p = _params(wh, outcomes=["incidents_fraud"], dose=True, spillover=True)
    ev = evaluate(p)
    assert ev.results["incidents_fraud"]["imputation"] is not None
    assert ev.analyses["dose"]["incidents_fraud"].error == ("1 of 5 adopters of two_teams_one_room have no "
                                                            "intensity (覆盖比例) in the reforms table; fill it for every adopter")
    assert ev.analyses["spillover"]["incidents_fraud"].error == ("the warehouse has no adjacency table; load one "
                                                                 "with `evalkit ingest adjacency FILE`")
    d = ev.to_dict()["analyses"]
    assert d["spillover"]["incidents_fraud"]["result"] is None and not d["spillover"]["incidents_fraud"]["ok"]
    assert check_against_warehouse(p, "p.yaml", wh) == [
        "p.yaml: spillover: the warehouse has no adjacency table; load one with `evalkit ingest adjacency FILE`"]


def test_nothing_asked_nothing_run(tmp_path):
    import pandas as pd

    panel = pd.DataFrame({"station_id": ["a", "a", "b", "b"], "period": [1, 2, 1, 2], "treatment": [0, 1, 1, 0]})
    assert switch_counts(panel) == (1, 1)
    # "b" is on from the first period and stops in period 2: its window starts at period 1
    assert stop_window_start(panel) == 1
    # two stoppers whose spells do not overlap: no window has both start treated
    apart = pd.DataFrame({"station_id": ["a"] * 4 + ["b"] * 4, "period": [1, 2, 3, 4] * 2,
                          "treatment": [1, 0, 0, 0, 0, 0, 1, 0]})
    assert stop_window_start(apart) is None
    assert stop_window_start(apart.assign(treatment=0)) is None
    panel.attrs["n_stopped"] = 0
    assert evaluation_notes(panel) == {}
