"""The sensitivity analysis bounds the headline estimand and is computable in a 12–15-station county.

Panels are built by hand (``benchmarks/mc_sensitivity.py``: negative-binomial counts, 5–6 adopters at
2–3 dates, 72 months), not drawn from the demo world.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.estimand import HEADLINE_ESTIMAND, event_time_weights
from evalkit.estimators.cs import estimate_cs
from evalkit.params import validate_params
from evalkit.sensitivity_bins import BIN_CHOICES, bin_map, choose_bins, condition_number, small_sample_factor
from evalkit.sensitivity_run import (
    SensitivityError,
    binned_event_study,
    monthly_event_study,
    run_sensitivity,
)

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mc_sensitivity", ROOT / "benchmarks" / "mc_sensitivity.py")
mcs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mcs)

Y = "incidents_total"
P = validate_params({"evaluation_id": "sens_county", "reform": "两队一室", "outcomes": [Y]})


@pytest.fixture(scope="module")
def county15() -> pd.DataFrame:
    return mcs.county_panel(15, 6, (30, 42, 54), seed=3)


@pytest.fixture(scope="module")
def county12() -> pd.DataFrame:
    return mcs.county_panel(12, 5, (30, 45), seed=4)


def test_target_is_the_headline_estimand(county15):
    """Monthly: Σ_e w_e θ(e) equals CS's simple aggregation trimmed to 0..H (either base period) to
    1e-10; binned: l'β_post is that minus the base bin's mean pre coefficient, Σ_bins = A Σ A'."""
    h = P.event_window[1]
    et, theta, vcov, n_cl = monthly_event_study(county15, Y, P, "cs", h)
    assert n_cl == 15 and et.min() <= -48 and et.max() == h and theta[list(et).index(-1)] == 0
    w = event_time_weights(county15, Y, h)
    for base in ("varying", "universal"):
        cs = estimate_cs(county15, Y, base_period=base, trim_e=(-12, h), aggregations=("simple",))
        headline = cs.overall["estimate"]
        A1, l1, bins1, base1 = bin_map(et, w, 1, 2)
        assert base1 == (-1, -1) and len(l1) == h + 1 and bins1[2] == (0, 0)
        assert abs(l1 @ (A1 @ theta)[2:] - headline) < 1e-10
        for width in (3, 6, 12):
            A, lv, bins, (b_lo, b_hi) = bin_map(et, w, width, 2)
            pos = [list(et).index(e) for e in range(b_lo, b_hi + 1)]
            assert abs(lv.sum() - 1) < 1e-12 and bins[2][0] == 0 and bins[-1][1] == h
            assert abs(lv @ (A @ theta)[2:] - (headline - theta[pos].mean())) < 1e-10
    b = choose_bins(et, theta, vcov, w, n_cl)
    assert np.allclose(b.sigma, b.A @ vcov @ b.A.T, rtol=0, atol=1e-14)
    assert np.allclose(b.beta, b.A @ theta)
    base_pos = [list(et).index(e) for e in range(-b.bin_months, 0)]
    assert b.base_mean == pytest.approx(theta[base_pos].mean(), abs=1e-14) and b.base_mean != 0


@pytest.mark.parametrize("panel_name", ["county12", "county15"])
def test_computable_in_a_county(panel_name, request):
    panel = request.getfixturevalue(panel_name)
    n = panel["station_id"].nunique()
    s = run_sensitivity(panel, Y, P, sign=-1.0)
    assert s.estimand == HEADLINE_ESTIMAND and s.horizon == [0, 24] and s.n_clusters == n
    assert s.bin_months == 6 and s.num_post == 4 and s.num_pre >= 2 and s.num_pre + s.num_post <= n // 2
    assert s.bins[s.num_pre] == [0, 5] and s.bins[-1] == [18, 24]
    assert abs(sum(s.weights) - 1) < 1e-12 and s.failed == {} and s.source == "cs"
    assert np.isfinite(s.sd[["lb", "ub"]].to_numpy()).all() and np.isfinite(s.rm[["lb", "ub"]].to_numpy()).all()
    assert s.robust in (True, False) and s.reference == "rm"
    assert "6-month bins" in s.note and "months 0–24" in s.note and f"{n} station clusters" in s.note
    d = json.loads(json.dumps(s.to_dict()))
    assert {d[k] == getattr(s, k) for k in ("estimand", "horizon", "bin_months", "note", "bins", "sigma_factor")} == {True}
    assert d["original_rm"] == d["original"] and d["num_post_rm"] == d["num_post"]
    assert s.months == d["months"] == 25  # the brief's "first n months": months 0–24
    # original + base_shift = the headline estimand against the month before adoption (CS simple, 0..24)
    cs = estimate_cs(panel, Y, trim_e=(-12, 24), aggregations=("simple",))
    assert abs(s.original["estimate"] + s.base_shift - cs.overall["estimate"]) < 1e-10
    flagged = "the month before adoption differs from the months before it" in s.note
    assert flagged == (abs(s.base_shift) > s.original["se"])


def test_bin_width_is_chosen_from_the_data_deterministically():
    """Smallest width with ≤ 6 post bins, ≥ 2 pre bins, ≤ clusters/2 coefficients, well conditioned."""
    et = np.arange(-48, 25)
    theta = np.zeros(et.size)
    vcov = np.eye(et.size)
    vcov[list(et).index(-1)] = 0.0  # the base month: zero variance
    vcov[:, list(et).index(-1)] = 0.0
    w = pd.Series(1 / 25, index=pd.RangeIndex(0, 25, name="event_time"))
    pick = lambda n_cl, ww=w, e=et: choose_bins(e, theta[: e.size], vcov[: e.size, : e.size], ww, n_cl)  # noqa: E731
    assert pick(100).bin_months == 4 and pick(100).num_pre == 3  # 25 months → 6 post bins of 4 (last: 20–24)
    b15 = pick(15)
    assert (b15.bin_months, b15.num_pre, b15.num_post) == (6, 3, 4)
    assert b15.skipped[-1] == "4 months: 8 coefficients, more than half of 15 clusters"
    assert (pick(12).bin_months, pick(12).num_pre) == (6, 2)
    assert (pick(9).bin_months, pick(9).num_post) == (12, 2)  # 12-month bins: 0–11, 12–24
    w5 = pd.Series(1 / 6, index=pd.RangeIndex(0, 6))
    assert pick(100, w5).bin_months == 1  # months 0–5: monthly coefficients
    # only 20 pre-reform months: 6-month bins give 2 pre bins besides the base, 12-month bins none
    short = et[et >= -20]
    assert pick(15, w, short).bin_months == 6 and pick(15, w, short).num_pre == 2
    assert [pick(15).bin_months for _ in range(3)] == [6, 6, 6]


def test_same_panel_same_bins_and_numbers(county15):
    a, _, _, _ = binned_event_study(county15, Y, P)
    b, _, _, _ = binned_event_study(county15.sample(frac=1.0, random_state=1), Y, P)  # row order does not matter
    assert a.bin_months == b.bin_months and a.bins == b.bins
    assert np.allclose(a.beta, b.beta, rtol=0, atol=1e-12) and np.allclose(a.sigma, b.sigma, rtol=0, atol=1e-12)
    # Σ_bins = c · A Σ A' with the small-sample factor c = G/(G−1) · (t_{.975}(G−1) / z_{.975})²
    et, theta, vcov, n_cl = monthly_event_study(county15, Y, P, "cs", 24)
    c = 15 / 14 * (stats.t.ppf(0.975, 14) / stats.norm.ppf(0.975)) ** 2
    assert abs(a.sigma_factor - c) < 1e-12 and abs(small_sample_factor(15) - c) < 1e-12 and 1.28 < c < 1.29
    assert np.allclose(a.sigma, c * a.A @ vcov @ a.A.T, rtol=1e-12, atol=0)
    assert abs(small_sample_factor(15, cluster_factor=False) - c * 14 / 15) < 1e-12


def test_singular_covariance_gives_the_exact_reason():
    et = np.arange(-48, 25)
    rng = np.random.default_rng(0)
    g = rng.normal(size=(et.size, 1))
    vcov = g @ g.T  # rank 1: every binned covariance with ≥ 2 coefficients is singular
    w = pd.Series(1 / 25, index=pd.RangeIndex(0, 25))
    with pytest.raises(ValueError) as exc:
        choose_bins(et, np.zeros(et.size), vcov, w, 100)
    assert str(exc.value) == ("not computable with 100 clusters: even 12-month bins fail (the covariance of the "
                              "5 coefficients is singular or ill-conditioned (condition number inf > 1e+06))")
    assert condition_number(np.eye(3)) == 1.0 and condition_number(np.zeros((2, 2))) == float("inf")


def test_too_few_clusters_or_pre_months_is_a_plain_error(county15):
    small = county15[county15["station_id"].isin([f"S{i:02d}" for i in range(3)] + ["S10", "S11", "S12"])]
    with pytest.raises(SensitivityError, match=r"^not computable with 6 clusters: even 12-month bins fail "
                                                r"\(4 coefficients, more than half of 6 clusters\)$"):
        binned_event_study(small, Y, P)
    early = mcs.county_panel(15, 6, (8, 10), seed=5)  # at most 9 months before adoption
    with pytest.raises(SensitivityError, match=r"9 pre-reform months give 0 pre bins besides the base bin"):
        run_sensitivity(early, Y, P)
    assert BIN_CHOICES[0] == 1


def test_larger_panel_uses_narrower_bins():
    panel = mcs.county_panel(100, 40, (24, 36, 48), seed=1)
    b, source, errors, n_cl = binned_event_study(panel, Y, P)
    assert (b.bin_months, b.num_post, n_cl, source, errors) == (4, 6, 100, "cs", {})


def test_plot_labels_say_the_bin_width():
    import matplotlib

    matplotlib.use("Agg")
    from evalkit.viz.sensitivity import plot_sensitivity

    sd = pd.DataFrame({"M": [0.0, 0.1], "lb": [-1.0, -1.2], "ub": [1.0, 1.2], "method": "FLCI", "Delta": "DeltaSD"})
    assert plot_sensitivity(sd, lang="en", bin_months=6).get_xlabel() == "M (smoothness, per 6-month bin)"
    assert plot_sensitivity(sd, lang="zh", bin_months=6).get_xlabel() == "M（平滑度，每 6 个月为一段）"
    assert plot_sensitivity(sd, lang="en", bin_months=1).get_xlabel() == "M (smoothness, per month)"
    rm = sd.assign(method="C-LF", Delta="DeltaRM")
    assert plot_sensitivity(rm, lang="en", bin_months=6).get_xlabel() == "M̄ (relative magnitude)"


def test_vectorised_rm_test_equals_the_scalar_one(county15):
    """``_ArpPolytope.accept_many`` (used by ``rm_clf``) takes the same decisions as ``accept``."""
    from evalkit.sensitivity import _A_rm, _ArpPolytope

    b, *_ = binned_event_study(county15, Y, P)
    rng = np.random.default_rng(0)
    n_checked, seen = 0, set()
    for mbar in (0.0, 0.5, 2.0):
        for s in range(-(b.num_pre - 1), 1):
            for sign in (True, False):
                A = _A_rm(b.num_pre, b.num_post, mbar, s, sign)
                rows = np.flatnonzero(np.any(A[:, b.num_pre:] != 0, axis=1))
                poly = _ArpPolytope(b.beta, b.sigma, A, b.num_pre, b.num_post, b.l_vec, 0.05, 0.005, 200, rng, rows)
                grid = np.linspace(-30, 30, 241)
                got = poly.accept_many(grid).tolist()
                assert got == [poly.accept(t) for t in grid]
                n_checked, seen = n_checked + 1, seen | set(got)
    assert n_checked == 3 * 2 * b.num_pre and seen == {True, False}


def test_event_twfe_fallback_bins_the_same_way(county15, monkeypatch):
    import evalkit.sensitivity_run as sr

    real = sr.get_estimator

    def no_cs(name):
        if name == "cs":
            def broken(*a, **k):
                raise ValueError("no never-treated station")
            return broken
        return real(name)

    monkeypatch.setattr(sr, "get_estimator", no_cs)
    s = run_sensitivity(county15, Y, P, sign=-1.0)
    assert s.source == "event_twfe" and s.source_errors == {"cs": "no never-treated station"}
    assert s.bin_months == 6 and s.bins[s.num_pre] == [0, 5] and "dynamic TWFE" in s.note
    assert abs(s.sigma_factor - small_sample_factor(15, cluster_factor=False)) < 1e-12  # CRV1 has G/(G−1)
    assert np.isfinite(s.sd[["lb", "ub"]].to_numpy()).all()
