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

import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from scipy.special import ndtr

from evalkit import registry, schema

# ---------------------------------------------------------------------------- constants
SIZES: dict[str, int] = {"small": 100, "medium": 1500, "national": 40000}
NATIONAL_DEFAULT_START = "2016-01"
CHUNK_STATIONS = {"small": 100_000, "medium": 100_000, "national": 1000}

CATS: tuple[str, ...] = tuple(registry.CATEGORIES)  # theft fraud fight vice traffic dispute nonpolice other
C_IDX = {c: i for i, c in enumerate(CATS)}
NC = len(CATS)
NP = C_IDX["nonpolice"]
AREAS = registry.AREA_TYPES  # urban rural mixed
A_IDX = {a: i for i, a in enumerate(AREAS)}

# Incidents per 10,000 residents per month, by area (rows: urban, rural, mixed) and category.
# A busy urban station (40,000 residents) gets ~83 x 4 x 12 ≈ 4,000 incidents a year.
BASE_RATE = np.array(
    [
        #  theft fraud fight vice traffic dispute nonpol other
        [12.5, 6.5, 6.5, 1.7, 12.5, 16.5, 21.0, 6.0],  # urban
        [6.0, 3.0, 4.0, 0.8, 7.0, 14.0, 11.0, 4.0],  # rural
        [9.0, 4.8, 5.3, 1.2, 10.0, 15.5, 16.0, 5.0],  # mixed
    ]
)
P_CASE = np.array([0.55, 0.70, 0.35, 0.60, 0.05, 0.02, 0.0, 0.10])  # share of incidents filed as cases
P_PATROL_CASE = 0.10  # cases are mostly handled by the station itself
P_DIVERT_BASE = 0.05  # non-police calls already forwarded to other agencies before any reform

# Calendar-month log factors per category (Jan..Dec): summer peak of fights, holiday traffic, …
SEASON = np.array(
    [
        [-0.05, -0.10, -0.05, 0.00, 0.00, 0.02, 0.05, 0.05, 0.05, 0.05, 0.02, 0.00],  # theft
        [0.00, -0.05, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.08, 0.03],  # fraud (Double 11)
        [-0.15, -0.15, -0.10, -0.05, 0.05, 0.15, 0.25, 0.25, 0.10, 0.00, -0.10, -0.15],  # fight
        [0.00, -0.05, 0.00, 0.00, 0.00, 0.05, 0.05, 0.05, 0.00, 0.00, 0.00, 0.00],  # vice
        [0.05, 0.00, -0.05, 0.00, 0.05, 0.00, 0.00, 0.00, 0.00, 0.10, 0.00, 0.05],  # traffic
        [0.05, 0.10, 0.00, 0.00, 0.00, 0.00, 0.05, 0.05, 0.00, 0.00, 0.00, 0.05],  # dispute
        [0.05, 0.10, 0.00, 0.00, 0.00, 0.05, 0.10, 0.10, 0.00, 0.05, 0.00, 0.00],  # nonpolice
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00],  # other
    ]
).T  # -> [12, C]
# Spring Festival month: category shift and area shift (migrants leave cities, return home).
SF_CAT = np.array([-0.15, -0.10, 0.00, -0.20, 0.05, 0.10, 0.05, -0.10])
SF_AREA = np.array([-0.18, 0.06, -0.08])  # urban rural mixed
SPRING_FESTIVAL = {  # month of the lunar new year
    2014: 1, 2015: 2, 2016: 2, 2017: 1, 2018: 2, 2019: 2, 2020: 1, 2021: 2, 2022: 2, 2023: 1,
    2024: 2, 2025: 1, 2026: 2, 2027: 2, 2028: 1, 2029: 2, 2030: 2,
}
# Province-wide log trends per year (relative to 2019); fraud handled separately (rise and fall).
TREND = np.array([-0.04, 0.0, -0.02, -0.05, 0.02, -0.01, 0.03, 0.0])
# 2020 common shock: log effect at full strength (Feb 2020), fading by June.
SHOCK_CAT = np.array([-0.55, 0.10, -0.55, -0.75, -0.65, -0.25, 0.15, -0.35])
SHOCK_PROFILE = {2: 1.0, 3: 0.6, 4: 0.3, 5: 0.15, 6: 0.05}  # 2020 month -> weight
SHOCK_DISPUTES = -0.30

# Hour-of-day profile of calls (share per hour); night = 22:00-05:59 responses are 30% slower.
HOUR_W = np.array([3.0, 2.2, 1.6, 1.2, 1.0, 1.2, 2.0, 3.2, 4.5, 5.2, 5.6, 5.6, 5.0, 4.8, 5.0, 5.2,
                   5.3, 5.4, 5.6, 6.0, 6.2, 5.8, 5.0, 4.0])
HOUR_P = HOUR_W / HOUR_W.sum()
NIGHT = np.array([h >= 22 or h < 6 for h in range(24)])
P_NIGHT = float(HOUR_P[NIGHT].sum())
NIGHT_FACTOR = 1.3
RESP_SIGMA = 0.6
RESP_MEDIAN = np.array([8.5, 18.0, 12.0])  # minutes, urban rural mixed (day)
RESP_FACTOR = np.exp(RESP_SIGMA**2 / 2) * (1 + P_NIGHT * (NIGHT_FACTOR - 1))  # E[R] / median
P_PATROL_BASE = np.array([0.25, 0.05, 0.15])

# Disputes (mediation register)
DISPUTE_RATE = np.array([2.5, 4.5, 3.5])  # per 10,000 residents per month
DCATS: tuple[str, ...] = tuple(registry.DISPUTE_CATEGORIES)
DCAT_P = np.array(
    [
        [0.30, 0.20, 0.05, 0.15, 0.15, 0.15],  # urban
        [0.30, 0.25, 0.25, 0.05, 0.05, 0.10],  # rural
        [0.30, 0.22, 0.15, 0.10, 0.10, 0.13],  # mixed
    ]
)
NONRES_BASE = 0.035  # 96.5% resolved on average
ESC_BASE = np.array([0.004, 0.006, 0.005])
DAYS_BASE = np.array([5.0, 7.0, 6.0])

# Over-dispersion: gamma frailties (mean 1) per station-month and per station-month-category.
K_SM = 50.0
K_SMC = 20.0

CHARS = list("青白东西南北金银石松柳桃杏梅兰竹新古长安平和清明红黄绿云山河湖海春秋丰盛龙凤玉泉溪林")

# ---------------------------------------------------------------------------- reforms
REFORM_ORDER = (
    "two_teams_one_room", "patrol_dispatch", "nonpolice_diversion", "village_auxiliary",
    "station_pilot", "service_hall",
)
R_IDX = {r: i for i, r in enumerate(REFORM_ORDER)}
TTOR_COHORTS = ("2021-01", "2021-07", "2022-01", "2022-07", "2023-01", "2023-07", "2024-01", "2024-07")
PATROL_DATE = "2022-07-01"
DIVERSION_DATES = ("2020-10", "2021-07", "2022-04", "2023-01", "2023-10")
VILLAGE_COHORTS = ("2021-07", "2022-01", "2022-07", "2023-01", "2023-07", "2024-01")
PILOT_DATE = "2023-03-01"
SERVICE_COHORTS = ("2022-01", "2022-07", "2023-01", "2023-07")
PATROL_TARGET_MEAN = 5.0
PATROL_SHARE = 0.93

EFFECT_TEXT: dict[str, dict[str, str]] = {
    "two_teams_one_room": {
        "stations": "urban stations outside the patrol-dispatch core, staggered half-year cohorts 2021-01..2024-07",
        "effect": ("grows linearly over 24 months since adoption, then flat; strength A = 0.35 for the 2021-01 "
                   "cohort down to 0.20 for 2024-07: fights x(1-A), disputes x(1-0.35A), theft x(1-0.25A), "
                   "vice/other x(1-0.3A), non-police x(1-0.2A), case-filing rate x(1-0.1A): about -10% "
                   "dispatches and -12% cases at full strength"),
        "outcomes": "incidents_fight, incidents_theft, incidents_dispute, incidents_vice, incidents_other, "
                    "incidents_nonpolice, incidents_total, dispatches, cases, incidents_per_10k",
    },
    "patrol_dispatch": {
        "stations": f"all urban stations of the first city's core district, one date {PATROL_DATE}",
        "effect": (f"mean arrival time falls to {PATROL_TARGET_MEAN:.0f} minutes and the share of non-case "
                   f"incidents closed by patrol rises to {PATROL_SHARE:.0%}; half the effect in the adoption "
                   "month, full from the next month"),
        "outcomes": "response_mean_min, share_within_5min, share_patrol_closed",
    },
    "nonpolice_diversion": {
        "stations": "mixed (城乡结合) stations of some counties, county-level dates 2020-10..2023-10",
        "effect": ("share of non-police calls diverted to 12345 rises from 5% to 60% over 3 months: "
                   "non-police incidents handled by the station fall by ~58%, dispatches and total incidents "
                   "by ~12-14%"),
        "outcomes": "incidents_nonpolice, incidents_total, dispatches, incidents_per_10k",
    },
    "village_auxiliary": {
        "stations": "rural stations, staggered half-year cohorts 2021-07..2024-01",
        "effect": ("grows over 12 months: unresolved disputes x(1-0.45), escalations x(1-0.40), days to "
                   "resolve x(1-0.25), disputes registered x(1+0.15), dispute incidents x(1-0.10). "
                   "PRE-TREND VIOLATION: in the untreated outcome of adopters, unresolved disputes already "
                   "fall by 1.5% per month from 12 months before adoption (capped at -30%), so naive DiD "
                   "overstates the resolution effect and the event study shows a pre-trend"),
        "outcomes": "dispute_resolution_rate, dispute_escalation_rate, dispute_days_to_resolve, "
                    "disputes_opened, incidents_dispute, incidents_total, dispatches",
    },
    "station_pilot": {
        "stations": ("one urban/mixed station, drawn among stations whose incident trend is between the 60th "
                     f"and 90th percentile (selection into treatment on a rising trend), {PILOT_DATE}"),
        "effect": ("incidents of all categories except fraud and traffic x(1-0.35) reached over 6 months; "
                   "arrival times x0.8"),
        "outcomes": "incidents_total, dispatches, cases, incidents_*, response_mean_min",
    },
    "service_hall": {
        "stations": "stations without other reforms, staggered 2022-01..2023-07",
        "effect": "none: a placebo reform with exactly zero true effect on every outcome",
        "outcomes": "(none)",
    },
}

TRUTH_OUTCOMES = (
    ["incidents_total", "incidents_per_10k"]
    + [f"incidents_{c}" for c in CATS]
    + ["dispatches", "cases", "response_mean_min", "share_within_5min", "share_patrol_closed",
       "disputes_opened", "dispute_resolution_rate", "dispute_escalation_rate", "dispute_days_to_resolve"]
)


# ---------------------------------------------------------------------------- containers
@dataclass
class WorldFiles:
    root: Path
    stations: Path
    reforms: Path
    incidents: list[Path] | Path
    disputes: list[Path]
    truth: Path
    manifest: Path
    panel: Path | None = None


@dataclass
class World:
    """All parameters of a world (no records): enough to recompute every expected value."""

    size: str
    seed: int
    periods: np.ndarray  # [T] registry period numbers
    stations: pd.DataFrame  # canonical English columns + area index etc.
    reforms: pd.DataFrame  # station_id, reform (id), reform_zh (as written), adopted_on, cohort
    # station-level vectors
    area: np.ndarray
    pop: np.ndarray
    alpha_c: np.ndarray  # [S, C] log station x category effects (incl. station level)
    beta: np.ndarray  # [S] log trend per year
    resp_log: np.ndarray  # [S] log station response factor
    p_patrol0: np.ndarray  # [S]
    d_alpha: np.ndarray  # [S] log dispute level
    nonres0: np.ndarray  # [S]
    esc0: np.ndarray  # [S]
    days0: np.ndarray  # [S]
    reform_of: np.ndarray  # [S] index into REFORM_ORDER or -1
    adopt: np.ndarray  # [S] adoption period or 0
    strength: np.ndarray  # [S] cohort strength (two teams) or 0
    # time-level arrays
    time_log: np.ndarray = field(default=None)  # [T, C] season + trend + shock (area-free)
    sf: np.ndarray = field(default=None)  # [T] 1 if Spring Festival month
    d_time_log: np.ndarray = field(default=None)  # [T]

    @property
    def n_stations(self) -> int:
        return len(self.stations)


# ---------------------------------------------------------------------------- helpers
def _period(s: str) -> int:
    return registry.period_of(pd.Timestamp(s))


def _ss(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key)))


def _ramp(e: np.ndarray, months: int) -> np.ndarray:
    """0 before adoption, (e+1)/months growing to 1."""
    return np.where(e >= 0, np.minimum((e + 1) / months, 1.0), 0.0)


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[demo] {msg}", file=sys.stderr, flush=True)


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
    fixed_day = {R_IDX["patrol_dispatch"], R_IDX["station_pilot"], R_IDX["nonpolice_diversion"]}
    for r in fixed_day:
        day[reform_of == r] = 1
    other = (reform_of >= 0) & ~np.isin(reform_of, list(fixed_day)) & ~is_t
    day[other] = rng.integers(1, 29, S)[other]

    rows = np.flatnonzero(reform_of >= 0)
    rf = pd.DataFrame({
        "station_id": [ids[i] for i in rows],
        "reform": [REFORM_ORDER[reform_of[i]] for i in rows],
        "adopted_on": [registry.period_start(adopt[i]) + pd.Timedelta(days=int(day[i]) - 1) for i in rows],
        "cohort": adopt[rows],
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
        time_log=time_log, sf=sf, d_time_log=d_time_log,
    )


# ---------------------------------------------------------------------------- expected values
def station_month_params(w: World, idx: np.ndarray, treated: bool = True) -> dict[str, np.ndarray]:
    """Expected-value parameters for stations ``idx`` over all periods.

    ``treated=False`` gives the untreated potential outcome (the counterfactual) of the same
    station-months, ``treated=True`` the world as generated.
    """
    idx = np.asarray(idx)
    T = len(w.periods)
    area = w.area[idx]
    yrs = (w.periods - 24228) / 12.0  # years since 2019-01
    lam = np.exp(
        w.alpha_c[idx][:, None, :]
        + w.time_log[None, :, :]
        + (w.sf[None, :, None] * SF_AREA[area][:, None, None])
        + (w.beta[idx][:, None] * yrs[None, :])[:, :, None]
    ) * (w.pop[idx] / 1e4)[:, None, None]
    r = w.reform_of[idx]
    e = w.periods[None, :] - w.adopt[idx][:, None]  # event time
    is_r = {name: (r == R_IDX[name])[:, None] for name in REFORM_ORDER}

    case_mult = np.ones((len(idx), T))
    p_div = np.full((len(idx), T), P_DIVERT_BASE)
    p_patrol = np.repeat(w.p_patrol0[idx][:, None], T, axis=1)
    resp_med = (RESP_MEDIAN[area] * np.exp(w.resp_log[idx]))[:, None] * np.ones((1, T))
    d_lam = np.exp(w.d_alpha[idx][:, None] + w.d_time_log[None, :] + 0.01 * yrs[None, :]) * (w.pop[idx] / 1e4)[:, None]
    nonres = np.repeat(w.nonres0[idx][:, None], T, axis=1)
    esc = np.repeat(w.esc0[idx][:, None], T, axis=1)
    days = np.repeat(w.days0[idx][:, None], T, axis=1)

    # pre-trend violation in the untreated outcome of village-auxiliary adopters
    pre = np.clip((e + 12) * 0.015, 0.0, 0.30) * is_r["village_auxiliary"]
    nonres = nonres * (1 - pre)

    if treated:
        # two teams one room
        g = _ramp(e, 24) * w.strength[idx][:, None] * is_r["two_teams_one_room"]
        red = np.zeros(NC)
        red[[C_IDX["fight"], C_IDX["dispute"], C_IDX["theft"], C_IDX["vice"], C_IDX["other"], NP]] = [
            1.0, 0.35, 0.25, 0.30, 0.30, 0.20]
        lam = lam * (1.0 - g[:, :, None] * red[None, None, :])
        case_mult = case_mult * (1 - 0.10 * g)
        # patrol dispatch
        gp = np.where(e >= 1, 1.0, np.where(e == 0, 0.5, 0.0)) * is_r["patrol_dispatch"]
        target_med = PATROL_TARGET_MEAN / RESP_FACTOR
        resp_med = np.exp(np.log(resp_med) * (1 - gp) + np.log(target_med) * gp)
        p_patrol = p_patrol + gp * (PATROL_SHARE - p_patrol)
        # non-police diversion
        gd = _ramp(e, 3) * is_r["nonpolice_diversion"]
        p_div = p_div + gd * (0.60 - P_DIVERT_BASE)
        # village auxiliary
        gv = _ramp(e, 12) * is_r["village_auxiliary"]
        nonres = nonres * (1 - 0.45 * gv)
        esc = esc * (1 - 0.40 * gv)
        days = days * (1 - 0.25 * gv)
        d_lam = d_lam * (1 + 0.15 * gv)
        lam[:, :, C_IDX["dispute"]] *= 1 - 0.10 * gv
        # pilot
        gpl = _ramp(e, 6) * is_r["station_pilot"]
        red = np.ones(NC) * 0.35
        red[[C_IDX["fraud"], C_IDX["traffic"]]] = 0.0
        lam = lam * (1 - gpl[:, :, None] * red[None, None, :])
        resp_med = resp_med * (1 - 0.2 * gpl)
        # service hall: no effect at all
    return {
        "lam": lam, "case_mult": case_mult, "p_div": p_div, "p_patrol": p_patrol, "resp_med": resp_med,
        "d_lam": d_lam, "p_res": 1 - nonres, "p_esc": esc, "days": days,
    }


def expected_outcomes(w: World, idx: np.ndarray, prm: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Expected station-month outcomes (panel definitions) from the parameters."""
    lam = prm["lam"]
    handled = lam.copy()
    handled[:, :, NP] *= 1 - prm["p_div"]
    out: dict[str, np.ndarray] = {}
    total = handled.sum(axis=2)
    out["incidents_total"] = total
    out["incidents_per_10k"] = total / (w.pop[idx] / 1e4)[:, None]
    for c, i in C_IDX.items():
        out[f"incidents_{c}"] = handled[:, :, i]
    out["dispatches"] = total
    out["cases"] = (lam * P_CASE[None, None, :]).sum(axis=2) * prm["case_mult"]
    med = prm["resp_med"]
    out["response_mean_min"] = med * RESP_FACTOR
    z_day = (np.log(5.0) - np.log(med)) / RESP_SIGMA
    z_night = (np.log(5.0 / NIGHT_FACTOR) - np.log(med)) / RESP_SIGMA
    out["share_within_5min"] = (1 - P_NIGHT) * ndtr(z_day) + P_NIGHT * ndtr(z_night)
    out["share_patrol_closed"] = prm["p_patrol"]
    out["disputes_opened"] = prm["d_lam"]
    out["dispute_resolution_rate"] = prm["p_res"]
    out["dispute_escalation_rate"] = prm["p_esc"]
    out["dispute_days_to_resolve"] = prm["days"]
    return out


def compute_truth(w: World) -> pd.DataFrame:
    """True ATT per reform x outcome x event time (and per cohort), from expected values."""
    rows: list[pd.DataFrame] = []
    T = len(w.periods)
    for r in REFORM_ORDER:
        idx_all = np.flatnonzero(w.reform_of == R_IDX[r])
        if len(idx_all) == 0:
            continue
        acc: dict[str, list[np.ndarray]] = {}
        ev_list, coh_list = [], []
        for lo in range(0, len(idx_all), 2000):
            idx = idx_all[lo: lo + 2000]
            y1 = expected_outcomes(w, idx, station_month_params(w, idx, treated=True))
            y0 = expected_outcomes(w, idx, station_month_params(w, idx, treated=False))
            for o in TRUTH_OUTCOMES:
                acc.setdefault(o + "|1", []).append(y1[o].ravel())
                acc.setdefault(o + "|0", []).append(y0[o].ravel())
            ev_list.append((w.periods[None, :] - w.adopt[idx][:, None]).ravel())
            coh_list.append(np.repeat(w.adopt[idx], T))
        ev = np.concatenate(ev_list)
        coh = np.concatenate(coh_list)
        cohorts = np.unique(coh)
        masks = [(None, np.ones(len(ev), bool))] + [(int(c), coh == c) for c in cohorts]
        for o in TRUTH_OUTCOMES:
            y1 = np.concatenate(acc[o + "|1"])
            y0 = np.concatenate(acc[o + "|0"])
            d = y1 - y0
            for cval, m in masks:
                evm = ev[m]
                off = -evm.min()
                n = np.bincount(evm + off)
                sd = np.bincount(evm + off, weights=d[m])
                s0 = np.bincount(evm + off, weights=y0[m])
                keep = np.flatnonzero(n > 0)
                post = m & (ev >= 0)
                npost = int(post.sum())
                et = (keep - off).astype(float)
                nn, sdd, s00 = n[keep].astype(float), sd[keep], s0[keep]
                kinds = ["event"] * len(keep)
                if npost:
                    et = np.append(et, np.nan)
                    nn = np.append(nn, npost)
                    sdd = np.append(sdd, d[post].sum())
                    s00 = np.append(s00, y0[post].sum())
                    kinds.append("overall")
                with np.errstate(invalid="ignore", divide="ignore"):
                    pct = np.where(s00 != 0, 100 * sdd / s00, np.nan)
                rows.append(pd.DataFrame({
                    "reform": r, "outcome": o, "kind": kinds,
                    "cohort": np.nan if cval is None else float(cval),
                    "event_time": et, "att_level": sdd / nn, "att_pct": pct,
                    "n_treated_station_months": nn,
                }))
    truth = pd.concat(rows, ignore_index=True)
    truth = truth[["reform", "outcome", "kind", "cohort", "event_time", "att_level", "att_pct",
                   "n_treated_station_months"]]
    truth["event_time"] = truth["event_time"].astype("Int64")
    truth["cohort"] = truth["cohort"].astype("Int64")
    truth["n_treated_station_months"] = truth["n_treated_station_months"].astype("int64")
    # exact zeros where nothing was planted (avoid -0.0 / 1e-17 noise)
    truth.loc[truth["att_level"].abs() < 1e-12, ["att_level", "att_pct"]] = 0.0
    return truth


# ---------------------------------------------------------------------------- draws
def draw_counts(w: World, idx: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Incident counts [S, T, C] and dispute counts [S, T] for a station chunk (negative binomial)."""
    rng = _ss(w.seed, 1, chunk)
    prm = station_month_params(w, idx, treated=True)
    lam = prm["lam"]
    g = rng.gamma(K_SM, 1 / K_SM, lam.shape[:2])[:, :, None] * rng.gamma(K_SMC, 1 / K_SMC, lam.shape)
    counts = rng.poisson(lam * g).astype(np.int32)
    gd = rng.gamma(K_SMC, 1 / K_SMC, prm["d_lam"].shape)
    dcounts = rng.poisson(prm["d_lam"] * gd).astype(np.int32)
    return counts, dcounts, prm


def _month_start_seconds(periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = periods // 12
    m = periods % 12 + 1
    starts = np.array([np.datetime64(f"{a:04d}-{b:02d}", "s") for a, b in zip(y, m, strict=True)])
    y2 = (periods + 1) // 12
    m2 = (periods + 1) % 12 + 1
    ends = np.array([np.datetime64(f"{a:04d}-{b:02d}", "s") for a, b in zip(y2, m2, strict=True)])
    return starts.astype(np.int64), ((ends - starts).astype(np.int64) // 86400)


def incident_records(w: World, idx: np.ndarray, counts: np.ndarray, prm: dict, tsel: np.ndarray,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Incident records for stations ``idx`` (chunk-local counts) and period positions ``tsel``."""
    N = counts[:, tsel, :]
    flat = N.ravel()
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    s_loc, t_loc, c = np.unravel_index(cell, N.shape)
    t_pos = tsel[t_loc]
    n = len(cell)
    mstart, mdays = _month_start_seconds(w.periods[tsel])
    hour = rng.choice(24, size=n, p=HOUR_P)
    day = (rng.random(n) * mdays[t_loc]).astype(np.int64)
    received = mstart[t_loc] + day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    is_case = rng.random(n) < P_CASE[c] * prm["case_mult"][s_loc, t_pos]
    diverted = (c == NP) & (rng.random(n) < prm["p_div"][s_loc, t_pos])
    p_pat = np.where(is_case, P_PATROL_CASE, prm["p_patrol"][s_loc, t_pos])
    patrol = ~diverted & (rng.random(n) < p_pat)
    handled = np.where(diverted, 2, np.where(patrol, 1, 0)).astype(np.int8)  # station patrol diverted
    night = NIGHT[hour]
    resp_min = prm["resp_med"][s_loc, t_pos] * np.exp(RESP_SIGMA * rng.standard_normal(n)) * np.where(
        night, NIGHT_FACTOR, 1.0)
    resp_s = np.maximum(np.rint(resp_min * 60), 30).astype(np.int64)
    disp_s = np.maximum(np.rint(resp_s * rng.uniform(0.08, 0.35, n)), 10).astype(np.int64)
    work_min = np.exp(np.log(35.0) + 0.8 * rng.standard_normal(n)) * np.where(is_case, 3.0, 1.0)
    div_min = np.exp(np.log(3.0) + 0.5 * rng.standard_normal(n))
    arrived = np.where(diverted, -1, received + resp_s)
    dispatched = np.where(diverted, -1, received + disp_s)
    closed = np.where(diverted, received + np.rint(div_min * 60).astype(np.int64),
                      arrived + np.rint(work_min * 60).astype(np.int64))
    order = np.argsort(received, kind="stable")
    return {
        "station": idx[s_loc][order], "t_pos": t_pos[order], "category": c[order].astype(np.int8),
        "received": received[order], "dispatched": dispatched[order], "arrived": arrived[order],
        "closed": closed[order], "handled": handled[order], "is_case": is_case[order],
    }


def dispute_records(w: World, idx: np.ndarray, dcounts: np.ndarray, prm: dict, tsel: np.ndarray,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    N = dcounts[:, tsel]
    flat = N.ravel()
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    s_loc, t_loc = np.unravel_index(cell, N.shape)
    t_pos = tsel[t_loc]
    n = len(cell)
    mstart, mdays = _month_start_seconds(w.periods[tsel])
    opened = mstart[t_loc] // 86400 + (rng.random(n) * mdays[t_loc]).astype(np.int64)  # epoch days
    area = w.area[idx][s_loc]
    cum = np.cumsum(DCAT_P, axis=1)[area]
    dcat = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, len(DCATS) - 1)
    p_res = prm["p_res"][s_loc, t_pos]
    resolved = rng.random(n) < p_res
    p_esc_given_unres = prm["p_esc"][s_loc, t_pos] / (1 - p_res)
    escalated = ~resolved & (rng.random(n) < p_esc_given_unres)
    mean_days = prm["days"][s_loc, t_pos]
    shape = 1.2
    extra = rng.negative_binomial(shape, shape / (shape + mean_days - 1))
    days = 1 + extra
    closed = np.where(resolved, opened + days, -1)
    order = np.lexsort((s_loc, opened))
    return {
        "station": idx[s_loc][order], "t_pos": t_pos[order], "opened": opened[order], "closed": closed[order],
        "dcat": dcat[order].astype(np.int8), "resolved": resolved[order], "escalated": escalated[order],
    }


# ---------------------------------------------------------------------------- panel (direct)
def panel_from_records(w: World, inc: dict[str, np.ndarray], dis: dict[str, np.ndarray],
                       idx: np.ndarray, tsel: np.ndarray) -> pd.DataFrame:
    """Station-month panel with the warehouse outcome definitions, computed from records."""
    S, T = len(idx), len(tsel)
    loc = np.full(w.n_stations, -1, dtype=np.int64)
    loc[idx] = np.arange(S)
    tloc = np.full(len(w.periods), -1, dtype=np.int64)
    tloc[tsel] = np.arange(T)
    G = S * T

    def gid(d: dict) -> np.ndarray:
        return loc[d["station"]] * T + tloc[d["t_pos"]]

    g = gid(inc)
    nd = inc["handled"] != 2
    out: dict[str, np.ndarray] = {}
    for c, i in C_IDX.items():
        out[f"incidents_{c}"] = np.bincount(g[nd & (inc["category"] == i)], minlength=G)
    tot = np.bincount(g[nd], minlength=G)
    out["incidents_total"] = tot
    out["dispatches"] = tot
    out["cases"] = np.bincount(g[inc["is_case"]], minlength=G)
    resp = (inc["arrived"] - inc["received"]) / 60.0
    gr, rr = g[nd], resp[nd]
    nresp = np.bincount(gr, minlength=G)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["n_responses"] = nresp
        out["response_mean_min"] = np.bincount(gr, weights=rr, minlength=G) / nresp
        out["share_within_5min"] = np.bincount(gr, weights=(rr <= 5.0).astype(float), minlength=G) / nresp
        o = np.lexsort((rr, gr))
        gs, rs = gr[o], rr[o]
        starts = np.searchsorted(gs, np.arange(G), "left")
        for q, name in ((0.5, "response_median_min"), (0.9, "response_p90_min")):
            pos = (nresp - 1) * q
            lo = np.floor(pos).astype(np.int64)
            hi = np.ceil(pos).astype(np.int64)
            ok = nresp > 0
            val = np.full(G, np.nan)
            a = rs[(starts + lo)[ok]]
            b = rs[(starts + hi)[ok]]
            val[ok] = a + (b - a) * (pos[ok] - lo[ok])
            out[name] = val
        noncase = nd & ~inc["is_case"]
        nnc = np.bincount(g[noncase], minlength=G)
        out["n_noncase"] = nnc
        out["share_patrol_closed"] = np.bincount(g[noncase & (inc["handled"] == 1)], minlength=G) / nnc
        gd = gid(dis)
        nop = np.bincount(gd, minlength=G)
        nres = np.bincount(gd[dis["resolved"]], minlength=G)
        out["disputes_opened"] = nop
        out["disputes_resolved"] = nres
        out["dispute_resolution_rate"] = nres / nop
        out["dispute_escalation_rate"] = np.bincount(gd[dis["escalated"]], minlength=G) / nop
        dd = (dis["closed"] - dis["opened"]).astype(float)
        out["dispute_days_to_resolve"] = np.bincount(gd[dis["resolved"]], weights=dd[dis["resolved"]],
                                                     minlength=G) / nres
    st = w.stations.iloc[idx]
    df = pd.DataFrame({
        "station_id": np.repeat(st["station_id"].to_numpy(), T),
        "period": np.tile(w.periods[tsel], S).astype(np.int64),
    })
    pop = np.repeat(st["population"].to_numpy(), T)
    df["population"] = pop
    df["area_type"] = np.repeat(st["area_type"].to_numpy(), T)
    df["incidents_per_10k"] = out["incidents_total"] / pop * 1e4
    for k, v in out.items():
        df[k] = v
    return df


# ---------------------------------------------------------------------------- writers
def _enc_for_incidents(year: int) -> str:
    return "gb18030" if year % 2 == 1 else "utf-8-sig"


def _enc_for_disputes(year: int) -> str:
    return "gb18030" if year <= 2022 else "utf-8"


def _slash_year(years: list[int]) -> int | None:
    """The one incident file written with '2023/3/20 14:05' timestamps."""
    if len(years) < 2:
        return None
    return 2022 if 2022 in years else years[len(years) // 2]


class _CsvAppender:
    """Writes one CSV in chunks: header once, arrow for the body, transcoding when needed."""

    def __init__(self, path: Path, header: list[str], encoding: str):
        self.path, self.encoding = path, encoding
        self.fh = open(path, "wb")  # noqa: SIM115
        head = ",".join(header) + "\r\n"
        if encoding == "utf-8-sig":
            self.fh.write(b"\xef\xbb\xbf" + head.encode("utf-8"))
        else:
            self.fh.write(head.encode(encoding))
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=False, quoting_style="none",
                                                     eol="\r\n", batch_size=65536))
        data = buf.getvalue()
        if self.encoding == "gb18030":
            data = data.decode("utf-8").encode("gb18030")
        self.fh.write(data)
        self.rows += table.num_rows

    def close(self) -> None:
        self.fh.close()


def _ts_strings(sec: np.ndarray, fmt: str) -> pa.Array:
    mask = sec < 0
    arr = pa.array(sec, type=pa.int64(), mask=mask).cast(pa.timestamp("s"))
    iso = pc.cast(arr, pa.string())  # 'YYYY-MM-DD HH:MM:SS' (fast, unlike strftime)
    if fmt == "slash":
        return pc.binary_join_element_wise(
            pc.cast(pc.year(arr), pa.string()), "/", pc.cast(pc.month(arr), pa.string()), "/",
            pc.cast(pc.day(arr), pa.string()), " ", pc.utf8_slice_codeunits(iso, 11, 16), "")
    return iso


def _ids(prefix: str, year: int, start: int, n: int, width: int) -> pa.Array:
    num = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(f"{prefix}{year}", pc.utf8_lpad(num, width=width, padding="0"), "")


_IS = pa.array(["否", "是"])
_HANDLED_ZH = pa.array(["派出所", "巡逻", "分流"])


def _category_labels(cat: np.ndarray, year: int, rng: np.random.Generator) -> pa.Array:
    """Chinese category names with realistic alias use (电信诈骗 from 2021, a few 民间纠纷 / 求助 / 斗殴)."""
    labels = [registry.CATEGORIES[c].zh for c in CATS]
    labels += ["电信诈骗", "民间纠纷", "求助", "斗殴", "交通事故"]
    code = cat.astype(np.int64).copy()
    u = rng.random(len(cat))
    code[(cat == C_IDX["fraud"]) & (u < (0.75 if year >= 2021 else 0.1))] = NC + 0
    code[(cat == C_IDX["dispute"]) & (u < 0.10)] = NC + 1
    code[(cat == NP) & (u < (0.15 if year % 3 == 0 else 0.02))] = NC + 2
    code[(cat == C_IDX["fight"]) & (u < 0.03)] = NC + 3
    code[(cat == C_IDX["traffic"]) & (u < 0.20)] = NC + 4
    return pa.array(labels).take(pa.array(code))


def _incident_table(w: World, rec: dict, year: int, id_start: int, fmt: str, rng: np.random.Generator,
                    station_codes: pa.Array) -> pa.Table:
    n = len(rec["received"])
    H = {c.name: c.zh for c in schema.INCIDENTS.columns}
    cols = {
        H["incident_id"]: _ids("JQ", year, id_start, n, 9),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["received_at"]: _ts_strings(rec["received"], fmt),
        H["dispatched_at"]: _ts_strings(rec["dispatched"], fmt),
        H["arrived_at"]: _ts_strings(rec["arrived"], fmt),
        H["closed_at"]: _ts_strings(rec["closed"], fmt),
        H["category"]: _category_labels(rec["category"], year, rng),
        H["handled_by"]: _HANDLED_ZH.take(pa.array(rec["handled"].astype(np.int64))),
        H["is_case"]: _IS.take(pa.array(rec["is_case"].astype(np.int64))),
    }
    return pa.table(cols)


def _incident_parquet_table(rec: dict, year: int, id_start: int, station_codes: pa.Array,
                            rng: np.random.Generator) -> pa.Table:
    def ts(x: np.ndarray) -> pa.Array:
        return pa.array(x, type=pa.int64(), mask=x < 0).cast(pa.timestamp("s"))

    H = {c.name: c.zh for c in schema.INCIDENTS.columns}
    n = len(rec["received"])
    return pa.table({
        H["incident_id"]: _ids("JQ", year, id_start, n, 9),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["received_at"]: ts(rec["received"]),
        H["dispatched_at"]: ts(rec["dispatched"]),
        H["arrived_at"]: ts(rec["arrived"]),
        H["closed_at"]: ts(rec["closed"]),
        H["category"]: _category_labels(rec["category"], year, rng).dictionary_encode(),
        H["handled_by"]: _HANDLED_ZH.take(pa.array(rec["handled"].astype(np.int64))).dictionary_encode(),
        H["is_case"]: _IS.take(pa.array(rec["is_case"].astype(np.int64))).dictionary_encode(),
    })


def _dispute_table(rec: dict, year: int, id_start: int, station_codes: pa.Array) -> pa.Table:
    H = {c.name: c.zh for c in schema.DISPUTES.columns}
    n = len(rec["opened"])

    def dates(d: np.ndarray) -> pa.Array:
        arr = pa.array(d.astype(np.int32), type=pa.int32(), mask=d < 0).cast(pa.date32())
        return pc.cast(arr, pa.string())

    dlabels = pa.array([registry.DISPUTE_CATEGORIES[c][0] for c in DCATS])
    return pa.table({
        H["dispute_id"]: _ids("JF", year, id_start, n, 8),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["opened_on"]: dates(rec["opened"]),
        H["closed_on"]: dates(rec["closed"]),
        H["category"]: dlabels.take(pa.array(rec["dcat"].astype(np.int64))),
        H["resolved"]: _IS.take(pa.array(rec["resolved"].astype(np.int64))),
        H["escalated"]: _IS.take(pa.array(rec["escalated"].astype(np.int64))),
    })


def _write_stations_xlsx(w: World, path: Path) -> None:
    H = {c.name: c.zh for c in schema.STATIONS.columns}
    st = w.stations[[c.name for c in schema.STATIONS.columns]].copy()
    st["area_type"] = st["area_type"].map(registry.AREA_TYPES_ZH)
    st = st.rename(columns=H)
    if len(st) > 5000:  # large registers: write_only mode is much faster
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(schema.STATIONS.zh)
        ws.append(list(st.columns))
        for row in st.itertuples(index=False):
            ws.append([v.item() if hasattr(v, "item") else v for v in row])
        wb.save(path)
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            st.to_excel(xw, sheet_name=schema.STATIONS.zh, index=False)


def _write_reforms_csv(w: World, path: Path) -> int:
    H = {c.name: c.zh for c in schema.REFORMS.columns}
    rf = w.reforms.sort_values(["adopted_on", "station_id"], kind="stable")
    out = pd.DataFrame({
        H["station_id"]: rf["station_id"],
        H["reform"]: rf["reform_zh"],
        H["adopted_on"]: rf["adopted_on"].dt.strftime("%Y-%m-%d"),
    })
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return len(out)


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

    if national:
        incidents: list[Path] | Path = inc_dir
        files_written.append("incidents/year=YYYY/part-*.parquet")
    else:
        incidents = [root / f"incidents_{y}.csv" for y in years]
        files_written += [p.name for p in incidents]
    disputes = [root / f"disputes_{y}.csv" for y in years]
    files_written = ["stations.xlsx", "reforms.csv", *files_written, *[p.name for p in disputes],
                     "panel.parquet", "truth.parquet"]

    manifest = _manifest(w, size, seed, start, end, n_reform_rows, inc_rows, dis_rows, files_written,
                         years, slash, national, truth)
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _log(f"done in {time.perf_counter() - t0:.1f}s -> {root}", progress)
    return WorldFiles(root=root, stations=stations_path, reforms=reforms_path, incidents=incidents,
                      disputes=disputes, truth=truth_path, manifest=manifest_path, panel=panel_path)


def _manifest(w: World, size: str, seed: int, start: str, end: str, n_reform_rows: int,
              inc_rows: dict[int, int], dis_rows: dict[int, int], files: list[str], years: list[int],
              slash: int | None, national: bool, truth: pd.DataFrame) -> dict:
    reforms = []
    overall = truth[(truth["kind"] == "overall") & truth["cohort"].isna()]
    for r in REFORM_ORDER:
        sub = w.reforms[w.reforms["reform"] == r]
        if sub.empty:
            continue
        ov = overall[(overall["reform"] == r) & (overall["att_level"] != 0)]
        reforms.append({
            "reform": r,
            "zh": registry.REFORMS[r].zh,
            "n_stations": int(len(sub)),
            "cohorts": sorted({registry.period_label(int(c)) for c in sub["cohort"]}),
            "stations": EFFECT_TEXT[r]["stations"],
            "planted_effect": EFFECT_TEXT[r]["effect"],
            "outcomes_affected": EFFECT_TEXT[r]["outcomes"],
            "true_overall_att_pct": {o: round(float(p), 2) for o, p in zip(ov["outcome"], ov["att_pct"], strict=True)
                                     if np.isfinite(p)},
            "pre_trend_violation": r == "village_auxiliary",
            "selection_into_treatment": r == "station_pilot",
            "placebo": r == "service_hall",
        })
    return {
        "synthetic": True,
        "generated_by": "evalkit demo-data",
        "size": size,
        "seed": seed,
        "start": start,
        "end": end,
        "n_stations": w.n_stations,
        "n_months": int(len(w.periods)),
        "rows": {
            "stations": w.n_stations,
            "reforms": n_reform_rows,
            "incidents": int(sum(inc_rows.values())),
            "disputes": int(sum(dis_rows.values())),
            "incidents_by_year": {str(y): int(n) for y, n in inc_rows.items()},
            "disputes_by_year": {str(y): int(n) for y, n in dis_rows.items()},
            "panel": int(w.n_stations * len(w.periods)),
        },
        "files": files,
        "encodings": {
            **({f"incidents_{y}.csv": _enc_for_incidents(y) for y in years} if not national else
               {"incidents/": "parquet"}),
            **{f"disputes_{y}.csv": _enc_for_disputes(y) for y in years},
            "reforms.csv": "utf-8",
        },
        "timestamp_formats": {"default": "%Y-%m-%d %H:%M:%S",
                              **({f"incidents_{slash}.csv": "%Y/%-m/%-d %H:%M"} if slash else {})},
        "reforms": reforms,
        "notes": [
            "Each station adopts at most one reform; the truth is each reform's ATT on its own stations.",
            "Stations treated by another reform that affects the same outcome are not clean controls: "
            "two_teams_one_room and nonpolice_diversion both lower dispatches/incidents_total; "
            "village_auxiliary lowers incidents_dispute and incidents_total slightly.",
            "police_grid (警网融合) is not planted in the demo world.",
            "truth: att_level/att_pct are expected-value based (E[Y(1)]-E[Y(0)] per treated station-month); "
            "att_pct = 100*sum(Y1-Y0)/sum(Y0); kind='overall' averages all post-adoption treated "
            "station-months in the window (the Callaway-Sant'Anna 'simple' target); cohort NA = all cohorts.",
        ],
    }


# ---------------------------------------------------------------------------- readers
def load_truth(root: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(root) / "truth.parquet")


def read_manifest(root: str | Path) -> dict:
    return json.loads((Path(root) / "manifest.json").read_text(encoding="utf-8"))
