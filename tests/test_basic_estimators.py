"""Naive, 2x2 and TWFE estimators on panels with planted effects."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.did2x2 import estimate_did2x2
from evalkit.estimators.naive import estimate_naive_yoy
from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe
from evalkit.results import EstimationResult


def planted_panel(n_units=120, n_periods=36, effect=-3.0, seed=1, cohorts=(12, 18, 24), trend=0.2):
    """Staggered panel: y = unit FE + time FE (+trend) + effect·D + noise; 1/4 never treated."""
    rng = np.random.default_rng(seed)
    units = np.arange(n_units)
    first = np.where(units % 4 == 0, 0, np.array(cohorts)[units % len(cohorts)])
    t = np.arange(1, n_periods + 1)
    uu, tt = np.meshgrid(units, t, indexing="ij")
    ff = first[uu]
    d = (ff > 0) & (tt >= ff)
    y = 20 + rng.normal(0, 3, n_units)[uu] + trend * tt + np.sin(tt) + effect * d + rng.normal(0, 1, uu.shape)
    return pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(), "y": y.ravel()})


def test_twfe_recovers_constant_effect():
    p = planted_panel()
    r = estimate_twfe(p, "y")
    assert r.overall["ci_low"] <= -3.0 <= r.overall["ci_high"]
    assert abs(r.att + 3.0) < 0.1
    assert r.meta["n_treated"] == 90 and r.meta["n_control"] == 30 and r.meta["n_clusters"] == 120


def test_event_twfe_flat_pretrends_and_effect():
    p = planted_panel()
    r = estimate_event_twfe(p, "y", leads=6, lags=6)
    ev = r.event_study().set_index("event_time")
    assert ev.loc[-1, "estimate"] == 0.0
    assert np.all(np.abs(ev.loc[-6:-2, "estimate"]) < 0.5)
    assert np.all(np.abs(ev.loc[0:6, "estimate"] + 3.0) < 0.5)
    assert r.meta["pretrend"]["df"] == 5 and r.meta["pretrend"]["p_value"] > 0.001
    assert r.vcov["event"].shape == (12, 12)


def test_did2x2_equals_difference_of_four_means():
    p = planted_panel(effect=-2.0)
    p.loc[p.sample(frac=0.05, random_state=3).index, "y"] = np.nan  # unbalanced: still exact
    r = estimate_did2x2(p, "y", treated_cohort=18, window=6)
    d = p[p.first_treat.isin([0, 18]) & p.period.between(12, 23)].dropna(subset=["y"])
    m = d.groupby([d.first_treat == 18, d.period >= 18])["y"].mean()
    hand = (m[(True, True)] - m[(True, False)]) - (m[(False, True)] - m[(False, False)])
    assert r.att == pytest.approx(hand, abs=1e-12)
    assert r.meta["treated_cohort"] == 18 and r.meta["n_control_used"] == 30
    assert r.overall["ci_low"] <= -2.0 <= r.overall["ci_high"]


def test_naive_mixes_trend_with_effect():
    p = planted_panel(effect=-2.0, trend=0.5)
    r = estimate_naive_yoy(p, "y", window=6)
    # the naive figure picks up 6 months of trend (0.5/month) on top of the effect
    assert r.att == pytest.approx(-2.0 + 0.5 * 6, abs=0.4)
    assert r.meta["pct_change"] == pytest.approx(100 * r.att / r.meta["mean_before"])


def test_result_json_roundtrip(tmp_path):
    r = estimate_event_twfe(planted_panel(), "y", leads=3, lags=3)
    path = tmp_path / "r.json"
    r.to_json(path)
    back = EstimationResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    pd.testing.assert_frame_equal(back.estimates, r.estimates)
    np.testing.assert_allclose(back.vcov["event"].to_numpy(), r.vcov["event"].to_numpy())
    assert back.meta["pretrend"]["df"] == r.meta["pretrend"]["df"]
    assert "e=0" in r.summary()
