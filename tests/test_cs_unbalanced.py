"""Callaway–Sant'Anna with ``allow_unbalanced=True`` (R did ``allow_unbalanced_panel = TRUE``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _cs_unbalanced
from evalkit.estimators.cs import estimate_cs
from moderndid_refs import assert_aggregations_match, load_mpdta, with_holes

KW = dict(unit="countyreal", time="year", cohort="first.treat")
RC = "repeated cross sections (R did allow_unbalanced_panel)"
SCENARIOS = {"never": {}, "notyet": {"control": "notyet"}, "universal": {"base_period": "universal"}}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return load_mpdta()


@pytest.fixture(scope="module")
def holes(mpdta) -> pd.DataFrame:
    """mpdta with 10% of the rows deleted at random (fixed seed)."""
    return with_holes(mpdta)


@pytest.fixture
def force_rc(monkeypatch):
    monkeypatch.setattr(_cs_unbalanced, "FORCE_RC", True)


def _brute_att(d, g, t, b, control):
    """Per-(g,t) difference of means over the observed rows, straight from the long data."""
    gg = d["first.treat"]
    ctrl = gg == 0
    if control == "notyet":
        ctrl |= (gg > max(t, b)) & (gg != g)
    m = lambda sel, per: d.loc[sel & (d["year"] == per), "lemp"].mean()  # noqa: E731
    tr = gg == g
    return (m(tr, t) - m(tr, b)) - (m(ctrl, t) - m(ctrl, b))


@pytest.mark.parametrize("opts", [{}, {"control": "notyet"}])
def test_balanced_panel_rc_path_equals_panel_estimator(mpdta, force_rc, opts):
    """On a balanced panel the unit-summed RC influence function equals the panel one exactly."""
    bal = estimate_cs(mpdta, "lemp", **KW, **opts)
    rc = estimate_cs(mpdta, "lemp", **KW, allow_unbalanced=True, **opts)
    assert rc.meta["unbalanced_handling"] == RC
    np.testing.assert_allclose(rc.estimates["estimate"], bal.estimates["estimate"], atol=1e-12)
    se_b, se_r = bal.estimates["std_error"].to_numpy(), rc.estimates["std_error"].to_numpy()
    assert np.array_equal(np.isnan(se_b), np.isnan(se_r))
    np.testing.assert_allclose(se_r, se_b, rtol=1e-10, equal_nan=True)


def test_balanced_panel_default_dispatch(mpdta):
    """R did >= 2.2: allow_unbalanced_panel on a balanced panel runs the panel estimator."""
    res = estimate_cs(mpdta, "lemp", **KW, allow_unbalanced=True)
    assert res.meta["unbalanced_handling"].startswith("balanced panel")
    ref = estimate_cs(mpdta, "lemp", **KW)
    np.testing.assert_allclose(res.estimates["estimate"], ref.estimates["estimate"], atol=0)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_brute_force_difference_of_means(holes, name):
    opts = SCENARIOS[name]
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, **opts)
    gt = res.rows("gt")
    periods = np.sort(holes["year"].unique())
    for r in gt.itertuples():
        g, t = int(r.group), int(r.time)
        pre = periods[periods < g]
        if opts.get("base_period") == "universal":
            b = pre[-1]
        else:
            b = pre[-1] if g <= t else periods[np.searchsorted(periods, t) - 1]
        if b == t:
            assert r.estimate == 0
            continue
        assert r.estimate == pytest.approx(_brute_att(holes, g, t, b, opts.get("control", "never")), abs=1e-12)


def test_meta_counts(holes, mpdta):
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True)
    m = res.meta
    assert m["unbalanced_handling"] == RC
    assert m["n_units"] == holes["countyreal"].nunique() == 500
    assert m["n_obs"] == len(holes)
    assert m["n_obs_used"] == len(holes)  # never-treated control: every row enters some ATT(g,t)
    assert m["n_units_dropped_unbalanced"] == 0
    assert m["n_units_unbalanced"] == int((holes.groupby("countyreal").size() < 5).sum())
    # missing outcomes count as unobserved rows; a unit with none observed leaves the sample
    d = mpdta.copy()
    d.loc[d["countyreal"] == 8001, "lemp"] = np.nan
    d.loc[d.index[5], "lemp"] = np.nan
    r2 = estimate_cs(d, "lemp", **KW, allow_unbalanced=True)
    assert r2.meta["unbalanced_handling"] == RC
    assert r2.meta["n_obs_missing_dropped"] == 6 and r2.meta["n_units_no_observed_outcome"] == 1
    assert r2.meta["n_units"] == 499 and r2.meta["n_obs"] == len(d) - 6
    r3 = estimate_cs(d.dropna(subset=["lemp"]), "lemp", **KW, allow_unbalanced=True)
    np.testing.assert_allclose(r2.estimates["estimate"], r3.estimates["estimate"], atol=1e-13)
    np.testing.assert_allclose(r2.estimates["std_error"], r3.estimates["std_error"], atol=1e-13)


def _peer(holes, opts):
    moderndid = pytest.importorskip("moderndid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # moderndid 0.2.0: panel=True + allow_unbalanced_panel=True crashes on an unbalanced panel
        # (outcomes_tensor is None); panel=False with idname set is R's unbalanced path
        # (.rowid = idname, n = number of units, IF summed by unit)
        return moderndid.att_gt(holes, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                                boot=False, cband=False, allow_unbalanced_panel=True, panel=False,
                                control_group="notyettreated" if opts.get("control") == "notyet" else "nevertreated",
                                base_period=opts.get("base_period", "varying"))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_moderndid_unbalanced(holes, name):
    pytest.importorskip("moderndid")
    opts = SCENARIOS[name]
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, **opts)
    gt = res.rows("gt")
    mp = _peer(holes, opts)
    assert np.allclose(mp.groups, gt["group"].astype(float)) and np.allclose(mp.times, gt["time"].astype(float))
    np.testing.assert_allclose(gt["estimate"], mp.att_gt, atol=1e-8)
    ok = ~np.isnan(gt["std_error"].to_numpy())
    np.testing.assert_allclose(gt["std_error"].to_numpy()[ok], np.asarray(mp.se_gt)[ok], atol=1e-6)

    # SEs: R's aggte formula on the peer's unit-level influence functions
    assert_aggregations_match(res, mp, holes, atol_se=1e-10)


def test_influence_functions_and_cluster(holes):
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True)
    inf = res._influence.matrix("event")
    assert inf.shape == (500, len(res.rows("event")))
    se = np.sqrt((inf.to_numpy() ** 2).sum(axis=0)) / 500
    np.testing.assert_allclose(se, res.rows("event")["std_error"], rtol=1e-10)
    cl = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, cluster="state")
    np.testing.assert_allclose(cl.estimates["estimate"], res.estimates["estimate"], atol=1e-13)
    assert cl.meta["n_clusters"] == holes["state"].nunique()
    assert np.isfinite(cl.estimates["std_error"].to_numpy()).all()
    # clustering at the unit level is the default (R: idname)
    un = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, cluster="countyreal")
    np.testing.assert_allclose(un.estimates["std_error"], res.estimates["std_error"], rtol=1e-12)


def test_bootstrap_unbalanced(holes):
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True)
    boot = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, bootstrap=999, seed=3)
    a, b = res.rows("event")["std_error"].to_numpy(), boot.rows("event")["std_error"].to_numpy()
    np.testing.assert_allclose(b, a, rtol=0.15)
    ev = boot.rows("event")
    assert (ev["band_low"] < ev["estimate"]).all() and (ev["band_high"] > ev["estimate"]).all()
    assert boot.meta["crit_val"]["event"] > 1.96


def test_covariates_on_the_unbalanced_path_run(holes):
    """Covariates with allow_unbalanced: DRDID repeated-cross-section estimators per cell (the numbers
    are checked against moderndid in tests/test_cs_rc.py)."""
    res = estimate_cs(holes, "lemp", **KW, allow_unbalanced=True, covariates=["lpop"])
    assert "covariates: DRDID" in res.meta["unbalanced_handling"]
    assert np.isfinite(res.rows("gt")["estimate"]).all() and np.isfinite(res.overall["std_error"])


def test_skipped_cell_without_observations(mpdta):
    """A cohort unobserved in some period: R reports NA for those ATT(g,t); we skip them."""
    d = mpdta[~((mpdta["first.treat"] == 2004) & (mpdta["year"] == 2005))]
    with pytest.warns(UserWarning, match="Skipped"):
        res = estimate_cs(d, "lemp", **KW, allow_unbalanced=True)
    skipped = res.meta["gt_skipped_no_observations"]
    assert skipped == ["g=2004,t=2005"]  # g=2004,t=2006 has base 2003: still estimable
    assert len(res.rows("gt")) == 11
    assert np.isfinite(res.estimates["estimate"]).all()
