"""Simulated power and MDE from a panel's own residual paths."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from evalkit.design import mde, power_curve, power_table
from evalkit.viz.power import plot_power

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def counts():
    """Station x month incident counts: station levels, seasonality, AR(1) shocks, Poisson noise."""
    rng = np.random.default_rng(0)
    n, T = 120, 48
    lvl = rng.gamma(5, 20, n)
    ar = np.zeros((n, T))
    e = rng.normal(0, 1, (n, T))
    for t in range(T):
        ar[:, t] = (0.5 * ar[:, t - 1] if t else 0) + e[:, t]
    mu = lvl[:, None] * (1 + 0.1 * np.sin(np.arange(T) * 2 * np.pi / 12))[None, :] * np.exp(0.05 * ar)
    uu, tt = np.meshgrid(np.arange(n), np.arange(T), indexing="ij")
    return pd.DataFrame({"station_id": uu.ravel(), "period": 24000 + tt.ravel(), "first_treat": 0,
                         "incidents": rng.poisson(mu).ravel().astype(float)})


def test_power_monotone_and_size(counts):
    df = power_curve(counts, "incidents", effects_pct=[0, 2, 5, 10], n_treated=[5, 20], n_months_post=12,
                     sims=400, seed=1)
    assert len(df) == 8 and {"effect_pct", "n_treated", "power", "mc_se"} <= set(df.columns)
    for _, g in df.groupby("n_treated"):
        assert np.all(np.diff(g.sort_values("effect_pct").power.to_numpy()) >= -0.02)
    wide = df.pivot(index="effect_pct", columns="n_treated", values="power")
    assert np.all(wide.loc[[5, 10], 20] >= wide.loc[[5, 10], 5])
    size = df[df.effect_pct == 0].power
    assert np.all(np.abs(size - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 400) + 1e-9)  # exact-size RI
    assert df[df.effect_pct == 10].power.min() > 0.8
    # the planted percent effect is recovered on average
    big = df[(df.effect_pct == 10)]
    assert np.all(np.abs(big.mean_estimate_pct - 10) < 1.0)


def test_single_pilot_design(counts):
    df = power_curve(counts, "incidents", effects_pct=[0, 10, 30], design="single", n_months_post=12, sims=400,
                     seed=2)
    assert (df.n_treated == 1).all()
    assert abs(df.power.iloc[0] - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 400)
    assert df.power.iloc[2] > df.power.iloc[1] > df.power.iloc[0]
    # a single pilot among 15 stations can never reach p <= 0.05 (minimum p = 1/15)
    small = power_curve(counts, "incidents", effects_pct=[50], design="single", n_stations=15, n_months_post=12,
                        sims=50, seed=2)
    assert small.power.iloc[0] == 0.0


def test_mde_decreases_with_n_and_deterministic(counts):
    m = [mde(counts, "incidents", n_treated=n, n_months_post=12, sims=200, seed=3) for n in (5, 10, 40)]
    assert m[0] > m[1] > m[2] > 0
    assert mde(counts, "incidents", n_treated=10, n_months_post=12, sims=200, seed=3) == m[1]
    pw = power_curve(counts, "incidents", effects_pct=[m[1]], n_treated=[10], n_months_post=12, sims=200, seed=3)
    assert pw.power.iloc[0] >= 0.8


def test_cluster_inference_option_and_outputs(counts):
    df = power_curve(counts, "incidents", effects_pct=[0, 5], n_treated=[40], n_months_post=[6, 12],
                     sims=200, seed=4, inference="cluster")
    assert set(df.n_months_post) == {6, 12}
    assert df[df.effect_pct == 0].power.max() < 0.15
    t_zh = power_table(df, "zh")
    assert t_zh.index.name == "效果" and all("%" in v for v in t_zh.to_numpy().ravel())
    t_en = power_table(df, "en")
    assert "40 treated / 6m" in t_en.columns
    ax = plot_power(df, lang="zh")
    assert "功效" in ax.get_ylabel()
    ax = plot_power(df, lang="en")
    assert "power" in ax.get_ylabel()
