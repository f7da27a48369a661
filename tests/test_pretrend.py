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


def test_methods_and_determinism():
    panel = _noise_panel([1, 2, 3], 12, seed=1)
    opts = {"min_e": -6, "max_e": 6}
    a = pretrend_test(panel, "y", "cs", opts, method="permutation", draws=39, seed=7)
    b = pretrend_test(panel, "y", "cs", opts, method="permutation", draws=39, seed=7)
    assert a == b and a["method"] == "permutation" and a["draws"] == 39
    assert a["p_value"] == a["p_permutation"] and 1 / 40 <= a["p_value"] <= 1
    assert a["df"] == 6 and a["n_treated"] == 6  # varying base: leads -6..-1
    chi = pretrend_test(panel, "y", "cs", opts, method="chi2")
    assert chi["p_value"] == chi["p_chi2"] == pytest.approx(stats.chi2.sf(chi["stat"], chi["df"]))
    # "f" is undefined with 6 treated stations and 6 leads: an error with the reason, never another test
    with pytest.raises(ValueError, match=r"Hotelling's F needs more treated stations than leads \+ 1 \(6 treated, 6 leads\)"):
        pretrend_test(panel, "y", "cs", opts, method="f", draws=19)
    assert pretrend_test(panel, "y", "cs", opts, method="auto", draws=19)["method"] == "permutation"
    with pytest.raises(ValueError, match="unknown pre-trend test"):
        pretrend_test(panel, "y", "cs", opts, method="bogus")


def test_pure_noise_chi2_overrejects_permutation_does_not():
    """9 treated stations in cohorts of 1, 1, 4, 3 (the demo placebo's shape), iid noise, 8 leads."""
    chi, perm = [], []
    for r in range(12):
        t = pretrend_test(_noise_panel([1, 1, 4, 3], 26, seed=100 + r), "y", "cs", {"min_e": -8, "max_e": 6},
                          method="permutation", draws=39, seed=r)
        chi.append(t["p_chi2"] < 0.05)
        perm.append(t["p_permutation"] < 0.05)
    assert np.mean(chi) >= 0.5  # the textbook test is badly oversized here (93 % in the benchmark)
    assert np.mean(perm) <= 0.25  # nominal 5 %; 12 draws leave room for Monte Carlo noise


def test_other_estimators():
    panel = _noise_panel([4, 4], 10, seed=3)
    t = pretrend_test(panel, "y", "imputation", {"horizons": [0, 1, 2], "pretrend_leads": 4}, method="permutation",
                      draws=19, seed=0)
    assert t["estimator"] == "imputation" and t["draws"] == 19
