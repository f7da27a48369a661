"""Power and minimum detectable effects for designing a pilot, simulated from a real panel.

Method (``power_curve``):

1. Take the stations of an existing panel (the never-treated ones when there are at least 10,
   otherwise all stations before the first adoption) with complete monthly series of the outcome.
   Remove station and month fixed effects: ``e_it = y_it − ȳ_i − ȳ_t + ȳ``. The residual paths
   ``e_i·`` keep each station's own variance and serial correlation; ``ȳ_i`` is its level.
2. Each simulated study draws ``n_stations`` stations (without replacement when the pool is large
   enough) and one common calendar window of ``n_months_pre + n_months_post`` months, and builds
   ``y = ȳ_i + e_it + (effect_pct/100)·ȳ_i·D_it``.
   ``staggered``: ``n_treated`` stations adopt in ``n_cohorts`` cohorts spread evenly over the
   first half of the post period (the first cohort starts after ``n_months_pre`` months).
   ``single``: one station adopts after ``n_months_pre`` months.
3. The TWFE coefficient is tested by randomization inference across the simulated stations
   (``inference="ri"``, default: ``perms`` random re-assignments of the adoption vector for
   ``staggered``; all ``n_stations`` choices of the pilot station for ``single``), which has exact
   size; or (``inference="cluster"``, staggered only) by the CRV1 t-test with ``t(G−1)``
   critical values, which over-rejects when few stations are treated.

Everything is vectorised over simulations and permutations: in a balanced panel the TWFE
coefficient is ``Σ_i R_i(g_i) / c`` with ``R_i(g) = Σ_{t≥g} ỹ_it`` and a constant ``c`` that does
not change when adoption dates are permuted, and ``ỹ`` is linear in the effect size, so the power
at any effect (and the MDE by bisection) costs a few array operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from evalkit.distributions import t_ppf
from evalkit.registry import NEVER_TREATED


# ---------------------------------------------------------------------------- pool
@dataclass
class ResidualPool:
    E: np.ndarray  # n_pool x T residual paths (two-way FE removed)
    level: np.ndarray  # n_pool station means
    source: str


def residual_pool(panel: pd.DataFrame, outcome: str, *, unit: str = "station_id", time: str = "period",
                  cohort: str = "first_treat") -> ResidualPool:
    """Residual paths of the stations (see module docstring, step 1)."""
    df = panel[[c for c in dict.fromkeys([unit, time, outcome, cohort]) if c in panel.columns]]
    source = "all stations"
    if cohort in df.columns:
        g = pd.to_numeric(df[cohort], errors="coerce").fillna(NEVER_TREATED)
        never = df[g == NEVER_TREATED]
        if never[unit].nunique() >= 10:
            df, source = never, "never-treated stations"
        elif (g != NEVER_TREATED).any():
            df = df[df[time] < g[g != NEVER_TREATED].min()]
            source = "all stations before the first adoption"
    wide = df.pivot_table(index=unit, columns=time, values=outcome, aggfunc="mean").sort_index(axis=1)
    wide = wide.dropna(axis=0, how="any")
    Y = wide.to_numpy(float)
    if Y.shape[0] < 3 or Y.shape[1] < 4:
        raise ValueError("need at least 3 stations with complete series of at least 4 periods")
    level = Y.mean(axis=1)
    E = Y - level[:, None] - Y.mean(axis=0)[None, :] + Y.mean()
    return ResidualPool(E=E, level=level, source=source)


def _twoway(Y: np.ndarray) -> np.ndarray:
    """Two-way demeaning of the last two axes (balanced)."""
    return Y - Y.mean(axis=-1, keepdims=True) - Y.mean(axis=-2, keepdims=True) + Y.mean(axis=(-2, -1), keepdims=True)


def _rcum(Yt: np.ndarray) -> np.ndarray:
    """``R[..., i, g] = Σ_{t≥g} Yt[..., i, t]`` with a zero column at ``g = T`` (never treated)."""
    r = np.cumsum(Yt[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([r, np.zeros(r.shape[:-1] + (1,))], axis=-1)


# ---------------------------------------------------------------------------- one design
@dataclass
class _Sim:
    a0: np.ndarray  # sims: actual numerator without effect
    a1: np.ndarray  # sims: numerator per unit effect (fraction)
    N0: np.ndarray | None  # sims x perms
    N1: np.ndarray | None
    den: float
    cluster: tuple | None = None  # (Et, Lt, Dt) for CRV1
    enum: bool = False  # N0/N1 enumerate all assignments (single pilot)
    level_treated: float = float("nan")  # mean level of the treated stations (for percent)


def _simulate(pool: ResidualPool, *, n_stations: int, n_treated: int, n_pre: int, n_post: int, design: str,
              n_cohorts: int, sims: int, perms: int, inference: str, rng: np.random.Generator) -> _Sim:
    n_pool, T_panel = pool.E.shape
    T = n_pre + n_post
    if T > T_panel:
        raise ValueError(f"the panel has {T_panel} complete periods; the design needs {T}")
    if not 1 <= n_treated < n_stations:
        raise ValueError("need 1 <= n_treated < n_stations")
    # stations and windows (common random numbers across effects / n_treated: same rng state)
    if n_stations <= n_pool:
        idx = np.argsort(rng.random((sims, n_pool)), axis=1)[:, :n_stations]
    else:
        idx = rng.integers(0, n_pool, size=(sims, n_stations))
    start = rng.integers(0, T_panel - T + 1, size=sims)
    cols = start[:, None, None] + np.arange(T)[None, None, :]
    E = pool.E[idx[:, :, None], cols]  # sims x n x T
    L = pool.level[idx]  # sims x n
    # adoption index vector (T = never)
    g0 = np.full(n_stations, T, dtype=np.int64)
    if design == "single":
        g0[0] = n_pre
    else:
        k = max(1, min(n_cohorts, n_treated))
        spread = max(0, (n_post - 1) // 2)
        offs = n_pre + np.round(np.linspace(0, spread, k)).astype(np.int64)
        g0[:n_treated] = offs[np.arange(n_treated) % k]
    D = (np.arange(T)[None, :] >= g0[:, None]).astype(float)  # n x T
    Dt = _twoway(D)
    den = float(np.sum(D * Dt))
    Et = _twoway(E)
    Lt = _twoway(L[:, :, None] * D[None, :, :])  # effect part per unit fraction
    R0, R1 = _rcum(Et), _rcum(Lt)
    ar = np.arange(n_stations)
    a0 = R0[:, ar, g0].sum(axis=1)
    a1 = R1[:, ar, g0].sum(axis=1)
    N0 = N1 = None
    clus = None
    if inference == "ri":
        if design == "single":  # every station as the pilot: exact enumeration
            N0, N1 = R0[:, :, n_pre], R1[:, :, n_pre]
        else:
            gp = g0[np.argsort(rng.random((perms, n_stations)), axis=1)]  # perms x n
            N0 = np.empty((sims, perms))
            N1 = np.empty((sims, perms))
            step = max(1, 20_000_000 // max(1, perms * n_stations))
            for s in range(0, sims, step):  # blocks of simulations (memory), not units
                sl = slice(s, s + step)
                N0[sl] = R0[sl][:, ar[None, :], gp].sum(axis=-1)
                N1[sl] = R1[sl][:, ar[None, :], gp].sum(axis=-1)
    else:
        clus = (Et, Lt, Dt)
    lt = float(np.mean(L[:, g0 < T]))
    return _Sim(a0=a0, a1=a1, N0=N0, N1=N1, den=den, cluster=clus, level_treated=lt)


def _power(sim: _Sim, effect: float, alpha: float, inference: str) -> tuple[float, float]:
    """(power, mean TWFE estimate in percent of the treated stations' mean level) at ``effect``."""
    a = sim.a0 + effect * sim.a1
    if inference == "ri":
        Np = sim.N0 + effect * sim.N1
        tol = 1e-12 * np.maximum(1.0, np.abs(a))
        k = np.sum(np.abs(Np) >= (np.abs(a) - tol)[:, None], axis=1)
        # exact enumeration includes the actual assignment; random permutations add it
        p = k / Np.shape[1] if sim.enum else (1 + k) / (Np.shape[1] + 1)
        rej = p <= alpha + 1e-12
    else:
        Et, Lt, Dt = sim.cluster
        b = a / sim.den
        U = Et + effect * Lt - b[:, None, None] * Dt[None]
        score = np.einsum("snt,nt->sn", U, Dt)
        n, T = Dt.shape
        G, N = n, n * T
        ssc = G / (G - 1) * (N - 1) / max(N - T - 1, 1)
        se = np.sqrt(ssc * np.sum(score ** 2, axis=1)) / sim.den
        rej = np.abs(b / se) > t_ppf(1 - alpha / 2, G - 1)
    return float(np.mean(rej)), float(100.0 * np.mean(a / sim.den) / sim.level_treated)


def _design_sim(pool, design, n_st, n_tr, n_pre, n_post, n_cohorts, sims, perms, inference, seed) -> _Sim:
    rng = np.random.default_rng(seed)
    sim = _simulate(pool, n_stations=n_st, n_treated=n_tr, n_pre=n_pre, n_post=n_post, design=design,
                    n_cohorts=n_cohorts, sims=sims, perms=perms, inference=inference, rng=rng)
    sim.enum = design == "single" and inference == "ri"
    return sim


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple, np.ndarray, range)) else [x]


def _defaults(pool: ResidualPool, n_stations, n_months_post, n_months_pre):
    T_panel = pool.E.shape[1]
    n_post = n_months_post if n_months_post is not None else max(2, min(12, T_panel // 3))
    posts = _as_list(n_post)
    pre = n_months_pre if n_months_pre is not None else max(2, min(24, T_panel - max(posts)))
    st = n_stations if n_stations is not None else pool.E.shape[0]
    return _as_list(st), posts, pre


# ---------------------------------------------------------------------------- public API
def power_curve(
    panel: pd.DataFrame,
    outcome: str,
    *,
    effects_pct=(0, 5, 10, 15, 20, 30),
    n_treated=(5, 10, 20),
    n_months_post=None,
    n_months_pre: int | None = None,
    n_stations=None,
    design: str = "staggered",
    n_cohorts: int = 4,
    sims: int = 200,
    perms: int = 199,
    inference: str = "ri",
    seed: int | None = 0,
    alpha: float = 0.05,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
) -> pd.DataFrame:
    """Simulated power of a pilot for each combination of effect (percent), number of treated
    stations, number of post months and number of stations (see module docstring).

    ``n_months_post`` and ``n_stations`` may be lists. ``design="single"`` fixes ``n_treated=1``.
    Returns one row per combination with ``power`` and its Monte-Carlo SE ``mc_se``.
    """
    if design not in ("staggered", "single"):
        raise ValueError("design must be 'staggered' or 'single'")
    if inference not in ("ri", "cluster"):
        raise ValueError("inference must be 'ri' or 'cluster'")
    if design == "single" and inference != "ri":
        raise ValueError("a single pilot station needs inference='ri' (placebo across stations)")
    pool = residual_pool(panel, outcome, unit=unit, time=time, cohort=cohort)
    stations, posts, pre = _defaults(pool, n_stations, n_months_post, n_months_pre)
    trs = [1] if design == "single" else _as_list(n_treated)
    rows = []
    for n_st, n_post, n_tr in product(stations, posts, trs):
        sim = _design_sim(pool, design, int(n_st), int(n_tr), int(pre), int(n_post), n_cohorts, sims, perms,
                          inference, seed)
        for e in _as_list(effects_pct):
            pw, mean_est = _power(sim, float(e) / 100.0, alpha, inference)
            rows.append({"effect_pct": float(e), "n_treated": int(n_tr), "n_stations": int(n_st),
                         "n_months_pre": int(pre), "n_months_post": int(n_post), "design": design,
                         "n_cohorts": 1 if design == "single" else int(min(n_cohorts, n_tr)),
                         "power": pw, "mc_se": float(np.sqrt(max(pw * (1 - pw), 1e-12) / sims)),
                         "mean_estimate_pct": mean_est, "sims": sims, "alpha": alpha, "inference": inference,
                         "pool": pool.source, "baseline_level": float(np.mean(pool.level))})
    return pd.DataFrame(rows)


def mde(
    panel: pd.DataFrame,
    outcome: str,
    *,
    n_treated: int,
    power: float = 0.8,
    n_months_post: int | None = None,
    n_months_pre: int | None = None,
    n_stations: int | None = None,
    design: str = "staggered",
    n_cohorts: int = 4,
    sims: int = 200,
    perms: int = 199,
    inference: str = "ri",
    seed: int | None = 0,
    alpha: float = 0.05,
    max_pct: float = 1000.0,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
) -> float:
    """Minimum detectable effect (percent of the station level, magnitude) with the given power.

    Bisection on the effect with the same simulated studies at every step (common random
    numbers). Returns ``inf`` if even ``max_pct`` is not detected (e.g. a single pilot among
    fewer than ``1/alpha`` stations).
    """
    pool = residual_pool(panel, outcome, unit=unit, time=time, cohort=cohort)
    stations, posts, pre = _defaults(pool, n_stations, n_months_post, n_months_pre)
    n_tr = 1 if design == "single" else int(n_treated)
    sim = _design_sim(pool, design, int(stations[0]), n_tr, int(pre), int(posts[0]), n_cohorts, sims, perms,
                      inference, seed)

    def pw(pct: float) -> float:
        return _power(sim, pct / 100.0, alpha, inference)[0]

    hi = 1.0
    while pw(hi) < power:
        hi *= 2
        if hi > max_pct:
            return float("inf")
    lo = 0.0
    for _ in range(40):
        if hi - lo < 0.01:
            break
        mid = (lo + hi) / 2
        if pw(mid) >= power:
            hi = mid
        else:
            lo = mid
    return float(hi)


# ---------------------------------------------------------------------------- presentation
_LABELS = {
    "en": {"x": "true effect (% of station level)", "y": "probability of detecting the effect (power)",
           "n": "{n} treated stations", "single": "single pilot station", "target": "80% target",
           "title": "Power of the pilot design ({months} months after adoption, {stations} stations)",
           "effect": "effect", "col": "{n} treated", "alpha": "false alarm rate α"},
    "zh": {"x": "真实效果（占站点平均水平的百分比）", "y": "检出效果的概率（统计功效）",
           "n": "{n} 个试点站", "single": "单一试点站", "target": "80% 目标",
           "title": "试点方案的统计功效（改革后 {months} 个月，共 {stations} 个站点）",
           "effect": "效果", "col": "{n} 个试点站", "alpha": "误报率 α"},
}


def power_table(df: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """Power as percentages: rows = effect, columns = number of treated stations (and months)."""
    lab = _LABELS[lang]
    d = df.copy()
    d["row"] = d["effect_pct"].map(lambda e: f"{e:g}%")
    single = (d["design"] == "single").all()
    d["col"] = d["n_treated"].map(lambda n: lab["single"] if single else lab["col"].format(n=n))
    if d["n_months_post"].nunique() > 1:
        d["col"] = d["col"] + d["n_months_post"].map(lambda m: f" / {m}m" if lang == "en" else f" / {m} 个月")
    order_rows = list(dict.fromkeys(d.sort_values("effect_pct")["row"]))
    order_cols = list(dict.fromkeys(d.sort_values(["n_treated", "n_months_post"])["col"]))
    t = d.pivot_table(index="row", columns="col", values="power", aggfunc="mean").reindex(index=order_rows,
                                                                                          columns=order_cols)
    t = t.map(lambda v: f"{v:.0%}")
    t.index.name = lab["effect"]
    t.columns.name = None
    return t
