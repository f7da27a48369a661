"""Smoke test of benchmarks/mc_designs.py (issue 17 Monte Carlo): the script runs, its truths equal the
direct formulas of each estimand, and a few replications are centred on the truth within generous
Monte Carlo error."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _mc_panels as MP  # noqa: E402
import mc_designs as MC  # noqa: E402


def _post(d: MP.DesignPanel, lo: int = 0, hi: float = np.inf) -> np.ndarray:
    e = d.periods[None, :] - d.first[:, None]
    return (d.first != MP.NEVER_TREATED)[:, None] & (e >= lo) & (e <= hi)


def test_truths_equal_direct_formulas():
    """The estimator on the expected-effect panel (the script's truth) is the plain mean of the
    expected effect over the estimand's cells."""
    by = {}
    for r in MC.run_dose(5, "county", 0) + MC.run_spillover(5, "demo", 0) + MC.run_heterogeneity(5, "demo", 0) \
            + MC.run_switching(5, "county", 0):
        if "target" in r:
            by[(r["design"], r["cell"], r["target"])] = r["truth"]
    d = MP.dose_design(5, "county")
    assert by[("dose", "planted", "ATT^o")] == pytest.approx((d.lam - d.lam0)[_post(d)].mean(), rel=1e-9)
    s = MP.spillover_design(5, "demo")
    tau = s.lam - s.lam0
    assert by[("spillover", "planted", "direct (spillover est.)")] == pytest.approx(tau[_post(s, 0, MC.H)].mean(), rel=1e-9)
    post = (s.periods >= MP.SPILL_DATE) & (s.periods <= MP.SPILL_DATE + MC.H)
    assert by[("spillover", "planted", "neighbours (spillover est.)")] == pytest.approx(
        tau[s.info["exposed"]][:, post].mean(), rel=1e-9)
    h = MP.heterogeneity_design(5, "demo", "planted")
    cells = _post(h, 0, MC.H)
    for g, m in (("urban", h.info["urban"]), ("rural", ~h.info["urban"])):
        assert by[("heterogeneity", "planted", g)] == pytest.approx((h.lam - h.lam0)[cells & m[:, None]].mean(), rel=1e-9)
    w = MP.switching_design(5, "county")
    first_col = np.searchsorted(w.periods, w.first)  # switch in: effect 1 is the adoption month
    sw = w.first != MP.NEVER_TREATED
    tau_in = (w.lam - w.lam0)[np.flatnonzero(sw), first_col[sw]]
    assert by[("switching", "on", "Effect_1")] == pytest.approx(tau_in.mean(), rel=1e-9)
    stop = w.info["stop"] == MP.STOP_PERIOD
    k = np.searchsorted(w.periods, MP.STOP_PERIOD)
    # switching off: the effect of the treatment's level (sign flipped back), i.e. lam0 * effect at the stop month
    assert by[("switching", "off", "Effect_1")] == pytest.approx(-(w.lam - w.lam_on)[stop, k].mean(), rel=1e-9)
    assert by[("switching", "off", "Effect_1")] < 0


def test_designs_existing_panels_unchanged():
    """The issue-17 additions leave the verdict MC's panels as they were (values of county, seed 1,
    −20 %, computed before the refactor into ``untreated_means`` / ``nb_counts``)."""
    p = MP.make_panel("county", 1, -0.20, False)
    assert p.truth == pytest.approx(-5.071991899157513, rel=1e-12)
    assert int(p.panel[MP.OUTCOME].sum()) == 33422
    assert p.panel["first_treat"].tolist()[::72] == [0, 24264, 24258, 0, 24264, 0, 24258, 0, 0, 24270, 0, 0,
                                                     24270, 0, 0]


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "mc.json"
    MC.main(["--reps", "1", "--only", "dose", "--scales", "county", "--seed", "3", "--json", str(out)])
    assert "| design" in capsys.readouterr().out
    import json

    got = json.loads(out.read_text(encoding="utf-8"))
    assert got["reps"] == 1 and got["tables"]["estimates"] and got["tables"]["bands"]


@pytest.mark.parametrize("design", MC.DESIGNS)
def test_few_reps_centred_on_truth(design):
    """A few demo-scale replications: no failure, and the mean error of the main targets within
    4 Monte Carlo SEs of zero; intervals cover in most replications."""
    reps = 6
    recs, _ = MC.run(design, ("demo",), reps, 900, progress=False)
    tabs = MC.summarise(recs)
    assert tabs["errors"].empty
    main = {"dose": ["ATT^o"], "switching": ["Av_tot_effect", "Effect_4"],
            "spillover": ["direct (spillover est.)", "neighbours (spillover est.)"],
            "heterogeneity": ["urban", "rural", "overall"]}[design]
    est = tabs["estimates"]
    rows = est[est["target"].isin(main)]
    assert len(rows) >= len(main)
    for _, r in rows.iterrows():
        # generous: 4 MC SEs of the bias, or 4 mean reported SEs / sqrt(reps) if the reps happen to agree closely
        tol = max(4 * r["MC SE"], 4 * r["mean SE"] / math.sqrt(reps))
        assert abs(r["bias"]) <= tol, dict(r)
        assert r["coverage"] >= 0.5, dict(r)
