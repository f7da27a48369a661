"""Callaway–Sant'Anna: evalkit vs peer Python implementations (csdid, moderndid, diff-diff).

Test-only peers; skipped when not installed. Point estimates must agree to 1e-8 and analytic
(influence-function) SEs to 1e-6 wherever the methods coincide.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.cs import estimate_cs
from moderndid_refs import load_mpdta

pytestmark = pytest.mark.peers

KW = dict(unit="countyreal", time="year", cohort="first.treat")
SCENARIOS = {
    "never": {},
    "notyet": {"control": "notyet"},
    "universal": {"base_period": "universal"},
    "cov_dr": {"covariates": ["lpop"], "est_method": "dr"},
    "cov_ipw": {"covariates": ["lpop"], "est_method": "ipw"},
    "cov_reg": {"covariates": ["lpop"], "est_method": "reg"},
}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    # reference data from tests/data (source: tests/data/mpdta.SOURCE.md), not from a peer's install folder
    return load_mpdta().drop(columns="state")


def _ours(d, opts):
    res = estimate_cs(d, "lemp", **KW, **opts)
    gt = res.rows("gt")
    return res, gt


def _r_args(opts):
    return dict(
        control_group="notyettreated" if opts.get("control") == "notyet" else "nevertreated",
        est_method=opts.get("est_method", "dr"),
        base_period=opts.get("base_period", "varying"),
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_moderndid(mpdta, name):
    moderndid = pytest.importorskip("moderndid")
    opts = SCENARIOS[name]
    res, gt = _ours(mpdta, opts)
    a = _r_args(opts)
    xf = "~lpop" if opts.get("covariates") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp = moderndid.att_gt(mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                              xformla=xf, boot=False, cband=False, **a)
    assert np.allclose(mp.groups, gt["group"].astype(float)) and np.allclose(mp.times, gt["time"].astype(float))
    np.testing.assert_allclose(gt["estimate"], mp.att_gt, atol=1e-8)
    ok = ~np.isnan(gt["std_error"].to_numpy())
    np.testing.assert_allclose(gt["std_error"].to_numpy()[ok], np.asarray(mp.se_gt)[ok], atol=1e-6)
    est = res.estimates.set_index("term")
    for typ, kind, prefix, term in [("simple", None, None, "ATT"), ("group", "group", "g=", "ATT_group"),
                                    ("dynamic", "event", "e=", "ATT_dynamic"),
                                    ("calendar", "calendar", "t=", "ATT_calendar")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ag = moderndid.aggte(mp, type=typ, boot=False, cband=False)
        assert est.loc[term, "estimate"] == pytest.approx(ag.overall_att, abs=1e-8)
        assert est.loc[term, "std_error"] == pytest.approx(ag.overall_se, abs=1e-6)
        if kind is None:
            continue
        for e, att, se in zip(ag.event_times, ag.att_by_event, ag.se_by_event, strict=True):
            row = est.loc[f"{prefix}{int(e)}"]
            assert row["estimate"] == pytest.approx(att, abs=1e-8)
            if not np.isnan(row["std_error"]):
                assert row["std_error"] == pytest.approx(se, abs=1e-6)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_csdid(mpdta, name):
    pytest.importorskip("csdid")
    from csdid.att_gt import ATTgt

    opts = SCENARIOS[name]
    res, gt = _ours(mpdta, opts)
    a = _r_args(opts)
    xf = "lemp~lpop" if opts.get("covariates") else None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        obj = ATTgt(yname="lemp", tname="year", idname="countyreal", gname="first.treat", data=mpdta,
                    control_group=a["control_group"], xformla=xf)
        fit = obj.fit(est_method=a["est_method"], base_period=a["base_period"], bstrap=False)
        r = fit.results
        key = list(zip(np.asarray(r["group"], float), np.asarray(r["year"], float), strict=True))
        peer = pd.DataFrame({"att": np.asarray(r["att"], float), "se": np.asarray(r["se"], float)},
                            index=pd.MultiIndex.from_tuples(key))
        ours = gt.set_index([gt["group"].astype(float), gt["time"].astype(float)])
        common = ours.index.intersection(peer.index)
        assert len(common) >= 12
        np.testing.assert_allclose(ours.loc[common, "estimate"], peer.loc[common, "att"], atol=1e-8)
        ok = ~np.isnan(ours.loc[common, "std_error"].to_numpy())
        np.testing.assert_allclose(ours.loc[common, "std_error"].to_numpy()[ok],
                                   peer.loc[common, "se"].to_numpy()[ok], atol=1e-6)
        est = res.estimates.set_index("term")
        for typ, term in [("simple", "ATT"), ("group", "ATT_group"), ("dynamic", "ATT_dynamic"),
                          ("calendar", "ATT_calendar")]:
            ag = fit.aggte(typec=typ, bstrap=False).atte
            assert est.loc[term, "estimate"] == pytest.approx(float(ag["overall_att"]), abs=1e-8)
            assert est.loc[term, "std_error"] == pytest.approx(float(ag["overall_se"]), abs=1e-6)


@pytest.mark.parametrize("name", ["never", "notyet"])
def test_diff_diff(mpdta, name):
    dd = pytest.importorskip("diff_diff")
    opts = SCENARIOS[name]
    res, gt = _ours(mpdta, opts)
    cg = "not_yet_treated" if opts.get("control") == "notyet" else "never_treated"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = dd.CallawaySantAnna(control_group=cg).fit(mpdta, "lemp", "countyreal", "year", "first.treat",
                                                     aggregate="all")
    ours = gt.set_index([gt["group"].astype(int), gt["time"].astype(int)])
    for (g, t), v in r.group_time_effects.items():
        assert ours.loc[(int(g), int(t)), "estimate"] == pytest.approx(v["effect"], abs=1e-8)
        assert ours.loc[(int(g), int(t)), "std_error"] == pytest.approx(v["se"], abs=1e-6)
    assert res.att == pytest.approx(r.overall_att, abs=1e-8)
    assert res.se == pytest.approx(r.overall_se, abs=1e-6)
    ev = res.event_study().set_index("event_time")
    for e, v in r.event_study_effects.items():
        assert ev.loc[int(e), "estimate"] == pytest.approx(float(v["effect"]), abs=1e-8)
        assert ev.loc[int(e), "std_error"] == pytest.approx(float(v["se"]), abs=1e-6)


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_moderndid_without_never_treated(mpdta, control):
    """No never-treated units: R did / moderndid drop periods from the last cohort's start on and
    (never) use the last cohort as comparison group, or (not yet) keep it as a treated cohort."""
    moderndid = pytest.importorskip("moderndid")
    d = mpdta[mpdta["first.treat"] > 0]
    with pytest.warns(UserWarning, match="No never-treated"):
        res = estimate_cs(d, "lemp", **KW, control=control)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp = moderndid.att_gt(d, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                              control_group="notyettreated" if control == "notyet" else "nevertreated",
                              boot=False, cband=False)
        gt = res.rows("gt")
        np.testing.assert_allclose(gt["estimate"], mp.att_gt, atol=1e-8)
        np.testing.assert_allclose(gt["std_error"], mp.se_gt, atol=1e-6)
        est = res.estimates.set_index("term")  # the headline ("overall") and the other aggregations ("aggregate")
        for typ, term in [("simple", "ATT"), ("group", "ATT_group"), ("dynamic", "ATT_dynamic"),
                          ("calendar", "ATT_calendar")]:
            ag = moderndid.aggte(mp, type=typ, boot=False, cband=False)
            assert est.loc[term, "estimate"] == pytest.approx(ag.overall_att, abs=1e-8)
            assert est.loc[term, "std_error"] == pytest.approx(ag.overall_se, abs=1e-6)
