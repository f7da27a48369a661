"""Delete-one-cluster jackknife for the headline estimate (evalkit.inference.jackknife)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.estimators import get_estimator
from evalkit.inference.jackknife import apply_jackknife, jackknife_overall


def _panel(seed=0, T=24):
    rng = np.random.default_rng(seed)
    ft = np.array([0] * 8 + [13] * 3 + [17] * 1 + [19] * 2)
    S = len(ft)
    y = rng.normal(0, 1, (S, 1)) + rng.normal(0, 1, (S, T))
    y += np.where((np.arange(1, T + 1)[None, :] >= ft[:, None]) & (ft[:, None] > 0), 2.0, 0.0)
    return pd.DataFrame({"station_id": np.repeat([f"s{i:02d}" for i in range(S)], T),
                         "period": np.tile(np.arange(1, T + 1), S), "first_treat": np.repeat(ft, T),
                         "county": np.repeat(np.arange(S) // 3, T), "y": y.ravel()})


def test_matches_a_hand_loop():
    panel = _panel()
    cs = get_estimator("cs")
    jk = jackknife_overall(panel, "y", "cs")
    thetas = [float(cs(panel[panel.station_id != s], "y").overall["estimate"]) for s in panel.station_id.unique()]
    n = len(thetas)
    se = np.sqrt((n - 1) / n * np.sum((np.array(thetas) - np.mean(thetas)) ** 2))
    assert jk["std_error"] == pytest.approx(se, rel=1e-12)
    assert jk["n_fits"] == n == 14 and jk["df"] == 13
    est = float(cs(panel, "y").overall["estimate"])
    crit = stats.t.ppf(0.975, 13)
    assert jk["ci_low"] == pytest.approx(est - crit * se) and jk["ci_high"] == pytest.approx(est + crit * se)
    assert jk["p_value"] == pytest.approx(2 * stats.t.sf(abs(est) / se, 13))


def test_cluster_level_and_apply():
    panel = _panel(1)
    r = get_estimator("cs")(panel, "y")
    analytic = r.overall.copy()
    jk = jackknife_overall(panel, "y", "cs", result=r, cluster="county")
    assert jk["cluster"] == "county" and jk["n_clusters"] == 5
    apply_jackknife(r, jk)
    assert float(r.overall["std_error"]) == jk["std_error"] and float(r.overall["estimate"]) == analytic["estimate"]
    assert r.meta["analytic_overall"]["std_error"] == pytest.approx(float(analytic["std_error"]))
    assert r.meta["headline_se"]["method"] == "jackknife"


def test_errors():
    panel = _panel()
    with pytest.raises(KeyError, match="not in the panel"):
        jackknife_overall(panel, "y", "cs", cluster="city")
    one = panel[~panel.station_id.isin([f"s{i:02d}" for i in range(9, 14)])]  # s08 is the only adopter
    with pytest.raises(ValueError, match=r"only 1 station_id adopts \(s08\).*single-station design"):
        jackknife_overall(one, "y", "cs")
    two = panel[panel.station_id.isin(["s00", "s09"])]
    with pytest.raises(ValueError, match="at least 3"):
        jackknife_overall(two, "y", "cs")
