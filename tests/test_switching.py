"""Switching treatments (evalkit.estimators.switching, dCDH 2024): peer numbers, brute force, CS on
absorbing adoption, result contract, input errors.

Peer: ``py-did-multiplegt-dyn`` 0.1.9 (test-only, BSD-3). Its numbers on tests/data/switching_panel.csv
are cached in tests/data/switching_ref.json (tests/data/switching_make_reference.py regenerates both);
only the test marked ``peers`` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import PanelInputError, get_estimator
from evalkit.estimators.cs import estimate_cs
from evalkit.estimators.specs import default_estimators, get_spec
from evalkit.estimators.switching import estimate_switching
from evalkit.results import EstimationResult

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "switching_ref.json").read_text(encoding="utf-8"))
CASES = [k for k, v in REF.items() if isinstance(v, dict)]
KW = {"unit": "station", "time": "period"}


@pytest.fixture(scope="module")
def ref_panel() -> pd.DataFrame:
    return pd.read_csv(DATA / "switching_panel.csv")


def _fit(panel: pd.DataFrame, case: dict) -> EstimationResult:
    return estimate_switching(panel, "Y", treatment=case["treatment"], cluster=case["cluster"],
                              effects=case["effects"], placebo=case["placebo"], switchers=case["switchers"], **KW)


@pytest.mark.parametrize("name", CASES)
def test_matches_did_multiplegt_dyn(ref_panel, name):
    case = REF[name]
    tab = _fit(ref_panel, case).estimates
    np.testing.assert_allclose(tab["estimate"], case["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(tab["std_error"], case["std_error"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(tab["weight"].iloc[1:], case["n_switchers"])
    r = _fit(ref_panel, case)
    assert r.meta["pretrend"]["p_value"] == pytest.approx(case["p_jointplacebo"], abs=1e-6)
    assert r.meta["pretrend"]["df"] == case["placebo"]


@pytest.mark.peers
@pytest.mark.parametrize("name", CASES)
def test_cached_numbers_are_the_peers(ref_panel, name):
    pytest.importorskip("did_multiplegt_dyn")
    import importlib.util
    spec = importlib.util.spec_from_file_location("switching_make_reference", DATA / "switching_make_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    case = REF[name]
    out = mod.peer_fit(ref_panel, case["treatment"], case["switchers"], case["cluster"], case["effects"],
                       case["placebo"])
    np.testing.assert_allclose(out["estimate"], case["estimate"], atol=1e-10)
    np.testing.assert_allclose(out["std_error"], case["std_error"], atol=1e-10)


def _tiny() -> pd.DataFrame:
    """5 units × 4 periods. Unit 0 switches in at period 3, unit 1 at period 4; unit 2 switches out at
    period 3; units 3 (baseline 0) and 4 (baseline 1) never switch."""
    d = {0: [0, 0, 1, 1], 1: [0, 0, 0, 1], 2: [1, 1, 0, 0], 3: [0, 0, 0, 0], 4: [1, 1, 1, 1]}
    y = {0: [1.0, 2.0, 6.0, 7.5], 1: [0.5, 1.0, 2.5, 6.0], 2: [3.0, 3.5, 1.0, 2.0],
         3: [0.0, 0.7, 1.9, 2.2], 4: [2.0, 2.4, 3.6, 4.1]}
    return pd.DataFrame([{"station": u, "period": t + 1, "treat": d[u][t], "Y": y[u][t]}
                         for u in d for t in range(4)])


def test_first_effect_by_hand():
    p = _tiny()
    r = estimate_switching(p, "Y", treatment="treat", effects=1, placebo=1, switchers="both", **KW)
    # switchers in at ℓ = 1: unit 0 (period 2 -> 3) against the not-yet-switched baseline-0 units 1 and 3;
    # unit 1 (3 -> 4) against unit 3 only
    in0 = (6.0 - 2.0) - np.mean([2.5 - 1.0, 1.9 - 0.7])
    in1 = (6.0 - 2.5) - (2.2 - 1.9)
    # switcher out: unit 2 (2 -> 3) against unit 4, sign flipped (effect of the treatment's level)
    out2 = -((1.0 - 3.5) - (3.6 - 2.4))
    e1 = r.estimates.set_index("term").loc["Effect_1", "estimate"]
    assert e1 == pytest.approx((in0 + in1 + out2) / 3, abs=1e-12)
    # placebo 1 of unit 0: periods 1 -> 2 against the same controls; unit 1: 2 -> 3; unit 2: 1 -> 2
    pl = np.mean([(1.0 - 2.0) - np.mean([0.5 - 1.0, 0.0 - 0.7]), (1.0 - 2.5) - (0.7 - 1.9),
                  -((3.0 - 3.5) - (2.0 - 2.4))])
    assert r.estimates.set_index("term").loc["Placebo_1", "estimate"] == pytest.approx(pl, abs=1e-12)
    # one period of exposure, treatment change 1: the average total effect is Effect_1
    assert r.headline["estimate"] == pytest.approx(e1, abs=1e-12)
    ins = estimate_switching(p, "Y", treatment="treat", effects=1, switchers="in", **KW)
    assert ins.headline["estimate"] == pytest.approx((in0 + in1) / 2, abs=1e-12)


def _absorbing(n=120, T=8, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = rng.normal(size=T + 1)
    rows = []
    for i in range(n):
        g = (0, 4, 6, 7)[i % 4]
        a = rng.normal()
        for t in range(1, T + 1):
            post = g and t >= g
            rows.append({"station": i, "period": t, "first_treat": g, "treat": float(bool(post)),
                         "Y": a + lam[t] + (1.0 + 0.5 * (t - g) if post else 0.0) + rng.normal()})
    return pd.DataFrame(rows)


def test_absorbing_binary_effects_equal_cs_not_yet_treated_dynamic():
    """Binary absorbing adoption: dCDH's DID_ℓ = CS's dynamic ATT(e = ℓ − 1) with not-yet-treated
    controls (both: long difference from g − 1, controls = not treated by t, cohorts weighted by
    size). Placebos differ by construction (docs/estimators-other.md), SEs by the variance formula."""
    p = _absorbing()
    r = estimate_switching(p, "Y", treatment="treat", effects=3, switchers="in", **KW)
    cs = estimate_cs(p, "Y", cohort="first_treat", control="notyet", est_method="reg", **KW).estimates
    dyn = cs[(cs["kind"] == "event")].set_index("event_time")["estimate"]
    ev = r.estimates[r.estimates["kind"] == "event"].set_index("event_time")["estimate"]
    for e in (0, 1, 2):
        assert ev[e] == pytest.approx(dyn[e], abs=1e-10)


def test_result_contract_and_json_round_trip(ref_panel):
    r = estimate_switching(ref_panel, "Y", treatment="D", effects=2, placebo=2, **KW)
    tab = r.estimates
    assert (tab["kind"] == "overall").sum() == 1
    assert list(tab.loc[tab["kind"] == "event", "event_time"]) == [0, 1, -1, -2]
    s = r.meta["sample"]
    assert s["n_treated"] + s["n_control"] == s["n_units"] == 60
    assert s["n_treated"] == r.meta["n_switchers_in"] + r.meta["n_switchers_out"]
    assert s["dropped_cells"]["missing_outcome"] == int(ref_panel["Y"].isna().sum())
    assert r.meta["estimand"] == "average_total_effect_per_treatment_unit"
    assert set(r.meta["pretrend"]) == {"stat", "df", "p_value", "p_value_f", "n_switchers"}
    # baseline mean: switchers' outcomes before their first change of D
    first = ref_panel.groupby("station")["D"].transform("first")
    changed = (ref_panel["D"] != first).groupby(ref_panel["station"]).cummax()
    switcher = (ref_panel["D"] != first).groupby(ref_panel["station"]).transform("any")
    assert r.meta["baseline_mean"] == pytest.approx(ref_panel.loc[switcher & ~changed, "Y"].mean(), abs=1e-12)
    back = EstimationResult.from_json(r.to_json())
    pd.testing.assert_frame_equal(back.estimates[tab.columns], tab, check_dtype=False)


def test_spec_registered_outside_default_designs(ref_panel):
    spec = get_spec("switching")
    assert spec.role == "switching" and "switching" not in default_estimators("staggered")
    r = get_estimator("switching")(ref_panel, "Y", treatment="D", effects=1, **KW)
    assert r.estimator == "switching"
    with pytest.raises(TypeError, match="unknown option 'cohort'"):
        get_estimator("switching")(ref_panel, "Y", treatment="D", cohort="G", **KW)


def test_switchers_out_only_use_out_switchers_and_in_plus_out_pool(ref_panel):
    kw = {"treatment": "D", "effects": 2, **KW}
    both, ins, out = (estimate_switching(ref_panel, "Y", switchers=s, **kw).estimates.set_index("term")
                      for s in ("both", "in", "out"))
    n_in, n_out = ins.loc["Effect_1", "weight"], out.loc["Effect_1", "weight"]
    pooled = (n_in * ins.loc["Effect_1", "estimate"] + n_out * out.loc["Effect_1", "estimate"]) / (n_in + n_out)
    assert both.loc["Effect_1", "estimate"] == pytest.approx(pooled, abs=1e-12)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.drop(columns="D"), r"column 'D' not in the panel"),
    (lambda p: p.assign(D=p["D"].where(p.index != 7)), r"column 'D': missing treatment in rows \[7\]"),
    (lambda p: p.assign(D=p["D"].where(p.index != 3, np.inf)), r"column 'D': non-finite treatment in rows \[3\]"),
    (lambda p: p.assign(D=p["D"].astype(object).where(p.index != 5, "x")), r"column 'D': non-numeric"),
    (lambda p: p.assign(Y=p["Y"].where(p.index != 2, np.inf)), r"column 'Y': infinite values in rows \[2\]"),
    (lambda p: p.drop(index=4), r"unit 0 has 9 of 10 periods"),
    (lambda p: pd.concat([p, p.iloc[[0]]]), r"duplicated unit-period"),
    (lambda p: p.assign(D=0.0), r"no unit switches"),
])
def test_input_errors_are_one_line(ref_panel, change, message):
    with pytest.raises(PanelInputError, match=message) as exc:
        estimate_switching(change(ref_panel.copy()), "Y", treatment="D", **KW)
    assert "\n" not in str(exc.value)


def test_bad_options():
    p = _tiny()
    for kw, msg in (({"switchers": "up"}, "switchers must be"), ({"effects": 0}, "effects must be"),
                    ({"placebo": -1}, "placebo must be"), ({"alpha": 1.5}, "alpha must be")):
        with pytest.raises(ValueError, match=msg):
            estimate_switching(p, "Y", treatment="treat", **kw, **KW)


def _levels(n=80, T=9, seed=5, beta=0.7, noise=0.0) -> pd.DataFrame:
    """Levels 0/1/2 going up and down; outcome = unit effect + period effect + beta × treatment."""
    rng = np.random.default_rng(seed)
    lam = rng.normal(size=T)
    rows = []
    for i in range(n):
        path = np.full(T, float(rng.integers(0, 3)))
        for _ in range(rng.integers(0, 3)):
            f = rng.integers(1, T)
            path[f:] = max(0.0, path[f - 1] + rng.choice([-1.0, 1.0, 2.0]))
        a = rng.normal()
        rows += [{"station": i, "period": t + 1, "D": path[t], "county": i % 10,
                  "Y": a + lam[t] + beta * path[t] + noise * rng.normal()} for t in range(T)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("switchers", ["in", "out", "both"])
def test_planted_linear_effect_is_recovered_in_both_directions(switchers):
    """Noiseless Y = unit + period + 0.7 D: each DID_ℓ is 0.7 × the switchers' mean |ΔD| (out signs
    flipped), every placebo is 0 and the average total effect is 0.7."""
    p = _levels()
    r = estimate_switching(p, "Y", treatment="D", effects=3, placebo=2, switchers=switchers, **KW)
    tab = r.estimates.set_index("term")
    assert r.headline["estimate"] == pytest.approx(0.7, abs=1e-10)
    assert np.allclose(tab.loc[["Placebo_1", "Placebo_2"], "estimate"], 0.0, atol=1e-10)
    assert (tab.loc[["Effect_1", "Effect_2", "Effect_3"], "estimate"] > 0).all()


def test_county_clusters_sum_influence_functions():
    p = _levels(noise=1.0)
    by_unit = estimate_switching(p, "Y", treatment="D", effects=2, placebo=1, **KW)
    explicit = estimate_switching(p, "Y", treatment="D", effects=2, placebo=1, cluster="station", **KW)
    by_county = estimate_switching(p, "Y", treatment="D", effects=2, placebo=1, cluster="county", **KW)
    pd.testing.assert_series_equal(by_unit.estimates["std_error"], explicit.estimates["std_error"])
    pd.testing.assert_series_equal(by_unit.estimates["estimate"], by_county.estimates["estimate"])
    assert by_county.meta["n_clusters"] == 10 and by_unit.meta["n_clusters"] == 80
    assert not np.allclose(by_unit.estimates["std_error"], by_county.estimates["std_error"])
    with pytest.raises(PanelInputError, match=r"column 'period': varies within a unit") as exc:
        estimate_switching(p, "Y", treatment="D", cluster="period", **KW)
    assert "\n" not in str(exc.value)


def test_refit_from_context_gives_the_same_result(ref_panel):
    r = estimate_switching(ref_panel, "Y", treatment="D", effects=2, placebo=1, cluster="county", **KW)
    ctx = r.context
    again = get_estimator(ctx.estimator)(ctx.sample, "Y", **ctx.options)
    pd.testing.assert_frame_equal(again.estimates, r.estimates)
