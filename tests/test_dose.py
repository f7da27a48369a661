"""Dose-response DiD (evalkit.estimators.dose): peer numbers, brute force, planted curves, input errors.

Peer: ``contdid`` 0.1.0 (test-only, AGPL-3.0). Its numbers on tests/data/dose_panel.csv are cached in
tests/data/dose_contdid_ref.json (tests/data/dose_make_reference.py regenerates both); only the test
marked ``peers`` imports contdid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import PanelInputError, get_estimator
from evalkit.estimators.dose import estimate_dose
from evalkit.estimators.specs import default_estimators, get_spec
from evalkit.results import EstimationResult

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "dose_contdid_ref.json").read_text(encoding="utf-8"))
KW = {"dose": "D", "unit": "id", "time": "period", "cohort": "G"}


@pytest.fixture(scope="module")
def ref_panel() -> pd.DataFrame:
    return pd.read_csv(DATA / "dose_panel.csv")


def _panel(n=90, seed=0, periods=range(1, 7), cohorts=(0, 3, 5), doses=None, effect=lambda d, e: 2.0 * d,
           noise=0.0, dose_in_pre=False) -> pd.DataFrame:
    """Staggered panel: unit effects, period effects, dose effect ``effect(d, event_time)`` after adoption."""
    rng = np.random.default_rng(seed)
    lam = rng.normal(size=max(periods) + 1)
    rows = []
    for i in range(n):
        g = cohorts[i % len(cohorts)]
        if g == 0:
            d = 0.0
        elif doses is None:
            d = float(rng.uniform(0.2, 1.0))
        else:
            d = float(doses[(i // len(cohorts)) % len(doses)])
        a = rng.normal()
        for t in periods:
            post = g != 0 and t >= g
            rows.append({"station_id": f"s{i:03d}", "period": t, "first_treat": g, "county": f"c{i % 12}",
                         "dose": d if (post or (dose_in_pre and g)) else 0.0,
                         "y": a + lam[t] + (effect(d, t - g) if post else 0.0) + noise * rng.normal()})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- contdid (cached numbers)
@pytest.mark.parametrize("control, peer", [("never", "nevertreated"), ("notyet", "notyettreated")])
def test_staggered_curve_matches_contdid(ref_panel, control, peer):
    # degree 3, no interior knots: contdid fits each (g, t) cell on its own dose range, which spans the
    # same cubic polynomials as evalkit's pooled basis, so the curves coincide on doses inside every cohort's range
    # ssc=False: contdid applies no small-sample factor to the cells' dose regressions
    r = estimate_dose(ref_panel, "Y", control=control, dvals=REF["grid"], bootstrap=0, ssc=False, **KW)
    for kind, target in (("dose", "level"), ("dose_slope", "slope")):
        rows, want = r.rows(kind), REF[f"multiperiod_{peer}_{target}"]
        np.testing.assert_allclose(rows["estimate"], want["estimate"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(rows["std_error"], want["std_error"], rtol=0, atol=1e-6)


def test_one_cohort_with_knots_matches_contdid(ref_panel):
    one = ref_panel[ref_panel["G"] != 5]
    r = estimate_dose(one, "Y", knots=2, dvals=REF["one_cohort_grid"], bootstrap=0, ssc=False, **KW)
    for kind, target in (("dose", "level"), ("dose_slope", "slope")):
        rows, want = r.rows(kind), REF[f"one_cohort_knots2_{target}"]
        np.testing.assert_allclose(rows["estimate"], want["estimate"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(rows["std_error"], want["std_error"], rtol=0, atol=1e-6)


@pytest.mark.peers
@pytest.mark.parametrize("key", [k for k in REF if k.startswith(("multiperiod_", "one_cohort_knots2_"))])
def test_cached_numbers_are_contdids(ref_panel, key):
    mp = pytest.importorskip("contdid.multiperiod")
    one = key.startswith("one_cohort")
    data = ref_panel[ref_panel["G"] != 5] if one else ref_panel
    r = mp.estimate_multiperiod_dose(
        data, id_column="id", time_column="period", outcome_column="Y", dose_column="D", group_column="G",
        dose_grid=np.asarray(REF["one_cohort_grid" if one else "grid"]), degree=3, num_knots=2 if one else 0,
        control_group="nevertreated" if one else key.split("_")[1], target=key.rsplit("_", 1)[1],
        cband=False, biters=10)
    np.testing.assert_allclose(r.point_estimate, REF[key]["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.standard_error, REF[key]["std_error"], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- brute force
def test_discrete_dose_equals_cell_means_of_differences():
    # three dose values, quadratic basis: saturated, so ATT(d) = Σ_cells w_c (mean ΔY of dose-d adopters − mean ΔY of controls)
    p = _panel(n=150, doses=(1.0, 2.0, 3.0), effect=lambda d, e: 0.5 * d * d + 0.1 * e, noise=1.0, seed=4)
    r = estimate_dose(p, "y", degree=2, bootstrap=0)
    wide = p.pivot(index="station_id", columns="period", values="y")
    unit = p.groupby("station_id")[["first_treat", "dose"]].max()
    cells, att_o = [], []
    for g in (3, 5):
        for t in range(g, 7):
            dy = wide[t] - wide[g - 1]
            ctrl = dy[unit["first_treat"] == 0].mean()
            tr = unit["first_treat"] == g
            n_t = int(tr.sum())
            cells.append((n_t, {d: dy[tr & (unit["dose"] == d)].mean() - ctrl for d in (1.0, 2.0, 3.0)}))
            att_o.append((n_t, dy[tr].mean() - ctrl))
    n = sum(c[0] for c in cells)
    for d in (1.0, 2.0, 3.0):
        want = sum(nc * c[d] for nc, c in cells) / n
        got = r.rows("dose").set_index("dose").loc[d, "estimate"]
        assert got == pytest.approx(want, abs=1e-10)
    assert r.headline["estimate"] == pytest.approx(sum(nc * a for nc, a in att_o) / n, abs=1e-10)


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_event_rows_equal_cs_dynamic_aggregation(control):
    # ATT(e) = CS's dynamic aggregation (varying base: placebo cells before adoption use t − 1); a
    # parallel-trends violation that grows with the dose shows in the pre-period slopes
    p = _panel(n=120, noise=1.0, seed=10, effect=lambda d, e: 1.0 + d + 0.2 * e)
    r = estimate_dose(p, "y", bootstrap=0, control=control)
    cs = get_estimator("cs")(p, "y", control=control).rows("event").set_index("event_time")
    ev = r.rows("event").set_index("event_time")
    assert list(ev.index) == list(cs.index) == [-3, -2, -1, 0, 1, 2, 3]
    np.testing.assert_allclose(ev["estimate"], cs["estimate"], atol=1e-8)
    assert r.meta["pretrend"]["df"] == 3 and r.meta["pretrend_slope"]["df"] == 3
    assert list(r.vcov["event"].index) == [f"e={e}" for e in range(-3, 4)]


def test_pretrend_in_the_dose_is_detected():
    # untreated paths diverge with the dose before adoption: strong parallel trends fails
    p = _panel(n=300, noise=0.5, seed=12)
    unit_dose = p.groupby("station_id")["dose"].transform("max")
    p["y"] += 0.8 * unit_dose * p["period"]
    r = estimate_dose(p, "y", bootstrap=0)
    assert r.meta["pretrend_slope"]["p_value"] < 1e-6
    clean = estimate_dose(_panel(n=300, noise=0.5, seed=12), "y", bootstrap=0)
    assert clean.meta["pretrend_slope"]["p_value"] > 0.01


def test_average_effect_equals_cs_simple_att():
    # ATT^o is the binary ATT over the same cells: CS's "simple" aggregation (never-treated, base g−1, balanced)
    p = _panel(n=120, noise=1.0, seed=9, effect=lambda d, e: 1.0 + d + 0.2 * e)
    r = estimate_dose(p, "y", bootstrap=0)
    cs = get_estimator("cs")(p, "y", control="never")
    assert r.headline["estimate"] == pytest.approx(cs.headline["estimate"], abs=1e-8)


def test_binary_dose_with_degree_zero_is_the_binary_att():
    p = _panel(n=90, doses=(1.0,), noise=1.0, seed=21, effect=lambda d, e: -0.7 + 0.1 * e)
    r = estimate_dose(p, "y", degree=0, bootstrap=0)
    curve = r.rows("dose")
    assert list(curve["dose"]) == [1.0]
    assert curve["estimate"].iloc[0] == pytest.approx(r.headline["estimate"], abs=1e-12)
    assert curve["std_error"].iloc[0] == pytest.approx(r.headline["std_error"], abs=1e-12)
    assert r.headline["estimate"] == pytest.approx(get_estimator("cs")(p, "y").headline["estimate"], abs=1e-8)


# ----------------------------------------------------------------------------- planted curves
@pytest.mark.parametrize("knots", [0, 2])
def test_planted_linear_dose_response_is_recovered(knots):
    p = _panel(n=120, effect=lambda d, e: 3.0 * d, seed=2)
    r = estimate_dose(p, "y", knots=knots, bootstrap=99, seed=3)
    curve, slope = r.rows("dose"), r.rows("dose_slope")
    np.testing.assert_allclose(curve["estimate"], 3.0 * curve["dose"], atol=1e-9)
    np.testing.assert_allclose(slope["estimate"], 3.0, atol=1e-8)
    assert r.rows("aggregate").set_index("term").loc["ACR", "estimate"] == pytest.approx(3.0, abs=1e-8)
    treated = p[(p["first_treat"] > 0) & (p["period"] >= p["first_treat"])]
    per_cell_mean = treated.groupby(["first_treat", "period"])["dose"].mean()
    per_cell_n = treated.groupby(["first_treat", "period"]).size()
    assert r.headline["estimate"] == pytest.approx(3.0 * (per_cell_mean * per_cell_n).sum() / per_cell_n.sum(),
                                                   abs=1e-9)


def test_dose_held_in_every_row_gives_the_same_result():
    a = _panel(n=60, noise=1.0, seed=5)
    b = _panel(n=60, noise=1.0, seed=5, dose_in_pre=True)
    pd.testing.assert_frame_equal(estimate_dose(a, "y", bootstrap=0).estimates,
                                  estimate_dose(b, "y", bootstrap=0).estimates)


# ----------------------------------------------------------------------------- inference
def test_uniform_band_is_seeded_and_wider_than_pointwise():
    p = _panel(n=150, noise=1.0, seed=6)
    r1 = estimate_dose(p, "y", bootstrap=499, seed=11)
    r2 = estimate_dose(p, "y", bootstrap=499, seed=11)
    r3 = estimate_dose(p, "y", bootstrap=499, seed=12)
    pd.testing.assert_frame_equal(r1.estimates, r2.estimates)
    assert r1.meta["critical_value"] != r3.meta["critical_value"]
    for kind in ("dose", "dose_slope"):
        rows = r1.rows(kind)
        assert (rows["band_high"] - rows["band_low"] > rows["ci_high"] - rows["ci_low"]).all()
    assert r1.headline["band_low"] != r1.headline["band_low"]  # NaN: the overall row has no band


def test_cluster_by_unit_is_the_default_and_county_clusters_sum_influence():
    p = _panel(n=120, noise=1.0, seed=7)
    base = estimate_dose(p, "y", bootstrap=0)
    by_unit = estimate_dose(p, "y", cluster="station_id", bootstrap=0)
    np.testing.assert_allclose(base.estimates["std_error"], by_unit.estimates["std_error"], atol=1e-14)
    county = estimate_dose(p, "y", cluster="county", bootstrap=0)
    np.testing.assert_allclose(county.estimates["estimate"], base.estimates["estimate"], atol=1e-14)
    assert county.meta["n_clusters"] == 12
    assert not np.allclose(county.estimates["std_error"], base.estimates["std_error"])


def test_missing_cells_leave_only_their_cells():
    p = _panel(n=90, noise=1.0, seed=8)
    p.loc[(p["station_id"] == "s001") & (p["period"] == 4), "y"] = np.nan
    r = estimate_dose(p, "y", bootstrap=0)
    assert r.meta["sample"]["dropped_cells"] == {"missing_outcome": 1}
    cells = r.tables["cells"].set_index(["group", "time"])
    # s001 is in cohort 3: absent from its (3, 4) cell only
    assert cells.loc[(3, 4), "n_treated"] == cells.loc[(3, 5), "n_treated"] - 1


@pytest.mark.slow
def test_coverage_of_ci_and_uniform_band_in_a_small_monte_carlo():
    # 100 seeded panels of 150 stations (docs/estimators-other.md § Dose has the 200-panel numbers)
    f = lambda d, e: 1.5 * d - d * d + 0.5  # noqa: E731
    grid = np.linspace(0.3, 0.9, 7)
    hits = {"att": 0, "pointwise": 0.0, "band": 0}
    reps = 100
    for i in range(reps):
        p = _panel(n=150, seed=1000 + i, effect=f, noise=1.0)
        r = estimate_dose(p, "y", degree=2, dvals=grid, bootstrap=499, seed=i)
        post = p[(p["first_treat"] > 0) & (p["period"] >= p["first_treat"])]
        truth = f(post["dose"], 0).mean()
        hits["att"] += r.headline["ci_low"] <= truth <= r.headline["ci_high"]
        c = r.rows("dose")
        tv = f(c["dose"], 0)
        hits["pointwise"] += ((c["ci_low"] <= tv) & (tv <= c["ci_high"])).mean()
        hits["band"] += ((c["band_low"] <= tv) & (tv <= c["band_high"])).all()
    assert 0.89 <= hits["att"] / reps <= 1.0
    assert 0.89 <= hits["pointwise"] / reps <= 0.99
    assert 0.89 <= hits["band"] / reps <= 1.0


# ----------------------------------------------------------------------------- contract and registry
def test_result_contract_and_json_round_trip():
    p = _panel(n=90, noise=1.0, seed=1)
    r = get_estimator("dose")(p, "y", bootstrap=99)
    assert (r.estimates["kind"] == "overall").sum() == 1 and r.headline["term"] == "ATT"
    assert set(r.estimates["kind"]) == {"overall", "aggregate", "dose", "dose_slope", "event", "event_slope"}
    assert r.meta["estimand"] == get_spec("dose").estimand
    assert r.meta["sample"]["n_treated"] + r.meta["sample"]["n_control"] == r.meta["sample"]["n_units"]
    assert r.meta["inference"]["se_type"]
    back = EstimationResult.from_json(r.to_json())
    pd.testing.assert_frame_equal(back.estimates, r.estimates)
    again = get_estimator("dose")(r.context.sample, "y", **r.context.options)
    pd.testing.assert_frame_equal(again.estimates, r.estimates)


def test_refit_from_context_with_late_adopters_holding_their_dose():
    p = _panel(n=60, noise=1.0, seed=14, cohorts=(0, 3, 9), dose_in_pre=True)  # cohort 9: after the window
    r = estimate_dose(p, "y", bootstrap=0)
    assert r.meta["sample"]["recoded"] == {"adopts_after_window": 20}
    again = get_estimator("dose")(r.context.sample, "y", **r.context.options)
    pd.testing.assert_frame_equal(again.estimates, r.estimates)


def test_dose_never_joins_the_default_estimators():
    assert "dose" not in default_estimators("staggered") and "dose" not in default_estimators("single_station")
    with pytest.raises(TypeError, match="dose: unknown option 'clsuter'"):
        get_estimator("dose")(pd.DataFrame(), "y", clsuter="county")


# ----------------------------------------------------------------------------- input errors
def _err(p, **kw) -> str:
    with pytest.raises((PanelInputError, ValueError)) as exc:
        estimate_dose(p, "y", bootstrap=0, **kw)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_input_errors_are_one_line():
    p = _panel(n=30, seed=1)
    assert "'intensity' (the dose) not in the panel" in _err(p, dose="intensity")
    q = p.copy()
    q.loc[5, "dose"] = np.nan
    assert "missing dose" in _err(q)
    q = p.copy()
    q.loc[5, "dose"] = -1.0
    assert "negative dose" in _err(q) and "first rows [5]" in _err(q)
    q = p.copy()
    q.loc[(q["station_id"] == "s001") & (q["period"] == 1), "dose"] = 0.123
    assert "dose before adoption is neither 0 nor the unit's dose" in _err(q)
    q = p.copy()
    q.loc[(q["station_id"] == "s001") & (q["period"] == 6), "dose"] = 0.9876
    assert "dose varies after adoption" in _err(q)
    q = p.copy()
    q.loc[(q["station_id"] == "s000") & (q["period"] == 2), "dose"] = 0.5
    assert "positive dose for a never-treated unit" in _err(q)
    q = p.copy()
    q.loc[q["station_id"] == "s001", "dose"] = 0.0
    assert "dose 0 at or after adoption" in _err(q)
    q = p.copy()
    q.loc[q["dose"] > 0, "dose"] = 0.5
    assert "same dose" in _err(q)
    assert "lower degree or knots" in _err(_panel(n=30, doses=(1.0, 2.0), seed=1))
    assert "no never-treated unit" in _err(p[p["first_treat"] > 0])
    assert "dose grid values must lie within" in _err(p, dvals=[0.0, 0.5])
    assert "strictly inside the treated doses' range" in _err(p, knots=[0.1])
    assert "control must be one of" in _err(p, control="all")


def test_one_cell_standard_errors_by_hand():
    # two periods, one cohort: ATT^o = difference of mean changes, SE² = var_T/n_T + var_C/n_C (ddof 0);
    # degree 1: ACR^o = the OLS slope of the adjusted change on the dose, with its HC0 sandwich SE
    p = _panel(n=80, periods=range(1, 3), cohorts=(0, 2), noise=1.0, seed=13, effect=lambda d, e: 1 + 2 * d)
    r = estimate_dose(p, "y", degree=1, bootstrap=0, ssc=False)
    hc1 = estimate_dose(p, "y", degree=1, bootstrap=0)  # the default: HC1 on the cell's dose regression
    wide = p.pivot(index="station_id", columns="period", values="y")
    unit = p.groupby("station_id")[["first_treat", "dose"]].max()
    dy = (wide[2] - wide[1]).to_numpy()
    tr = (unit["first_treat"] == 2).to_numpy()
    yt, yc = dy[tr] - dy[~tr].mean(), dy[~tr]
    assert r.headline["estimate"] == pytest.approx(yt.mean(), abs=1e-12)
    assert r.headline["std_error"] == pytest.approx(np.sqrt(yt.var() / tr.sum() + yc.var() / (~tr).sum()), abs=1e-12)
    X = np.column_stack([np.ones(tr.sum()), unit["dose"].to_numpy()[tr]])
    bread = np.linalg.inv(X.T @ X)
    b = bread @ X.T @ yt
    e = yt - X @ b
    V = bread @ (X.T * e**2) @ X @ bread
    acr = r.rows("aggregate").iloc[0]
    assert acr["estimate"] == pytest.approx(b[1], abs=1e-10)
    assert acr["std_error"] == pytest.approx(np.sqrt(V[1, 1]), abs=1e-10)
    n = int(tr.sum())
    assert hc1.rows("aggregate").iloc[0]["std_error"] == pytest.approx(np.sqrt(V[1, 1] * n / (n - 2)), abs=1e-10)
    assert hc1.headline["std_error"] == r.headline["std_error"]


def test_small_cohorts_error_or_skip():
    p = _panel(n=60, cohorts=(0, 3, 5), seed=3)
    p = p[(p["first_treat"] != 5) | (p["station_id"] == "s002")]
    msg = _err(p)  # cohort 5 keeps one station: too few doses for a cubic
    assert "cohort 5 has 1 distinct doses among 1 units" in msg and "small_cohorts='skip'" in msg
    r = estimate_dose(p, "y", small_cohorts="skip", bootstrap=0)
    assert r.meta["skipped_cells"] == {"too_few_doses": 5}  # its 2 post cells and 3 pre-period placebo cells
    assert r.meta["n_treated_used"] == r.meta["n_treated"] - 1
    assert set(r.tables["cells"]["group"]) == {3}
    assert r.meta["n_cells"] == 4 and r.meta["n_pre_cells"] == 1


def test_small_sample_factor_scales_only_the_dose_regression_part():
    """ssc (default): each cell's dose-regression residuals × sqrt(n/(n−k)); the binary ATT^o and the
    estimates are unchanged, the curve's SEs grow, and a cell with many adopters barely moves."""
    p = _panel(n=60, noise=0.5, seed=5, doses=(0.25, 0.5, 0.75, 1.0))
    a = estimate_dose(p, "y", degree=1, bootstrap=0)
    b = estimate_dose(p, "y", degree=1, bootstrap=0, ssc=False)
    np.testing.assert_array_equal(a.estimates["estimate"], b.estimates["estimate"])
    assert a.rows("overall")["std_error"].iloc[0] == b.rows("overall")["std_error"].iloc[0]
    ratio = a.rows("dose")["std_error"].to_numpy() / b.rows("dose")["std_error"].to_numpy()
    assert (ratio > 1).all() and (ratio < 1.1).all()
    assert a.meta["inference"]["se_type"].endswith("HC1 factor per cell on the dose regression")
    # one cohort cell of n adopters, degree 1 (k = 2): the slope's SE grows by exactly sqrt(n / (n - 2))
    one = _panel(n=12, noise=0.5, seed=6, periods=range(1, 3), cohorts=(0, 2), doses=(0.25, 0.5, 0.75, 1.0))
    n = one.loc[one["dose"] > 0, "station_id"].nunique()
    sa = estimate_dose(one, "y", degree=1, bootstrap=0).rows("dose_slope")["std_error"].to_numpy()
    sb = estimate_dose(one, "y", degree=1, bootstrap=0, ssc=False).rows("dose_slope")["std_error"].to_numpy()
    np.testing.assert_allclose(sa / sb, np.sqrt(n / (n - 2)), rtol=1e-12)


def test_one_dose_per_cohort_says_so():
    """One station per adoption cohort (a county): no cohort can compare doses; skipping every cell ends
    in an error that says why, not a generic 'no cell' one."""
    p = _panel(n=10, cohorts=(0, 2, 3, 4, 5), seed=4, doses=(0.5,))
    p = p[~((p["first_treat"] > 0) & p.duplicated(["first_treat", "period"]))]  # one adopter per cohort
    share = {2: 0.25, 3: 0.5, 4: 0.75, 5: 1.0}  # a different share in each cohort
    p = p.assign(dose=np.where(p["dose"] > 0, p["first_treat"].map(share).fillna(0.0), 0.0))
    assert p.loc[p["first_treat"] > 0].groupby("first_treat")["station_id"].nunique().eq(1).all()
    with pytest.raises(PanelInputError, match="every adoption cohort has fewer distinct doses"):
        estimate_dose(p, "y", degree=1, bootstrap=0, small_cohorts="skip")
