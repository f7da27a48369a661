"""``panel_file``: the station-month panel from a Parquet file plus the warehouse's stations and reforms
(evalkit.panel_source) equals the panel built from the records, and bad files fail in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import evalkit
from evalkit.panel import build_panel
from evalkit.panel_source import PanelFileError, read_panel_file
from evalkit.params import validate_params
from evalkit.warehouse import open_db

OUTCOMES = ["incidents_fight", "dispatches", "response_mean_min"]
BASE = {"evaluation_id": "pf", "reform": "两队一室", "outcomes": OUTCOMES, "window": {"start": "2019-01", "end": "2025-12"},
        "exclude_reforms": ["一所一品试点"], "region": {"area_type": "urban"}}


@pytest.fixture(scope="module")
def every_station(demo_warehouse):
    """The file's content: every station of the warehouse (region and exclusion left to panel_source)."""
    with open_db(demo_warehouse, read_only=True) as con:
        return build_panel(con, "两队一室", start="2019-01", end="2025-12")


@pytest.fixture(scope="module")
def records_panel(demo_warehouse):
    with open_db(demo_warehouse, read_only=True) as con:
        return build_panel(con, "两队一室", start="2019-01", end="2025-12", region={"area_type": "urban"},
                           exclude_reforms=["一所一品试点"])


def _write(df: pd.DataFrame, path, month: str = "month") -> str:
    out = df[["station_id", "period", *OUTCOMES]].copy()
    if month == "month":
        out["month"] = pd.to_datetime({"year": out["period"] // 12, "month": out["period"] % 12 + 1, "day": 1}).dt.date
        out = out.drop(columns="period")
    elif month == "text":
        out["month"] = [f"{p // 12}-{p % 12 + 1:02d}" for p in out.pop("period")]
    out.to_parquet(path, index=False)
    return str(path)


def _params(demo_warehouse, path, **extra):
    return validate_params(BASE | {"warehouse": str(demo_warehouse), "panel_file": str(path)} | extra)


@pytest.mark.parametrize("month", ["month", "period", "text"])
def test_panel_file_equals_the_records_panel(demo_warehouse, every_station, records_panel, tmp_path, month):
    path = _write(every_station, tmp_path / "panel.parquet", month)
    with open_db(demo_warehouse, read_only=True) as con:
        got = read_panel_file(con, path, _params(demo_warehouse, path))
    cols = ["station_id", "name", "county", "city", "province", "area_type", "population", "officers", "auxiliaries",
            "period", "first_treat", *OUTCOMES, "month", "treated", "event_time"]
    want = records_panel[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[cols], want, check_dtype=False)
    assert got["first_treat"].dtype == np.int64 and got["incidents_fight"].dtype == want["incidents_fight"].dtype
    assert got.attrs["excluded_stations"] == records_panel.attrs["excluded_stations"]


def test_exclude_reforms_as_build_panel(demo_warehouse, every_station, tmp_path):
    """Every region: the pilot station (一所一品试点) leaves the comparison group, as in build_panel."""
    path = _write(every_station, tmp_path / "panel.parquet")
    with open_db(demo_warehouse, read_only=True) as con:
        want = build_panel(con, "两队一室", start="2019-01", end="2025-12", exclude_reforms=["一所一品试点"])
        got = read_panel_file(con, path, _params(demo_warehouse, path, region={}))
    assert got.attrs["excluded_stations"] == want.attrs["excluded_stations"] == {"station_pilot": 1}
    pd.testing.assert_frame_equal(got[["station_id", "period", "first_treat", *OUTCOMES]],
                                  want[["station_id", "period", "first_treat", *OUTCOMES]].reset_index(drop=True),
                                  check_dtype=False)


def test_missing_station_months_are_missing_never_zero(demo_warehouse, records_panel, tmp_path):
    df = records_panel.copy()
    first = df["station_id"].iloc[0]
    gone = (df["station_id"] == first) & df["period"].isin(df["period"].unique()[3:6])
    df.loc[df.index[10], "incidents_fight"] = np.nan  # a NaN cell in the file: missing too
    path = _write(df[~gone], tmp_path / "gaps.parquet", "period")
    with open_db(demo_warehouse, read_only=True) as con:
        got = read_panel_file(con, path, _params(demo_warehouse, path))
    assert len(got) == len(records_panel)
    hole = (got["station_id"] == first) & got["period"].isin(df["period"].unique()[3:6])
    assert got.loc[hole, OUTCOMES].isna().all().all()
    assert np.isnan(got.loc[10, "incidents_fight"]) and got["incidents_fight"].dtype == np.float64
    assert got.attrs["missing_cells"]["incidents_fight"] == 4 and got.attrs["missing_cells"]["dispatches"] == 3


def test_evaluate_reads_the_panel_file(demo_warehouse, records_panel, tmp_path):
    path = _write(records_panel, tmp_path / "panel.parquet")
    extra = {"estimators": ["twfe", "cs"], "headline": "cs", "sensitivity": False, "multiple_testing": False,
             "outcomes": ["incidents_fight"]}
    from_file = evalkit.evaluate(_params(demo_warehouse, path, **extra))
    from_records = evalkit.evaluate(validate_params(BASE | {"warehouse": str(demo_warehouse)} | extra))
    for name in ("twfe", "cs"):
        a, b = from_file.result(estimator=name).overall, from_records.result(estimator=name).overall
        assert float(a["estimate"]) == pytest.approx(float(b["estimate"]), rel=1e-12)
        assert float(a["std_error"]) == pytest.approx(float(b["std_error"]), rel=1e-12)


@pytest.mark.parametrize("edit, column, words", [
    (lambda d: d.drop(columns="dispatches"), "dispatches", "outcome missing"),
    (lambda d: d.drop(columns="station_id"), "station_id", "missing"),
    (lambda d: d.drop(columns="period"), "month", "needs a 'month' or a 'period' column"),
    (lambda d: d.assign(dispatches=d["dispatches"].astype(str)), "dispatches", "expected numbers"),
    (lambda d: pd.concat([d, d.iloc[[7]]]), "station_id", "station-month given more than once in 1 row"),
    (lambda d: d.assign(station_id=d["station_id"].where(d.index != 3, "NOPE")), "station_id",
     "station not in the warehouse's stations table in 1 row (e.g. station_id='NOPE'"),
    (lambda d: d.assign(incidents_fight=d["incidents_fight"].astype(float).where(d.index != 2, np.inf)),
     "incidents_fight", "infinite value in 1 row"),
    (lambda d: d.assign(incidents_fight=d["incidents_fight"].where(d.index != 2, -1)), "incidents_fight",
     "negative value"),
    (lambda d: d.assign(period=d["period"].astype(float)), "period", "expected integer periods"),
])
def test_bad_files_fail_in_one_line(demo_warehouse, records_panel, tmp_path, edit, column, words):
    path = tmp_path / "bad.parquet"
    edit(records_panel[["station_id", "period", *OUTCOMES]].reset_index(drop=True)).to_parquet(path, index=False)
    with open_db(demo_warehouse, read_only=True) as con, pytest.raises(PanelFileError) as exc:
        read_panel_file(con, path, _params(demo_warehouse, path))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"panel_file {path}: column {column!r}: ") and words in msg


def test_unreadable_month_and_missing_file(demo_warehouse, records_panel, tmp_path):
    path = tmp_path / "text.parquet"
    d = records_panel[["station_id", "period", *OUTCOMES]].reset_index(drop=True)
    d["month"] = [f"{p // 12}-{p % 12 + 1:02d}" for p in d.pop("period")]
    d.loc[4, "month"] = "Jan 2020"
    d.to_parquet(path, index=False)
    with open_db(demo_warehouse, read_only=True) as con:
        with pytest.raises(PanelFileError, match=r"column 'month': unreadable month in 1 row .*'Jan 2020'"):
            read_panel_file(con, path, _params(demo_warehouse, path))
        with pytest.raises(PanelFileError, match="file not found"):
            read_panel_file(con, tmp_path / "none.parquet", _params(demo_warehouse, tmp_path / "none.parquet"))
