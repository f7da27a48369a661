"""One validated sample per outcome for a whole evaluation (``shared_samples``) and unit codes of sorted
text labels by runs: the same samples and the same numbers as building each sample afresh."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evalkit
import evalkit.evaluation as evaluation
from evalkit.estimators._sample import (
    _label_codes,
    build_sample,
    share_samples,
    shared_samples,
    with_sample_scope,
)
from evalkit.params import load_params


def _panel(n: int = 30, T: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 5, 8], size=n)
    ids = np.array([f"S{i:03d}" for i in range(n)], dtype=object)
    return pd.DataFrame({"station_id": pd.Series(np.repeat(ids, T), dtype=object), "period": np.tile(np.arange(T), n),
                         "first_treat": np.repeat(g, T), "y": rng.poisson(5.0, n * T).astype(float),
                         "county": pd.Series(np.repeat(ids, T), dtype=object).str[:3]})


@pytest.mark.parametrize("labels", [
    ["a", "a", "b", "b", "b", "c"],                 # sorted runs
    ["b", "b", "a", "a", "c", "c"],                 # runs, not sorted: factorize
    ["a", "b", "a", "b"],                           # a label in two runs: factorize
    [3, 3, 1, 1],                                   # object ints, unsorted
    ["x"],                                          # one row
])
def test_label_codes_by_runs_equal_factorize(labels):
    s = pd.Series(np.array(labels, dtype=object), dtype=object)
    want = pd.factorize(s, sort=True)[0]
    np.testing.assert_array_equal(_label_codes(s), want)


@pytest.mark.parametrize("labels", [["a", "a", 1, 1], [1, 1, 2.5, 2.5]])
def test_mixed_label_types_fall_back_to_factorize(labels):
    s = pd.Series(np.array(labels, dtype=object), dtype=object)
    np.testing.assert_array_equal(_label_codes(s), pd.factorize(s, sort=True)[0])


def test_share_samples_outside_a_scope_does_nothing_and_the_scope_ends_with_an_exception():
    df = _panel()
    share_samples(df)
    assert build_sample(df, "y") is not build_sample(df, "y")

    @with_sample_scope
    def fails():
        share_samples(df)
        assert build_sample(df, "y") is build_sample(df, "y")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert build_sample(df, "y") is not build_sample(df, "y")  # the scope ended with the exception


def test_shared_samples_reuse_only_inside_the_block_and_for_that_panel():
    df = _panel()
    fresh = build_sample(df, "y")
    with shared_samples(df):
        a = build_sample(df, "y")
        b = build_sample(df, "y", control="notyet")
        c = build_sample(df, "y", cluster="county")
        u = build_sample(df, "y", cluster="station_id")
        other = df.copy()
        d1, d2 = build_sample(other, "y"), build_sample(other, "y")
        assert build_sample(df, "y") is a
    assert b.frame is a.frame and b.control == "notyet" and a.control == "never"
    assert c is not a and c.cluster == "county"
    assert u.frame is a.frame and u.cluster == "station_id" and u.info == a.info  # cluster = unit: same rows
    pd.testing.assert_frame_equal(u.frame, build_sample(df, "y", cluster="station_id").frame)
    assert d1 is not d2 and d1 is not a  # another frame: built as always, not kept
    assert build_sample(df, "y") is not a  # outside the block: fresh
    pd.testing.assert_frame_equal(a.frame, fresh.frame)
    assert a.info == fresh.info


def _numbers(ev) -> dict:
    d = json.loads(json.dumps(evaluation._json_safe(ev.to_dict())))
    for k in evaluation.TIMING_KEYS:
        d.pop(k, None)
    return d


def test_evaluation_numbers_equal_with_and_without_shared_samples(demo_warehouse, monkeypatch):
    p = load_params("params/two_teams_fights.yaml").model_copy(update={"warehouse": str(demo_warehouse)})
    shared = _numbers(evalkit.evaluate(p))
    monkeypatch.setattr(evaluation, "share_samples", lambda panel: None)
    alone = _numbers(evalkit.evaluate(p))
    assert shared == alone
