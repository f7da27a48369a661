"""CS in two steps (att_gt -> aggte, no refit), serial vs threaded executors, the pre-treatment Wald
test on singular covariances, and broken input."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _cs_attgt, cs
from evalkit.estimators._cs_infer import wald_stat
from evalkit.estimators._cs_prepare import prepare
from evalkit.estimators._sample import PanelInputError
from evalkit.estimators.cs import aggte, att_gt, estimate_cs
from moderndid_refs import load_mpdta, with_holes

KW = {"unit": "countyreal", "time": "year", "cohort": "first.treat"}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return load_mpdta()


CONFIGS = {
    "never": {},
    "notyet_universal": {"control": "notyet", "base_period": "universal"},
    "covariates_cluster": {"covariates": ["lpop"], "cluster": "state"},
    "unbalanced": {"allow_unbalanced": True},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_aggte_on_stored_att_gt_equals_one_call(mpdta, name):
    opts = CONFIGS[name]
    data = with_holes(mpdta) if opts.get("allow_unbalanced") else mpdta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = estimate_cs(data, "lemp", **KW, **opts, executor=None)
        gt = att_gt(data, "lemp", **KW, **opts)
    two = aggte(gt)
    pd.testing.assert_frame_equal(one.estimates, two.estimates)
    for k in one.vcov:
        pd.testing.assert_frame_equal(one.vcov[k], two.vcov[k])
    assert one.meta["pretrend"] == two.meta["pretrend"] and one.meta["pretrend_gt"] == two.meta["pretrend_gt"]


def test_aggte_does_not_refit(mpdta, monkeypatch):
    gt = att_gt(mpdta, "lemp", **KW, control="notyet")
    calls = {"prepare": 0, "compute": 0}

    def counting(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(cs, "prepare", counting("prepare", cs.prepare))
    monkeypatch.setattr(cs, "compute", counting("compute", cs.compute))
    monkeypatch.setattr(_cs_attgt, "compute", counting("compute", _cs_attgt.compute))
    simple = aggte(gt, "simple")
    dyn = aggte(gt, "dynamic", trim_e=(-2, 2))
    boot = aggte(gt, ("simple", "group"), bootstrap=199, seed=5)
    assert calls == {"prepare": 0, "compute": 0}
    # the same numbers as the one-call path with the same options (which does fit: the counters move)
    ref = estimate_cs(mpdta, "lemp", **KW, control="notyet", aggregations=("dynamic",), trim_e=(-2, 2))
    assert calls == {"prepare": 1, "compute": 1}
    pd.testing.assert_frame_equal(dyn.estimates, ref.estimates)
    assert set(simple.estimates["kind"]) == {"overall", "gt"}
    assert list(dyn.rows("event")["event_time"]) == [-2, -1, 0, 1, 2]
    assert boot.meta["se_type"] == "multiplier bootstrap"


def test_bootstrap_on_stored_fit_equals_one_call_and_repeats(mpdta):
    one = estimate_cs(mpdta, "lemp", **KW, bootstrap=299, seed=11)
    gt = att_gt(mpdta, "lemp", **KW)
    a = aggte(gt, bootstrap=299, seed=11)
    b = aggte(gt, bootstrap=299, seed=11)
    pd.testing.assert_frame_equal(one.estimates, a.estimates)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)


@pytest.mark.parametrize("opts", [
    {},
    {"bootstrap": 299, "seed": 3},
    {"bootstrap": 299, "seed": 3, "cluster": "state"},
    {"bootstrap": 99, "seed": 3, "covariates": ["lpop"]},
    {"bootstrap": 99, "seed": 3, "allow_unbalanced": True},
])
def test_serial_and_threaded_executors_give_identical_numbers(mpdta, opts):
    data = with_holes(mpdta) if opts.get("allow_unbalanced") else mpdta
    with ThreadPoolExecutor(max_workers=1) as ex, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = estimate_cs(data, "lemp", **KW, **opts, executor=None)
        threaded = estimate_cs(data, "lemp", **KW, **opts, executor=ex)
        two = aggte(att_gt(data, "lemp", **KW, **{k: v for k, v in opts.items() if k not in ("bootstrap", "seed")},
                           executor=ex),
                    bootstrap=opts.get("bootstrap", 0), seed=opts.get("seed"), executor=ex)
    pd.testing.assert_frame_equal(serial.estimates, threaded.estimates)
    pd.testing.assert_frame_equal(serial.estimates, two.estimates)


def test_trim_e_and_bad_aggregation(mpdta):
    a = estimate_cs(mpdta, "lemp", **KW, trim_e=(-2, 1))
    assert a.meta["trim_e"] == [-2, 1]
    assert list(a.event_study()["event_time"]) == [-2, -1, 0, 1]
    with pytest.raises(TypeError, match="min_e"):  # the legacy names are gone: trim_e only
        estimate_cs(mpdta, "lemp", **KW, min_e=-2)
    with pytest.raises(ValueError, match="unknown aggregation type 'events'"):
        aggte(att_gt(mpdta, "lemp", **KW), "events")


def test_gt_table(mpdta):
    gt = att_gt(mpdta, "lemp", **KW)
    tab = gt.table()
    res = aggte(gt, "simple")
    np.testing.assert_array_equal(tab["estimate"], res.rows("gt")["estimate"])
    assert gt.n_units == 500 and list(tab.columns) == ["term", "group", "time", "event_time", "estimate"]


# --------------------------------------------------------------------------- Wald pre-test
def _twelve_stations(seed: int, counties: bool = False) -> pd.DataFrame:
    """12 stations x 10 periods: 4 never treated, 4 adopt in period 6, 4 in period 8."""
    rng = np.random.default_rng(seed)
    T = 10
    ft = np.repeat([0, 6, 8], 4)
    d = pd.DataFrame({"station_id": np.repeat(np.arange(12), T), "period": np.tile(np.arange(1, T + 1), 12),
                      "first_treat": np.repeat(ft, T),
                      "y": rng.normal(size=12 * T) + np.repeat(rng.normal(size=12), T)})
    d["county"] = d["station_id"] % 3
    return d


@pytest.mark.parametrize("base_period", ["universal", "varying"])
def test_wald_on_twelve_stations_never_negative_or_absurd(base_period):
    """The 10 pre-treatment ATT(g,t) of 4-station cohorts have a singular covariance (before the
    fix: statistics like -5.1e13 and 2.3e16); the 6 pre-treatment event times do not."""
    for seed in range(15):
        res = estimate_cs(_twelve_stations(seed), "y", base_period=base_period)
        pt = res.meta["pretrend_gt"]
        assert pt["status"] == "not available" and np.isnan(pt["stat"]) and np.isnan(pt["p_value"])
        assert pt["df"] == 10 and "singular" in pt["reason"]
        ev = res.meta["pretrend"]
        assert ev["status"] == "ok" and ev["df"] == 6 and 0 <= ev["stat"] < 1e3 and 0 <= ev["p_value"] <= 1


def test_wald_with_fewer_clusters_than_restrictions_is_not_available():
    res = estimate_cs(_twelve_stations(0), "y", cluster="county")
    for key in ("pretrend", "pretrend_gt"):
        pt = res.meta[key]
        assert pt["status"] == "not available" and np.isnan(pt["stat"])
        assert "only 3 clusters" in pt["reason"]


class _Design:
    """A stand-in design whose quadratic form is a given matrix (times n^2)."""

    def __init__(self, v, n):
        self.v, self.n = v, n

    def quad(self, th, cols=None):
        return self.v * self.n**2


def test_wald_stat_singular_and_ill_conditioned_covariances():
    n, est = 100, np.array([0.3, -0.2, 0.1])
    good = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])
    r = wald_stat(est, None, _Design(good, n), n, n_clusters=50)
    assert r["status"] == "ok" and r["stat"] == pytest.approx(est @ np.linalg.solve(good, est), rel=1e-12)
    a = np.array([[1.0, 2.0, 3.0]]).T
    singular = a @ a.T  # rank 1
    ill = good.copy()
    ill[2] = ill[1] * (1 + 1e-13)
    ill[:, 2] = ill[:, 1] * (1 + 1e-13)
    ill[2, 2] = ill[1, 1] * (1 + 2e-13)
    for v in (singular, ill, -good):
        r = wald_stat(est, None, _Design(v, n), n, n_clusters=50)
        assert r["status"] == "not available" and np.isnan(r["stat"]) and "covariance" in r["reason"], v


# --------------------------------------------------------------------------- broken input
@pytest.mark.parametrize("unbalanced", [False, True])
def test_inf_outcome_is_refused_not_nan_ses(mpdta, unbalanced):
    d = mpdta.copy()
    d.loc[d.index[7], "lemp"] = np.inf
    with pytest.raises(PanelInputError, match=r"column 'lemp': non-finite outcome \(inf\) in 1 row") as e:
        estimate_cs(d, "lemp", **KW, allow_unbalanced=unbalanced)
    assert "countyreal=" in str(e.value) and "\n" not in str(e.value)
    # the estimator's own arrays refuse it too (e.g. a hand-built sample frame)
    with pytest.raises(ValueError, match=r"outcome column 'lemp' has 1 non-finite"):
        prepare(d, "lemp", "countyreal", "year", "first.treat", None, None, 0, "never", allow_unbalanced=unbalanced)
