"""The fixed-effects fit engine (_fe.feols / Within) and the TWFE family on it: fixest's numbers.

Reference values: pyfixest 0.60.0 (fixest defaults), cached in tests/fe_refs.py; the peer is only
needed by the test marked ``peers`` that recomputes them live.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _fe
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe
from fe_refs import CASTLE, PYFIXEST, load_castle, load_ehec, short_panel
from moderndid_refs import load_mpdta

# (data, unit, time, cohort, outcome, event leads, event lags)
SETS = {
    "mpdta": ("countyreal", "year", "first.treat", "lemp", 3, 3),
    "ehec": ("stfips", "year", "yexp2", "dins", 5, 5),
    "short": ("station_id", "period", "first_treat", "y", 3, 2),
}
WEIGHT_COL = {"pw": "pw", "W": "W", "pop": "pop"}


def _data(name: str) -> pd.DataFrame:
    if name == "mpdta":
        d = load_mpdta()
        return d.assign(pw=np.exp(d["lpop"]))
    if name == "ehec":
        return load_ehec().assign(yexp2=lambda x: x["yexp2"].fillna(0))
    return short_panel()


@pytest.mark.parametrize("key", sorted(PYFIXEST, key=str))
def test_twfe_family_equals_fixest(key):
    name, kind, cluster, w = key
    unit, time, cohort, y, leads, lags = SETS[name]
    ref = PYFIXEST[key]
    d = _data(name)
    kw = dict(unit=unit, time=time, cohort=cohort, cluster=cluster, weights=w)
    if kind == "static":
        r = estimate_twfe(d, y, **kw)
        o = r.overall
        got = np.array([[o["estimate"], o["std_error"], o["p_value"]]])
    else:
        r = estimate_event_twfe(d, y, leads=leads, lags=lags, **kw)
        ev = r.rows("event").query("event_time != -1").sort_values("event_time")
        got = ev[["estimate", "std_error", "p_value"]].to_numpy()
    np.testing.assert_allclose(got[:, 0], ref["coef"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], ref["se"], rtol=1e-8)
    np.testing.assert_allclose(got[:, 2], ref["p"], rtol=1e-6, atol=1e-12)
    inf = r.meta["inference"]
    assert inf["se_type"] == "CRV1" and inf["df"] == inf["n_clusters"] - 1 == r.meta["n_clusters"] - 1


def test_ehec_event_study_equals_honestdid_readme_betas():
    """HonestDiD README: dins ~ i(year, D, ref=2013) | stfips + year, D = 2014 adopters, 2015 adopters
    dropped, years < 2016 (later adopters are controls there)."""
    from test_sensitivity import BETA, SIGMA

    e = load_ehec()
    d = e[(e.year < 2016) & (e.yexp2.isna() | (e.yexp2 != 2015))].assign(g=lambda x: (x.yexp2 == 2014) * 2014)
    r = estimate_event_twfe(d, "dins", unit="stfips", time="year", cohort="g", leads=6, lags=1)
    ev = r.rows("event").query("event_time != -1").sort_values("event_time")
    np.testing.assert_allclose(ev["estimate"].to_numpy(), BETA, atol=1e-8)
    np.testing.assert_allclose(r.vcov["event"].to_numpy(), SIGMA, rtol=1e-6)


def test_printed_ssc_is_the_applied_one():
    """SE^2 = ssc x (unscaled cluster sandwich), and ssc = G/(G-1)(n-1)/(n-K) with K = 1 + T."""
    d = short_panel()
    r = estimate_twfe(d, "y", cluster="county", weights="pop")
    s = fe_sample(d, "y", unit="station_id", time="period", cohort="first_treat", cluster="county",
                      weights="pop")
    D = (np.isfinite(s.cohort) & (s.period >= s.cohort)).astype(float)
    W = _fe.Within([s.unit, s.time], s.weights)
    yw, xw = W.transform(s.y), W.transform(D)
    b = (s.weights * xw) @ yw / ((s.weights * xw) @ xw)
    u = yw - b * xw
    sc = np.bincount(s.cluster, weights=s.weights * xw * u)
    raw = np.sum(sc**2) / ((s.weights * xw) @ xw) ** 2
    n, G, T = s.y.size, 4, 5
    ssc = G / (G - 1) * (n - 1) / (n - (1 + T))  # stations nested in counties: count as one
    assert r.meta["inference"]["ssc"] == pytest.approx(ssc, rel=1e-12)
    assert r.meta["inference"]["dof_k"] == 1 + T
    assert r.overall["std_error"] ** 2 == pytest.approx(ssc * raw, rel=1e-10)
    assert f"{ssc:.8f}" in r.meta["se_type"]


@pytest.mark.parametrize("vcov", ["CRV1", "iid", "hetero"])
@pytest.mark.parametrize("w", [None, "popwt"])
def test_castle_vcov_types_equal_fixest(vcov, w):
    d = load_castle()
    u, _ = _fe.codes(d["sid"])
    t, _ = _fe.codes(d["year"])
    fit = _fe.feols(d["l_homicide"].to_numpy(float), d[["post"]].to_numpy(float), [u, t],
                    weights=None if w is None else d[w].to_numpy(float), cluster=u if vcov == "CRV1" else None,
                    vcov=vcov)
    b, se, p = CASTLE[(w, vcov)]
    assert fit.coef[0] == pytest.approx(b, rel=1e-8)
    assert fit.se[0] == pytest.approx(se, rel=1e-8)
    assert fit.p_value()[0] == pytest.approx(p, rel=1e-6)


def _unbalanced(seed=0, n=60, T=9):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(T), n)
    keep = rng.random(u.size) > 0.15
    u, t = u[keep], t[keep]
    w = rng.uniform(0.5, 3, u.size)
    X = rng.normal(size=(u.size, 3)) + u[:, None] * 0.01
    return u, t, w, X


def test_within_two_way_exact_equals_alternating_projections():
    u, t, w, X = _unbalanced()
    W = _fe.Within([u, t], w)
    assert W.method == "two-way exact"
    exact = W.transform(X)
    ap = _fe.demean(X, [u, t], w=w, tol=1e-15, maxiter=100_000)
    np.testing.assert_allclose(exact, ap, atol=1e-9)
    # W-orthogonal to every unit and period dummy
    for c in (u, t):
        for j in range(3):
            assert np.abs(np.bincount(c, weights=w * exact[:, j])).max() < 1e-9
    # three-way FE goes through alternating projections and is still a projection
    f3 = np.arange(u.size) % 7
    W3 = _fe.Within([u, t, f3], w)
    assert W3.method == "alternating projections"
    x3 = W3.transform(X[:, 0])
    np.testing.assert_allclose(W3.transform(x3), x3, atol=1e-8)


def test_batched_outcomes_equal_single_fits():
    u, t, w, X = _unbalanced(1)
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(u.size, 5))
    fit = _fe.feols(Y[:, 0], X, [u, t], weights=w, cluster=u)
    B = fit.coef_many(Y)
    for j in range(5):
        one = _fe.feols(Y[:, j], X, [u, t], weights=w, cluster=u)
        np.testing.assert_allclose(B[:, j], one.coef, atol=1e-12)


def test_collinear_regressor_is_dropped_not_fatal():
    u, t, w, X = _unbalanced(3)
    Xc = np.column_stack([X, X[:, 0] + 2 * X[:, 1], t.astype(float)])  # combo + period-only regressor
    fit = _fe.feols(X[:, 2] + np.sin(t), Xc, [u, t], cluster=u, names=["a", "b", "c", "a+2b", "t"])
    assert fit.names == ["a", "b", "c"] and fit.vcov.shape == (3, 3)


@pytest.mark.parametrize("fn,opt", [(estimate_twfe, "clsuter"), (estimate_event_twfe, "lead")])
def test_misspelled_option_raises(fn, opt):
    with pytest.raises(TypeError, match=rf"'{opt}'.*accepted options: .*cluster"):
        fn(short_panel(), "y", **{opt: "county"})


def test_bin_e_is_leads_and_lags():
    d = short_panel()
    a = estimate_event_twfe(d, "y", bin_e=(-2, 1))
    b = estimate_event_twfe(d, "y", leads=2, lags=1)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    with pytest.raises(ValueError, match="bin_e"):
        estimate_event_twfe(d, "y", bin_e=(0, 3))


@pytest.mark.peers
def test_live_pyfixest_unbalanced_weighted_event_study():
    pf = pytest.importorskip("pyfixest")
    rng = np.random.default_rng(5)
    n, T = 80, 12
    d = pd.DataFrame({"station_id": np.repeat(np.arange(n), T), "period": np.tile(np.arange(1, T + 1), n)})
    d["first_treat"] = np.array([0, 5, 7, 9])[d.station_id % 4]
    d["county"] = d.station_id // 10
    d["pop"] = rng.uniform(1, 9, n)[d.station_id]
    d["y"] = rng.normal(size=len(d)) + d.station_id * 0.1 + ((d.first_treat > 0) & (d.period >= d.first_treat))
    d = d.sample(frac=0.9, random_state=1).sort_index()
    r = estimate_event_twfe(d, "y", cluster="county", weights="pop", leads=3, lags=4)
    g = d.first_treat.replace(0, np.inf).to_numpy(float)
    from evalkit.estimators.twfe import event_dummies

    X, ks = event_dummies(g, d.period.to_numpy(float), 3, 4, -1)
    X = X.toarray()
    dd = d.assign(**{f"x{j}": X[:, j] for j in range(X.shape[1])})
    f = pf.feols("y ~ " + "+".join(f"x{j}" for j in range(X.shape[1])) + " | station_id + period", data=dd,
                 weights="pop", vcov={"CRV1": "county"}, fixef_tol=1e-14)  # its demeaning is iterative
    ev = r.rows("event").query("event_time != -1").sort_values("event_time")
    np.testing.assert_allclose(ev["estimate"], f.coef().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ev["std_error"], f.se().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ev["p_value"], f.pvalue().to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("cluster", [None, "county"])
def test_same_static_twfe_se_everywhere(cluster):
    """One coefficient, one SE: estimate_twfe, the Bacon TWFE row and the wild bootstrap's CRV1 SE."""
    from evalkit.estimators.bacon import estimate_bacon
    from evalkit.inference.wild import wild_bootstrap

    d = short_panel()
    a = estimate_twfe(d, "y", cluster=cluster)
    b = estimate_bacon(d, "y", cluster=cluster)
    w = wild_bootstrap(d, "y", cluster=cluster, B=99, seed=1)
    for r in (b, w):
        assert r.att == pytest.approx(a.att, abs=1e-12)
        assert r.overall["std_error"] == pytest.approx(a.overall["std_error"], rel=1e-10)
    assert b.meta["inference"]["ssc"] == pytest.approx(a.meta["inference"]["ssc"], rel=1e-14)
    assert w.meta["ssc"] == pytest.approx(a.meta["inference"]["ssc"], rel=1e-14)


@pytest.mark.parametrize("name", ["twfe", "event_twfe", "sa", "imputation", "bacon", "poisson", "did2x2"])
def test_every_owned_estimator_rejects_a_misspelled_option(name):
    from evalkit.estimators import get_estimator

    d = short_panel().assign(y=lambda x: np.round(np.exp(x["y"] / 2)))  # counts, so Poisson gets that far
    with pytest.raises(TypeError, match=r"'clsuter'.*accepted options: .*cluster"):
        get_estimator(name)(d, "y", clsuter="county")
    with pytest.raises(TypeError, match=r"'min_e'"):  # SA / Poisson / event TWFE bin with bin_e
        get_estimator(name)(d, "y", min_e=-2)


@pytest.mark.parametrize("cluster", [None, "county"])
def test_permuted_twfe_batch_equals_full_refits(cluster):
    """Batched permutation refits (within-transformation once) = estimate_event_twfe / estimate_twfe
    on the permuted panels: coefficients, CRV1 covariances and the leads' Wald statistic."""
    from evalkit.estimators._fe_batch import PermutedTWFE, event_pattern, static_pattern

    rng = np.random.default_rng(4)
    n, T = 24, 10
    d = pd.DataFrame({"station_id": np.repeat(np.arange(n), T), "period": np.tile(np.arange(1, T + 1), n)})
    d["first_treat"] = np.array([0, 4, 6, 8])[d["station_id"] % 4]
    d["county"] = d["station_id"] // 4
    d["y"] = rng.normal(size=len(d)) + d["station_id"] * 0.1 + 0.5 * ((d.first_treat > 0) & (d.period >= d.first_treat))
    s = fe_sample(d, "y", unit="station_id", time="period", cohort="first_treat", cluster=cluster)
    pattern, names = event_pattern(3, 4, -1)
    batch = PermutedTWFE(s, pattern, names)
    static = PermutedTWFE(s, static_pattern, ["treated_post"])
    g_unit = d.groupby("station_id")["first_treat"].first().to_numpy()
    draws = np.stack([g_unit] + [rng.permutation(g_unit) for _ in range(3)]).astype(float)
    B, V = batch.fit(np.where(draws == 0, np.inf, draws))
    Bs, Vs = static.fit(np.where(draws == 0, np.inf, draws))
    leads = [j for j, nm in enumerate(batch.names) if int(nm.split("=")[1]) < -1]
    W = batch.wald(np.where(draws == 0, np.inf, draws), leads)
    for j, g in enumerate(draws):
        p = d.assign(first_treat=g[d["station_id"]])
        r = estimate_event_twfe(p, "y", cluster=cluster, leads=3, lags=4)
        assert r.vcov["event"].index.tolist() == batch.names
        np.testing.assert_allclose(B[j], r.rows("event").query("event_time != -1")["estimate"], atol=1e-10)
        np.testing.assert_allclose(V[j], r.vcov["event"].to_numpy(), rtol=1e-8, atol=1e-14)
        assert W[j] == pytest.approx(r.meta["pretrend"]["stat"], rel=1e-8)
        rs = estimate_twfe(p, "y", cluster=cluster)
        assert Bs[j, 0] == pytest.approx(rs.att, abs=1e-10)
        assert np.sqrt(Vs[j, 0, 0]) == pytest.approx(rs.overall["std_error"], rel=1e-8)


def test_inference_functions_reject_misspelled_options():
    from evalkit.inference.randomization import randomization_inference
    from evalkit.inference.wild import wild_bootstrap

    with pytest.raises(TypeError, match=r"wild_bootstrap: unknown option\(s\) 'clsuter'"):
        wild_bootstrap(short_panel(), "y", clsuter="county", B=9)
    with pytest.raises(TypeError, match=r"'clsuter'"):
        randomization_inference(short_panel(), "y", clsuter="county", draws=9)


@pytest.mark.parametrize("vcov", ["CRV1", "iid", "hetero"])
def test_sparse_and_dense_routes_agree(vcov, monkeypatch):
    """The sparse Schur route (many regressors) and the dense within route give the same fit."""
    u, t, w, X = _unbalanced(6)
    y = X @ np.array([0.5, -1.0, 0.2]) + np.sin(u) + np.random.default_rng(7).normal(size=u.size)
    kw = dict(weights=w, cluster=u // 3 if vcov == "CRV1" else None, vcov=vcov)
    dense = _fe.feols(y, X, [u, t], **kw)
    monkeypatch.setattr(_fe, "DENSE_MAX_COLS", 0)
    sparse = _fe.feols(y, X, [u, t], **kw)
    assert "dense" in dense.fe_method and "sparse" in sparse.fe_method
    np.testing.assert_allclose(sparse.coef, dense.coef, atol=1e-12)
    np.testing.assert_allclose(sparse.vcov, dense.vcov, rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(sparse.resid, dense.resid, atol=1e-10)
    np.testing.assert_allclose(sparse.coef_many(np.column_stack([y, 2 * y])), dense.coef_many(np.column_stack([y, 2 * y])),
                               atol=1e-10)


def test_late_adopters_same_coefficient_in_twfe_wild_and_ri():
    """A cohort adopting after the window is never treated in every TWFE-based number (shared sample)."""
    from evalkit.inference.randomization import randomization_inference
    from evalkit.inference.wild import wild_bootstrap

    d = short_panel()
    d.loc[d["station_id"].isin([0, 1]), "first_treat"] = 9  # after the last period (5)
    a = estimate_twfe(d, "y")
    assert a.meta["sample"]["recoded"] == {"adopts_after_window": 2}
    assert a.meta["n_treated"] + a.meta["n_control"] == 14
    ri = randomization_inference(d, "y", draws=19, seed=1)
    wb = wild_bootstrap(d, "y", B=99, seed=1)
    assert ri.att == pytest.approx(a.att, abs=1e-12) and wb.att == pytest.approx(a.att, abs=1e-12)
    assert wb.overall["std_error"] == pytest.approx(a.overall["std_error"], rel=1e-10)


@pytest.mark.parametrize("vcov", ["iid", "hetero"])
def test_twfe_iid_and_hetero_equal_fixest(vcov):
    d = load_castle()
    r = estimate_twfe(d, "l_homicide", unit="sid", time="year", cohort="effyear", weights="popwt", vcov=vcov)
    b, se, p = CASTLE[("popwt", vcov)]
    assert r.att == pytest.approx(b, rel=1e-8)
    assert r.overall["std_error"] == pytest.approx(se, rel=1e-8)
    assert r.overall["p_value"] == pytest.approx(p, rel=1e-6)
    assert r.meta["inference"]["se_type"] == vcov and r.meta["n_clusters"] is None
    with pytest.raises(ValueError, match="vcov"):
        estimate_twfe(d, "l_homicide", unit="sid", time="year", cohort="effyear", vcov="HC3")
