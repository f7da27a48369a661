"""Demo-world parameters: constants of the planted model, the ``World`` / ``WorldFiles``
containers and small seeding helpers (see ``docs/demo-world.md``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit import registry

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
    "station_pilot", "service_hall", "police_grid",
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
# issue-17 plants (each drawn from its own seeded stream, so the draws above do not move)
DOSE_LEVELS = (0.25, 0.5, 0.75, 1.0)  # 一村一辅警: share of the station's villages covered
DIVERSION_STOP = "2024-07-01"  # one county's stations stop 非警务警情分流 (the 12345 agreement ends)
PATROL_THEFT = -0.10  # 巡处一体化 adopters' theft incidents, from the adoption month
DISPLACEMENT_THEFT = 0.06  # theft of untreated stations sharing a border with an adopter, same month
GRID_COHORTS = ("2021-07", "2022-01", "2022-07", "2023-01", "2023-07")  # 警网融合
GRID_SHARE = 0.5  # of the urban / rural stations left without a reform
GRID_DISPUTE = {"urban": -0.20, "rural": -0.05, "mixed": 0.0}  # incidents_dispute at full strength
GRID_RAMP = 6  # months to full strength
# station map: each county a block of BLOCK_W x BLOCK_H cells, blocks laid out around the centre
BLOCK_W, BLOCK_H = 4, 5
# seed-sequence keys of the plants' streams (0 world, 1 counts, 2 records, 16 index tables)
STREAM_GRID, STREAM_DOSE, STREAM_STOP, STREAM_MAP, STREAM_PLANT_COUNTS = 20, 21, 22, 23, 24

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
                   f"month, full from the next month. Theft incidents x(1{PATROL_THEFT:+.2f}) from the adoption "
                   f"month. DISPLACEMENT: theft incidents of untreated stations sharing a border with an "
                   f"adopter (adjacency.csv) x(1{DISPLACEMENT_THEFT:+.2f}) from the same month"),
        "outcomes": "response_mean_min, share_within_5min, share_patrol_closed, incidents_theft, "
                    "incidents_total, dispatches, cases, incidents_per_10k",
    },
    "nonpolice_diversion": {
        "stations": ("mixed (城乡结合) stations of some counties, county-level dates 2020-10..2023-10; the "
                     f"stations of one county stop on {DIVERSION_STOP} (停止日期 in the reforms file)"),
        "effect": ("share of non-police calls diverted to 12345 rises from 5% to 60% over 3 months: "
                   "non-police incidents handled by the station fall by ~58%, dispatches and total incidents "
                   "by ~12-14%. SWITCH-OFF: in the stopping county the effect is gone from the month of "
                   "the stop on (those months are untreated in the truth)"),
        "outcomes": "incidents_nonpolice, incidents_total, dispatches, incidents_per_10k",
    },
    "village_auxiliary": {
        "stations": ("rural stations, staggered half-year cohorts 2021-07..2024-01; each with a dose d = "
                     "share of its villages covered (覆盖比例 in the reforms file), drawn from 0.25/0.5/0.75/1"),
        "effect": ("DOSE: every effect below is for d = 1 and scales linearly with d (effect at d = d x "
                   "full effect). Grows over 12 months: unresolved disputes x(1-0.45), escalations x(1-0.40), days to "
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
    "police_grid": {
        "stations": (f"{GRID_SHARE:.0%} of the urban and rural stations left without another reform, staggered "
                     "half-year cohorts 2021-07..2023-07"),
        "effect": (f"URBAN/RURAL: dispute incidents x(1{GRID_DISPUTE['urban']:+.2f}) in urban adopters and "
                   f"x(1{GRID_DISPUTE['rural']:+.2f}) in rural adopters, growing linearly over {GRID_RAMP} "
                   "months from adoption (1/6 in the adoption month), then flat"),
        "outcomes": "incidents_dispute, incidents_total, dispatches, incidents_per_10k",
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
    # issue-17 plants
    dose: np.ndarray = field(default=None)  # [S] village_auxiliary share of villages covered, else 1.0
    end: np.ndarray = field(default=None)  # [S] period from which the reform is off, 0 = never
    exposed: np.ndarray = field(default=None)  # [S] untreated station sharing a border with a patrol adopter
    adjacency: np.ndarray = field(default=None)  # [n, 2] station index pairs (i < j) sharing a border

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
