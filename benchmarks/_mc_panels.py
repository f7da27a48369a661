"""Station x month panels for the verdict Monte Carlo (``benchmarks/mc_verdict.py``), not drawn from the demo world.

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


def frame(d: Design, first: np.ndarray, y: np.ndarray, periods: np.ndarray, *, county: np.ndarray,
          area: np.ndarray, station_id: np.ndarray) -> pd.DataFrame:
    """The panel with evalkit's columns (as :func:`evalkit.panel.build_panel` returns them)."""
    S, T = y.shape
    df = pd.DataFrame({
        "station_id": np.repeat(station_id, T),
        "county": np.repeat(county, T),
        "area_type": np.repeat(area, T),
        "period": np.tile(periods, S).astype(np.int64),
        "first_treat": np.repeat(first, T).astype(np.int64),
        OUTCOME: y.ravel().astype(np.int64),
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


def synthetic(d: Design, seed: int, delta: float = 0.0, selection: bool = False) -> Panel:
    """One replication of a synthetic design (see the module docstring)."""
    rng = np.random.default_rng([int(seed), 19])
    S, T = d.n_stations, d.n_months
    periods = d.start + np.arange(T)
    mu = BASE_LEVEL * np.exp(rng.normal(0.0, SIZE_SD, S))
    month = periods % 12 + 1
    season = SEASON_AMP * np.cos(2 * np.pi * (month - 7) / 12)
    shock = np.array([SHOCK.get((int(p // 12), int(p % 12 + 1)), 0.0) for p in periods])
    common = season + shock + TREND * (periods - d.start) / 12
    u = np.empty((S, T))
    u[:, 0] = rng.normal(0.0, SIGMA_U, S)
    innov = rng.normal(0.0, SIGMA_U * np.sqrt(1 - RHO**2), (S, T))
    for t in range(1, T):
        u[:, t] = RHO * u[:, t - 1] + innov[:, t]
    lam0 = mu[:, None] * np.exp(common[None, :] + u)
    first = assign(rng, d, mu, selection)
    e = periods[None, :] - first[:, None]
    lam = lam0 * (1 + delta * np.where(first[:, None] != NEVER_TREATED, ramp(e), 0.0))
    y = rng.poisson(lam * rng.gamma(NB_SHAPE, 1.0 / NB_SHAPE, (S, T)))
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
