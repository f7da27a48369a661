"""Delete-one-cluster jackknife for the headline estimate (evalkit.inference.jackknife)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.estimators import get_estimator
from evalkit.evaluation_steps import small_sample_headline_se
from evalkit.inference import jackknife


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
    r = cs(panel, "y")
    jk = jackknife(r)
    thetas = [float(cs(panel[panel.station_id != s], "y").overall["estimate"]) for s in panel.station_id.unique()]
    n = len(thetas)
    se = np.sqrt((n - 1) / n * np.sum((np.array(thetas) - np.mean(thetas)) ** 2))
    assert jk.ok and jk.std_error == pytest.approx(se, rel=1e-12)
    assert jk.n_clusters == n == 14 and jk.df == 13
    est = float(r.overall["estimate"])
    crit = stats.t.ppf(0.975, 13)
    assert jk.ci_low == pytest.approx(est - crit * se) and jk.ci_high == pytest.approx(est + crit * se)
    assert jk.p_value == pytest.approx(2 * stats.t.sf(abs(est) / se, 13))


def _params(**kw):
    return SimpleNamespace(**({"headline": "cs", "headline_se": "jackknife", "cluster": "station_id",
                               "alpha": 0.05} | kw))


def test_cluster_level_and_apply():
    """The evaluation step puts the jackknife on a copy of the headline row; the fit is unchanged."""
    panel = _panel(1)
    r = get_estimator("cs")(panel, "y", cluster="county")
    analytic = r.overall.copy()
    jk = jackknife(r)
    assert jk.cluster == "county" and jk.n_clusters == 5
    res = {"cs": r}
    small_sample_headline_se(panel, "y", _params(cluster="county"), res)
    out = res["cs"]
    assert out is not r and float(r.overall["std_error"]) == float(analytic["std_error"]) and r.inference == {}
    assert float(out.overall["std_error"]) == jk.std_error and float(out.overall["estimate"]) == analytic["estimate"]
    assert float(out.overall["p_value"]) == jk.p_value
    assert out.meta["analytic_overall"]["std_error"] == pytest.approx(float(analytic["std_error"]))
    assert out.meta["headline_se"]["method"] == "jackknife" and out.meta["headline_se"]["df"] == 4
    assert out.inference["jackknife"].to_dict() == jk.to_dict()


def test_errors():
    panel = _panel()
    r = get_estimator("cs")(panel, "y")
    bad = jackknife(r, cluster="city")
    assert bad.status == "failed" and "'city' is not in the sample" in bad.reason
    one = panel[~panel.station_id.isin([f"s{i:02d}" for i in range(9, 14)])]  # s08 is the only adopter
    r1 = get_estimator("cs")(one, "y")
    jk1 = jackknife(r1)
    assert jk1.status == "not_available" and np.isnan(jk1.p_value)
    assert "only 1 station_id adopts (s08)" in jk1.reason and "single-station design" in jk1.reason
    two = panel[panel.station_id.isin(["s00", "s09"])]
    jk2 = jackknife(get_estimator("cs")(two, "y"))
    assert jk2.status == "not_available" and "at least 3" in jk2.reason


def test_not_available_jackknife_keeps_the_analytic_se_with_its_reason():
    panel = _panel()
    one = panel[~panel.station_id.isin([f"s{i:02d}" for i in range(9, 14)])]
    r = get_estimator("cs")(one, "y")
    res = {"cs": r}
    small_sample_headline_se(one, "y", _params(), res)
    out = res["cs"]
    hs = out.meta["headline_se"]
    assert hs["method"] == "analytic" and hs["jackknife_status"] == "not_available"
    assert "single-station design" in hs["jackknife_error"]
    assert float(out.overall["p_value"]) == float(r.overall["p_value"])  # the verdict reads the analytic p-value
    assert out.inference["jackknife"].status == "not_available" and "headline_se" not in r.meta
