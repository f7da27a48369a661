"""The demo world: raw-export realism, planted marginal properties, determinism, and truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit import registry, schema
from evalkit.demo import (
    build_world,
    expected_outcomes,
    generate_world,
    load_truth,
    read_manifest,
    station_month_params,
)
from evalkit.demo.world import R_IDX, REFORM_ORDER

SEED = 7
ZH = {t: {c.name: c.zh for c in schema.TABLES[t].columns} for t in schema.TABLES}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def world_files(tmp_path_factory):
    return generate_world("small", SEED, tmp_path_factory.mktemp("demo_small"))


@pytest.fixture(scope="session")
def world():
    return build_world("small", SEED)


@pytest.fixture(scope="session")
def manifest(world_files):
    return read_manifest(world_files.root)


@pytest.fixture(scope="session")
def incidents(world_files, manifest) -> pd.DataFrame:
    """All incident CSVs read back with the encodings the manifest states, canonical columns."""
    frames = []
    rename = {v: k for k, v in ZH["incidents"].items()}
    for p in world_files.incidents:
        enc = manifest["encodings"][p.name]
        df = pd.read_csv(p, encoding=enc, dtype=str, keep_default_na=False)
        df = df.rename(columns=rename)
        fmt = "%Y/%m/%d %H:%M" if "/" in df["received_at"].iloc[0] else "%Y-%m-%d %H:%M:%S"
        for c in ("received_at", "arrived_at"):
            df[c] = pd.to_datetime(df[c].replace("", None), format=fmt)
        frames.append(df[["station_id", "received_at", "arrived_at", "category", "handled_by", "is_case"]])
    df = pd.concat(frames, ignore_index=True)
    df["period"] = df["received_at"].dt.year * 12 + df["received_at"].dt.month - 1
    df["cat"] = df["category"].map(registry.category_id)
    df["resp"] = (df["arrived_at"] - df["received_at"]).dt.total_seconds() / 60
    return df


@pytest.fixture(scope="session")
def disputes(world_files, manifest) -> pd.DataFrame:
    rename = {v: k for k, v in ZH["disputes"].items()}
    frames = [pd.read_csv(p, encoding=manifest["encodings"][p.name], dtype=str, keep_default_na=False)
              .rename(columns=rename) for p in world_files.disputes]
    df = pd.concat(frames, ignore_index=True)
    df["opened_on"] = pd.to_datetime(df["opened_on"])
    df["period"] = df["opened_on"].dt.year * 12 + df["opened_on"].dt.month - 1
    return df


@pytest.fixture(scope="session")
def stations(world_files) -> pd.DataFrame:
    st = pd.read_excel(world_files.stations, sheet_name="派出所", dtype={"派出所编码": str})
    return st.rename(columns={v: k for k, v in ZH["stations"].items()})


@pytest.fixture(scope="session")
def reforms(world_files) -> pd.DataFrame:
    rf = pd.read_csv(world_files.reforms, encoding="utf-8", dtype=str)
    rf = rf.rename(columns={v: k for k, v in ZH["reforms"].items()})
    rf["reform_id"] = rf["reform"].map(registry.reform_id)
    rf["period"] = rf["adopted_on"].map(registry.period_of)
    return rf


@pytest.fixture(scope="session")
def panel(incidents, disputes, stations) -> pd.DataFrame:
    """Station-month panel recomputed from the raw CSVs (the lead's warehouse definitions)."""
    nd = incidents[incidents["handled_by"] != "分流"]
    g = nd.groupby(["station_id", "period"])
    p = pd.DataFrame({"incidents_total": g.size()})
    p = p.join(nd.pivot_table(index=["station_id", "period"], columns="cat", values="handled_by",
                              aggfunc="size", fill_value=0).add_prefix("incidents_"))
    p["response_mean_min"] = g["resp"].mean()
    d = disputes.groupby(["station_id", "period"])
    p = p.join(pd.DataFrame({"disputes_opened": d.size(),
                             "resolved": d["resolved"].apply(lambda s: (s == "是").sum())}), how="outer")
    p = p.fillna(0).reset_index()
    return p.merge(stations[["station_id", "area_type", "population"]], on="station_id")


# ---------------------------------------------------------------------------- raw exports
def test_station_register(stations):
    assert list(stations.columns) == [c.name for c in schema.STATIONS.columns]
    assert set(stations["area_type"]) == {"城区", "农村", "城乡结合"}
    assert stations["station_id"].is_unique and stations["station_id"].str.len().eq(12).all()
    assert stations["name"].str.endswith("派出所").all()
    assert 90 <= len(stations) <= 110
    assert (stations["province"] == "演示省").all()
    assert stations.groupby("county").size().between(5, 25).all()
    assert not set(schema.PERSONAL_DATA_HEADERS) & set(ZH["stations"].values())


def test_reforms_csv(world_files, reforms, stations):
    header = world_files.reforms.read_text(encoding="utf-8").splitlines()[0]
    assert header == "派出所编码,改革事项,实施日期,停止日期,覆盖比例"  # + the issue-17 optional columns
    assert set(reforms["reform_id"]) == set(REFORM_ORDER)
    assert {"两队一室", "一室两队"} <= set(reforms["reform"])
    assert reforms["station_id"].is_unique  # one reform per station at most
    assert set(reforms["station_id"]) <= set(stations["station_id"])
    assert (reforms["reform_id"] == "station_pilot").sum() == 1
    tt = reforms[reforms["reform_id"] == "two_teams_one_room"]
    assert tt["period"].nunique() >= 4 and tt["adopted_on"].str[:4].astype(int).between(2021, 2024).all()
    assert reforms[reforms["reform_id"] == "patrol_dispatch"]["adopted_on"].nunique() == 1
    area = stations.set_index("station_id")["area_type"]
    assert (area[tt["station_id"]] == "城区").all()
    assert (area[reforms.loc[reforms["reform_id"] == "village_auxiliary", "station_id"]] == "农村").all()


def test_encodings_and_headers(world_files, manifest):
    encs = set()
    slash = 0
    for p in world_files.incidents + world_files.disputes:
        raw = p.read_bytes()[:4000]
        enc = manifest["encodings"][p.name]
        encs.add(enc)
        if enc == "utf-8-sig":
            assert raw.startswith(b"\xef\xbb\xbf")
        if enc == "gb18030":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        head = pd.read_csv(p, encoding=enc, nrows=5, dtype=str)
        table = "incidents" if p.name.startswith("incidents") else "disputes"
        assert list(head.columns) == [c.zh for c in schema.TABLES[table].columns]
        assert not set(head.columns) & set(schema.PERSONAL_DATA_HEADERS)
        if table == "incidents" and "/" in head["接警时间"].iloc[0]:
            slash += 1
    assert {"gb18030", "utf-8-sig", "utf-8"} <= encs
    assert slash == 1


def test_incident_vocabularies(incidents, stations):
    assert set(incidents["handled_by"]) == {"派出所", "巡逻", "分流"}
    assert set(incidents["is_case"]) == {"是", "否"}
    assert {"电信诈骗", "诈骗", "打架斗殴", "盗窃", "非警务求助"} <= set(incidents["category"])
    assert (incidents["cat"] != "other").sum() > 0.85 * len(incidents)
    assert set(incidents.loc[incidents["cat"] == "other", "category"]) == {"其他"}
    div = incidents["handled_by"] == "分流"
    assert incidents.loc[div, "arrived_at"].isna().all()
    assert incidents.loc[~div, "arrived_at"].notna().all()
    assert set(incidents.loc[div, "cat"]) == {"nonpolice"}
    assert set(incidents["station_id"]) <= set(stations["station_id"])
    assert 500_000 <= len(incidents) <= 1_600_000


# ---------------------------------------------------------------------------- marginal properties
def test_levels_by_station_type(panel):
    yr = panel.groupby(["station_id", "area_type", "population"])["incidents_total"].sum().reset_index()
    yr["per_10k_year"] = yr["incidents_total"] / 7 / yr["population"] * 1e4
    lvl = yr.groupby("area_type")["per_10k_year"].median()
    assert lvl["城区"] > lvl["城乡结合"] > lvl["农村"]
    # a busy urban station: ~40,000 residents -> ~4,000 incidents a year (within 30%)
    assert 700 <= lvl["城区"] <= 1300
    assert 40_000 * lvl["城区"] / 1e4 == pytest.approx(4000, rel=0.3)


def test_seasonality_trend_and_shock(panel):
    m = panel.assign(month=panel["period"] % 12 + 1, year=panel["period"] // 12)
    by_m = m.groupby("month")["incidents_fight"].mean()
    assert by_m[[7, 8]].mean() > 1.3 * by_m[[12, 1, 2]].mean()  # summer peak of fights
    # Spring Festival: urban stations dip (migrants leave), rural stations do not
    from evalkit.demo.world import SPRING_FESTIVAL

    urb = m[m["area_type"] == "城区"].groupby("period")["incidents_total"].mean()
    rur = m[m["area_type"] == "农村"].groupby("period")["incidents_total"].mean()
    for y in (2019, 2021, 2023, 2025):
        p = y * 12 + SPRING_FESTIVAL[y] - 1
        nb = [p + 1, p + 2]
        assert urb[p] < 0.92 * urb[nb].mean()
        assert rur[p] > 0.97 * rur[nb].mean()
    # telecom fraud rises then falls; 2020 common shock
    fr = m.groupby("year")["incidents_fraud"].sum()
    assert fr[[2021, 2022]].mean() > 1.1 * fr[2019] and fr[2025] < 0.8 * fr[[2021, 2022]].max()
    tot = m.groupby("period")["incidents_total"].sum()
    street = m.groupby("period")[["incidents_theft", "incidents_fight", "incidents_traffic"]].sum().sum(axis=1)
    shock = [2020 * 12 + k for k in (1, 2, 3)]  # Feb-Apr 2020 vs Feb-Apr 2019
    assert street[shock].sum() < 0.75 * street[[s - 12 for s in shock]].sum()
    assert tot[shock[1:]].sum() < 0.92 * tot[[s - 12 for s in shock[1:]]].sum()


def test_response_times(incidents, stations):
    r = incidents.dropna(subset=["resp"])
    r = r[r["period"] < 2021 * 12]  # before any response reform
    assert r["resp"].mean() > 1.1 * r["resp"].median() and r["resp"].skew() > 1.0
    area = stations.set_index("station_id")["area_type"]
    by_area = r.groupby(r["station_id"].map(area))["resp"].mean()
    assert by_area["农村"] > 1.5 * by_area["城区"]
    hour = r["received_at"].dt.hour
    night = (hour >= 22) | (hour < 6)
    assert r.loc[night, "resp"].mean() > 1.15 * r.loc[~night, "resp"].mean()


def test_disputes(disputes):
    res = (disputes["resolved"] == "是").mean()
    esc = (disputes["escalated"] == "是").mean()
    assert 0.95 <= res <= 0.98
    assert 0.0005 < esc < 0.01
    assert ((disputes["escalated"] == "是") & (disputes["resolved"] == "是")).sum() == 0
    assert (disputes.loc[disputes["resolved"] == "否", "closed_on"] == "").all()
    assert set(disputes["category"]) == {v[0] for v in registry.DISPUTE_CATEGORIES.values()}
    days = (pd.to_datetime(disputes.loc[disputes["resolved"] == "是", "closed_on"])
            - disputes.loc[disputes["resolved"] == "是", "opened_on"]).dt.days
    assert days.min() >= 1 and days.mean() > days.median()


def test_overdispersion(world, panel, reforms):
    """Counts are negative-binomial: Pearson dispersion against the true mean is clearly > 1."""
    idx = np.flatnonzero(world.reform_of < 0)
    lam = station_month_params(world, idx)["lam"]
    cat = registry.CATEGORIES
    ids = world.stations["station_id"].to_numpy()[idx]
    wide = panel.set_index(["station_id", "period"])
    for c in ("theft", "fight", "traffic"):
        k = list(cat).index(c)
        y = wide[f"incidents_{c}"].reindex(pd.MultiIndex.from_product([ids, world.periods])).fillna(0)
        y = y.to_numpy().reshape(len(ids), -1)
        mu = lam[:, :, k]
        disp = ((y - mu) ** 2 / mu).mean()
        assert disp > 1.2, (c, disp)
        assert ((y - mu) ** 2).mean() > mu.mean()  # variance > mean


# ---------------------------------------------------------------------------- determinism
def _digest(paths):
    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_deterministic(world_files, tmp_path):
    again = generate_world("small", SEED, tmp_path / "again")
    files = [*world_files.incidents, *world_files.disputes, world_files.reforms, world_files.manifest,
             world_files.truth]
    files2 = [*again.incidents, *again.disputes, again.reforms, again.manifest, again.truth]
    assert _digest(files) == _digest(files2)
    pd.testing.assert_frame_equal(pd.read_excel(world_files.stations), pd.read_excel(again.stations))
    other = build_world("small", SEED + 1)
    assert not other.stations["population"].equals(build_world("small", SEED).stations["population"])


# ---------------------------------------------------------------------------- truth
def test_manifest(manifest, world_files, incidents, disputes):
    assert manifest["synthetic"] is True and manifest["generated_by"] == "evalkit demo-data"
    assert manifest["size"] == "small" and manifest["seed"] == SEED
    assert manifest["rows"]["incidents"] == len(incidents)
    assert manifest["rows"]["disputes"] == len(disputes)
    assert {r["reform"] for r in manifest["reforms"]} == set(REFORM_ORDER)
    for f in manifest["files"]:
        assert (world_files.root / f).exists()


def test_truth_layout(world_files):
    t = load_truth(world_files.root)
    assert {"reform", "outcome", "kind", "cohort", "event_time", "att_level", "att_pct",
            "n_treated_station_months"} <= set(t.columns)
    assert set(t["outcome"]) <= set(registry.OUTCOMES)
    assert set(t["reform"]) <= set(registry.REFORMS)
    assert t.loc[t["kind"] == "overall", "event_time"].isna().all()
    assert (t.loc[t["event_time"].lt(0).fillna(False), "att_level"] == 0).all()  # no anticipation
    assert (t.loc[t["reform"] == "service_hall", "att_level"] == 0).all()  # placebo


def _overall(t, reform, outcome):
    r = t[(t["reform"] == reform) & (t["outcome"] == outcome) & (t["kind"] == "overall") & t["cohort"].isna()]
    assert len(r) == 1
    return r.iloc[0]


def test_truth_recomputed_from_counterfactual(world, world_files, reforms):
    """Recompute the truth independently from E[Y(1)] and E[Y(0)] with the adoption dates of reforms.csv."""
    t = load_truth(world_files.root)
    pos = {s: i for i, s in enumerate(world.stations["station_id"])}
    for reform, outcome in [("two_teams_one_room", "incidents_fight"), ("two_teams_one_room", "cases"),
                            ("patrol_dispatch", "response_mean_min"), ("nonpolice_diversion", "dispatches"),
                            ("village_auxiliary", "dispute_resolution_rate"), ("station_pilot", "incidents_total")]:
        rf = reforms[reforms["reform_id"] == reform]
        idx = np.array([pos[s] for s in rf["station_id"]])
        y1 = expected_outcomes(world, idx, station_month_params(world, idx, True))[outcome]
        y0 = expected_outcomes(world, idx, station_month_params(world, idx, False))[outcome]
        e = world.periods[None, :] - rf["period"].to_numpy()[:, None]
        post = e >= 0
        row = _overall(t, reform, outcome)
        assert row["att_level"] == pytest.approx((y1 - y0)[post].mean(), rel=1e-9)
        assert row["att_pct"] == pytest.approx(100 * (y1 - y0)[post].sum() / y0[post].sum(), rel=1e-9)
        assert row["n_treated_station_months"] == post.sum()
        ev = t[(t["reform"] == reform) & (t["outcome"] == outcome) & (t["kind"] == "event") & t["cohort"].isna()]
        for k in (0, 6, 12):
            if (e == k).any():
                got = ev.loc[ev["event_time"] == k, "att_level"].iloc[0]
                assert got == pytest.approx((y1 - y0)[e == k].mean(), rel=1e-9, abs=1e-12)


def test_planted_shapes(world_files):
    t = load_truth(world_files.root)
    ev = t[(t["reform"] == "two_teams_one_room") & (t["outcome"] == "incidents_fight") & (t["kind"] == "event")]
    allc = ev[ev["cohort"].isna()].set_index("event_time")["att_pct"]
    assert allc[0] > allc[11] > allc[23]  # grows with time since adoption
    by_c = ev[ev["cohort"].notna() & (ev["event_time"] == 12)].set_index("cohort")["att_pct"]
    assert by_c.iloc[0] < by_c.iloc[-1] < 0  # earlier cohorts: larger (more negative) effects
    two_year = ev[ev["cohort"].notna() & (ev["event_time"] == 23)]["att_pct"]
    assert two_year.between(-36, -19).all()
    assert _overall(t, "nonpolice_diversion", "incidents_nonpolice")["att_pct"] < -40
    assert _overall(t, "village_auxiliary", "dispute_resolution_rate")["att_level"] > 0.005
    assert _overall(t, "village_auxiliary", "dispute_escalation_rate")["att_level"] < 0
    assert _overall(t, "station_pilot", "incidents_total")["att_pct"] < -10


def test_draws_match_truth(world, panel, incidents, reforms, world_files):
    """The realised data move as the truth says (against the expected counterfactual)."""
    t = load_truth(world_files.root)
    pos = {s: i for i, s in enumerate(world.stations["station_id"])}
    wide = panel.set_index(["station_id", "period"])

    def obs_vs_cf(reform, outcome):
        rf = reforms[reforms["reform_id"] == reform]
        idx = np.array([pos[s] for s in rf["station_id"]])
        y0 = expected_outcomes(world, idx, station_month_params(world, idx, False))[outcome]
        e = world.periods[None, :] - rf["period"].to_numpy()[:, None]
        y = wide[outcome].reindex(pd.MultiIndex.from_product([rf["station_id"], world.periods])).fillna(0)
        y = y.to_numpy().reshape(len(idx), -1)
        post = e >= 0
        return 100 * (y[post].sum() / y0[post].sum() - 1), 100 * (y[e < 0].sum() / y0[e < 0].sum() - 1)

    post, pre = obs_vs_cf("two_teams_one_room", "incidents_fight")
    assert abs(pre) < 5
    assert post == pytest.approx(_overall(t, "two_teams_one_room", "incidents_fight")["att_pct"], abs=6)
    post, pre = obs_vs_cf("nonpolice_diversion", "incidents_nonpolice")
    assert post == pytest.approx(_overall(t, "nonpolice_diversion", "incidents_nonpolice")["att_pct"], abs=6)

    # patrol-dispatch: ~5 minutes, >= 90% of non-case incidents closed by patrol (after the adoption month)
    rf = reforms[reforms["reform_id"] == "patrol_dispatch"]
    core = incidents[incidents["station_id"].isin(rf["station_id"]) & (incidents["period"] > rf["period"].iloc[0])]
    assert core["resp"].mean() == pytest.approx(5.0, abs=0.4)
    nc = core[(core["is_case"] == "否") & (core["handled_by"] != "分流")]
    assert (nc["handled_by"] == "巡逻").mean() >= 0.9
    before = incidents[incidents["station_id"].isin(rf["station_id"]) & (incidents["period"] < rf["period"].iloc[0])]
    assert before["resp"].mean() > 8


def test_pilot_selected_on_rising_trend(world):
    j = int(np.flatnonzero(world.reform_of == R_IDX["station_pilot"])[0])
    lo, hi = np.quantile(world.beta, [0.6, 0.9])
    assert lo <= world.beta[j] <= hi and world.beta[j] > 0  # rising faster than most, not an outlier


def test_panel_parquet_matches_raw(world_files, panel):
    p = pd.read_parquet(world_files.panel).set_index(["station_id", "period"])
    q = panel.set_index(["station_id", "period"])
    common = q.index.intersection(p.index)
    assert len(common) > 0.99 * len(p)
    np.testing.assert_array_equal(p.loc[common, "incidents_total"].to_numpy(),
                                  q.loc[common, "incidents_total"].to_numpy())
    iso = common[common.get_level_values("period") // 12 != 2022]  # 2022 has minute timestamps
    np.testing.assert_allclose(p.loc[iso, "response_mean_min"].to_numpy(),
                               q.loc[iso, "response_mean_min"].to_numpy(), rtol=1e-9)
