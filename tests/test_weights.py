"""Observation weights (fixest ``weights``) in every estimator whose reference implementation has them:
TWFE, event TWFE, Sun–Abraham (cells), Poisson.  Reference values: pyfixest 0.60.0, cached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.poisson import estimate_poisson
from evalkit.estimators.sunab import estimate_sunab
from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe
from fe_refs import CASTLE, load_castle, short_panel
from moderndid_refs import load_mpdta
from test_poisson import _panel

# pyfixest 0.60.0: fepois("y ~ D | station_id + period", weights="pop", vcov={"CRV1": cl}), tolerances 1e-12
POISSON_W = {None: (0.328013900235956, 0.0469231824746305), "district": (0.328013900235956, 0.0392796919538405)}


@pytest.mark.parametrize("w", [None, "popwt"])
def test_castle_doctrine_twfe(w):
    """Issue 13: TWFE of l_homicide on post with state and year effects: 0.0694 / 0.0755 (popwt)."""
    r = estimate_twfe(load_castle(), "l_homicide", unit="sid", time="year", cohort="effyear", weights=w)
    b, se, p = CASTLE[(w, "CRV1")]
    assert round(r.att, 4) == (0.0755 if w else 0.0694)
    assert r.att == pytest.approx(b, rel=1e-8)
    assert r.overall["std_error"] == pytest.approx(se, rel=1e-8)
    assert r.overall["p_value"] == pytest.approx(p, rel=1e-6)
    assert r.meta["weights"] == w and r.meta["inference"]["weighted"] == (w is not None)
    assert r.meta["n_treated"] + r.meta["n_control"] == 50


def test_constant_weights_change_nothing():
    d = short_panel()
    a = estimate_event_twfe(d, "y", leads=2, lags=2)
    b = estimate_event_twfe(d.assign(one=3.0), "y", leads=2, lags=2, weights="one")
    np.testing.assert_allclose(a.estimates["estimate"], b.estimates["estimate"], atol=1e-12)
    np.testing.assert_allclose(a.estimates["std_error"], b.estimates["std_error"], rtol=1e-10)


def test_bad_weights_raise_one_line():
    d = short_panel()
    d.loc[3, "pop"] = -1.0
    with pytest.raises(ValueError, match="pop"):
        estimate_twfe(d, "y", weights="pop")


@pytest.mark.parametrize("cluster", [None, "district"])
def test_weighted_poisson_equals_fixest(cluster):
    p = _panel()
    p["pop"] = np.random.default_rng(3).uniform(0.5, 4, p["station_id"].max() + 1)[p["station_id"]]
    r = estimate_poisson(p, "y", cluster=cluster, weights="pop")
    coef = r.rows("coef").set_index("term").loc["treated:post"]
    b, se = POISSON_W[cluster]
    assert coef["estimate"] == pytest.approx(b, abs=1e-8)
    assert coef["std_error"] == pytest.approx(se, rel=1e-6)
    assert r.meta["weights"] == "pop"


@pytest.mark.peers
def test_weighted_sunab_cells_equal_weighted_saturated_feols():
    """SA with weights: its cohort x event-time cells are the weighted saturated regression (pyfixest
    feols with cell dummies and weights), with equal CRV1 SEs; the event-time aggregation uses the
    cells' weight sums."""
    pf = pytest.importorskip("pyfixest")
    m = load_mpdta().rename(columns={"first.treat": "first_treat"})
    m["pw"] = np.exp(m["lpop"])
    r = estimate_sunab(m, "lemp", unit="countyreal", time="year", weights="pw")
    cells = r.tables["cells"]
    tr = m["first_treat"] > 0
    e = (m["year"] - m["first_treat"]).where(tr)
    lab = np.where(tr & (e != -1), m["first_treat"].astype(str) + "_" + e.fillna(0).astype(int).astype(str), "ref")
    d = m.assign(cell=lab)
    f = pf.feols("lemp ~ i(cell, ref='ref') | countyreal + year", data=d, weights="pw", vcov={"CRV1": "countyreal"})
    mine = {f"{int(g)}_{int(k)}": (b, s) for g, k, b, s in
            cells[["cohort", "event_time", "estimate", "std_error"]].itertuples(index=False)}
    for name, b, s in zip(f.coef().index, f.coef(), f.se(), strict=True):
        key = name.split("::")[1].rstrip("]")
        assert mine[key][0] == pytest.approx(b, abs=1e-8)
        assert mine[key][1] == pytest.approx(s, rel=1e-6)
    # aggregation: weight-sum shares of the cells
    ev = r.event_study().set_index("event_time")
    e0 = cells[cells["event_time"] == 0]
    assert ev.loc[0, "estimate"] == pytest.approx(float(np.average(e0["estimate"], weights=e0["n"])), abs=1e-12)
    wsum = pd.Series(m["pw"].to_numpy()).groupby(lab).sum()
    assert sorted(e0["n"]) == pytest.approx(sorted(wsum[[k for k in wsum.index if k.endswith("_0")]]))


# pyfixest 0.60.0: feols("y ~ tr*af", weights=w, vcov={"CRV1": "station_id"}) on the 2x2 window of
# planted_panel(effect=-2.0), cohort 18 vs never, periods 12..23; pop ~ U(1, 5) per station (seed 1)
DID2X2 = {None: (-2.05731402422922, 0.156604280777778), "pop": (-2.22376296198486, 0.144273700209754)}


@pytest.mark.parametrize("w", [None, "pop"])
def test_did2x2_equals_fixest(w):
    from evalkit.estimators.did2x2 import estimate_did2x2
    from test_basic_estimators import planted_panel

    p = planted_panel(effect=-2.0)
    p["pop"] = np.random.default_rng(1).uniform(1, 5, 120)[p["station_id"]]
    r = estimate_did2x2(p, "y", treated_cohort=18, window=6, weights=w)
    b, se = DID2X2[w]
    assert r.att == pytest.approx(b, abs=1e-10)
    assert r.overall["std_error"] == pytest.approx(se, rel=1e-8)
    m = r.meta["means"]
    assert r.att == pytest.approx((m["treated_after"] - m["treated_before"]) - (m["control_after"] - m["control_before"]),
                                  abs=1e-10)


def test_zero_weight_rows_are_left_out_as_in_fixest():
    """fixest removes observations with weight 0 (they would otherwise count in n and in G)."""
    d = load_castle()
    zero = d["sid"] == d["sid"].iloc[0]  # one whole state gets weight 0
    r0 = estimate_twfe(d.assign(popwt=d["popwt"].where(~zero, 0.0)), "l_homicide", unit="sid", time="year",
                       cohort="effyear", weights="popwt")
    r1 = estimate_twfe(d[~zero], "l_homicide", unit="sid", time="year", cohort="effyear", weights="popwt")
    assert r0.att == pytest.approx(r1.att, abs=1e-12)
    assert r0.overall["std_error"] == pytest.approx(r1.overall["std_error"], rel=1e-12)
    assert r0.meta["dropped_zero_weight"] == int(zero.sum()) and r0.meta["n_clusters"] == 49
