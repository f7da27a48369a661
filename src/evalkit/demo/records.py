"""Demo-world records: incident and dispute records drawn from the counts, and the
station-month panel aggregated from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.demo.params import (
    C_IDX,
    DCAT_P,
    DCATS,
    HOUR_P,
    NIGHT,
    NIGHT_FACTOR,
    NP,
    P_CASE,
    P_PATROL_CASE,
    RESP_SIGMA,
    World,
)


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
