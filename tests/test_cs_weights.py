"""Weighted Callaway–Sant'Anna (R ``did``'s ``weightsname``) against moderndid on mpdta.

Reference numbers are cached below: ATT(g,t) and their SEs from ``moderndid.att_gt(...,
weightsname="pop")`` (0.2.0), and the simple / group / dynamic aggregations by R ``aggte``'s formulas
(weighted cohort shares ``pg = mean(w 1{G = g})``, weight influence ``w 1{G = g} - pg``) applied to
moderndid's weighted ATT(g,t) and influence functions (``moderndid_refs.r_aggte_weighted``; moderndid's
own ``aggte`` drops the weights, see there). ``test_cached_refs_are_moderndids`` re-derives them when
moderndid is installed. Weight: county population ``exp(lpop)`` (constant within county).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.cs import estimate_cs
from moderndid_refs import load_mpdta, r_aggte_weighted

KW = {"unit": "countyreal", "time": "year", "cohort": "first.treat"}

REF = {
    "never": {
        "ATT": (-0.018412580086603, 0.0136713076367548),
        "g=2004": (-0.0340680995071151, 0.0195772574088948),
        "g=2006": (0.0315415400069484, 0.0294877384962569),
        "g=2007": (-0.0472781669594784, 0.0162644269929872),
        "ATT_group": (-0.0258767398965663, 0.0123847792065791),
        "e=-3": (0.0189135875502643, 0.0120763635002893),
        "e=-2": (-0.0178357908819735, 0.0114104285636482),
        "e=-1": (0.00461108265829411, 0.0211405840452431),
        "e=0": (-0.0170098135161781, 0.0117749640307247),
        "e=1": (-0.00154970108979419, 0.0274829363785468),
        "e=2": (-0.0436428294650181, 0.0354787742977476),
        "e=3": (-0.0614860377041383, 0.023532423646403),
        "ATT_dynamic": (-0.0309220954437822, 0.0183260977414476),
        "g=2004,t=2004": (-0.00353023887130086, 0.0114394362744518),
        "g=2004,t=2005": (-0.0276132919880032, 0.0190564219529714),
        "g=2004,t=2006": (-0.0436428294650181, 0.0354787742977476),
        "g=2004,t=2007": (-0.0614860377041383, 0.023532423646403),
        "g=2006,t=2004": (-0.0111178523748015, 0.0284461997052038),
        "g=2006,t=2005": (0.0358347768086304, 0.0255783926027255),
        "g=2006,t=2006": (0.0532801520892587, 0.0298789593717672),
        "g=2006,t=2007": (0.00980292792463799, 0.0362406146304798),
        "g=2007,t=2004": (0.0189135875502643, 0.0120763635002893),
        "g=2007,t=2005": (-0.0205056623330399, 0.010806146296303),
        "g=2007,t=2006": (-0.0077979695412483, 0.0266768951721385),
        "g=2007,t=2007": (-0.0472781669594784, 0.0162644269929872),
    },
    "notyet": {
        "ATT": (-0.0182422500686654, 0.0132462616108158),
        "g=2004": (-0.0349663357459467, 0.0168513093714263),
        "g=2006": (0.0328570423626089, 0.0267675974477434),
        "g=2007": (-0.0472781669594784, 0.0162644269929872),
        "ATT_group": (-0.025642856828976, 0.0127746381009301),
        "e=-3": (0.0207848046417505, 0.0121419870808897),
        "e=-2": (-0.0239666209482028, 0.0117283468153575),
        "e=-1": (0.00657869688892463, 0.0211910543557927),
        "e=0": (-0.0168193528487592, 0.0125432557143305),
        "e=1": (-0.00229269200108661, 0.0275032391671126),
        "e=2": (-0.0404746648902094, 0.0274327535748905),
        "e=3": (-0.0614860377041383, 0.023532423646403),
        "ATT_dynamic": (-0.0302681868610484, 0.0159357906342361),
        "g=2004,t=2004": (-0.00784258421697523, 0.010385839658584),
        "g=2004,t=2005": (-0.0300620561724639, 0.0175577754464854),
        "g=2004,t=2006": (-0.0404746648902094, 0.0274327535748905),
        "g=2004,t=2007": (-0.0614860377041383, 0.023532423646403),
        "g=2006,t=2004": (-0.0174992235368082, 0.0279923206609683),
        "g=2006,t=2005": (0.0427533078341248, 0.0253457279696442),
        "g=2006,t=2006": (0.0559111568005797, 0.0226472513068109),
        "g=2006,t=2007": (0.00980292792463799, 0.0362406146304798),
        "g=2007,t=2004": (0.0207848046417505, 0.0121419870808897),
        "g=2007,t=2005": (-0.0265369213004536, 0.0115072905638731),
        "g=2007,t=2006": (-0.0077979695412483, 0.0266768951721385),
        "g=2007,t=2007": (-0.0472781669594784, 0.0162644269929872),
    },
}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    d = load_mpdta()
    d["pop"] = np.exp(d["lpop"])
    return d


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_weighted_cs_matches_moderndid(mpdta, control):
    res = estimate_cs(mpdta, "lemp", **KW, control=control, weights="pop")
    est = res.estimates.set_index("term")
    for term, (att, se) in REF[control].items():
        assert est.loc[term, "estimate"] == pytest.approx(att, abs=1e-12), term
        assert est.loc[term, "std_error"] == pytest.approx(se, abs=1e-12), term
    assert res.meta["weights"] == "pop"
    # the weights matter: the unweighted simple ATT is -0.0400
    assert abs(est.loc["ATT", "estimate"] - estimate_cs(mpdta, "lemp", **KW, control=control).att) > 0.01


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_cached_refs_are_moderndids(mpdta, control):
    moderndid = pytest.importorskip("moderndid")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp = moderndid.att_gt(mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                              weightsname="pop", control_group={"never": "nevertreated", "notyet": "notyettreated"}[control],
                              est_method="dr", boot=False, cband=False)
    # with weights moderndid orders the influence-function rows by cohort (never-treated last), then id
    u = mpdta.groupby("countyreal").first().reset_index()
    u["g"] = u["first.treat"].replace(0, np.inf).astype(float)
    u = u.sort_values(["g", "countyreal"], kind="stable")
    assert np.array_equal(np.asarray(mp.G, dtype=float), u["g"].to_numpy())
    ref = r_aggte_weighted(mp, u["g"].to_numpy(), u["pop"].to_numpy())
    for g, t, a, s in zip(mp.groups, mp.times, mp.att_gt, mp.se_gt, strict=True):
        ref[f"g={int(g)},t={int(t)}"] = (float(a), float(s))
    assert set(ref) == set(REF[control])
    for term, (att, se) in ref.items():
        assert REF[control][term] == pytest.approx((att, se), abs=1e-14), term


def test_constant_weights_equal_unweighted(mpdta):
    d = mpdta.assign(w=3.5)
    a = estimate_cs(d, "lemp", **KW, weights="w", cluster="state")
    b = estimate_cs(d, "lemp", **KW, cluster="state")
    np.testing.assert_allclose(a.estimates["estimate"], b.estimates["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.estimates["std_error"], b.estimates["std_error"], rtol=0, atol=1e-12)
    assert a.meta["pretrend"]["stat"] == pytest.approx(b.meta["pretrend"]["stat"], rel=1e-9)


def test_weighted_bootstrap_close_to_analytic(mpdta):
    a = estimate_cs(mpdta, "lemp", **KW, weights="pop", aggregations=("simple", "dynamic"))
    b = estimate_cs(mpdta, "lemp", **KW, weights="pop", aggregations=("simple", "dynamic"), bootstrap=999, seed=3)
    np.testing.assert_array_equal(a.estimates["estimate"], b.estimates["estimate"])
    assert b.se == pytest.approx(a.se, rel=0.15)
    assert b.meta["se_type"] == "multiplier bootstrap"


@pytest.mark.parametrize("bad, match", [
    ("vary", "varies within unit"),
    ("negative", "negative weight"),
    ("missing", "missing weight"),
    ("inf", "non-finite weight"),
])
def test_bad_weights_are_refused(mpdta, bad, match):
    d = mpdta.copy()
    if bad == "vary":
        d.loc[d.index[3], "pop"] += 1.0
    else:
        d.loc[d.index[3], "pop"] = {"negative": -1.0, "missing": np.nan, "inf": np.inf}[bad]
    with pytest.raises(ValueError, match=match) as e:
        estimate_cs(d, "lemp", **KW, weights="pop")
    assert "'pop'" in str(e.value) and "\n" not in str(e.value)


def test_weights_with_covariates_refused(mpdta):
    with pytest.raises(ValueError, match="weights with covariates"):
        estimate_cs(mpdta, "lemp", **KW, weights="pop", covariates=["lpop"])
