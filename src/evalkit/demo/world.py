"""The synthetic demo world: realistic station records with a known, planted truth.

Generation is fully vectorised with numpy: expected counts are built as station x month x
category arrays (``lambda``), counts are drawn from a gamma-Poisson (negative-binomial)
mixture, and incident / dispute records are produced with ``np.repeat`` of the counts.
Everything is deterministic given the seed (``numpy.random.PCG64`` streams keyed by seed,
station chunk and year), so the same seed gives byte-identical CSV files.

The true effects are computed from the *expected values* of the treated and the untreated
potential outcomes of every treated station-month (``compute_truth``), see
``docs/demo-world.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evalkit import registry, schema
from evalkit.demo.exports import (
    ADJACENCY_FILE,
    _CsvAppender,
    _dispute_table,
    _enc_for_disputes,
    _enc_for_incidents,
    _incident_parquet_table,
    _incident_table,
    _slash_year,
    _write_reforms_csv,
    _write_stations_xlsx,
    write_adjacency_csv,
)
from evalkit.demo.geography import station_map
from evalkit.demo.manifest import load_truth, manifest_dict, read_manifest, rounded
from evalkit.demo.outcomes import (
    compute_truth,
    draw_counts,
    expected_outcomes,
    station_month_params,
)
from evalkit.demo.params import (
    A_IDX,
    AREAS,
    BASE_RATE,
    C_IDX,
    CATS,
    CHARS,
    CHUNK_STATIONS,
    DAYS_BASE,
    DCAT_P,
    DCATS,
    DISPUTE_RATE,
    DIVERSION_DATES,
    DIVERSION_STOP,
    DOSE_LEVELS,
    EFFECT_TEXT,
    ESC_BASE,
    GRID_COHORTS,
    GRID_SHARE,
    HOUR_P,
    HOUR_W,
    K_SM,
    K_SMC,
    NATIONAL_DEFAULT_START,
    NC,
    NIGHT,
    NIGHT_FACTOR,
    NONRES_BASE,
    NP,
    P_CASE,
    P_DIVERT_BASE,
    P_NIGHT,
    P_PATROL_BASE,
    P_PATROL_CASE,
    PATROL_DATE,
    PATROL_SHARE,
    PATROL_TARGET_MEAN,
    PILOT_DATE,
    R_IDX,
    REFORM_ORDER,
    RESP_FACTOR,
    RESP_MEDIAN,
    RESP_SIGMA,
    SEASON,
    SERVICE_COHORTS,
    SF_AREA,
    SF_CAT,
    SHOCK_CAT,
    SHOCK_DISPUTES,
    SHOCK_PROFILE,
    SIZES,
    SPRING_FESTIVAL,
    STREAM_DOSE,
    STREAM_GRID,
    STREAM_MAP,
    STREAM_STOP,
    TREND,
    TRUTH_OUTCOMES,
    TTOR_COHORTS,
    VILLAGE_COHORTS,
    World,
    WorldFiles,
    _log,
    _period,
    _ss,
)
from evalkit.demo.records import (
    dispute_records,
    incident_records,
    panel_from_records,
)
from evalkit.demo.truth import NO_TRUTH_CELLS, TRUTH_CELLS_FILE, plant_truths, truth_cells, write_truth_cells

# The public API of the demo world: the model constants, containers and expected values
# (params/outcomes/records) stay importable from here.
__all__ = [
    "AREAS",
    "A_IDX",
    "BASE_RATE",
    "CATS",
    "CHARS",
    "CHUNK_STATIONS",
    "C_IDX",
    "DAYS_BASE",
    "DCATS",
    "DCAT_P",
    "DISPUTE_RATE",
    "DIVERSION_DATES",
    "EFFECT_TEXT",
    "ESC_BASE",
    "HOUR_P",
    "HOUR_W",
    "K_SM",
    "K_SMC",
    "NATIONAL_DEFAULT_START",
    "NC",
    "NIGHT",
    "NIGHT_FACTOR",
    "NONRES_BASE",
    "NP",
    "PATROL_DATE",
    "PATROL_SHARE",
    "PATROL_TARGET_MEAN",
    "PILOT_DATE",
    "P_CASE",
    "P_DIVERT_BASE",
    "P_NIGHT",
    "P_PATROL_BASE",
    "P_PATROL_CASE",
    "REFORM_ORDER",
    "RESP_FACTOR",
    "RESP_MEDIAN",
    "RESP_SIGMA",
    "R_IDX",
    "SEASON",
    "SERVICE_COHORTS",
    "SF_AREA",
    "SF_CAT",
    "SHOCK_CAT",
    "SHOCK_DISPUTES",
    "SHOCK_PROFILE",
    "SIZES",
    "SPRING_FESTIVAL",
    "TREND",
    "TRUTH_OUTCOMES",
    "TTOR_COHORTS",
    "VILLAGE_COHORTS",
    "World",
    "WorldFiles",
    "build_world",
    "compute_truth",
    "dispute_records",
    "draw_counts",
    "expected_outcomes",
    "generate_world",
    "incident_records",
    "load_truth",
    "panel_from_records",
    "read_manifest",
    "station_month_params",
]


# ---------------------------------------------------------------------------- world build
def build_world(size: str = "small", seed: int = 42, *, start: str | None = None, end: str = "2025-12",
                n_stations: int | None = None) -> World:
    """Draw stations, reform assignments and all parameters (cheap; no records)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    if start is None:
        start = NATIONAL_DEFAULT_START if size == "national" else "2019-01"
    p0, p1 = _period(start), _period(end)
    if p1 < p0:
        raise ValueError("end before start")
    periods = np.arange(p0, p1 + 1)
    S = n_stations or SIZES[size]
    rng = _ss(seed, 0)

    # --- geography: counties of ~15 stations, cities of ~4-8 counties, provinces of ~12 cities
    county_sizes: list[int] = []
    while sum(county_sizes) < S:
        county_sizes.append(int(rng.integers(12, 19)))
    county_sizes[-1] -= sum(county_sizes) - S
    if county_sizes[-1] < 5 and len(county_sizes) > 1:
        last = county_sizes.pop()
        county_sizes[-1] += last
    n_counties = len(county_sizes)
    per_city = 4 if S <= 200 else int(rng.integers(6, 9))
    county_city = np.arange(n_counties) // per_city
    county_rank = np.arange(n_counties) % per_city  # 0 = urban core district, 1 = mixed district
    st_county = np.repeat(np.arange(n_counties), county_sizes)
    st_city = county_city[st_county]
    st_rank = county_rank[st_county]
    n_cities = int(county_city.max()) + 1
    city_prov = np.arange(n_cities) // 12

    # area type by county rank
    u = rng.random(S)
    area = np.where(
        st_rank == 0, np.where(u < 0.9, 0, 2),
        np.where(st_rank == 1, np.where(u < 0.4, 0, np.where(u < 0.8, 2, 1)),
                 np.where(u < 0.1, 0, np.where(u < 0.3, 2, 1))),
    ).astype(np.int8)
    pop_med = np.array([24000.0, 16000.0, 21000.0])[area]
    pop = np.round(pop_med * np.exp(rng.normal(0, 0.35, S)), -2).clip(3000, 150000).astype(np.int64)
    officers = np.maximum(3, np.round(pop / np.array([2000.0, 2600.0, 2300.0])[area] * np.exp(rng.normal(0, 0.15, S))))
    villages = np.where(area == 1, rng.integers(8, 31, S), np.where(area == 2, rng.integers(3, 13, S), 0))
    aux = np.round(officers * np.array([1.5, 1.0, 1.2])[area] * np.exp(rng.normal(0, 0.2, S)))

    # names and codes (fictional)
    def pair(n: int) -> list[str]:
        a = rng.integers(0, len(CHARS), n)
        b = (a + rng.integers(1, len(CHARS), n)) % len(CHARS)
        return [CHARS[i] + CHARS[j] for i, j in zip(a, b, strict=True)]

    if S <= len(CHARS) * (len(CHARS) - 1):
        allpairs = [x + y for x in CHARS for y in CHARS if x != y]
        st_pairs = [allpairs[i] for i in rng.permutation(len(allpairs))[:S]]
    else:
        st_pairs = pair(S)
    suffix_u = np.array(["路", "街", "大道", "广场"])
    suffix_r = np.array(["镇", "乡"])
    suffix_m = np.array(["街道", "镇", "新区"])
    suf = np.where(area == 0, suffix_u[rng.integers(0, 4, S)],
                   np.where(area == 1, suffix_r[rng.integers(0, 2, S)], suffix_m[rng.integers(0, 3, S)]))
    names = [f"{p}{s}派出所" for p, s in zip(st_pairs, suf, strict=True)]
    city_names = [f"{p}市" for p in pair(n_cities)]
    county_names = [f"{p}{'区' if r < 2 else '县'}" for p, r in zip(pair(n_counties), county_rank, strict=True)]
    n_prov = int(city_prov.max()) + 1
    prov_names = ["演示省"] if n_prov == 1 else [f"演示省{i + 1:02d}" for i in range(n_prov)]
    seq_in_county = np.concatenate([np.arange(k) for k in county_sizes])
    county_in_city = county_rank[st_county]
    ids = [f"9{c:03d}{k:02d}{q:02d}0000" if n_cities < 1000 else f"{c:04d}{k:02d}{q:02d}0000"
           for c, k, q in zip(st_city, county_in_city, seq_in_county, strict=True)]
    stations = pd.DataFrame({
        "station_id": ids,
        "name": names,
        "county": [county_names[k] for k in st_county],
        "city": [city_names[c] for c in st_city],
        "province": [prov_names[city_prov[c]] for c in st_city],
        "area_type": [AREAS[a] for a in area],
        "population": pop,
        "officers": officers.astype(np.int64),
        "auxiliaries": aux.astype(np.int64),
        "villages": villages.astype(np.int64),
        "county_idx": st_county,
        "city_idx": st_city,
        "county_rank": st_rank,
    })

    # --- station heterogeneity
    alpha_s = rng.normal(0, 0.25, S)
    alpha_c = alpha_s[:, None] + rng.normal(0, 0.15, (S, NC)) + np.log(BASE_RATE[area])
    beta = rng.normal(0, 0.03, S)
    resp_log = rng.normal(0, 0.15, S)
    p_patrol0 = np.clip(P_PATROL_BASE[area] + rng.normal(0, 0.04, S), 0.01, 0.6)
    d_alpha = np.log(DISPUTE_RATE[area]) + rng.normal(0, 0.25, S)
    nonres0 = NONRES_BASE * np.exp(rng.normal(0, 0.25, S))
    esc0 = ESC_BASE[area] * np.exp(rng.normal(0, 0.25, S))
    days0 = DAYS_BASE[area] * np.exp(rng.normal(0, 0.2, S))

    # --- reforms (each station at most one)
    reform_of = np.full(S, -1, dtype=np.int64)
    adopt = np.zeros(S, dtype=np.int64)
    strength = np.zeros(S)
    day = np.ones(S, dtype=np.int64)
    alias = np.zeros(S, dtype=bool)
    in_window = lambda p: p0 + 6 <= p <= p1 - 3  # noqa: E731

    def assign(mask: np.ndarray, r: str, per: np.ndarray) -> None:
        ok = mask & (reform_of < 0) & np.array([in_window(int(x)) for x in per])
        reform_of[ok] = R_IDX[r]
        adopt[ok] = per[ok]

    # patrol dispatch: first city's core district, urban
    core = (st_city == 0) & (st_rank == 0) & (area == 0)
    assign(core, "patrol_dispatch", np.full(S, _period(PATROL_DATE)))
    # two teams one room: urban stations, 60%
    k = rng.integers(0, len(TTOR_COHORTS), S)
    coh = np.array([_period(c) for c in TTOR_COHORTS])[k]
    pick = (area == 0) & (rng.random(S) < 0.6)
    assign(pick, "two_teams_one_room", coh)
    is_t = reform_of == R_IDX["two_teams_one_room"]
    strength[is_t] = 0.35 - 0.15 * k[is_t] / (len(TTOR_COHORTS) - 1)
    alias[is_t] = st_city[is_t] % 2 == 1  # some cities call it 一室两队
    day[is_t] = rng.integers(1, 29, S)[is_t]
    # village auxiliary: rural, 55%
    kv = rng.integers(0, len(VILLAGE_COHORTS), S)
    assign((area == 1) & (rng.random(S) < 0.55), "village_auxiliary",
           np.array([_period(c) for c in VILLAGE_COHORTS])[kv])
    # non-police diversion: mixed stations of ~half the counties (not the first city core)
    cty = rng.random(n_counties) < 0.5
    cty_date = np.array([_period(d) for d in DIVERSION_DATES])[rng.integers(0, len(DIVERSION_DATES), n_counties)]
    assign((area == 2) & cty[st_county], "nonpolice_diversion", cty_date[st_county])
    # pilot: selected on a rising trend — among urban/mixed untreated stations whose incidents
    # rise faster than most (trend between the 60th and 90th percentile of all stations), so it is not
    # typical, yet other stations rise as fast and a synthetic control can still track it
    elig = np.flatnonzero((area != 1) & (reform_of < 0))
    if len(elig):
        lo_b, hi_b = np.quantile(beta, [0.6, 0.9])  # percentiles over all stations
        rising = elig[(beta[elig] >= lo_b) & (beta[elig] <= hi_b)]
        if not len(rising):  # tiny worlds: the eligible station nearest the 75th percentile
            rising = elig[[int(np.argmin(np.abs(beta[elig] - np.quantile(beta, 0.75))))]]
        j = int(rng.choice(rising))
        assign(np.arange(S) == j, "station_pilot", np.full(S, _period(PILOT_DATE)))
    # placebo service hall: 25% of the remaining stations
    ks = rng.integers(0, len(SERVICE_COHORTS), S)
    assign(rng.random(S) < 0.25, "service_hall", np.array([_period(c) for c in SERVICE_COHORTS])[ks])
    # police-grid integration (issue 17): urban and rural stations still without a reform; its own stream
    rg = _ss(seed, STREAM_GRID)
    kg = rg.integers(0, len(GRID_COHORTS), S)
    assign(np.isin(area, [A_IDX["urban"], A_IDX["rural"]]) & (rg.random(S) < GRID_SHARE), "police_grid",
           np.array([_period(c) for c in GRID_COHORTS])[kg])
    fixed_day = {R_IDX["patrol_dispatch"], R_IDX["station_pilot"], R_IDX["nonpolice_diversion"]}
    for r in fixed_day:
        day[reform_of == r] = 1
    other = (reform_of >= 0) & ~np.isin(reform_of, list(fixed_day)) & ~is_t
    day[other] = rng.integers(1, 29, S)[other]

    # dose of 一村一辅警 (share of villages covered; 1.0 for every other station: their effects unscaled)
    # (the levels dealt out in turn over the adopters in a shuffled order: each level gets ~1/4 of them)
    dose = np.ones(S)
    is_v = np.flatnonzero(reform_of == R_IDX["village_auxiliary"])
    dose[is_v] = np.resize(np.array(DOSE_LEVELS), len(is_v))[_ss(seed, STREAM_DOSE).permutation(len(is_v))]
    # one county's diversion stations stop (only inside the window, after their adoption)
    end = np.zeros(S, dtype=np.int64)
    p_stop = _period(DIVERSION_STOP)
    is_div = (reform_of == R_IDX["nonpolice_diversion"]) & (adopt < p_stop)
    if p_stop <= p1 and is_div.any():
        # the county with the most diversion stations (ties: drawn), so the switch-off is well observed
        cty_n = np.bincount(st_county[is_div], minlength=n_counties)
        stop_county = int(_ss(seed, STREAM_STOP).choice(np.flatnonzero(cty_n == cty_n.max())))
        end[is_div & (st_county == stop_county)] = p_stop
    # the station map: stations sharing a border; the untreated neighbours of patrol adopters
    adjacency = station_map(county_sizes, _ss(seed, STREAM_MAP))
    is_p = reform_of == R_IDX["patrol_dispatch"]
    touch = np.zeros(S, dtype=bool)
    for a, b in ((0, 1), (1, 0)):
        touch[adjacency[is_p[adjacency[:, a]], b]] = True
    exposed = touch & ~is_p

    rows = np.flatnonzero(reform_of >= 0)
    rf = pd.DataFrame({
        "station_id": [ids[i] for i in rows],
        "reform": [REFORM_ORDER[reform_of[i]] for i in rows],
        "adopted_on": [registry.period_start(adopt[i]) + pd.Timedelta(days=int(day[i]) - 1) for i in rows],
        "cohort": adopt[rows],
        "ended_on": [registry.period_start(end[i]) if end[i] else pd.NaT for i in rows],
        "intensity": [float(dose[i]) if reform_of[i] == R_IDX["village_auxiliary"] else np.nan for i in rows],
    })
    rf["reform_zh"] = [
        ("一室两队" if alias[i] else registry.REFORMS[r].zh) for i, r in zip(rows, rf["reform"], strict=True)
    ]

    # --- time arrays
    years = periods // 12
    months = periods % 12  # 0..11
    yfrac = years + months / 12.0
    time_log = SEASON[months] + np.outer(yfrac - 2019.0, TREND)
    tf = yfrac - 2016.0
    fraud = 0.46 * tf - 0.04 * tf**2
    time_log[:, C_IDX["fraud"]] += fraud - (0.46 * 3 - 0.04 * 9)
    shock_w = np.array([SHOCK_PROFILE.get(int(m) + 1, 0.0) if y == 2020 else 0.0
                        for y, m in zip(years, months, strict=True)])
    time_log += np.outer(shock_w, SHOCK_CAT)
    sf = np.array([1.0 if SPRING_FESTIVAL.get(int(y)) == int(m) + 1 else 0.0
                   for y, m in zip(years, months, strict=True)])
    time_log += np.outer(sf, SF_CAT)
    d_time_log = 0.15 * sf + SHOCK_DISPUTES * shock_w + np.where(np.isin(months, [5, 6, 7]), 0.05, 0.0)

    return World(
        size=size, seed=seed, periods=periods, stations=stations, reforms=rf, area=area, pop=pop,
        alpha_c=alpha_c, beta=beta, resp_log=resp_log, p_patrol0=p_patrol0, d_alpha=d_alpha,
        nonres0=nonres0, esc0=esc0, days0=days0, reform_of=reform_of, adopt=adopt, strength=strength,
        time_log=time_log, sf=sf, d_time_log=d_time_log, dose=dose, end=end, exposed=exposed, adjacency=adjacency,
    )


# ---------------------------------------------------------------------------- main entry
def _chunks(S: int, size: str) -> Iterator[tuple[int, np.ndarray]]:
    step = CHUNK_STATIONS[size]
    for k, lo in enumerate(range(0, S, step)):
        yield k, np.arange(lo, min(S, lo + step))


def generate_world(size: str = "small", seed: int = 42, out_dir: str | Path = "data/demo", *,
                   start: str = "2019-01", end: str = "2025-12", progress: bool = False,
                   n_stations: int | None = None) -> WorldFiles:
    """Generate the demo world and write its raw exports, truth and manifest under ``out_dir``.

    For ``size="national"`` the default window is 2016-01..2025-12 (120 months) unless ``start``
    is given explicitly as something other than the default. ``n_stations`` overrides the
    station count of the size (for tests and smoke runs of the national code path).
    """
    t0 = time.perf_counter()
    if size == "national" and start == "2019-01":
        start = NATIONAL_DEFAULT_START
    w = build_world(size, seed, start=start, end=end, n_stations=n_stations)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    national = size == "national"
    _log(f"{size}: {w.n_stations} stations, {len(w.periods)} months ({start}..{end})", progress)

    stations_path = root / "stations.xlsx"
    _write_stations_xlsx(w, stations_path)
    reforms_path = root / "reforms.csv"
    n_reform_rows = _write_reforms_csv(w, reforms_path)
    n_adjacency_rows = write_adjacency_csv(w, root / ADJACENCY_FILE)

    years = sorted({int(p) // 12 for p in w.periods})
    year_tsel = {y: np.flatnonzero(w.periods // 12 == y) for y in years}
    slash = None if national else _slash_year(years)
    codes = pa.array(w.stations["station_id"].tolist())

    inc_dir = root / "incidents"
    inc_files: dict[int, _CsvAppender] = {}
    if national:
        for y in years:
            (inc_dir / f"year={y}").mkdir(parents=True, exist_ok=True)
    else:
        hi = [c.zh for c in schema.INCIDENTS.columns]
        for y in years:
            inc_files[y] = _CsvAppender(root / f"incidents_{y}.csv", hi, _enc_for_incidents(y))
    hd = [c.zh for c in schema.DISPUTES.columns]
    dis_files = {y: _CsvAppender(root / f"disputes_{y}.csv", hd, _enc_for_disputes(y)) for y in years}
    inc_rows = dict.fromkeys(years, 0)
    dis_rows = dict.fromkeys(years, 0)
    panels: list[pd.DataFrame] = []
    files_written: list[str] = []

    for k, idx in _chunks(w.n_stations, size):
        counts, dcounts, prm = draw_counts(w, idx, k)
        for y in years:
            tsel = year_tsel[y]
            rng = _ss(seed, 2, k, y)
            inc = incident_records(w, idx, counts, prm, tsel, rng)
            dis = dispute_records(w, idx, dcounts, prm, tsel, rng)
            if national:
                tab = _incident_parquet_table(inc, y, inc_rows[y], codes, rng)
                pq.write_table(tab, inc_dir / f"year={y}" / f"part-{k:05d}.parquet", compression="zstd")
            else:
                fmt = "slash" if y == slash else "iso"
                inc_files[y].write(_incident_table(w, inc, y, inc_rows[y], fmt, rng, codes))
            inc_rows[y] += len(inc["received"])
            dis_files[y].write(_dispute_table(dis, y, dis_rows[y], codes))
            dis_rows[y] += len(dis["opened"])
            panels.append(panel_from_records(w, inc, dis, idx, tsel))
            del inc, dis
        _log(f"chunk {k}: stations {idx[0]}..{idx[-1]} done ({time.perf_counter() - t0:.1f}s)", progress)
    for f in (*inc_files.values(), *dis_files.values()):
        f.close()

    panel = pd.concat(panels, ignore_index=True).sort_values(["station_id", "period"], kind="stable")
    panel_path = root / "panel.parquet"
    panel.to_parquet(panel_path, index=False)
    del panels, panel

    truth = compute_truth(w)
    truth_path = root / "truth.parquet"
    truth.to_parquet(truth_path, index=False)
    # expected Y(0), Y(1) of each treated station-month: the truth of any evaluation's own sample
    cells = None if w.size in NO_TRUTH_CELLS else truth_cells(w)
    cells_path = write_truth_cells(w, root, cells)
    plants = None if cells is None else rounded(plant_truths(w, cells))

    if national:
        incidents: list[Path] | Path = inc_dir
        files_written.append("incidents/year=YYYY/part-*.parquet")
    else:
        incidents = [root / f"incidents_{y}.csv" for y in years]
        files_written += [p.name for p in incidents]
    disputes = [root / f"disputes_{y}.csv" for y in years]
    files_written = ["stations.xlsx", "reforms.csv", ADJACENCY_FILE, *files_written, *[p.name for p in disputes],
                     "panel.parquet", "truth.parquet", *([TRUTH_CELLS_FILE] if cells_path else [])]
    # the prevention index's monthly report tables: their own seeded stream, nothing above changes
    from evalkit.demo.index_tables import write_index_tables

    files_written += write_index_tables(w, root)

    manifest = manifest_dict(w, size, seed, start, end, n_reform_rows, inc_rows, dis_rows, files_written,
                         years, slash, national, truth)
    manifest["rows"]["adjacency"] = n_adjacency_rows
    manifest["plants"] = plants
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _log(f"done in {time.perf_counter() - t0:.1f}s -> {root}", progress)
    return WorldFiles(root=root, stations=stations_path, reforms=reforms_path, incidents=incidents,
                      disputes=disputes, truth=truth_path, manifest=manifest_path, panel=panel_path)
