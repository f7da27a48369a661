"""BH vs statsmodels; Romano–Wolf stepdown properties and FWER."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evalkit.inference.multiple import adjust_pvalues, romano_wolf, stepdown


def test_adjust_matches_statsmodels():
    mt = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 17):
        p = np.concatenate([rng.uniform(0, 0.05, m // 2), rng.uniform(0, 1, m - m // 2)])
        p[0] = p[-1] if m > 1 else p[0]  # a tie
        d = {f"o{i}": v for i, v in enumerate(p)}
        for ours, theirs in (("bh", "fdr_bh"), ("by", "fdr_by"), ("holm", "holm"), ("bonferroni", "bonferroni")):
            got = np.array(list(adjust_pvalues(d, ours).values()))
            ref = mt.multipletests(p, method=theirs)[1]
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)
    out = adjust_pvalues({"a": 0.01, "b": np.nan, "c": 0.04})
    assert np.isnan(out["b"]) and out["a"] == pytest.approx(0.02) and out["c"] == pytest.approx(0.04)


def test_stepdown_monotone_and_above_raw():
    rng = np.random.default_rng(1)
    tb = rng.standard_normal((2000, 4)) @ np.linalg.cholesky(0.5 * np.eye(4) + 0.5).T
    t = np.array([3.0, 0.2, 2.2, 1.5])
    p_rw = stepdown(t, tb)
    p_raw = np.mean(np.abs(tb) >= np.abs(t), axis=0)
    assert np.all(p_rw >= p_raw - 1e-12)
    order = np.argsort(-np.abs(t))
    assert np.all(np.diff(p_rw[order]) >= 0)


def outcomes_panel(G=16, per=2, T=12, effects=(0.0, 0.0, 0.0), rho=0.6, seed=0):
    rng = np.random.default_rng(seed)
    n = G * per
    units = np.arange(n)
    county = units // per
    first = np.where(county % 2 == 0, 0, np.where(county % 4 == 1, 5, 8))
    uu, tt = np.meshgrid(units, np.arange(T), indexing="ij")
    ff = first[uu]
    d = (ff > 0) & (tt >= ff)
    common = rng.normal(0, 1, uu.shape) + rng.normal(0, 1, G)[county[uu]] * tt / T
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(),
                       "county": county[uu].ravel()})
    for k, eff in enumerate(effects):
        own = rng.normal(0, 1, uu.shape)
        df[f"y{k}"] = (np.sqrt(rho) * common + np.sqrt(1 - rho) * own + eff * d).ravel()
    return df


def _fits(df, outcomes, estimator="cs", **kw):
    from evalkit.estimators import get_estimator

    return [get_estimator(estimator)(df, o, **kw) for o in outcomes]


def test_romano_wolf_frame_and_power():
    df = outcomes_panel(G=32, per=1, effects=(2.0, 0.0, 0.5))
    fits = _fits(df, ["y0", "y1", "y2"])
    rw = romano_wolf(fits, draws=99, seed=1)
    frame = rw.to_frame()
    assert list(frame.columns) == ["outcome", "estimate", "std_error", "t_stat", "p_value", "p_romano_wolf", "p_bh"]
    assert rw.ok and rw.estimator == "cs" and rw.draws_valid == 99
    assert np.all(frame.p_romano_wolf >= frame.p_value - 1e-12)
    assert frame.set_index("outcome").loc["y0", "p_romano_wolf"] < 0.05
    order = np.argsort(-np.abs(frame.t_stat.to_numpy()))
    assert np.all(np.diff(frame.p_romano_wolf.to_numpy()[order]) >= 0)
    assert frame.estimate.iloc[0] == pytest.approx(fits[0].att, abs=1e-10)
    again = romano_wolf(fits, draws=99, seed=1)
    assert again.to_dict() == rw.to_dict()


def test_romano_wolf_fwer_global_null():
    """Global null, 3 correlated outcomes, adoption at random across 24 stations: the FWER of RW at
    5 % stays near nominal and below the unadjusted tests' (permutations of the adoption dates)."""
    any_rw, any_raw = [], []
    for s in range(30):
        df = outcomes_panel(G=24, per=1, seed=500 + s)
        rw = romano_wolf(_fits(df, ["y0", "y1", "y2"]), draws=39, seed=s)
        assert rw.ok
        any_rw.append(min(rw.p_romano_wolf) <= 0.05)
        any_raw.append(min(rw.p_value) <= 0.05)
    assert np.mean(any_rw) <= 0.12
    assert np.mean(any_rw) <= np.mean(any_raw)


def test_romano_wolf_other_estimator_and_failures():
    df = outcomes_panel(G=20, per=1, effects=(1.0, 0.0))
    rw = romano_wolf(_fits(df, ["y0", "y1"], "naive_yoy"), draws=9, seed=0)
    assert rw.ok and rw.estimator == "naive_yoy" and rw.draws_valid <= 9
    assert np.all(np.array(rw.p_romano_wolf) >= np.array(rw.p_value) - 1e-12)
    with pytest.raises(ValueError, match="at least one result"):
        romano_wolf([], draws=9)


@pytest.mark.parametrize(("estimator", "kw"), [
    ("cs", {}),
    ("cs", {"cluster": "county", "control": "notyet"}),
    ("imputation", {}),
    ("imputation", {"cluster": "county", "anticipation": 1}),
])
def test_romano_wolf_fast_route_equals_refits(monkeypatch, estimator, kw):
    import evalkit.inference._fast as fast_mod

    df = outcomes_panel(G=12, per=2, effects=(1.0, 0.0, 0.3))
    fits = _fits(df, ["y0", "y1", "y2"], estimator, **kw)
    fast = romano_wolf(fits, draws=40, seed=4)
    assert fast.extra["fast_outcomes"] == ["y0", "y1", "y2"]
    copies = romano_wolf([f.with_inference("x", 1) for f in fits], draws=40, seed=4)  # no stored ATT(g,t)
    assert copies.extra["fast_outcomes"] == ["y0", "y1", "y2"] and copies.p_romano_wolf == fast.p_romano_wolf
    monkeypatch.setattr(fast_mod, "fast_headline", lambda *a, **k: None)  # every draw re-fitted (as before)
    slow = romano_wolf(fits, draws=40, seed=4)
    assert slow.extra["fast_outcomes"] == []
    for key in ("estimate", "std_error", "t_stat", "p_value", "p_romano_wolf", "p_bh"):
        np.testing.assert_allclose(getattr(fast, key), getattr(slow, key), rtol=0, atol=1e-10)
    assert fast.draws_valid == slow.draws_valid


def _unbalanced(df, share=0.08, seed=3):
    """``df`` with a random ``share`` of the station-months missing (CS then runs R did's
    repeated-cross-section path, ``allow_unbalanced_panel = TRUE``)."""
    rng = np.random.default_rng(seed)
    return df[rng.uniform(size=len(df)) > share].reset_index(drop=True)


@pytest.mark.parametrize("kw", [
    {},
    {"cluster": "county", "control": "notyet"},
    {"trim_e": (-3, 2), "base_period": "universal", "anticipation": 1},
])
def test_romano_wolf_unbalanced_cs_fast_route_equals_refits(monkeypatch, kw):
    """CS on an unbalanced sample: every draw's estimate and SE from :mod:`_fast_cs_rc` equal the
    per-draw re-fits (the route before it), p-values identical."""
    import evalkit.inference._fast_cs_rc as rc_mod

    df = _unbalanced(outcomes_panel(G=12, per=2, effects=(1.0, 0.0, 0.3)))
    fits = _fits(df, ["y0", "y1", "y2"], "cs", **kw)
    assert all(f.meta["unbalanced_handling"].startswith("repeated cross sections") for f in fits)
    fast = romano_wolf(fits, draws=40, seed=4)
    assert fast.extra["fast_outcomes"] == ["y0", "y1", "y2"]
    copies = romano_wolf([f.with_inference("x", 1) for f in fits], draws=40, seed=4)  # no stored ATT(g,t)
    assert copies.to_dict() == fast.to_dict()
    monkeypatch.setattr(rc_mod, "cs_unbalanced_headline", lambda *a, **k: None)  # every draw re-fitted
    slow = romano_wolf(fits, draws=40, seed=4)
    assert slow.extra["fast_outcomes"] == []
    for key in ("estimate", "std_error", "t_stat", "p_value", "p_romano_wolf", "p_bh"):
        np.testing.assert_allclose(getattr(fast, key), getattr(slow, key), rtol=0, atol=1e-10)
    assert fast.draws_valid == slow.draws_valid == 40


def test_unbalanced_cs_draws_equal_refits_cell_by_cell():
    """The batched estimate and SE of single draws against a full CS fit on the permuted sample,
    including a draw in which a (g, t) cell has no treated observation (the estimator skips it)."""
    from evalkit.estimators import get_estimator
    from evalkit.inference._fast_cs_rc import cs_unbalanced_headline

    df = _unbalanced(outcomes_panel(G=10, per=2, T=10), share=0.15, seed=7)
    df = df[~((df.first_treat == 8) & (df.period == 9))]  # cell (8, 9) has no treated observation
    units = pd.Index(np.sort(df.station_id.unique()))
    with pytest.warns(UserWarning, match="Skipped 1 ATT"):
        fit = get_estimator("cs")(df, "y0", cluster="county")
    stats = cs_unbalanced_headline(fit, df, unit="station_id", cohort="first_treat", units=units)
    assert stats is not None
    g0 = df.groupby("station_id")["first_treat"].first().reindex(units).to_numpy(float)
    rng = np.random.default_rng(0)
    G = np.vstack([g0] + [rng.permutation(g0) for _ in range(6)])
    est, se = stats(G, se=True)
    for b in range(G.shape[0]):
        d = df.assign(first_treat=df.station_id.map(dict(zip(units, G[b], strict=True))).astype(df.first_treat.dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped cell is announced
            ref = get_estimator("cs")(d, "y0", cluster="county")
        if b == 0:
            assert "t=9" in str(ref.meta["gt_skipped_no_observations"])
        ref = ref.overall
        assert est[b] == pytest.approx(ref["estimate"], rel=1e-10, abs=1e-12)
        assert se[b] == pytest.approx(ref["std_error"], rel=1e-10, abs=1e-12)


def test_unbalanced_cs_without_never_treated_is_refitted():
    """No never-treated station: the estimator drops the periods from the last cohort's adoption on,
    which the batched route does not model; every draw is then re-fitted (as before)."""
    df = _unbalanced(outcomes_panel(G=12, per=2, effects=(1.0, 0.0)))
    df["first_treat"] = df["first_treat"].replace(0, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No never-treated units" (as R did)
        fits = _fits(df, ["y0", "y1"], "cs", control="notyet")
        rw = romano_wolf(fits, draws=9, seed=0)
    assert rw.ok and rw.extra["fast_outcomes"] == [] and rw.draws_valid == 9


@pytest.mark.parametrize("kw", [{}, {"cluster": "county", "anticipation": 1}])
def test_romano_wolf_reads_imputation_fits_instead_of_refitting_them(monkeypatch, kw):
    """An imputation fit as the estimator returned it is its own observed re-fit (``is_own_refit``): Romano–Wolf
    reads its estimate and SE without re-fitting, and gives bit for bit what re-fits give (copies with an
    inference attached, e.g. a jackknife SE on the headline row, are re-fitted, never read)."""
    from evalkit.inference._refit import Refit

    df = outcomes_panel(G=12, per=2, effects=(1.0, 0.0, 0.3))
    fits = _fits(df, ["y0", "y1", "y2"], "imputation", **kw)
    calls = []
    real = Refit.fit
    monkeypatch.setattr(Refit, "fit", lambda self, *a, **k: calls.append(self.outcome) or real(self, *a, **k))
    own = romano_wolf(fits, draws=30, seed=2)
    assert calls == [] and own.extra["fast_outcomes"] == ["y0", "y1", "y2"]
    copies = [f.with_inference("jackknife", None) for f in fits]
    for c in copies:  # a headline row whose SE is not the analytic one must not be read
        c.estimates = c.estimates.assign(std_error=c.estimates["std_error"] * 3)
    refitted = romano_wolf(copies, draws=30, seed=2)
    assert calls == ["y0", "y1", "y2"]
    assert refitted.to_dict() == own.to_dict()
