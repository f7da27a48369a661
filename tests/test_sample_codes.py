"""The shared sample's fast paths (issue 15): sorted input skips the sort, codes are handed to the fit
engine, and a frame swapped in with ``dataclasses.replace`` never reuses stale codes."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import _fe
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators._sample import PanelInputError, build_sample


def _panel(n: int = 40, T: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n) * 3 + 100, T)  # integer labels with gaps
    t = np.tile(np.arange(T) + 2020 * 12, n)
    first = rng.choice([0, 2020 * 12 + 4, 2020 * 12 + 8], n)[np.repeat(np.arange(n), T)]
    return pd.DataFrame({"station_id": u, "period": t, "first_treat": first, "y": rng.normal(size=u.size)})


@pytest.mark.parametrize("drop", [False, True])
def test_sorted_and_shuffled_input_give_the_same_sample_and_codes(drop):
    d = _panel()
    if drop:  # a missing outcome cell and a unit without any outcome: codes are renumbered
        d.loc[5, "y"] = np.nan
        d.loc[d["station_id"] == 103, "y"] = np.nan
    a = build_sample(d, "y")
    b = build_sample(d.sample(frac=1, random_state=3).set_index(np.arange(len(d)) + 7), "y")
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.info == b.info
    for s in (a, b):
        frame, uc, tc, tv = s.codes_cache
        assert frame is s.frame
        np.testing.assert_array_equal(uc, _fe.codes(s.frame["station_id"])[0])
        np.testing.assert_array_equal(tc, _fe.codes(s.frame["period"])[0])
        np.testing.assert_array_equal(tv, _fe.codes(s.frame["period"])[1])


def test_stale_codes_are_not_reused_after_replace():
    s = build_sample(_panel(), "y")
    sub = s.frame[s.frame["station_id"] != 100].reset_index(drop=True)
    fs = fe_sample(replace(s, frame=sub), "y", unit="station_id", time="period", cohort="first_treat",
                       cluster=None)
    np.testing.assert_array_equal(fs.unit, _fe.codes(sub["station_id"])[0])
    assert fs.unit.size == len(sub) and fs.n_units == 39


def test_duplicates_still_found_in_unsorted_and_sorted_input():
    d = _panel()
    dup = pd.concat([d, d.iloc[[7]]]).sort_values(["station_id", "period"], kind="stable")
    with pytest.raises(PanelInputError, match="duplicated"):
        build_sample(dup, "y")
    with pytest.raises(PanelInputError, match="duplicated"):
        build_sample(dup.iloc[::-1], "y")


def test_within_on_a_complete_sorted_grid_equals_the_general_route():
    rng = np.random.default_rng(4)
    n, T = 30, 9
    a, b = np.repeat(np.arange(n), T), np.tile(np.arange(T), n)
    V = rng.normal(size=(n * T, 3))
    fast = _fe.Within([a, b])
    assert fast._grid == (n, T)
    perm = rng.permutation(n * T)  # same design, rows shuffled: the bincount / Schur route
    slow = _fe.Within([a[perm], b[perm]])
    assert slow._grid is None and slow.redundant == fast.redundant == 1
    np.testing.assert_allclose(fast.transform(V)[perm], slow.transform(V[perm]), atol=1e-12)
    np.testing.assert_allclose(fast.transform(V[:, 0])[perm], slow.transform(V[perm, 0]), atol=1e-12)
    np.testing.assert_allclose(fast.transform(V), _fe.demean(V, [a, b]), atol=1e-9)


def test_frame_shares_no_mutable_state_with_the_input():
    d = _panel(4, 3)
    s = build_sample(d, "y")
    before = s.frame.copy()
    d.loc[0, "y"] = 99.0
    d.loc[0, "period"] = 7
    d.loc[1, "station_id"] = 5
    pd.testing.assert_frame_equal(s.frame, before)  # the input changed, the sample did not
    saved = d.copy()
    s.frame.loc[0, "y"] = -1.0
    pd.testing.assert_frame_equal(d, saved)  # and the other way round
