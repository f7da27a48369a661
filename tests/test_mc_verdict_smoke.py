"""Smoke test of the verdict Monte Carlo (benchmarks/mc_verdict.py, benchmarks/_mc_panels.py): a few county reps."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


MP = _load("_mc_panels")
mc = _load("mc_verdict")


def test_panels_have_evalkit_columns_design_and_truth():
    null = MP.make_panel("county", 7)
    eff = MP.make_panel("county", 7, delta=-0.2)
    df = null.panel
    assert {"station_id", "period", "month", "first_treat", "treated", "event_time", "county", "area_type",
            MP.OUTCOME} <= set(df.columns)
    first = df.groupby("station_id")["first_treat"].first()
    assert len(first) == 15 and (first != 0).sum() == 6 and first[first != 0].nunique() == 3
    assert df.groupby("station_id").size().eq(72).all() and (df[MP.OUTCOME] >= 0).all()
    assert null.truth == 0.0 and (null.n_treated, null.n_control) == (6, 9)
    # same seed: same stations and adoption, the effect only lowers the adopters' post months
    assert (eff.panel["first_treat"] == df["first_treat"]).all()
    assert eff.truth < 0 and -20 < eff.truth_pct < -15  # ramp-in: months 0..4 get part of the effect
    # determinism: the seed fixes the panel
    assert MP.make_panel("county", 7).panel[MP.OUTCOME].equals(df[MP.OUTCOME])
    # selection: bigger stations adopt more often (over seeds, adopters above the median size)
    big = []
    for s in range(20):
        p = MP.make_panel("slice", s, selection=True).panel
        size = p.groupby("station_id")[MP.OUTCOME].mean()
        ft = p.groupby("station_id")["first_treat"].first()
        big.append(float((size[ft != 0] > size.median()).mean()))
    assert np.mean(big) > 0.6


def test_run_writes_resumable_jsonl_and_report(tmp_path):
    out = tmp_path / "reps.jsonl"
    per_cell = {"county:0:1": 0}  # 1 null rep, 1 effect rep, no selection reps
    assert mc.run(out, ("county",), 1, per_cell=per_cell, seed=11, progress=False) == 2
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 2 and {r["cell"] for r in recs} == {"county:0:0", "county:-20:0"}
    for r in recs:
        assert set(mc.FIELDS) <= set(r), set(mc.FIELDS) - set(r)
        assert r["error"] == "", r.get("traceback")
        assert r["verdict"] in mc.VERDICTS and r["estimator"] and 0 <= r["p_value"] <= 1
        assert r["seed"] == 11 + r["rep"] and r["seconds"] > 0
        assert {"cs", "imputation", "twfe"} <= set(r["rows"]) and all("p" in v for v in r["rows"].values())
    assert all(r["truth"] == 0 for r in recs if r["delta"] == 0)
    # resume: nothing left to run; a torn last line (killed run) is dropped, not appended to
    assert mc.run(out, ("county",), 1, per_cell=per_cell, seed=11, progress=False) == 0
    with out.open("a", encoding="utf-8") as fh:
        fh.write('{"cell": "county:0:0", "rep"')
    assert len(mc.load(out)) == 2
    assert mc.run(out, ("county",), 1, per_cell=per_cell, seed=11, progress=False) == 0
    assert out.read_text(encoding="utf-8").endswith("}\n") and len(out.read_text().splitlines()) == 2
    text = mc.report(mc.load(out))
    assert "| county | 0 | random | 1 |" in text and "| county | -20% | random | 1 |" in text
    assert "most powerful valid" in text and "证据充分" in text


def test_report_rates_validity_and_most_powerful_valid_row():
    def rec(cell, delta, rep, verdict, p_a, p_b):
        a = {"p": p_a, "lo": -1.0, "hi": 1.0, "estimand": "att_adopter_months_0_H"}
        return {"cell": cell, "design": "county", "delta": delta, "selection": False, "rep": rep,
                "verdict": verdict, "estimator": "cs", "headline_rule": None, "estimate": 0.0, "ci_low": -1.0,
                "ci_high": 1.0, "truth": 0.0 if delta == 0 else -2.0, "sensitivity_available": True,
                "seconds": 1.0, "cpu_seconds": 1.0, "caps": [], "error": "",
                "rows": {"a": a, "b": {"p": p_b, "estimand": "other"}}}
    recs = [rec("county:0:0", 0.0, r, "strong" if r < 4 else "no_effect", 0.01 if r < 5 else 0.5,
                0.01 if r < 20 else 0.5) for r in range(100)]
    recs += [rec("county:-20:0", -0.2, r, "limited" if r < 50 else "no_effect", 0.01 if r < 60 else 0.5,
                 0.01 if r < 90 else 0.5) for r in range(100)]
    text = mc.report(mc.pd.DataFrame(recs))
    # null: 4 % 证据充分 (MC SE sqrt(.04*.96/100) = 2.0 %); row a valid (5 % ≤ 5 + 2*2.2), b not (20 %)
    assert "| county | 0 | random | 100 | 0 | 4.0 | 4.0 (2.0) |" in text
    assert "| county | 0 | random | 5.0 ✓ | 20.0 |" in text
    # effect: b is more powerful but invalid, so the most powerful valid row is a (60 %) against 50 %
    assert "| county | -20% | random | 60.0 | 90.0 | a | 60.0 | 50.0 |" in text
    # coverage only for the row on the headline estimand: [-1, 1] covers 0, misses -2
    assert "| county:0:0 | 100.0 (100) |" in text and "| county:-20:0 | 0.0 (100) |" in text
