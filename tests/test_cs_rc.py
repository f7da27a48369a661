"""Repeated-cross-section DRDID estimators with covariates and the unbalanced-panel CS path.

References: moderndid 0.2.0 (``drdid_rc``, ``std_ipw_did_rc``, ``reg_did_rc``, ports of R
``DRDID``) cell by cell, and a per-(g,t) loop over moderndid's RC estimators with influence
functions scaled by n / n1 and summed by unit, as R ``did`` does with
``allow_unbalanced_panel = TRUE`` on an unbalanced panel.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _cs_rc
from evalkit.estimators.cs import _gt_cells
from moderndid_refs import assert_aggregations_match, load_mpdta, with_holes

KW = dict(unit="countyreal", time="year", cohort="first.treat")
COVS = ["lpop", "xtv"]
METHODS = ["dr", "ipw", "reg"]


def _moderndid_fn(method):
    moderndid = pytest.importorskip("moderndid")
    return {"dr": moderndid.drdid_rc, "ipw": moderndid.std_ipw_did_rc, "reg": moderndid.reg_did_rc}[method]


def _peer_cell(method, y, post, d, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _moderndid_fn(method)(y, post, d, x, influence_func=True)
    return float(r.att), np.asarray(r.att_inf_func)


def _sim(n, seed, ps_slope=0.6):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(size=n), rng.binomial(1, 0.3, size=n)])
    idx = ps_slope * x[:, 1] - 0.8 * x[:, 2] + 0.4 * x[:, 3]
    d = (rng.uniform(size=n) < 1 / (1 + np.exp(-idx))).astype(float)
    post = (rng.uniform(size=n) < 0.45).astype(float)
    y = (1 + x[:, 1] - 0.5 * x[:, 3] + post * (0.3 + 2 * x[:, 2]) + d * (0.5 + 0.3 * x[:, 1])
         + post * d * (1.0 + 0.5 * x[:, 2]) + rng.normal(size=n))
    return y, post, d, x


# --------------------------------------------------------------------------- cell estimators
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed,n,slope", [(0, 600, 0.6), (1, 2000, 0.6), (2, 400, 3.0)])
def test_cell_matches_moderndid(method, seed, n, slope):
    """ATT and observation-level IF of each RC estimator vs moderndid (slope 3: trimmed scores)."""
    y, post, d, x = _sim(n, seed, slope)
    att, inf = _cs_rc.RC_ESTIMATORS[method](y, post, d, x)
    ref_att, ref_inf = _peer_cell(method, y, post, d, x)
    assert att == pytest.approx(ref_att, abs=1e-8)
    assert inf.shape == (n,)
    np.testing.assert_allclose(inf, ref_inf, atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_cell_intercept_only_is_difference_of_means(method):
    """With an intercept only every RC estimator is the 2x2 difference of means."""
    y, post, d, _ = _sim(500, 3)
    att, inf = _cs_rc.RC_ESTIMATORS[method](y, post, d, np.ones((500, 1)))
    m = lambda dd, pp: y[(d == dd) & (post == pp)].mean()  # noqa: E731
    assert att == pytest.approx((m(1, 1) - m(1, 0)) - (m(0, 1) - m(0, 0)), abs=1e-12)
    assert abs(inf.mean()) < 1e-10


def test_cell_errors():
    y, post, d, x = _sim(300, 4)
    xc = np.column_stack([x, 2 * x[:, 1]])  # collinear covariates
    with pytest.raises(_cs_rc.CellError):
        _cs_rc.reg_did_rc(y, post, d, xc)
    with pytest.raises(_cs_rc.CellError, match="overlap"):
        _cs_rc.drdid_rc(y, post, d, x, overlap_max=0.2)


# --------------------------------------------------------------------------- unbalanced panel data
@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    d = load_mpdta()
    # a time-varying covariate: the RC path uses each row's own value
    d["xtv"] = d["lpop"] + 0.1 * np.random.default_rng(2).normal(size=len(d))
    return d


@pytest.fixture(scope="module")
def holes(mpdta) -> pd.DataFrame:
    """mpdta with 10% of the rows deleted at random (fixed seed)."""
    return with_holes(mpdta)


def _ref_loop(d, method, control, covs=COVS):
    """R did's RC path, cell by cell with moderndid's estimators: returns {(g, t): (att, unit IF)}
    with unit IFs indexed by sorted unit id (n / n1 scaling, summed by unit)."""
    units = np.sort(d["countyreal"].unique())
    n = len(units)
    pos = np.searchsorted(units, d["countyreal"].to_numpy())
    gcol, year = d["first.treat"].to_numpy(), d["year"].to_numpy()
    periods = np.sort(np.unique(year))
    out = {}
    for g in np.sort(np.unique(gcol[gcol > 0])):
        b_post = periods[periods < g][-1]
        for ti in range(1, len(periods)):
            t = periods[ti]
            b = b_post if g <= t else periods[ti - 1]
            ctrl = gcol == 0
            if control == "notyet":
                ctrl |= (gcol > max(t, b)) & (gcol != g)
            rows = ((gcol == g) | ctrl) & np.isin(year, [t, b])
            x = np.column_stack([np.ones(rows.sum()), d.loc[rows, covs].to_numpy()])
            att, inf = _peer_cell(method, d.loc[rows, "lemp"].to_numpy(), (year[rows] == t).astype(float),
                                  (gcol[rows] == g).astype(float), x)
            out[(g, t)] = (att, np.bincount(pos[rows], weights=inf * n / rows.sum(), minlength=n))
    return out


def _arrays(d, covs=COVS):
    """Unit x period arrays sorted by cohort (never-treated last), as cs._prepare lays them out."""
    units = np.sort(d["countyreal"].unique())
    periods = np.sort(d["year"].unique())
    gu = d.groupby("countyreal")["first.treat"].first().reindex(units).to_numpy().astype(float)
    gu = np.where(gu == 0, np.inf, gu)
    order = np.argsort(gu, kind="stable")
    wide = d.pivot(index="countyreal", columns="year")
    y = wide["lemp"].reindex(index=units, columns=periods).to_numpy()[order]
    x = np.stack([wide[c].reindex(index=units, columns=periods).to_numpy()[order] for c in covs], axis=2)
    cohorts, coh = np.unique(gu[order], return_inverse=True)
    return y, x, coh, cohorts, periods, units[order]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("control", ["never", "notyet"])
def test_unit_ifs_match_reference_loop(holes, method, control):
    y, x, coh, cohorts, periods, units = _arrays(holes)
    glist = cohorts[np.isfinite(cohorts)]
    cells = _gt_cells(periods, glist, cohorts, "varying", control, 0)
    n = len(units)
    att, inf, reason, used = _cs_rc.unit_ifs(y, x, coh, cohorts, cells, n, method)
    assert all(r is None for r in reason)
    ref = _ref_loop(holes, method, control)
    back = np.argsort(units)  # rows in sorted unit-id order
    assert len(ref) == len(cells)
    for j, c in enumerate(cells):
        ra, rinf = ref[(c[0], periods[c[1]])]
        assert att[j] == pytest.approx(ra, abs=1e-8)
        np.testing.assert_allclose(inf[back, j], rinf, atol=1e-8)
    assert used.sum() == np.count_nonzero(~np.isnan(y))  # never-treated / not-yet: every row is used


# --------------------------------------------------------------------------- estimate_cs end to end
SCEN = [(m, c) for m in METHODS for c in ("never", "notyet")]


def _peer_att_gt(d, method, control, covs=COVS):
    moderndid = pytest.importorskip("moderndid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # moderndid 0.2.0: panel=False with idname + allow_unbalanced_panel is R's unbalanced path
        return moderndid.att_gt(d, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                                xformla="~" + "+".join(covs), est_method=method, boot=False, cband=False,
                                allow_unbalanced_panel=True, panel=False,
                                control_group={"never": "nevertreated", "notyet": "notyettreated"}[control])


@pytest.mark.parametrize("method,control", SCEN)
def test_estimate_cs_matches_moderndid(holes, method, control):
    from evalkit.estimators.cs import estimate_cs

    pytest.importorskip("moderndid")
    res = estimate_cs(holes, "lemp", **KW, covariates=COVS, est_method=method, control=control,
                      allow_unbalanced=True)
    m = res.meta
    assert m["unbalanced_handling"].startswith("repeated cross sections (R did allow_unbalanced_panel)")
    assert "covariates" in m["unbalanced_handling"] and m["covariates"] == COVS
    assert m["n_units"] == 500 and m["n_obs"] == m["n_obs_used"] == len(holes)
    gt = res.rows("gt")
    mp = _peer_att_gt(holes, method, control)
    assert np.allclose(mp.groups, gt["group"].astype(float)) and np.allclose(mp.times, gt["time"].astype(float))
    np.testing.assert_allclose(gt["estimate"], mp.att_gt, atol=1e-8)
    np.testing.assert_allclose(gt["std_error"], np.asarray(mp.se_gt), atol=1e-8)
    # unit-level influence functions (ours: rows in res._influence.units order)
    inf = res._influence.matrix("gt").sort_index()
    np.testing.assert_allclose(inf.to_numpy(), mp.influence_func, atol=1e-8)

    assert_aggregations_match(res, mp, holes, atol_se=1e-8)


def test_missing_covariate_is_refused(holes):
    """The shared sample refuses a missing covariate (one-line error naming the column and rows)
    instead of dropping the row (R did's complete.cases); see STATS-CONTRACT §1."""
    from evalkit.estimators._sample import PanelInputError
    from evalkit.estimators.cs import estimate_cs

    d = holes.copy()
    idx = d.index[[3, 40, 41, 700]]
    d.loc[idx, "xtv"] = np.nan
    with pytest.raises(PanelInputError, match=r"column 'xtv': missing, non-numeric or non-finite covariate in 4 rows"):
        estimate_cs(d, "lemp", **KW, covariates=COVS, allow_unbalanced=True)


def test_cluster_and_bootstrap(holes):
    from evalkit.estimators.cs import estimate_cs

    kw = dict(**KW, covariates=COVS, allow_unbalanced=True)
    res = estimate_cs(holes, "lemp", **kw)
    un = estimate_cs(holes, "lemp", **kw, cluster="countyreal")
    np.testing.assert_allclose(un.estimates["std_error"], res.estimates["std_error"], rtol=1e-12)
    cl = estimate_cs(holes, "lemp", **kw, cluster="state")
    np.testing.assert_allclose(cl.estimates["estimate"], res.estimates["estimate"], atol=1e-13)
    assert np.isfinite(cl.estimates["std_error"]).all()
    boot = estimate_cs(holes, "lemp", **kw, bootstrap=999, seed=3)
    np.testing.assert_allclose(boot.rows("event")["std_error"], res.rows("event")["std_error"], rtol=0.15)
    assert boot.meta["crit_val"]["event"] > 1.96


def test_skipped_cell(mpdta):
    """A cohort unobserved in a period: the cells needing it are skipped with a warning (R: NA)."""
    from evalkit.estimators.cs import estimate_cs

    d = mpdta[~((mpdta["first.treat"] == 2004) & (mpdta["year"] == 2005))]
    with pytest.warns(UserWarning, match="Skipped"):
        res = estimate_cs(d, "lemp", **KW, covariates=COVS, allow_unbalanced=True)
    assert res.meta["gt_skipped_no_observations"] == ["g=2004,t=2005"]
    assert len(res.rows("gt")) == 11 and np.isfinite(res.estimates["estimate"]).all()


@pytest.mark.parametrize("method", METHODS)
def test_balanced_panel(mpdta, method, monkeypatch):
    """Balanced panel: allow_unbalanced=True still runs the panel estimator (R did >= 2.2); forcing
    the RC path runs the RC estimators (numbers may legitimately differ from the panel estimator:
    pooled-period propensity score and per-period outcome regressions, no within-unit pairing)."""
    from evalkit.estimators import _cs_unbalanced
    from evalkit.estimators.cs import estimate_cs

    kw = dict(**KW, covariates=["lpop"], est_method=method)
    panel = estimate_cs(mpdta, "lemp", **kw)
    res = estimate_cs(mpdta, "lemp", **kw, allow_unbalanced=True)
    assert res.meta["unbalanced_handling"].startswith("balanced panel")
    np.testing.assert_allclose(res.estimates["estimate"], panel.estimates["estimate"], atol=0)
    np.testing.assert_allclose(res.estimates["std_error"], panel.estimates["std_error"], atol=0)

    monkeypatch.setattr(_cs_unbalanced, "FORCE_RC", True)
    rc = estimate_cs(mpdta, "lemp", **kw, allow_unbalanced=True)
    assert rc.meta["unbalanced_handling"].startswith("repeated cross sections")
    assert len(rc.estimates) == len(panel.estimates)
    assert np.isfinite(rc.estimates["estimate"]).all() and np.isfinite(rc.estimates["std_error"]).all()


def test_overlap_violation_skips_cells(holes):
    """R did's pre-check: a (preliminary) propensity score >= 0.999 gives NA for the cell (dr/ipw);
    the outcome regression does not need overlap (reg estimates every cell)."""
    from evalkit.estimators.cs import estimate_cs

    d = holes.copy()
    d["sep"] = np.where(d["first.treat"] == 2004, 3.0, 0.0) + np.random.default_rng(5).normal(size=len(d))
    kw = dict(**KW, covariates=["lpop", "sep"], allow_unbalanced=True)
    with pytest.warns(UserWarning, match="overlap"):
        res = estimate_cs(d, "lemp", **kw, est_method="dr")
    bad = res.meta["gt_skipped_not_estimable"]
    assert bad and all(k.startswith("g=2004,") for k in bad) and "gt_skipped_no_observations" not in res.meta
    assert len(res.rows("gt")) == 12 - len(bad) and np.isfinite(res.estimates["estimate"]).all()
    mp = _peer_att_gt(d, "dr", "never", covs=["lpop", "sep"])  # moderndid drops the same cells
    gt = res.rows("gt")
    assert np.allclose(mp.groups, gt["group"].astype(float)) and np.allclose(mp.times, gt["time"].astype(float))
    # cohort 2004's kept cells have comparison scores below 1e-6, which moderndid clips up to 1e-6
    # (R DRDID only caps at 1 - 1e-6, as we do): ~3e-7 apart there
    near = (gt["group"] == 2004).to_numpy()
    np.testing.assert_allclose(gt["estimate"][~near], mp.att_gt[~near], atol=1e-8)
    np.testing.assert_allclose(gt["estimate"][near], mp.att_gt[near], atol=1e-5)
    reg = estimate_cs(d, "lemp", **kw, est_method="reg")
    assert len(reg.rows("gt")) == 12 and "gt_skipped_not_estimable" not in reg.meta
