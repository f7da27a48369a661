"""Goodman-Bacon decomposition: weighted 2x2s reproduce the TWFE coefficient (linearmodels
PanelOLS), SEs match pyfixest feols CR1, shared alternating-projection demeaning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _fe
from evalkit.estimators.bacon import estimate_bacon
from moderndid_refs import load_mpdta


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    m = load_mpdta()
    m["first_treat"] = m["first.treat"]
    m["D"] = ((m["year"] >= m["first_treat"]) & (m["first_treat"] > 0)).astype(float)
    return m


def _panelols(df, y, unit, time):
    lm = pytest.importorskip("linearmodels")
    d = df.set_index([unit, time])
    return float(lm.PanelOLS(d[y], d[["D"]], entity_effects=True, time_effects=True).fit().params["D"])


@pytest.fixture(scope="module")
def three_cohorts() -> pd.DataFrame:
    """3 timing cohorts + never + always treated, non-contiguous periods, heterogeneous effects."""
    rng = np.random.default_rng(7)
    n, times = 90, np.array([1, 2, 4, 5, 7, 8, 10, 13])
    g = rng.choice([0, 1, 4, 7, 10], size=n)
    df = pd.DataFrame([(i, t, g[i]) for i in range(n) for t in times], columns=["id", "t", "g"])
    df["D"] = ((df["t"] >= df["g"]) & (df["g"] > 0)).astype(float)
    df["y"] = rng.normal(size=len(df)) + df["D"] * (1 + 0.3 * (df["t"] - df["g"])) + 0.1 * df["id"] + 0.2 * df["t"]
    return df


def test_mpdta_sum_equals_twfe(mpdta):
    r = estimate_bacon(mpdta, "lemp", unit="countyreal", time="year")
    comp = r.tables["components"]
    assert list(comp.columns) == ["type", "treated_cohort", "control_cohort", "estimate", "weight"]
    assert comp["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    total = float((comp["estimate"] * comp["weight"]).sum())
    beta = _panelols(mpdta, "lemp", "countyreal", "year")
    assert total == pytest.approx(beta, abs=1e-10)
    assert r.att == pytest.approx(beta, abs=1e-10)
    assert r.att == pytest.approx(-0.0365, abs=5e-5)  # known mpdta TWFE coefficient
    cmp_rows = r.rows("component").set_index("term")
    assert set(cmp_rows.index) == {"earlier_vs_later", "later_vs_earlier", "treated_vs_never"}
    assert (cmp_rows["estimate"] * cmp_rows["weight"]).sum() == pytest.approx(beta, abs=1e-10)
    assert cmp_rows.loc["treated_vs_never", "weight"] == pytest.approx(0.862775, abs=1e-6)


def test_three_cohorts_with_always_treated(three_cohorts):
    """Units treated from the first period have no pre-period: the shared sample drops them
    (STATS-CONTRACT section 1, reason ``treated_from_first_period``), so Bacon decomposes the TWFE
    coefficient of the remaining units and has no ``treated_vs_always`` comparison."""
    r = estimate_bacon(three_cohorts, "y", unit="id", time="t", cohort="g")
    comp = r.tables["components"]
    kept = three_cohorts[three_cohorts["g"] != 1]
    beta = _panelols(kept, "y", "id", "t")
    assert comp["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert float((comp["estimate"] * comp["weight"]).sum()) == pytest.approx(beta, abs=1e-10)
    assert r.att == pytest.approx(beta, abs=1e-10)
    assert set(comp["type"]) == {"earlier_vs_later", "later_vs_earlier", "treated_vs_never"}
    # 3 timing cohorts: 3 pairs x 2 directions + 3 x never
    assert len(comp) == 9
    n_always = three_cohorts.loc[three_cohorts["g"] == 1, "id"].nunique()
    assert r.meta["sample"]["dropped_units"] == {"treated_from_first_period": n_always} and n_always > 0
    assert r.meta["n_always_treated"] == 0


def test_two_group_component_is_plain_did():
    rng = np.random.default_rng(3)
    times = np.arange(2000, 2006)
    df = pd.DataFrame([(i, t) for i in range(40) for t in times], columns=["id", "t"])
    df["g"] = np.where(df["id"] < 15, 2003, 0)
    df["y"] = rng.normal(size=len(df)) + (df["t"] >= df["g"]) * (df["g"] > 0) * 2.0
    r = estimate_bacon(df, "y", unit="id", time="t", cohort="g")
    comp = r.tables["components"]
    assert len(comp) == 1 and comp["weight"].iloc[0] == pytest.approx(1.0)
    tr, post = df["g"] > 0, df["t"] >= 2003
    did = (df.y[tr & post].mean() - df.y[tr & ~post].mean()) - (df.y[~tr & post].mean() - df.y[~tr & ~post].mean())
    assert comp["estimate"].iloc[0] == pytest.approx(did, abs=1e-12)
    assert r.att == pytest.approx(did, abs=1e-12)


@pytest.mark.peers
def test_se_matches_pyfixest(mpdta):
    pf = pytest.importorskip("pyfixest")
    r = estimate_bacon(mpdta, "lemp", unit="countyreal", time="year")
    fit = pf.feols("lemp ~ D | countyreal + year", data=mpdta, vcov={"CRV1": "countyreal"})
    assert r.se == pytest.approx(float(fit.se().iloc[0]), rel=1e-6)


def test_unbalanced_raises(mpdta):
    with pytest.raises(ValueError, match="balanced"):
        estimate_bacon(mpdta.iloc[1:], "lemp", unit="countyreal", time="year")


def test_alternating_projections_twfe(three_cohorts):
    """Shared helper: AP demeaning of an *unbalanced* panel reproduces PanelOLS's TWFE beta."""
    d = three_cohorts.sample(frac=0.85, random_state=1).sort_values(["id", "t"])
    u, _ = _fe.codes(d["id"])
    t, _ = _fe.codes(d["t"])
    X = _fe.demean(d[["y", "D"]].to_numpy(), [u, t], tol=1e-14)
    beta = float(X[:, 1] @ X[:, 0] / (X[:, 1] @ X[:, 1]))
    assert beta == pytest.approx(_panelols(d, "y", "id", "t"), abs=1e-9)
