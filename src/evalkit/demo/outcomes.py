"""Expected values of the demo world: station-month parameters, expected outcomes, the
planted truth (treated minus untreated expectations) and the gamma-Poisson count draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from evalkit.demo.params import (
    AREAS,
    C_IDX,
    DISPLACEMENT_THEFT,
    GRID_DISPUTE,
    GRID_RAMP,
    K_SM,
    K_SMC,
    NC,
    NIGHT_FACTOR,
    NP,
    P_CASE,
    P_DIVERT_BASE,
    P_NIGHT,
    PATROL_SHARE,
    PATROL_TARGET_MEAN,
    PATROL_THEFT,
    R_IDX,
    REFORM_ORDER,
    RESP_FACTOR,
    RESP_MEDIAN,
    RESP_SIGMA,
    SF_AREA,
    STREAM_PLANT_COUNTS,
    TRUTH_OUTCOMES,
    World,
    _ramp,
    _ss,
)

GRID_RED = np.array([GRID_DISPUTE[a] for a in AREAS])  # police_grid full effect by area index

# ---------------------------------------------------------------------------- expected values
def station_month_params(w: World, idx: np.ndarray, treated: bool = True, *, spill: bool = True,
                         stops: bool = True, plants: bool = True) -> dict[str, np.ndarray]:
    """Expected-value parameters for stations ``idx`` over all periods.

    ``treated=False`` gives the untreated potential outcome (the counterfactual) of the same
    station-months, ``treated=True`` the world as generated. ``spill=False`` removes the theft
    displaced from 巡处一体化 adopters onto their untreated neighbours (the neighbours' outcome had
    no station adopted); ``stops=False`` keeps a stopped reform running after its ``ended_on``
    month (the outcome had the station not switched off). ``plants=False`` leaves out all four
    issue-17 plants (dose, stop, theft effects of 巡处一体化, 警网融合): the world before them, from
    which :func:`draw_counts` draws so the counts of stations the plants do not touch stay as they were.
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

    # displacement: theft of untreated neighbours of patrol adopters rises from the adoption date on.
    # It is part of every potential outcome of those stations (they are not patrol adopters).
    if plants and spill and w.exposed is not None:
        p_pat = w.adopt[w.reform_of == R_IDX["patrol_dispatch"]]
        if len(p_pat):
            on = (w.periods[None, :] >= p_pat.min()) & w.exposed[idx][:, None]
            lam[:, :, C_IDX["theft"]] *= 1 + DISPLACEMENT_THEFT * on

    if treated:
        on_now = np.ones((len(idx), T))  # 0 from a stopped reform's end month on
        if plants and stops and w.end is not None:
            end = w.end[idx][:, None]
            on_now = np.where((end > 0) & (w.periods[None, :] >= end), 0.0, 1.0)
        dose = (w.dose[idx] if plants and w.dose is not None else np.ones(len(idx)))[:, None]
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
        if plants:
            lam[:, :, C_IDX["theft"]] *= 1 + PATROL_THEFT * ((e >= 0) & is_r["patrol_dispatch"])
        # non-police diversion (off again from a stopping county's end month)
        gd = _ramp(e, 3) * is_r["nonpolice_diversion"] * on_now
        p_div = p_div + gd * (0.60 - P_DIVERT_BASE)
        # village auxiliary
        gv = _ramp(e, 12) * is_r["village_auxiliary"] * dose  # every effect scales with the dose
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
        # police-grid integration: dispute incidents, urban -20 %, rural -5 %, linear over 6 months
        if plants:
            gg = _ramp(e, GRID_RAMP) * is_r["police_grid"] * GRID_RED[area][:, None]
            lam[:, :, C_IDX["dispute"]] *= 1 + gg
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
    """Incident counts [S, T, C] and dispute counts [S, T] for a station chunk (negative binomial).

    The counts are first drawn as in the world without the issue-17 plants (same stream, same
    numbers), then the cells a plant changes are moved to their planted mean with a stream of their
    own: binomial thinning where the plant lowers the mean (Poisson(λ)·thin(m) = Poisson(mλ)), an
    added Poisson((m − 1)λ) where it raises it. So stations no plant touches keep their counts.
    """
    rng = _ss(w.seed, 1, chunk)
    prm0 = station_month_params(w, idx, treated=True, plants=False)
    prm = station_month_params(w, idx, treated=True)
    lam0 = prm0["lam"]
    g = rng.gamma(K_SM, 1 / K_SM, lam0.shape[:2])[:, :, None] * rng.gamma(K_SMC, 1 / K_SMC, lam0.shape)
    counts = rng.poisson(lam0 * g).astype(np.int32)
    gd = rng.gamma(K_SMC, 1 / K_SMC, prm0["d_lam"].shape)
    dcounts = rng.poisson(prm0["d_lam"] * gd).astype(np.int32)
    rp = _ss(w.seed, STREAM_PLANT_COUNTS, chunk)
    _move_to_planted(counts, lam0 * g, prm["lam"] / lam0, prm["lam"] != lam0, rp)
    _move_to_planted(dcounts, prm0["d_lam"] * gd, prm["d_lam"] / prm0["d_lam"], prm["d_lam"] != prm0["d_lam"], rp)
    return counts, dcounts, prm


def _move_to_planted(counts: np.ndarray, mean0: np.ndarray, m: np.ndarray, changed: np.ndarray,
                     rng: np.random.Generator) -> None:
    """In place: counts drawn with mean ``mean0`` become draws with mean ``m * mean0`` where ``changed``."""
    cells = np.flatnonzero(changed)
    if not len(cells):
        return
    flat, f, mu = counts.reshape(-1), m.reshape(-1)[cells], mean0.reshape(-1)[cells]
    lo = f < 1
    flat[cells[lo]] = rng.binomial(flat[cells[lo]], f[lo])
    flat[cells[~lo]] += rng.poisson(mu[~lo] * (f[~lo] - 1)).astype(flat.dtype)
