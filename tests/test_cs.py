"""Callaway–Sant'Anna estimator vs R ``did`` reference values (mpdta).

Reference numbers: R ``did`` 2.x ``att_gt(..., bstrap = FALSE)`` / ``aggte(..., bstrap = FALSE)``
(analytic influence-function SEs) as published in the csdid repository's
``csdid/test_csdid/r_ref/{ref_attgt,ref_aggte,ref_pretest}.csv`` and ``r_ref/sim/ref_gaps.csv``
(cached here so the suite needs neither R nor a network).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.cs import estimate_cs
from moderndid_refs import load_mpdta

KW = dict(unit="countyreal", time="year", cohort="first.treat")

# scenario -> (options, gt reference "g,t,att,se")
R_ATTGT = {
    "nev": ({}, """
2004,2004,-0.0105032462209624,0.0232510363681664
2004,2005,-0.0704231581031467,0.0309847667572767
2004,2006,-0.137258738889403,0.0364356642876865
2004,2007,-0.100811363085404,0.0343592258346732
2006,2004,0.00652011242423301,0.0233268051418047
2006,2005,-0.00275081875051882,0.0195585610358817
2006,2006,-0.00459460695286304,0.0177551966592763
2006,2007,-0.0412244715462175,0.0202291807041068
2007,2004,0.0305066555832928,0.01503356028013
2007,2005,-0.00272589288611625,0.0163958328955344
2007,2006,-0.0310871193896889,0.0178775113133435
2007,2007,-0.0260544107191966,0.0166554353492522"""),
    "nyt": ({"control": "notyet"}, """
2004,2004,-0.0193723636759221,0.0223101128836806
2004,2005,-0.0783190990620607,0.0303902285433973
2004,2006,-0.136274346328678,0.03540338496891
2004,2007,-0.100811363085404,0.0343592258346732
2006,2004,-0.00256255094261098,0.0225302351453388
2006,2005,-0.00193924609578875,0.019042158605819
2006,2006,0.00466087631997615,0.0163355842468236
2006,2007,-0.0412244715462175,0.0202291807041068
2007,2004,0.0297593647610311,0.0145335416386514
2007,2005,-0.0024106128000969,0.0160312963755178
2007,2006,-0.0310871193896889,0.0178775113133435
2007,2007,-0.0260544107191966,0.0166554353492522"""),
    "reg_cov": ({"covariates": ["lpop"], "est_method": "reg"}, """
2004,2004,-0.014911237790361,0.0220556930763195
2004,2005,-0.0769963229660512,0.0283597455101496
2004,2006,-0.141080104628588,0.0348362869536185
2004,2007,-0.107544274673046,0.0327376926434119
2006,2004,-0.0020660581184395,0.022122286483578
2006,2005,-0.00696828306727072,0.0183457856293695
2006,2006,0.000765525026395888,0.0191959070328785
2006,2007,-0.0415356365293253,0.0197168736453729
2007,2004,0.0263658317469803,0.0140189493226751
2007,2005,-0.00475983533866949,0.0156699660373289
2007,2006,-0.028502106413859,0.0181320658924703
2007,2007,-0.0287894881938243,0.0161678672536918"""),
    "universal": ({"base_period": "universal"}, """
2004,2003,0,NA
2004,2004,-0.0105032462209624,0.0232510363681663
2004,2005,-0.0704231581031467,0.0309847667572767
2004,2006,-0.137258738889403,0.0364356642876865
2004,2007,-0.100811363085404,0.0343592258346732
2006,2003,-0.0037692936737142,0.0313420276018159
2006,2004,0.00275081875051881,0.0195585610358817
2006,2005,0,NA
2006,2006,-0.00459460695286304,0.0177551966592763
2006,2007,-0.0412244715462174,0.0202291807041068
2007,2003,0.00330635669251235,0.0244518729439318
2007,2004,0.0338130122758051,0.0211291749243127
2007,2005,0.0310871193896889,0.0178775113133435
2007,2006,0,NA
2007,2007,-0.0260544107191966,0.0166554353492522"""),
    "anticipation1": ({"anticipation": 1}, """
2006,2004,0.006520112424233,0.0233268051418047
2006,2005,-0.00275081875051881,0.0195585610358817
2006,2006,-0.00734542570338184,0.022942862267559
2006,2007,-0.0439752902967363,0.0265787670169677
2007,2004,0.0305066555832928,0.01503356028013
2007,2005,-0.00272589288611625,0.0163958328955344
2007,2006,-0.0310871193896889,0.0178775113133435
2007,2007,-0.0571415301088855,0.020210163218686"""),
    # state clusters (countyreal // 1000), R did >= 2.5 analytic cluster-robust SE
    "clustered": ({"cluster": "state"}, """
2004,2004,-0.0105032462209624,0.0121342668946805
2004,2005,-0.0704231581031467,0.0145095695302911
2004,2006,-0.137258738889403,0.0232019144104819
2004,2007,-0.100811363085404,0.020797887486524
2006,2004,0.006520112424233,0.0358483168279247
2006,2005,-0.00275081875051881,0.0208364837504074
2006,2006,-0.00459460695286304,0.0202838930271974
2006,2007,-0.0412244715462174,0.0271837236080214
2007,2004,0.0305066555832928,0.0165491903382581
2007,2005,-0.00272589288611625,0.0159728414781747
2007,2006,-0.0310871193896889,0.0266230339586743
2007,2007,-0.0260544107191966,0.0143442032201854"""),
}

# scenario -> (options, aggte reference "type,egt,att,se"; egt NA = overall)
R_AGGTE = {
    "nev": ({}, """
simple,NA,-0.0399512751551763,0.0120340127701854
group,NA,-0.0310182822287484,0.0124460593209979
group,2004,-0.0797491265747291,0.0263677994350273
group,2006,-0.0229095392495403,0.0167033302551619
group,2007,-0.0260544107191966,0.0166554353492522
dynamic,NA,-0.0772398214573151,0.0199649890618494
dynamic,-3,0.0305066555832928,0.01503356028013
dynamic,-2,-0.000563084626385429,0.01329164473655
dynamic,-1,-0.0244587449711696,0.0142364022105193
dynamic,0,-0.0199318167892593,0.0118263640580582
dynamic,1,-0.0509573670651939,0.016893476268678
dynamic,2,-0.137258738889403,0.0364356642876865
dynamic,3,-0.100811363085404,0.0343592258346733
calendar,NA,-0.0417004321312822,0.01597185188456
calendar,2004,-0.0105032462209624,0.0232510363681664
calendar,2005,-0.0704231581031467,0.0309847667572767
calendar,2006,-0.0488159842650431,0.0201258612605003
calendar,2007,-0.0370593399359766,0.0137470791411185"""),
    "nyt": ({"control": "notyet"}, """
simple,NA,-0.0397636256230437,0.0120524247873419
group,NA,-0.030462228112565,0.0125751201316818
group,2004,-0.0836942930380162,0.0257015997680069
group,2006,-0.0182817976131207,0.0159222358245001
group,2007,-0.0260544107191966,0.0166554353492522
dynamic,NA,-0.0773993139705847,0.0195601769463944
dynamic,-3,0.0297593647610311,0.0145335416386514
dynamic,-2,-0.00244615388606511,0.0131203504342708
dynamic,-1,-0.0242689034145076,0.0144636816758019
dynamic,0,-0.0189221990834249,0.0120445686892691
dynamic,1,-0.0535893473848319,0.016946385539125
dynamic,2,-0.136274346328678,0.03540338496891
dynamic,3,-0.100811363085404,0.0343592258346733
calendar,NA,-0.0442670834758837,0.0155709044211449
calendar,2004,-0.0193723636759221,0.0223101128836806
calendar,2005,-0.0783190990620607,0.0303902285433972
calendar,2006,-0.0423175312295752,0.0190562576431668
calendar,2007,-0.0370593399359766,0.0137470791411185"""),
    "reg_cov": ({"covariates": ["lpop"], "est_method": "reg"}, """
simple,NA,-0.0419686124215432,0.0114448297682151
group,NA,-0.0329292402290042,0.0118603087662617
group,2004,-0.0851329850145115,0.0242512163971128
group,2006,-0.0203850557514647,0.0174025032538199
group,2007,-0.0287894881938243,0.0161678672536918
dynamic,NA,-0.0807817453337615,0.0187458547114755
dynamic,-3,0.0263658317469803,0.0140189493226751
dynamic,-2,-0.00412971201229991,0.0129174707430671
dynamic,-1,-0.0234649547538384,0.0144416499564523
dynamic,0,-0.0211467366918448,0.0114810443929097
dynamic,1,-0.0533558653415673,0.0162930738253423
dynamic,2,-0.141080104628588,0.0348362869536185
dynamic,3,-0.107544274673046,0.032737692643412
calendar,NA,-0.0445323313531745,0.0148850278130483
calendar,2004,-0.014911237790361,0.0220556930763196
calendar,2005,-0.0769963229660512,0.0283597455101496
calendar,2006,-0.0465163515252653,0.020998373312028
calendar,2007,-0.0397054131310205,0.0128658596749845"""),
}
R_PRETEST_W = {"nev": 7.79123662720035, "nyt": 7.79092771882739, "reg_cov": 6.8612749537136}
OVERALL_TERM = {"simple": "ATT", "group": "ATT_group", "dynamic": "ATT_dynamic", "calendar": "ATT_calendar"}
KIND = {"group": ("group", "g="), "dynamic": ("event", "e="), "calendar": ("calendar", "t=")}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return load_mpdta()


def _csv(text: str, names: list[str]) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text.strip()), header=None, names=names, na_values="NA")


@pytest.mark.parametrize("scenario", list(R_ATTGT))
def test_attgt_matches_r(mpdta, scenario):
    opts, text = R_ATTGT[scenario]
    ref = _csv(text, ["g", "t", "att", "se"])
    with pytest.warns(UserWarning) if scenario == "anticipation1" else _nullcontext():
        res = estimate_cs(mpdta, "lemp", **KW, **opts)
    gt = res.rows("gt")
    assert list(gt["group"]) == list(ref["g"]) and list(gt["time"]) == list(ref["t"])
    np.testing.assert_allclose(gt["estimate"], ref["att"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(gt["std_error"], ref["se"], rtol=0, atol=1e-9)  # NaN where R has NA


@pytest.mark.parametrize("scenario", list(R_AGGTE))
def test_aggte_matches_r(mpdta, scenario):
    opts, text = R_AGGTE[scenario]
    ref = _csv(text, ["type", "egt", "att", "se"])
    res = estimate_cs(mpdta, "lemp", **KW, **opts)
    est = res.estimates.set_index("term")
    for r in ref.itertuples():
        if np.isnan(r.egt):
            row = est.loc[OVERALL_TERM[r.type]]
            assert row["kind"] == ("overall" if r.type == "simple" else "aggregate")  # one headline row
        else:
            kind, prefix = KIND[r.type]
            row = est.loc[f"{prefix}{int(r.egt)}"]
            assert row["kind"] == kind
        assert row["estimate"] == pytest.approx(r.att, abs=1e-10)
        assert row["std_error"] == pytest.approx(r.se, abs=1e-9)


def test_vignette_printed_numbers(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW)
    assert round(res.att, 6) == -0.039951
    assert round(res.se, 6) == 0.012034
    gt = res.rows("gt").set_index("term")
    assert round(gt.loc["g=2004,t=2004", "estimate"], 4) == -0.0105
    assert round(gt.loc["g=2004,t=2004", "std_error"], 4) == 0.0233
    ov = res.rows("aggregate").set_index("term")  # the aggregations other than the headline
    assert round(ov.loc["ATT_group", "estimate"], 6) == -0.031018
    assert round(ov.loc["ATT_dynamic", "estimate"], 6) == -0.077240
    assert res.overall["term"] == "ATT"


@pytest.mark.parametrize("scenario", list(R_PRETEST_W))
def test_gt_pretest_matches_r(mpdta, scenario):
    opts = R_ATTGT[scenario][0]
    res = estimate_cs(mpdta, "lemp", **KW, **opts)
    assert res.meta["pretrend_gt"]["stat"] == pytest.approx(R_PRETEST_W[scenario], rel=1e-9)
    assert res.meta["pretrend_gt"]["df"] == 5


def test_event_pretrend_and_vcov(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW)
    v = res.vcov["event"]
    ev = res.event_study()
    np.testing.assert_allclose(np.sqrt(np.diag(v.to_numpy())), ev["std_error"], rtol=1e-12)
    pre = ev[ev["event_time"] < 0]
    vp = v.loc[pre["term"], pre["term"]].to_numpy()
    b = pre["estimate"].to_numpy()
    stat = b @ np.linalg.solve(vp, b)
    assert res.meta["pretrend"]["stat"] == pytest.approx(stat)
    assert res.meta["pretrend"]["df"] == 3


def test_influence_functions_reproduce_se(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW)
    inf = res._influence.matrix("event")
    n = res.meta["n_units"]
    se = np.sqrt((inf**2).sum(axis=0)) / n
    np.testing.assert_allclose(se.to_numpy(), res.event_study()["std_error"], rtol=1e-10)
    np.testing.assert_allclose(inf.T @ inf / n**2, res.vcov["event"], rtol=1e-10, atol=1e-14)
    # dense path (covariates) gives the same influence-function object
    res2 = estimate_cs(mpdta, "lemp", covariates=["lpop"], **KW)
    inf2 = res2._influence.matrix("overall")
    assert np.sqrt((inf2["ATT"] ** 2).sum()) / n == pytest.approx(res2.se, rel=1e-10)


def test_meta(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW)
    m = res.meta
    assert (m["n_treated"], m["n_control"], m["n_obs"], m["n_periods"]) == (191, 309, 2500, 5)
    assert m["se_type"] == "influence function" and m["n_clusters"] == 500
    treated = mpdta[(mpdta["first.treat"] > 0) & (mpdta["year"] < mpdta["first.treat"])]
    assert m["baseline_mean"] == pytest.approx(treated["lemp"].mean())
    res.to_json()  # serialisable


def test_bootstrap(mpdta):
    a = estimate_cs(mpdta, "lemp", **KW, bootstrap=999, seed=1)
    b = estimate_cs(mpdta, "lemp", **KW, bootstrap=999, seed=1)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    ref = estimate_cs(mpdta, "lemp", **KW)
    assert a.meta["se_type"] == "multiplier bootstrap"
    np.testing.assert_allclose(a.estimates["estimate"], ref.estimates["estimate"])
    # bootstrap SEs are noisy versions of the analytic ones
    np.testing.assert_allclose(a.estimates["std_error"], ref.estimates["std_error"], rtol=0.15)
    ev = a.event_study()
    assert (ev["band_high"] - ev["band_low"] > ev["ci_high"] - ev["ci_low"]).all()
    assert a.meta["crit_val"]["event"] > 1.96


def test_clustered_bootstrap_close_to_analytic(mpdta):
    a = estimate_cs(mpdta, "lemp", **KW, cluster="state", bootstrap=2000, seed=3)
    ref = estimate_cs(mpdta, "lemp", **KW, cluster="state")
    assert a.meta["n_clusters"] == ref.meta["n_clusters"] == 29
    # with 29 clusters the IQR-based bootstrap SE is noisy; just sanity-check scale
    np.testing.assert_allclose(a.rows("gt")["std_error"], ref.rows("gt")["std_error"], rtol=0.35)


def test_row_order_and_noncontiguous_periods(mpdta):
    shuffled = mpdta.sample(frac=1.0, random_state=0)
    a = estimate_cs(mpdta, "lemp", **KW)
    b = estimate_cs(shuffled, "lemp", **KW)
    np.testing.assert_allclose(a.estimates["estimate"], b.estimates["estimate"], atol=1e-13)
    np.testing.assert_allclose(a.estimates["std_error"], b.estimates["std_error"], rtol=1e-10)
    c = estimate_cs(mpdta.sort_values(["year", "countyreal"]), "lemp", **KW)  # time-major fast path
    np.testing.assert_allclose(a.estimates["std_error"], c.estimates["std_error"], rtol=1e-10)
    # rescale time by 2 (gaps): gt estimates unchanged, event times doubled
    d = mpdta.copy()
    d["year"] = 2 * d["year"]
    d["first.treat"] = 2 * d["first.treat"]
    c = estimate_cs(d, "lemp", **KW)
    np.testing.assert_allclose(a.rows("gt")["estimate"], c.rows("gt")["estimate"], atol=1e-13)
    assert list(c.event_study()["event_time"]) == [2 * e for e in a.event_study()["event_time"]]


def test_unbalanced_units_dropped(mpdta):
    d = mpdta.drop(index=mpdta.index[:3])  # unit 8001 loses three years
    with pytest.warns(UserWarning, match="Dropped 1 units"):  # R's default: balance the panel
        res = estimate_cs(d, "lemp", **KW, allow_unbalanced=False)
    assert res.meta["n_units_dropped_unbalanced"] == 1
    ref = estimate_cs(mpdta[mpdta["countyreal"] != 8001], "lemp", **KW)
    np.testing.assert_allclose(res.estimates["estimate"], ref.estimates["estimate"], atol=1e-13)


def test_event_window_options(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW, trim_e=(-2, 2))
    assert list(res.event_study()["event_time"]) == [-2, -1, 0, 1, 2]
    bal = estimate_cs(mpdta, "lemp", **KW, balance_e=1)
    ev = bal.event_study()
    assert ev["event_time"].max() == 1
    # with balance_e = 1 only cohorts 2004 and 2006 contribute at e = 0
    gt = bal.rows("gt").set_index("term")
    pg = np.array([20, 40]) / 500
    e0 = (gt.loc["g=2004,t=2004", "estimate"] * pg[0] + gt.loc["g=2006,t=2006", "estimate"] * pg[1]) / pg.sum()
    assert ev.set_index("event_time").loc[0, "estimate"] == pytest.approx(e0)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_aggregation_subset_and_dense_paths(mpdta):
    res = estimate_cs(mpdta, "lemp", **KW, aggregations=("simple",))
    assert set(res.estimates["kind"]) == {"overall", "gt"} and res.meta["pretrend"] is None
    # covariates + cluster + bootstrap (dense design)
    a = estimate_cs(mpdta, "lemp", **KW, covariates=["lpop"], est_method="reg", cluster="state")
    b = estimate_cs(mpdta, "lemp", **KW, covariates=["lpop"], est_method="reg", cluster="state",
                    bootstrap=999, seed=2)
    assert a.meta["n_clusters"] == 29
    np.testing.assert_allclose(a.estimates["estimate"], b.estimates["estimate"])
    np.testing.assert_allclose(b.rows("gt")["std_error"], a.rows("gt")["std_error"], rtol=0.4)


def test_wald_with_more_restrictions_than_units_is_not_available():
    """Singular covariance (60+ pre-period cells, 6 stations): "not available" with a reason, no LAPACK
    error and never a negative or absurd statistic (issue 14)."""
    rng = np.random.default_rng(5)
    T, ft = 40, np.array([0, 0, 0, 0, 30, 35])
    panel = pd.DataFrame({"station_id": np.repeat(np.arange(6), T), "period": np.tile(np.arange(1, T + 1), 6),
                          "first_treat": np.repeat(ft, T), "y": rng.normal(size=6 * T)})
    res = estimate_cs(panel, "y")
    pt = res.meta["pretrend_gt"]
    assert pt["status"] == "not available" and np.isnan(pt["stat"]) and np.isnan(pt["p_value"])
    assert "6 clusters" in pt["reason"] and pt["df"] > 6


def test_clustered_analytic_se_is_the_cluster_sum_of_influence_functions():
    # clusters that span cohorts: the cross term between one cohort's outcomes and another cohort's
    # indicator in the same cluster was dropped from the clustered Gram matrix (fixed in _cs_design)
    rng = np.random.default_rng(3)
    n, T = 60, 16
    uu, tt = np.meshgrid(np.arange(n), np.arange(T), indexing="ij")
    first = np.array([0, 0, 6, 9, 12])[np.arange(n) % 5]
    y = rng.normal(0, 1, n)[uu] + rng.normal(0, 1, (n, T)) + 0.3 * ((first[uu] > 0) & (tt >= first[uu]))
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel() + 1,
                       "first_treat": np.where(first[uu] > 0, first[uu] + 1, 0).ravel(), "y": y.ravel(),
                       "county": (uu % 7).ravel()})
    fit = estimate_cs(df, "y", cluster="county")
    inf = fit._influence.matrix("overall")
    county = df.groupby("station_id")["county"].first().reindex(inf.index).to_numpy()
    want = np.sqrt((inf.groupby(county).sum().to_numpy() ** 2).sum(axis=0)) / fit._influence.n
    got = fit.estimates.set_index("term").loc[list(inf.columns), "std_error"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10)
