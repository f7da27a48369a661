"""CS's sample is the shared one: ``_cs_sample.shared_sample`` (a certificate for panels that need no
change, else ``build_sample``) gives exactly ``build_sample``'s sample, and estimate_cs reports it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators._cs_sample import shared_sample
from evalkit.estimators._sample import PanelInputError, build_sample
from evalkit.estimators.cs import estimate_cs


def _panel(n: int = 30, t: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 5, 8, 10], n)
    d = pd.DataFrame({"station_id": np.repeat(np.arange(1, n + 1), t), "period": np.tile(np.arange(1, t + 1), n),
                      "first_treat": np.repeat(g, t), "y": rng.normal(size=n * t),
                      "county": np.repeat(np.arange(n) % 4, t), "pop": np.repeat(rng.uniform(1, 5, n), t)})
    return d


def _variants():
    base = _panel()
    yield "certified", base, True
    yield "certified_cluster_weights", base, True
    yield "shuffled", base.sample(frac=1.0, random_state=1).reset_index(drop=True), False
    yield "late_adopter", base.assign(first_treat=np.where(base["first_treat"] == 10, 40, base["first_treat"])), False
    yield "from_first_period", base.assign(first_treat=np.where(base["station_id"] == 2, 1, base["first_treat"])), False
    yield "missing_cell", base.assign(y=np.where(base.index == 7, np.nan, base["y"])), False
    yield "rows_absent", base.drop(index=[3, 4]).reset_index(drop=True), False
    yield "float_periods", base.assign(period=base["period"].astype(float)), False
    yield "other_index", base.set_index(base.index + 100), False


@pytest.mark.parametrize("name, panel, certified", list(_variants()))
def test_shared_sample_is_build_sample(name, panel, certified):
    kw = {"unit": "station_id", "time": "period", "cohort": "first_treat", "covariates": (), "control": "never"}
    kw.update({"cluster": "county", "weights": "pop"} if name.endswith("cluster_weights") else
              {"cluster": None, "weights": None})
    got, cert = shared_sample(panel, "y", **kw)
    ref = build_sample(panel, "y", **kw)
    assert cert == certified
    assert got.info == ref.info
    cols = list(ref.frame.columns)
    pd.testing.assert_frame_equal(got.frame[cols].reset_index(drop=True), ref.frame, check_dtype=False)
    assert (got.unit, got.time, got.cohort, got.cluster, got.weights, got.covariates, got.control) == \
        (ref.unit, ref.time, ref.cohort, ref.cluster, ref.weights, ref.covariates, ref.control)


def test_estimate_cs_reports_the_shared_sample_and_refits_from_context():
    d = _panel()
    d.loc[d["first_treat"] == 10, "first_treat"] = 40  # adopts after the window: never treated (R did)
    d.loc[5, "y"] = np.nan  # a missing cell: unbalanced sample, CS's unbalanced path
    res = estimate_cs(d, "y", trim_e=(-3, 3))
    info = build_sample(d, "y").info
    assert res.sample_info.trim_e == (-3, 3)
    assert res.sample_info == info.__class__(**{**info.__dict__, "trim_e": (-3, 3)})
    assert (res.meta["n_treated"], res.meta["n_control"], res.meta["n_units"]) == \
        (info.n_treated, info.n_control, info.n_units)
    assert res.meta["unbalanced_handling"].startswith("repeated cross sections")
    # the missing cell is at a comparison station (the late adopter, recoded to never treated): every
    # adopter is observed in every period, so the simple aggregation is still the headline estimand
    assert d.loc[5, "first_treat"] == 40 and res.headline["term"] == "ATT"
    assert res.meta["estimand"] == "att_adopter_months_0_H" and res.meta["horizon"] == [0, 3]
    # a missing adopter cell: cohort sizes are no longer adopter-months, the spec's own key stays
    adopter_row = d.index[d["first_treat"] == 5][0]
    gap = estimate_cs(d.assign(y=d["y"].where(d.index != adopter_row)), "y", trim_e=(-3, 3))
    assert gap.meta["estimand"] == "att_simple_average_over_treated_cells" and "horizon" not in gap.meta
    again = estimate_cs(res.context.sample, "y", **res.context.options)
    pd.testing.assert_frame_equal(again.estimates, res.estimates)
    dyn = estimate_cs(d, "y", aggregations=("dynamic",))
    assert dyn.headline["term"] == "ATT_dynamic" and dyn.meta["estimand"] == "att_mean_of_post_event_time_averages"


def test_broken_panels_are_refused_in_one_line():
    d = _panel()
    dup = pd.concat([d, d.iloc[[3]]], ignore_index=True)
    with pytest.raises(PanelInputError, match=r"duplicated \(station_id, period\) pair") as e:
        estimate_cs(dup, "y")
    assert "\n" not in str(e.value)
    vary = d.copy()
    vary.loc[vary.index[13], "first_treat"] = 8 if vary.loc[vary.index[13], "first_treat"] != 8 else 5
    with pytest.raises(PanelInputError, match="adoption period varies within"):
        estimate_cs(vary, "y")
