"""Small-sample pre-trend tests (evalkit.inference.pretrend).

The size figures come from ``benchmarks/mc_pretrend.py``; here: the formulas, determinism, and a
short pure-noise check that the χ² test over-rejects where the permutation test does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evalkit.inference.pretrend import hotelling_f_pvalue, pretrend_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from mc_pretrend import noise_panel  # noqa: E402


def _noise_panel(sizes, n_never, seed):
    """The benchmark's pure-noise panel (benchmarks/mc_pretrend.py), 48 months."""
    return noise_panel(sizes, n_never, seed, T=48, first=24252)


def test_hotelling_formula():
    # F = W (g-k) / (k (g-1)) ~ F(k, g-k)
    assert hotelling_f_pvalue(20.0, 5, 30) == pytest.approx(stats.f.sf(20 * 25 / (5 * 29), 5, 25))
    assert np.isnan(hotelling_f_pvalue(20.0, 12, 9))  # fewer treated stations than restrictions
    assert hotelling_f_pvalue(20.0, 5, 30) > stats.chi2.sf(20.0, 5)  # more conservative than χ²


def _cs(panel, **kw):
    from evalkit.estimators import get_estimator

    return get_estimator("cs")(panel, "y", **kw)


def test_methods_and_determinism():
    # 14 months, cohorts of 3 at months 2 and 8: the panel itself limits the leads to 7
    r = _cs(noise_panel([3, 3], 12, seed=1, T=14, first=24230))
    a = pretrend_test(r, method="permutation", draws=39, seed=7)
    b = pretrend_test(r, method="permutation", draws=39, seed=7)
    assert a == b and a.ok and a.test == "permutation" and a.draws_valid == 39
    assert a.p_value == a.p_permutation and 1 / 40 <= a.p_value <= 1
    assert a.df == 7 and a.n_treated == 6  # varying base: leads -7..-1
    assert a.statistic == "t2sum"  # 7 leads from 6 treated stations: Σ t² is permuted, not W
    chi = pretrend_test(r, method="chi2")
    assert chi.p_value == chi.p_chi2 == pytest.approx(stats.chi2.sf(chi.stat, chi.df))
    # "f" is undefined with 6 treated stations and 7 leads: not available with the reason, never another test
    f = pretrend_test(r, method="f", draws=19)
    assert f.status == "not_available" and np.isnan(f.p_value)
    assert "Hotelling's F needs more treated stations than leads + 1 (6 treated, 7 leads)" in f.reason
    assert pretrend_test(r, method="auto", draws=19).test == "permutation"
    with pytest.raises(ValueError, match="unknown pre-trend test"):
        pretrend_test(r, method="bogus")


def test_pure_noise_chi2_overrejects_permutation_does_not():
    """Cohorts of 1, 1, 4 in the window (the demo placebo's shape; the cohort of 3 adopts after the
    24 months and counts as never treated), iid noise, 17 leads."""
    chi, perm = [], []
    for r in range(12):
        t = pretrend_test(_cs(noise_panel([1, 1, 4, 3], 26, seed=100 + r, T=24, first=24234)),
                          method="permutation", draws=39, seed=r)
        assert t.n_treated == 6 and t.df == 17
        chi.append(t.p_chi2 < 0.05)
        perm.append(t.p_permutation < 0.05)
    assert np.mean(chi) >= 0.5  # the textbook test is badly oversized here (93 % in the benchmark)
    assert np.mean(perm) <= 0.25  # nominal 5 %; 12 draws leave room for Monte Carlo noise


def test_chi2_is_the_fits_own_wald_p_value():
    r = _cs(noise_panel([3, 3], 12, seed=2, T=14, first=24230))
    t = pretrend_test(r, method="chi2")
    assert t.test == "chi2" and t.p_value == pytest.approx(r.meta["pretrend"]["p_value"])
    with pytest.raises(TypeError, match="unexpected arguments"):
        pretrend_test(r, "y", method="chi2")


def test_other_estimators():
    """Imputation's leads (a table of its own) through a re-fit of its sample (as from its context)."""
    from evalkit.estimators._sample import build_sample
    from evalkit.inference._refit import make_refit
    from evalkit.inference.pretrend import pretrend_refit

    s = build_sample(_noise_panel([4, 4], 10, seed=3), "y")
    refit = make_refit("imputation", s.frame, "y", {"horizons": [0, 1, 2], "pretrend_leads": 4})
    t = pretrend_refit(refit, refit.fit(), method="permutation", draws=19, seed=0)
    assert t.ok and t.estimator == "imputation" and t.draws_valid == 19 and t.df == 4


@pytest.mark.parametrize("leads, cluster", [(3, None), (3, "county"), (6, None)])
def test_event_twfe_permutation_batched_equals_full_refits(monkeypatch, leads, cluster):
    """Event TWFE's permutation draws use the batched refits (_fe_batch.PermutedTWFE); the p-value and
    every statistic equal those of full refits with the same seed (Wald and Σ t² statistics)."""
    import evalkit.inference.pretrend as pretrend
    from evalkit.estimators import get_estimator

    panel = noise_panel([2, 2, 1], 10, seed=5, T=16, first=24234)
    panel["county"] = panel["station_id"] // 3
    kw = {"cluster": cluster} if cluster else {}
    r = get_estimator("event_twfe")(panel, "y", leads=leads, lags=4, **kw)
    from evalkit.inference._refit import refit_of

    refit = refit_of(r)
    codes, _, cohorts = refit.unit_cohorts()
    rng = np.random.default_rng(0)
    for kind in ("wald", "t2sum"):  # draw by draw: batched statistic = the full refit's
        stat = pretrend._batched_event_twfe(refit, kind, 0)
        for _ in range(3):
            perm = rng.permutation(cohorts)
            full_stat = pretrend._statistic(refit.fit(refit.permuted(perm[codes])), kind, 0)
            assert stat(perm) == pytest.approx(full_stat, rel=1e-9)
    fast = pretrend_test(r, method="permutation", draws=49, seed=11)
    assert any("batched" in n for n in fast.notes)
    monkeypatch.setattr(pretrend, "_batched_event_twfe", lambda *a: None)
    full = pretrend_test(r, method="permutation", draws=49, seed=11)
    assert not any("batched" in n for n in full.notes)
    assert fast.ok and full.ok and fast.draws_valid == full.draws_valid == 49
    assert fast.p_value == full.p_value and fast.statistic == full.statistic and 1 / 50 < fast.p_value < 1
    assert fast.stat == pytest.approx(full.stat, rel=1e-12)
    assert fast.statistic == ("wald" if leads == 3 else "t2sum")


def _imp(panel, **kw):
    from evalkit.estimators import get_estimator

    return get_estimator("imputation")(panel, "y", **kw)


@pytest.mark.parametrize("kw", [{}, {"anticipation": 1, "pretrend_leads": 4}, {"cluster": "county", "weights": "w"}])
def test_imputation_permutation_batched_equals_full_refits(monkeypatch, kw):
    import evalkit.inference.pretrend as pt

    panel = noise_panel([2, 3, 3], 10, seed=5, T=20, first=24230)
    codes = panel["station_id"].astype("category").cat.codes.to_numpy()
    panel["county"], panel["w"] = codes % 6, 1.0 + codes % 3
    r = _imp(panel, **kw)
    fast = pretrend_test(r, method="permutation", draws=29, seed=3)
    assert fast.ok and any("BJS test 1 alone" in n for n in fast.notes)
    monkeypatch.setattr(pt, "_batched_imputation", lambda *a, **k: None)
    slow = pretrend_test(r, method="permutation", draws=29, seed=3)
    assert not any("BJS test 1 alone" in n for n in slow.notes)
    assert fast.p_value == pytest.approx(slow.p_value, abs=1e-12)
    assert (fast.draws_valid, fast.statistic, fast.df) == (slow.draws_valid, slow.statistic, slow.df)


def test_imputation_permutation_in_a_14_station_county():
    # 14 stations (6 adopters in cohorts of 2, 8 never), 36 months: BJS test 1 on the untreated rows
    panel = noise_panel([2, 2, 2], 8, seed=11, T=36, first=24230)
    assert panel["station_id"].nunique() == 14
    r = _imp(panel)
    t = pretrend_test(r, method="auto", draws=199, seed=0)
    assert t.ok and t.test == "permutation" and t.estimator == "imputation"
    assert np.isfinite(t.p_value) and 1 / 200 <= t.p_value <= 1 and t.draws_valid >= 190


@pytest.mark.parametrize("kw", [{}, {"control": "notyet", "base_period": "universal"}, {"trim_e": (-5, 6)}])
def test_cs_permutation_fast_equals_full_refits(monkeypatch, kw):
    import evalkit.inference.pretrend as pt

    for sizes, n_never in (([3, 3], 12), ([6, 6, 5], 14)):  # Σ t² (few treated) and the Wald statistic
        r = _cs(noise_panel(sizes, n_never, seed=2, T=14, first=24230), **kw)
        fast = pretrend_test(r, method="permutation", draws=29, seed=3)
        assert fast.ok and any("cs_pretrend" in n for n in fast.notes)
        with monkeypatch.context() as mp:
            mp.setattr(pt, "_batched_cs", lambda *a, **k: None)
            slow = pretrend_test(r, method="permutation", draws=29, seed=3)
        assert not any("cs_pretrend" in n for n in slow.notes)
        assert fast.p_value == pytest.approx(slow.p_value, abs=1e-12)
        assert (fast.draws_valid, fast.statistic, fast.df) == (slow.draws_valid, slow.statistic, slow.df)


@pytest.mark.parametrize("holes", [False, True])
def test_imputation_observed_statistic_without_its_refit(monkeypatch, holes):
    """The observed statistic comes from the fit itself when its re-fit would reproduce it
    (_refit.is_own_refit): same statistic bit for bit, same test result as with the re-fit."""
    import evalkit.inference.pretrend as pt
    from evalkit.inference._refit import is_own_refit, refit_of

    panel = noise_panel([2, 3, 3], 10, seed=5, T=20, first=24230)
    if holes:  # an unbalanced sample
        panel = panel.drop(index=panel.index[::17]).reset_index(drop=True)
    r = _imp(panel, pretrend_leads=4)
    rf = refit_of(r)
    assert rf.sample.info.balanced is not holes and is_own_refit(rf, r)
    for kind in ("wald", "t2sum"):
        assert pt._statistic(r, kind, 0) == pt._statistic(rf.fit(pretrend=True), kind, 0)
    own = pretrend_test(r, method="permutation", draws=19, seed=2)
    monkeypatch.setattr(pt, "is_own_refit", lambda *a: False)
    refitted = pretrend_test(r, method="permutation", draws=19, seed=2)
    assert own.ok and own.to_dict() == refitted.to_dict()
    # not the fit's own any more: a small-sample test attached, or an option a re-fit drops
    assert not is_own_refit(rf, r.with_inference("pretrend", own))
    assert not is_own_refit(rf.__class__(**{**rf.__dict__, "options": {**rf.options, "bootstrap": 99}}), r)
