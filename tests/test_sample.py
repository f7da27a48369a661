"""The one estimation sample: conventions, counts and one-line input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators._sample import (
    PanelInputError,
    SampleInfo,
    StaggeredSample,
    bin_event_time,
    build_sample,
    check_event_window,
)


def make_panel(cohorts: dict[str, int], periods=range(10, 20), seed: int = 0) -> pd.DataFrame:
    """Balanced station × period panel; cohorts maps station -> first_treat (0 = never)."""
    rng = np.random.default_rng(seed)
    rows = [{"station_id": s, "period": t, "first_treat": g, "county": f"c{i % 2}",
             "pop": 1.0 + i, "x": float(i), "y": float(rng.normal())}
            for i, (s, g) in enumerate(cohorts.items()) for t in periods]
    return pd.DataFrame(rows)


BASE = {"A": 0, "B": 0, "C": 14, "D": 14, "E": 16}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------- conventions
def test_clean_balanced_panel_counts():
    s = build_sample(make_panel(BASE), "y")
    assert isinstance(s, StaggeredSample)
    i = s.info
    assert (i.n_units, i.n_treated, i.n_control, i.n_periods, i.n_obs) == (5, 3, 2, 10, 50)
    assert (i.first_period, i.last_period, i.balanced) == (10, 19, True)
    assert i.dropped_units == {} and i.dropped_cells == {} and i.recoded == {}
    assert i.n_treated + i.n_control == i.n_units
    assert s.cohorts() == [14, 16]
    assert list(s.frame.columns) == ["station_id", "period", "first_treat", "y"]
    assert s.frame["period"].dtype == np.int64 and s.frame["first_treat"].dtype == np.int64


def test_never_treated_is_zero():
    s = build_sample(make_panel({"A": 0, "B": 12}), "y")
    assert s.info.n_control == 1 and s.info.n_treated == 1
    assert not s.treated[s.frame["station_id"] == "A"].any()


def test_cohort_after_window_recoded_to_never_treated():
    s = build_sample(make_panel({**BASE, "F": 25, "G": 30}), "y")
    assert s.info.recoded == {"adopts_after_window": 2}
    assert (s.info.n_treated, s.info.n_control, s.info.n_units) == (3, 4, 7)
    assert (s.frame.loc[s.frame["station_id"].isin(["F", "G"]), "first_treat"] == 0).all()


def test_treated_from_first_period_dropped():
    s = build_sample(make_panel({**BASE, "F": 10}), "y")
    assert s.info.dropped_units == {"treated_from_first_period": 1}
    assert "F" not in set(s.frame["station_id"])
    assert s.info.n_units == 5 and s.info.n_treated + s.info.n_control == s.info.n_units


def test_periods_starting_at_zero_keep_never_treated():
    s = build_sample(make_panel({"A": 0, "B": 3}, periods=range(0, 6)), "y")
    assert s.info.dropped_units == {} and (s.info.n_treated, s.info.n_control) == (1, 1)


def test_cohort_before_first_period_is_an_error():
    p = make_panel({**BASE, "F": 8})
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    msg = _one_line(exc)
    assert "'first_treat'" in msg and "before the first period 10" in msg
    assert "first rows [50, 51, 52, 53, 54, …]" in msg and "station_id='F'" in msg


def test_missing_cells_dropped_and_counted_unbalanced():
    p = make_panel(BASE)
    p.loc[(p["station_id"] == "C") & (p["period"] == 12), "y"] = np.nan
    p.loc[p["station_id"] == "E", "y"] = np.nan  # a station with no outcome at all
    p = p[~((p["station_id"] == "A") & (p["period"] == 19))]  # a row absent altogether
    s = build_sample(p, "y")
    i = s.info
    assert i.dropped_cells == {"missing_outcome": 11}
    assert i.dropped_units == {"no_outcome": 1}
    assert (i.n_units, i.n_treated, i.n_control, i.n_obs, i.balanced) == (4, 2, 2, 50 - 1 - 1 - 10, False)
    assert not s.frame["y"].isna().any()


def test_missing_rows_make_the_sample_unbalanced():
    p = make_panel(BASE)
    s = build_sample(p[~((p["station_id"] == "B") & (p["period"] == 15))], "y")
    assert s.info.balanced is False and s.info.n_obs == 49 and s.info.dropped_cells == {}


def test_nan_is_missing_but_inf_is_an_error():
    p = make_panel(BASE)
    p.loc[7, "y"] = np.inf
    p.loc[9, "y"] = -np.inf
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    msg = _one_line(exc)
    assert msg.startswith("column 'y': non-finite outcome (inf) in 2 rows, first rows [7, 9]")
    assert "station_id='A', period=17" in msg


def test_sample_info_round_trip_and_event_window():
    s = build_sample(make_panel(BASE), "y", weights="pop").with_event_window(trim_e=(-3, None), bin_e=[-4, 4])
    d = s.info.to_dict()
    assert d["trim_e"] == [-3, None] and d["bin_e"] == [-4, 4] and d["weights"] == "pop"
    assert SampleInfo.from_dict(d) == s.info


def test_event_time_helpers():
    s = build_sample(make_panel({"A": 0, "B": 14}), "y")
    e = s.event_time()
    assert e[s.frame["station_id"] == "A"].isna().all()
    assert e[s.frame["station_id"] == "B"].tolist() == list(range(-4, 6))
    assert bin_event_time([-5, -1, 0, 3], (-2, 2)).tolist() == [-2, -1, 0, 2]
    assert bin_event_time([-5, 7], (None, 2)).tolist() == [-5, 2]
    assert check_event_window(None, "trim_e") is None
    for bad in ((3, -3), "ab", (1.5, 2), (1, 2, 3)):
        with pytest.raises(ValueError, match="trim_e"):
            check_event_window(bad, "trim_e")


def test_sample_passes_through_and_rebuilds():
    s = build_sample(make_panel({**BASE, "F": 30}), "y", cluster="county")
    assert build_sample(s, "y", cluster="county") is s
    s2 = build_sample(s, "y")  # other columns: rebuilt from the validated frame
    assert s2.cluster is None and "county" not in s2.frame and s2.info.n_units == 6
    with pytest.raises(PanelInputError, match="'pop' not in the panel"):
        build_sample(s, "y", weights="pop")


def test_weights_cluster_covariates_kept():
    s = build_sample(make_panel(BASE), "y", cluster="county", weights="pop", covariates=["x"])
    assert set(s.frame.columns) == {"station_id", "period", "first_treat", "y", "county", "pop", "x"}
    assert s.info.weights == "pop" and s.weights == "pop"


# ---------------------------------------------------------------------------- validation errors
def test_duplicated_unit_period_rows():
    p = make_panel(BASE)
    p = pd.concat([p, p.iloc[[3]]], ignore_index=True)
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    msg = _one_line(exc)
    assert msg.startswith("column 'period': duplicated (station_id, period) pair in 2 rows, first rows [3, 50]")


def test_cohort_varying_within_unit():
    p = make_panel(BASE)
    p.loc[(p["station_id"] == "C") & (p["period"] > 15), "first_treat"] = 15
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    msg = _one_line(exc)
    assert msg.startswith("column 'first_treat': adoption period varies within a 'station_id' unit in 10 rows, "
                          "first rows [20, 21, 22, 23, 24, …]")


@pytest.mark.parametrize("value, problem", [(12.5, "non-integer value"), (np.nan, "missing value"),
                                            ("2020-01", "non-numeric value")])
def test_bad_periods(value, problem):
    p = make_panel(BASE).astype({"period": object})
    p.loc[4, "period"] = value
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    assert _one_line(exc).startswith(f"column 'period': {problem} in 1 row, first rows [4]")


def test_non_integer_cohort():
    p = make_panel(BASE).astype({"first_treat": float})
    p.loc[p["station_id"] == "C", "first_treat"] = 14.5
    with pytest.raises(PanelInputError, match=r"^column 'first_treat': non-integer value in 10 rows, first rows \[20"):
        build_sample(p, "y")


def test_missing_cohort_is_an_error():
    p = make_panel(BASE).astype({"first_treat": float})
    p.loc[0, "first_treat"] = np.nan
    with pytest.raises(PanelInputError, match=r"^column 'first_treat': missing value in 1 row, first rows \[0\]"):
        build_sample(p, "y")


def test_missing_unit():
    p = make_panel(BASE)
    p.loc[[5, 6], "station_id"] = None
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y")
    assert _one_line(exc).startswith("column 'station_id': missing unit id in 2 rows, first rows [5, 6]")


def test_missing_column():
    with pytest.raises(PanelInputError, match=r"^column 'crimes' not in the panel"):
        build_sample(make_panel(BASE), "crimes")


def test_cluster_missing_and_varying():
    p = make_panel(BASE)
    p.loc[11, "county"] = None
    with pytest.raises(PanelInputError, match=r"^column 'county': missing cluster id in 1 row, first rows \[11\]"):
        build_sample(p, "y", cluster="county")
    p = make_panel(BASE)
    p.loc[12, "county"] = "elsewhere"
    with pytest.raises(PanelInputError, match=r"^column 'county': cluster varies within a 'station_id' unit"):
        build_sample(p, "y", cluster="county")
    build_sample(p, "y")  # not clustering by it: no error


@pytest.mark.parametrize("value, problem", [(np.nan, "missing weight"), (-1.0, "negative weight"),
                                            (np.inf, "non-finite weight")])
def test_bad_weights(value, problem):
    p = make_panel(BASE)
    p.loc[[8, 30], "pop"] = value
    with pytest.raises(PanelInputError) as exc:
        build_sample(p, "y", weights="pop")
    assert _one_line(exc).startswith(f"column 'pop': {problem} in 2 rows, first rows [8, 30]")


def test_all_zero_weights():
    p = make_panel(BASE).assign(pop=0.0)
    with pytest.raises(PanelInputError, match="every weight is 0"):
        build_sample(p, "y", weights="pop")


def test_bad_covariate():
    p = make_panel(BASE)
    p.loc[2, "x"] = np.nan
    with pytest.raises(PanelInputError, match=r"^column 'x': missing, non-numeric or non-finite covariate"):
        build_sample(p, "y", covariates=["x"])


def test_non_numeric_outcome():
    p = make_panel(BASE).astype({"y": object})
    p.loc[3, "y"] = "n/a"
    with pytest.raises(PanelInputError, match=r"^column 'y': non-numeric outcome in 1 row, first rows \[3\]"):
        build_sample(p, "y")


def test_bad_control():
    with pytest.raises(ValueError, match="control must be one of"):
        build_sample(make_panel(BASE), "y", control="nevr")
