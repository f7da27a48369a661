"""Station x month panels for the verdict Monte Carlo (``benchmarks/mc_verdict.py``) and the issue-17 Monte
Carlo (``benchmarks/mc_designs.py``: dose, stop dates, adjacency, area type; section at the end), not drawn
from the demo world.

Data-generating process of the synthetic designs (station ``i``, month ``t``; counts per month)::

    lambda0_it = mu_i * exp(season_m(t) + shock_t + trend * years_t + u_it)       # untreated mean
    u_it       = rho * u_i,t-1 + e_it,   e_it ~ N(0, sigma_u^2 (1 - rho^2))          # AR(1), stationary
    lambda_it  = lambda0_it * (1 + delta * ramp(t - g_i))                            # treated months
    Y_it       ~ NegBin: Poisson(lambda_it * G_it), G_it ~ Gamma(k, 1/k)

* ``mu_i`` log-normal (median ``BASE_LEVEL`` fights a month, log-sd ``SIZE_SD``): station size
  heterogeneity (a 1-sd station is ~1.8x the median).
* ``season_m``: summer peak, amplitude ``SEASON_AMP``; ``shock_t``: a 2020-like common drop
  (``SHOCK``: Feb–Jun 2020, −35 % at the bottom) and recovery.
* ``delta``: the true effect (multiplicative, e.g. −0.20), ramping in linearly over ``RAMP``
  months (month 0 gets 1/RAMP of it); 0 = no effect.
* Adoption: ``n_adopters`` stations at a few fixed dates (equal-sized cohorts), chosen at random or,
  with ``selection=True``, with probability proportional to ``mu_i`` (bigger stations adopt more often).
* Truth (level, outcome units): mean of ``lambda0_it * delta * ramp`` over the adopters' months
  0..H after adoption (the headline estimand ``att_adopter_months_0_H``, H = 24), i.e. conditional
  on the station levels and AR(1) paths, averaged over the count noise.

Design ``demo``: the ``small`` demo world (``evalkit.demo.world.build_world("small", seed)``, a new
world each replication) with its own count DGP (``draw_counts`` via ``mc_estimators.simulate_counts``);
the stations of reforms that do not move fights (all but 两队一室 and the station pilot: 78 of 100 in world 42, it varies by world)
form the panel and 20 of them get placebo adoption dates at random; an effect, if any, thins the
adopters' post-adoption counts binomially (truth from the world's expected untreated counts).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit.registry import NEVER_TREATED

OUTCOME = "incidents_fight"  # a registry count outcome; the DGP is generic
REFORM = "two_teams_one_room"  # any registry reform: only the name is used (the panel is given)
H = 24  # headline horizon: params.event_window[1] by default
BASE_LEVEL = 20.0
SIZE_SD = 0.6
SEASON_AMP = 0.15
RHO, SIGMA_U = 0.6, 0.08
NB_SHAPE = 20.0
TREND = 0.01  # common log trend per year
SHOCK = {(2020, 2): -0.35, (2020, 3): -0.30, (2020, 4): -0.20, (2020, 5): -0.10, (2020, 6): -0.05}
RAMP = 6


def ym(y: int, m: int) -> int:
    """Registry period of year ``y``, month ``m`` (1..12)."""
    return y * 12 + m - 1


@dataclass(frozen=True)
class Design:
    name: str
    n_stations: int
    n_adopters: int
    dates: tuple[int, ...]  # adoption periods (cohorts of equal size, the remainder to the first)
    start: int = ym(2019, 1)
    n_months: int = 72
    n_counties: int = 1
    label: str = ""


DESIGNS: dict[str, Design] = {
    "county": Design("county", 15, 6, (ym(2021, 7), ym(2022, 1), ym(2022, 7)),
                     label="one county: 15 stations, 6 adopters at 3 dates, 72 months"),
    "county12": Design("county12", 12, 4, (ym(2021, 7), ym(2022, 7)),
                       label="one county: 12 stations, 4 adopters at 2 dates, 72 months"),
    "few_comparison": Design("few_comparison", 20, 16, (ym(2021, 1), ym(2021, 7), ym(2022, 1), ym(2022, 7)),
                             n_counties=2, label="20 stations, 16 adopters at 4 dates, 4 comparison stations"),
    "slice": Design("slice", 120, 40, (ym(2021, 1), ym(2021, 7), ym(2022, 1), ym(2022, 7), ym(2023, 1)),
                    n_counties=8, label="a city slice: 120 stations, 40 adopters at 5 dates, 72 months"),
    "demo": Design("demo", 78, 20, (ym(2021, 7), ym(2022, 1), ym(2022, 7), ym(2023, 1)), n_months=84,
                   label="small demo world (new world each rep): ~80 stations not moved by a fights reform, "
                         "20 placebo adopters at 4 dates, 84 months"),
}


@dataclass
class Panel:
    """One replication's panel and its truth (level and percent of the untreated mean)."""

    panel: pd.DataFrame
    truth: float
    truth_pct: float
    n_treated: int
    n_control: int


def ramp(e: np.ndarray) -> np.ndarray:
    """Share of the full effect reached ``e`` months after adoption (0 before adoption)."""
    return np.where(e >= 0, np.minimum(1.0, (e + 1) / RAMP), 0.0)


def assign(rng: np.random.Generator, d: Design, size: np.ndarray, selection: bool) -> np.ndarray:
    """first_treat per station (0 = never): adopters at random, or ∝ size with ``selection``."""
    S = len(size)
    prob = size / size.sum() if selection else None
    adopters = rng.choice(S, size=d.n_adopters, replace=False, p=prob)
    first = np.full(S, NEVER_TREATED, dtype=np.int64)
    cohorts = np.array_split(adopters, len(d.dates))
    for g, members in zip(d.dates, cohorts, strict=True):
        first[members] = g
    return first


def frame(d: Design | None, first: np.ndarray, y: np.ndarray, periods: np.ndarray, *, county: np.ndarray,
          area: np.ndarray, station_id: np.ndarray, outcome: str = OUTCOME) -> pd.DataFrame:
    """The panel with evalkit's columns (as :func:`evalkit.panel.build_panel` returns them)."""
    S, T = y.shape
    df = pd.DataFrame({
        "station_id": np.repeat(station_id, T),
        "county": np.repeat(county, T),
        "area_type": np.repeat(area, T),
        "period": np.tile(periods, S).astype(np.int64),
        "first_treat": np.repeat(first, T).astype(np.int64),
        outcome: y.ravel().astype(np.int64),
    })
    df["month"] = pd.to_datetime({"year": df["period"] // 12, "month": df["period"] % 12 + 1, "day": 1})
    ever = df["first_treat"] != NEVER_TREATED
    df["treated"] = (ever & (df["period"] >= df["first_treat"])).astype("int8")
    df["event_time"] = pd.array((df["period"] - df["first_treat"]).where(ever), dtype="Int64")
    df.attrs.update(reform=REFORM, balanced=True, coverage_gaps={}, missing_cells={}, excluded_stations={})
    return df


def truth_of(first: np.ndarray, periods: np.ndarray, lam0: np.ndarray, delta: float) -> tuple[float, float]:
    """(level, percent) of the headline estimand: adopter-months 0..H, equal weights."""
    e = periods[None, :] - first[:, None]
    cell = (first[:, None] != NEVER_TREATED) & (e >= 0) & (e <= H)
    eff = lam0 * delta * ramp(e)
    level = float(eff[cell].mean())
    return level, 100.0 * level / float(lam0[cell].mean())


def untreated_means(rng: np.random.Generator, S: int, periods: np.ndarray,
                    base_level: float = BASE_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Station sizes ``mu`` (S,) and untreated means ``lambda0`` (S x T) of the module's DGP
    (log-normal size, seasonality, 2020 shock, common trend, AR(1) deviations); counts per month."""
    S, T = int(S), len(periods)
    mu = base_level * np.exp(rng.normal(0.0, SIZE_SD, S))
    month = periods % 12 + 1
    season = SEASON_AMP * np.cos(2 * np.pi * (month - 7) / 12)
    shock = np.array([SHOCK.get((int(p // 12), int(p % 12 + 1)), 0.0) for p in periods])
    common = season + shock + TREND * (periods - periods[0]) / 12
    u = np.empty((S, T))
    u[:, 0] = rng.normal(0.0, SIGMA_U, S)
    innov = rng.normal(0.0, SIGMA_U * np.sqrt(1 - RHO**2), (S, T))
    for t in range(1, T):
        u[:, t] = RHO * u[:, t - 1] + innov[:, t]
    return mu, mu[:, None] * np.exp(common[None, :] + u)


def nb_counts(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Negative-binomial counts with means ``lam``: Poisson(lam x Gamma(k, 1/k)), k = ``NB_SHAPE``."""
    return rng.poisson(lam * rng.gamma(NB_SHAPE, 1.0 / NB_SHAPE, lam.shape))


def synthetic(d: Design, seed: int, delta: float = 0.0, selection: bool = False) -> Panel:
    """One replication of a synthetic design (see the module docstring)."""
    rng = np.random.default_rng([int(seed), 19])
    S, T = d.n_stations, d.n_months
    periods = d.start + np.arange(T)
    mu, lam0 = untreated_means(rng, S, periods)
    first = assign(rng, d, mu, selection)
    e = periods[None, :] - first[:, None]
    lam = lam0 * (1 + delta * np.where(first[:, None] != NEVER_TREATED, ramp(e), 0.0))
    y = nb_counts(rng, lam)
    truth, pct = truth_of(first, periods, lam0, delta)
    county = np.array([f"C{i % d.n_counties + 1:02d}" for i in range(S)])
    area = np.where(np.arange(S) % 3 == 0, "mixed", "urban")
    sid = np.array([f"S{i + 1:03d}" for i in range(S)])
    df = frame(d, first, y, periods, county=county, area=area, station_id=sid)
    n_t = int((first != NEVER_TREATED).sum())
    return Panel(df, truth, pct, n_t, S - n_t)


def demo(d: Design, seed: int, delta: float = 0.0, selection: bool = False) -> Panel:
    """One replication of the ``demo`` design (a new small demo world, placebo adoption dates)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from mc_estimators import simulate_counts  # the demo world's own count DGP, without records

    from evalkit.demo import world as W

    w = W.build_world("small", int(seed))
    keep = ~np.isin(w.reform_of, [W.R_IDX["two_teams_one_room"], W.R_IDX["station_pilot"]])
    y0 = simulate_counts(w, int(seed))[OUTCOME][keep].astype(np.int64)
    idx = np.arange(w.n_stations)
    lam0 = W.expected_outcomes(w, idx, W.station_month_params(w, idx, treated=False))[OUTCOME][keep]
    periods = np.asarray(w.periods, dtype=np.int64)
    rng = np.random.default_rng([int(seed), 23])
    first = assign(rng, d, lam0.mean(axis=1), selection)
    y = y0
    if delta:
        e = periods[None, :] - first[:, None]
        share = 1 + delta * np.where(first[:, None] != NEVER_TREATED, ramp(e), 0.0)
        y = rng.binomial(y0, np.clip(share, 0.0, 1.0)) if delta < 0 else rng.poisson(y0 * share)
    truth, pct = truth_of(first, periods, lam0, delta)
    st = w.stations.iloc[np.flatnonzero(keep)]
    df = frame(d, first, y, periods, county=st["county"].to_numpy(), area=st["area_type"].to_numpy(),
               station_id=st["station_id"].to_numpy())
    n_t = int((first != NEVER_TREATED).sum())
    return Panel(df, truth, pct, n_t, len(first) - n_t)


def make_panel(design: str, seed: int, delta: float = 0.0, selection: bool = False) -> Panel:
    """Panel of replication ``seed`` for ``design`` (a key of :data:`DESIGNS`)."""
    d = DESIGNS[design]
    if design == "demo":
        return demo(d, seed, delta, selection)
    return synthetic(d, seed, delta, selection)


# ---------------------------------------------------------------------------------------------
# Issue 17 designs (benchmarks/mc_designs.py): dose, stop dates, adjacency/displacement, area type.
# Same untreated DGP (``untreated_means``, ``nb_counts``); each design draws from its own seeded
# stream, so the panels above are unchanged. Scales: ``demo`` (about the small demo world: 100
# stations, 84 months 2019-01..2025-12) and ``county`` (15 stations, 84 months).
# ---------------------------------------------------------------------------------------------
START17, MONTHS17 = ym(2019, 1), 84
SCALES17 = {"demo": 100, "county": 15}
DOSE_LEVELS = (0.25, 0.5, 0.75, 1.0)
DOSE_EFFECT, DOSE_RAMP = -0.10, 12          # 一村一辅警 → disputes: −10 % at full dose, 12-month ramp
SWITCH_EFFECT, SWITCH_RAMP = -0.55, 3       # 非警务警情分流 → non-police incidents: −55 % over 3 months
STOP_PERIOD = ym(2024, 7)                   # one county's stations stop; the effect is gone from that month
SPILL_DATE, SPILL_DIRECT, SPILL_NEIGHBOUR = ym(2022, 7), -0.10, 0.06  # 巡处一体化 → theft, step effect
GRID_COHORTS = (ym(2021, 7), ym(2022, 1), ym(2022, 7), ym(2023, 1), ym(2023, 7))  # 警网融合 → disputes
GRID_RAMP = 6
GRID_EFFECTS = {"planted": (-0.20, -0.05), "equal": (-0.20, -0.20)}  # (urban, rural)


@dataclass
class DesignPanel:
    """One replication of an issue-17 design.

    ``panel``: counts (``outcome``) with evalkit's columns plus the design's own (``dose``,
    ``treatment``); ``lam0``/``lam``: expected untreated / expected observed counts (stations x
    months, rows in the panel's station order); ``lam_on``: expected counts had every adopter stayed
    treated (switching; = ``lam`` otherwise); ``adjacency``: station pairs (spillover) or None.
    """

    kind: str
    scale: str
    outcome: str
    panel: pd.DataFrame
    periods: np.ndarray
    first: np.ndarray
    lam0: np.ndarray
    lam: np.ndarray
    lam_on: np.ndarray
    adjacency: pd.DataFrame | None = None
    info: dict | None = None

    def with_outcome(self, values: np.ndarray) -> pd.DataFrame:
        """The panel with the outcome replaced by ``values`` (stations x months; e.g. an expected effect)."""
        return self.panel.assign(**{self.outcome: np.asarray(values, dtype=float).ravel()})


def _sids(S: int) -> np.ndarray:
    return np.array([f"S{i + 1:03d}" for i in range(S)])


def _ramp_k(e: np.ndarray, k: int) -> np.ndarray:
    return np.where(e >= 0, np.minimum(1.0, (e + 1) / k), 0.0)


def dose_design(seed: int, scale: str = "demo") -> DesignPanel:
    """Staggered adoption with a dose: cohorts 2021-07.. (4 at ``demo`` scale, 8 adopters each; 2 at
    ``county``, 4 each), doses balanced over :data:`DOSE_LEVELS` within each cohort at random;
    effect ``lam0 * DOSE_EFFECT * dose * ramp_12`` (linear in the dose)."""
    S = SCALES17[scale]
    rng = np.random.default_rng([int(seed), 171])
    periods = START17 + np.arange(MONTHS17)
    _mu, lam0 = untreated_means(rng, S, periods)
    dates = (ym(2021, 7), ym(2022, 1), ym(2022, 7), ym(2023, 1)) if scale == "demo" else (ym(2021, 7), ym(2022, 7))
    per = 8 if scale == "demo" else 4
    order = rng.permutation(S)
    first = np.full(S, NEVER_TREATED, dtype=np.int64)
    dose = np.zeros(S)
    for j, g in enumerate(dates):
        members = order[j * per:(j + 1) * per]
        first[members] = g
        dose[members] = rng.permutation(np.resize(DOSE_LEVELS, per))
    e = periods[None, :] - first[:, None]
    adopter = (first != NEVER_TREATED)[:, None]
    lam = lam0 * (1 + DOSE_EFFECT * dose[:, None] * np.where(adopter, _ramp_k(e, DOSE_RAMP), 0.0))
    y = nb_counts(rng, lam)
    county = np.array(["C01"] * S)
    df = frame(None, first, y, periods, county=county, area=np.array(["rural"] * S), station_id=_sids(S),
               outcome="incidents_dispute")
    df["dose"] = np.where(df["treated"].to_numpy() == 1, np.repeat(dose, len(periods)), 0.0)
    return DesignPanel("dose", scale, "incidents_dispute", df, periods, first, lam0, lam, lam, info={"dose": dose})


def switching_design(seed: int, scale: str = "demo") -> DesignPanel:
    """Adoption by county with a stop: at ``demo`` scale 8 counties, counties 1..4 adopt (2020-10,
    2021-10, 2022-04, 2022-10; their non-urban stations, about 2/3) and county 1 stops at
    :data:`STOP_PERIOD`; at ``county`` scale 15 stations, 10 adopt (5 in 2020-10, 5 in 2021-10) and the
    first 5 stop. Effect ``lam0 * SWITCH_EFFECT * ramp_3`` while treated, none from the stop on."""
    S = SCALES17[scale]
    rng = np.random.default_rng([int(seed), 172])
    periods = START17 + np.arange(MONTHS17)
    _mu, lam0 = untreated_means(rng, S, periods, base_level=30.0)
    first = np.full(S, NEVER_TREATED, dtype=np.int64)
    stop = np.full(S, np.iinfo(np.int64).max, dtype=np.int64)
    if scale == "demo":
        county_i = np.arange(S) % 8
        area = rng.choice(["urban", "rural", "mixed"], S)
        dates = {0: ym(2020, 10), 1: ym(2021, 10), 2: ym(2022, 4), 3: ym(2022, 10)}
        for c, g in dates.items():
            first[(county_i == c) & (area != "urban")] = g
        stop[(county_i == 0) & (first != NEVER_TREATED)] = STOP_PERIOD
    else:
        county_i = np.zeros(S, dtype=int)
        area = np.array(["mixed"] * S)
        order = rng.permutation(S)
        first[order[:5]], first[order[5:10]] = ym(2020, 10), ym(2021, 10)
        stop[order[:5]] = STOP_PERIOD
    e = periods[None, :] - first[:, None]
    on = np.where((first != NEVER_TREATED)[:, None], _ramp_k(e, SWITCH_RAMP), 0.0)
    lam_on = lam0 * (1 + SWITCH_EFFECT * on)
    live = periods[None, :] < stop[:, None]
    lam = np.where(live, lam_on, lam0)
    y = nb_counts(rng, lam)
    county = np.array([f"C{c + 1:02d}" for c in county_i])
    df = frame(None, first, y, periods, county=county, area=area, station_id=_sids(S), outcome="incidents_nonpolice")
    df["treatment"] = (df["treated"].to_numpy() == 1) & live.ravel()
    df["treatment"] = df["treatment"].astype("int8")
    return DesignPanel("switching", scale, "incidents_nonpolice", df, periods, first, lam0, lam, lam_on,
                       info={"stop": stop, "n_stop": int((stop < np.iinfo(np.int64).max).sum())})


def grid_adjacency(rows: int, cols: int) -> pd.DataFrame:
    """Rook adjacency of stations laid out on a ``rows`` x ``cols`` grid (station k at row k // cols)."""
    pairs = []
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            if c + 1 < cols:
                pairs.append((k, k + 1))
            if r + 1 < rows:
                pairs.append((k, k + cols))
    a = np.array(pairs)
    sid = _sids(rows * cols)
    return pd.DataFrame({"station_id": sid[a[:, 0]], "neighbor_id": sid[a[:, 1]]})


def spillover_design(seed: int, scale: str = "demo") -> DesignPanel:
    """One adoption date (2022-07) for a contiguous block of stations on a grid (``demo``: 4 x 4 of
    10 x 10; ``county``: 2 x 2 of 3 x 5), at a random position; step effects from that month:
    adopters ``lam0 * SPILL_DIRECT``, untreated stations with an adopting rook neighbour
    ``lam0 * SPILL_NEIGHBOUR`` (displacement)."""
    S = SCALES17[scale]
    rows, cols, b = (10, 10, 4) if scale == "demo" else (3, 5, 2)
    rng = np.random.default_rng([int(seed), 173])
    periods = START17 + np.arange(MONTHS17)
    _mu, lam0 = untreated_means(rng, S, periods)
    r0, c0 = rng.integers(0, rows - b + 1), rng.integers(0, cols - b + 1)
    rr, cc = np.divmod(np.arange(S), cols)
    adopt = (rr >= r0) & (rr < r0 + b) & (cc >= c0) & (cc < c0 + b)
    adj = grid_adjacency(rows, cols)
    sid = _sids(S)
    nb_treated = adj.assign(t=adj["neighbor_id"].map(dict(zip(sid, adopt, strict=True))))
    nb_treated = pd.concat([nb_treated, adj.rename(columns={"station_id": "neighbor_id", "neighbor_id": "station_id"})
                            .assign(t=adj["station_id"].map(dict(zip(sid, adopt, strict=True))))])
    exposed = ~adopt & pd.Series(sid).isin(nb_treated.loc[nb_treated["t"], "station_id"]).to_numpy()
    first = np.where(adopt, SPILL_DATE, NEVER_TREATED).astype(np.int64)
    post = (periods >= SPILL_DATE)[None, :]
    mult = 1 + post * np.where(adopt, SPILL_DIRECT, np.where(exposed, SPILL_NEIGHBOUR, 0.0))[:, None]
    lam = lam0 * mult
    y = nb_counts(rng, lam)
    df = frame(None, first, y, periods, county=np.array(["C01"] * S), area=np.array(["urban"] * S), station_id=sid,
               outcome="incidents_theft")
    return DesignPanel("spillover", scale, "incidents_theft", df, periods, first, lam0, lam, lam, adjacency=adj,
                       info={"exposed": exposed, "n_exposed": int(exposed.sum()), "n_adopt": int(adopt.sum())})


def heterogeneity_design(seed: int, scale: str = "demo", effects: str = "planted") -> DesignPanel:
    """Staggered half-year cohorts (``demo``: 2021-07..2023-07, 6 adopters each, 3 urban + 3 rural; of 100
    stations, half urban; ``county``: 15 stations, 2021-07 and 2022-07, 2 urban + 2 rural each); effect
    ``lam0 * effect(area) * ramp_6`` with (urban, rural) = :data:`GRID_EFFECTS` [``effects``]. Urban and
    rural stations have the same size distribution, so equal percent effects are equal level
    effects in expectation."""
    S = SCALES17[scale]
    rng = np.random.default_rng([int(seed), 174])
    periods = START17 + np.arange(MONTHS17)
    _mu, lam0 = untreated_means(rng, S, periods)
    urban = rng.permutation(np.arange(S) % 2 == 0)
    dates, per_area = (GRID_COHORTS, 3) if scale == "demo" else ((ym(2021, 7), ym(2022, 7)), 2)
    first = np.full(S, NEVER_TREATED, dtype=np.int64)
    u_idx, r_idx = rng.permutation(np.flatnonzero(urban)), rng.permutation(np.flatnonzero(~urban))
    for j, g in enumerate(dates):
        first[u_idx[j * per_area:(j + 1) * per_area]] = g
        first[r_idx[j * per_area:(j + 1) * per_area]] = g
    eu, er = GRID_EFFECTS[effects]
    e = periods[None, :] - first[:, None]
    eff = np.where(urban, eu, er)[:, None] * np.where((first != NEVER_TREATED)[:, None], _ramp_k(e, GRID_RAMP), 0.0)
    lam = lam0 * (1 + eff)
    y = nb_counts(rng, lam)
    df = frame(None, first, y, periods, county=np.array(["C01"] * S), area=np.where(urban, "urban", "rural"),
               station_id=_sids(S), outcome="incidents_dispute")
    return DesignPanel("heterogeneity", scale, "incidents_dispute", df, periods, first, lam0, lam, lam,
                       info={"effects": effects, "urban": urban})
