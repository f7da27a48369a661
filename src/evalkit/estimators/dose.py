"""Difference-in-differences with a continuous or multi-valued dose (Callaway, Goodman-Bacon & Sant'Anna 2024).

Each adopting unit receives one dose ``D > 0`` from its adoption period ``g`` on (0 = untreated).
For every cohort ``g`` and period ``t >= g`` the long difference ``ΔY = Y_t − Y_{g−1}`` (base: the
last period before ``g``) of the cohort's units, minus the mean ``ΔY`` of the comparison group
(never-treated, or not yet treated at ``t``), is regressed on a B-spline basis of the dose: the fit
is ATT_gt(d), its derivative ACRT_gt(d). Cells are averaged with their numbers of treated units
(as the ``contdid`` package does), giving

* ``ATT(d)`` (rows of kind ``dose``) and ``ACRT(d) = dATT(d)/dd`` (kind ``dose_slope``) on a grid of
  doses, with pointwise CIs and uniform (sup-t) bands from a seeded Mammen multiplier bootstrap;
* ``ATT^o``, the average effect over the adopters (the ``overall`` row; = the binary ATT over the
  same cells), and ``ACR^o``, the average of ACRT(D_i) over the adopters (kind ``aggregate``).

Inference uses the units' influence functions (summed within clusters), without small-sample factor;
the cells' shares are taken as fixed (as ``contdid``). Level effects ATT(d) need parallel trends;
comparing doses (ACRT, differences of ATT(d)) needs *strong* parallel trends (docs/estimators-other.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import wraps
from typing import Any

import numpy as np
import pandas as pd

from evalkit.distributions import norm_ppf, norm_sf
from evalkit.estimators._common import baseline_mean, finish_result, inference_meta, wald_test
from evalkit.estimators._cs_blas import blas_threads
from evalkit.estimators._dose_basis import DoseBasis, check_dose_column, interior_knots, unit_doses
from evalkit.estimators._sample import NEVER, PanelInputError, build_sample
from evalkit.results import EstimationResult

_CONTROLS = ("never", "notyet")
_N_GRID = 20


def _mammen(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Mammen two-point multipliers (mean 0, variance 1), as R ``did``'s multiplier bootstrap."""
    s5 = np.sqrt(5.0)
    a, b = (1 - s5) / 2, (1 + s5) / 2
    return np.where(rng.random(shape) < (s5 + 1) / (2 * s5), a, b)


def default_grid(doses: np.ndarray) -> np.ndarray:
    """The adopters' distinct doses when there are at most 20, else their 5%..95% quantiles (20 points)."""
    u = np.unique(doses)
    return u if u.size <= _N_GRID else np.quantile(doses, np.linspace(0.05, 0.95, _N_GRID))


def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread: its solves and products are small (a pseudo-inverse of 80 x 80
    took 0.26 s wall on two busy cores with OpenBLAS's threads spinning, 6 ms on one thread)."""
    @wraps(fn)
    def run(*args, **kwargs):
        with blas_threads(1):
            return fn(*args, **kwargs)
    return run


@_one_blas_thread
def estimate_dose(
    panel: pd.DataFrame,
    outcome: str,
    *,
    dose: str = "dose",
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    control: str = "never",
    degree: int = 3,
    knots: int | Sequence[float] = 0,
    dvals: Sequence[float] | None = None,
    bootstrap: int = 999,
    seed: int = 1,
    small_cohorts: str = "error",
    ssc: bool = True,
) -> EstimationResult:
    """Dose–response DiD: ATT(d), ACRT(d) with uniform bands, and the averages ATT^o (overall) and ACR^o.

    ``dose`` names the column with the unit's dose (in the treatment's own units, e.g. the share of
    villages covered): 0 for never-treated units, one positive value per adopter from adoption on
    (0 or that value before). ``degree``/``knots``: the B-spline (``knots`` = number of interior
    quantile knots or their positions; a dose with ``K`` values and ``degree = K − 1``, ``knots = 0``
    is saturated: ATT(d) is then the cell means' difference). ``dvals``: doses at which the curve is
    reported (default :func:`default_grid`). ``control``: ``"never"`` or ``"notyet"``. ``bootstrap``:
    multiplier draws for the uniform bands (0 = no bands), ``seed`` their seed. ``small_cohorts``: a
    cohort-period cell with fewer distinct doses than basis functions is an error (``"error"``) or left
    out of every estimate (``"skip"``: counted in ``meta["skipped_cells"]["too_few_doses"]``, the
    adopters used in ``meta["n_treated_used"]``). ``ssc``: each cohort-period cell's dose-regression
    residuals get the degrees-of-freedom factor ``sqrt(n / (n − k))`` (``n`` adopters in the cell, ``k`` ≥ 2
    basis functions; HC1; degree 0 is the binary ATT and keeps CS's convention). Without it (``ssc=False``, as ``contdid``) the curve's and ACR's SEs are too
    small with few adopters per cohort (docs/monte-carlo.md: slope coverage 0.59–0.84 in a county).
    """
    if small_cohorts not in ("error", "skip"):
        raise ValueError(f"dose: small_cohorts must be 'error' or 'skip', got {small_cohorts!r}")
    if control not in _CONTROLS:
        raise ValueError(f"dose: control must be one of {_CONTROLS}, got {control!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"dose: alpha must be in (0, 1), got {alpha!r}")
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ValueError(f"dose: bootstrap must be an integer >= 0, got {bootstrap!r}")
    if not isinstance(degree, (int, np.integer)) or isinstance(degree, bool):
        raise ValueError(f"dose: degree must be an integer >= 0, got {degree!r}")
    if isinstance(panel, pd.DataFrame):
        d_rows = check_dose_column(panel, dose, unit, time)
    sample = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster,
                          covariates=(dose,), control=control)
    if not isinstance(panel, pd.DataFrame):
        panel = sample.frame
        d_rows = check_dose_column(panel, dose, unit, time)
    per_unit = unit_doses(panel, d_rows, dose=dose, unit=unit, time=time, cohort=cohort,
                          last_period=sample.info.last_period)

    f = sample.frame
    ucode, ulabels = pd.factorize(f[unit], sort=True)
    periods = np.sort(f[time].unique())
    tcode = np.searchsorted(periods, f[time].to_numpy())
    n_u = len(ulabels)
    y = np.full((n_u, len(periods)), np.nan)
    y[ucode, tcode] = f[outcome].to_numpy(dtype=float)
    g_unit = np.zeros(n_u, dtype=np.int64)
    g_unit[ucode] = f[cohort].to_numpy()
    d_unit = per_unit.reindex(ulabels).fillna(0.0).to_numpy(dtype=float)
    d_unit = np.where(g_unit == NEVER, 0.0, d_unit)
    treated = g_unit != NEVER
    if not treated.any():
        raise PanelInputError(f"column {cohort!r}: no unit adopts inside the panel window; nothing to estimate")
    if control == "never" and not (~treated).any():
        raise PanelInputError(f"column {cohort!r}: no never-treated unit to compare with; use control='notyet'")

    basis = DoseBasis(d_unit[treated].min(), d_unit[treated].max(), int(degree),
                      interior_knots(d_unit[treated], knots))
    grid = default_grid(d_unit[treated]) if dvals is None else np.asarray(list(dvals), dtype=float)
    L_att, L_acrt = basis.design(grid), basis.derivative(grid)
    b_all = np.zeros((n_u, basis.k))
    db_all = np.zeros((n_u, basis.k))
    b_all[treated], db_all[treated] = basis.design(d_unit[treated]), basis.derivative(d_unit[treated])
    cells, skipped = _cells(y, periods, g_unit, d_unit, b_all, db_all, basis, control,
                            skip_small=small_cohorts == "skip", ssc=bool(ssc))
    post = [c for c in cells if c["post"]]
    if not post:
        if skipped.get("too_few_doses") and not any(c["post"] for c in cells):
            raise PanelInputError(f"dose: every adoption cohort has fewer distinct doses than the {basis.k} B-spline "
                                  f"functions need ({skipped['too_few_doses']} cells left out); the dose curve compares "
                                  f"doses within a cohort — lower degree or knots, or group adoption dates")
        raise PanelInputError(f"column {cohort!r}: no cohort-period cell after adoption has both adopters and "
                              f"comparison units observed at the base and the period; check the panel")
    n_w = np.array([c["n_treated"] for c in post], dtype=float)
    w = n_w / n_w.sum()
    beta = sum(wc * c["beta"] for wc, c in zip(w, post, strict=True))
    events = sorted({c["t"] - c["g"] for c in cells})
    ng, ne = len(grid), len(events)
    # influence functions (sum form: estimate − truth ≈ Σ_units φ); columns: ATT^o, ACR^o, ATT(d), ACRT(d),
    # then ATT(e), ACR(e) by event time
    phi = np.zeros((n_u, 2 + 2 * ng + 2 * ne))
    att_o = acr_o = 0.0
    for wc, c in zip(w, post, strict=True):
        att_c, acr_c = _cell_influence(c, wc, phi, 0, 1)
        att_o += wc * att_c
        acr_o += wc * acr_c
        # the curve: treated through the cell regression's score; comparison units shift every coefficient
        # by the same amount (the basis sums to one), which moves ATT(d) by that amount and no slope
        tr, co = c["t_idx"], c["c_idx"]
        phi[tr, 2:2 + ng] += wc * (c["infl_t"] @ L_att.T)
        phi[tr, 2 + ng:2 + 2 * ng] += wc * (c["infl_t"] @ L_acrt.T)
        phi[co, 2:2 + ng] -= (wc * c["dc"] / co.size)[:, None]
    ev_est = np.zeros(2 * ne)
    for j, e in enumerate(events):
        ce = [c for c in cells if c["t"] - c["g"] == e]
        we = np.array([c["n_treated"] for c in ce], dtype=float)
        for wc, c in zip(we / we.sum(), ce, strict=True):
            a, s_ = _cell_influence(c, wc, phi, 2 + 2 * ng + j, 2 + 2 * ng + ne + j)
            ev_est[j] += wc * a
            ev_est[ne + j] += wc * s_

    if cluster is not None and cluster != unit:
        clus = f.groupby(unit, sort=True)[cluster].first().reindex(ulabels).to_numpy()
        ccode, cl = pd.factorize(clus)
        n_clusters = len(cl)
        phi = np.vstack([np.bincount(ccode, weights=phi[:, j], minlength=n_clusters)
                         for j in range(phi.shape[1])]).T
    else:
        n_clusters = n_u
    se = np.sqrt((phi ** 2).sum(axis=0))
    est = np.r_[att_o, acr_o, L_att @ beta, L_acrt @ beta, ev_est]

    crit = {"dose": float("nan"), "dose_slope": float("nan")}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        # only the curves get bands: columns 2 .. 2 + 2 ng of phi (draws keep phi's column numbers)
        draws = np.zeros((int(bootstrap), phi.shape[1]))
        draws[:, 2:2 + 2 * ng] = _mammen(rng, (int(bootstrap), phi.shape[0])) @ phi[:, 2:2 + 2 * ng]
        for name, sl in (("dose", slice(2, 2 + ng)), ("dose_slope", slice(2 + ng, 2 + 2 * ng))):
            s = se[sl]
            ok = s > 1e-12 * max(1.0, float(np.abs(est[sl]).max(initial=0.0)))
            if ok.any():
                tmax = np.abs(draws[:, sl][:, ok] / s[ok]).max(axis=1)
                crit[name] = float(np.quantile(tmax, 1 - alpha))

    z = norm_ppf(1 - alpha / 2)
    rows: list[dict[str, Any]] = [{"kind": "overall", "term": "ATT", "estimate": est[0], "std_error": se[0]},
                                  {"kind": "aggregate", "term": "ACR", "estimate": est[1], "std_error": se[1]}]
    for j, dv in enumerate(grid):
        for kind, name, col in (("dose", "ATT", 2 + j), ("dose_slope", "ACRT", 2 + ng + j)):
            cv = crit[kind]
            rows.append({"kind": kind, "term": f"{name}(d={dv:g})", "dose": float(dv), "estimate": est[col],
                         "std_error": se[col], "band_low": est[col] - cv * se[col], "band_high": est[col] + cv * se[col]})
    for j, e in enumerate(events):
        for kind, name, col in (("event", "e", 2 + 2 * ng + j), ("event_slope", "ACR e", 2 + 2 * ng + ne + j)):
            rows.append({"kind": kind, "term": f"{name}={e}", "event_time": e, "estimate": est[col],
                         "std_error": se[col]})
    tab = pd.DataFrame(rows)
    s_ = tab["std_error"].to_numpy(dtype=float)
    e_ = tab["estimate"].to_numpy(dtype=float)
    tab["ci_low"], tab["ci_high"] = e_ - z * s_, e_ + z * s_
    with np.errstate(divide="ignore", invalid="ignore"):
        tab["p_value"] = np.where(s_ > 0, 2 * norm_sf(np.abs(e_ / s_)), np.nan)

    wpost = dict(zip([id(c) for c in post], w, strict=True))
    cell_tab = pd.DataFrame([{"group": c["g"], "time": c["t"], "base": c["base"], "post": c["post"],
                              "n_treated": c["n_treated"], "n_control": int(c["dc"].size),
                              "weight": wpost.get(id(c), 0.0), "att": c["att"]} for c in cells])
    cov = phi.T @ phi
    ev_cols = 2 + 2 * ng + np.arange(ne)
    pre = [j for j, e in enumerate(events) if e < 0]
    terms = [f"e={e}" for e in events]
    vcov = {"event": pd.DataFrame(cov[np.ix_(ev_cols, ev_cols)], index=terms, columns=terms)}
    label = {"never": "never treated", "notyet": "never and not-yet treated"}[control]
    meta: dict[str, Any] = {
        "label": "Dose-response DiD (Callaway, Goodman-Bacon & Sant'Anna 2024)",
        "control_group": label, "base_period": "last period before adoption (g-1)",
        "dose": dose, "n_obs": int(sample.info.n_obs), "n_periods": int(sample.info.n_periods),
        "n_clusters": int(n_clusters), "cluster": cluster or unit, "alpha": alpha,
        "bootstrap": int(bootstrap), "seed": seed, "degree": int(degree),
        "knots": basis.inner.tolist(), "dose_range": [basis.lo, float(d_unit[treated].max())],
        "n_doses": int(np.unique(d_unit[treated]).size), "n_cells": len(post),
        "n_pre_cells": len(cells) - len(post), "skipped_cells": skipped,
        "n_treated_used": int(np.unique(np.concatenate([c["t_idx"] for c in post])).size),
        "critical_value": crit, "dose_grid": grid.tolist(),
        # placebo cells before adoption: ATT(e) for e < 0 (parallel trends) and ACR(e) (dose slopes; strong PT)
        "pretrend": wald_test(est[ev_cols[pre]], cov[np.ix_(ev_cols[pre], ev_cols[pre])]),
        "pretrend_slope": wald_test(est[ev_cols[pre] + ne], cov[np.ix_(ev_cols[pre] + ne, ev_cols[pre] + ne)]),
        "baseline_mean": baseline_mean(f, outcome, time=time, cohort=cohort),
        "cell_weights": "number of treated units in the cell (contdid)",
    }
    res = EstimationResult("dose", outcome, tab, meta=meta, vcov=vcov, tables={"cells": cell_tab})
    options = {"dose": dose, "unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "alpha": alpha,
               "control": control, "degree": degree, "knots": knots, "dvals": dvals, "bootstrap": bootstrap,
               "seed": seed, "small_cohorts": small_cohorts, "ssc": bool(ssc)}
    inf = inference_meta("influence function" + (", HC1 factor per cell on the dose regression" if ssc
                                                 else " (no small-sample factor, as contdid)"), n_clusters=int(n_clusters),
                         cluster=cluster or unit, bootstrap=int(bootstrap), seed=seed,
                         band="sup-t, Mammen multiplier bootstrap")
    # the context's sample carries the cleaned dose (0 before adoption and for late adopters recoded to
    # never treated), so a refit from it passes the dose checks
    fc = f[cohort].to_numpy()
    clean = np.where((fc != NEVER) & (f[time].to_numpy() >= fc), d_unit[ucode], 0.0)
    sample = replace(sample, frame=f.assign(**{dose: clean}))
    return finish_result(res, sample, spec="dose", options=options, inference=inf)


def _cell_influence(c: dict[str, Any], wc: float, phi: np.ndarray, col_att: int, col_acr: int) -> tuple[float, float]:
    """Add ``wc`` times the cell's influence on its binary ATT and its ACR to ``phi`` columns; return both."""
    tr, co = c["t_idx"], c["c_idx"]
    att_c, slopes, acr_c = c["att"], c["slopes"], c["acr"]
    phi[tr, col_att] += wc * (c["ytil"] - att_c) / tr.size
    phi[co, col_att] -= wc * c["dc"] / co.size
    # ACR: the slope coefficients' influence (comparison units move no slope) + the doses' own sampling
    phi[tr, col_acr] += wc * (c["infl_t"] @ c["dB_mean"] + (slopes - acr_c) / tr.size)
    return att_c, acr_c


def _cells(y: np.ndarray, periods: np.ndarray, g_unit: np.ndarray, d_unit: np.ndarray, b_all: np.ndarray,
           db_all: np.ndarray, basis: DoseBasis, control: str, skip_small: bool,
           ssc: bool = False) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Fit ATT_gt(d) for every cohort g and period t (post cells t >= g, and pre-period placebo cells);
    cells without comparison units or with too few doses (``skip_small``) are counted."""
    cells: list[dict[str, Any]] = []
    skipped = {"no_comparison_units": 0, "too_few_doses": 0}
    for g in np.unique(g_unit[g_unit != NEVER]):
        before = np.flatnonzero(periods < g)
        if before.size == 0:
            continue
        # post cells: base g−1 (the last period before g); pre cells (placebos): base t−1 (CS's varying base)
        for ti in range(1, len(periods)):
            t = periods[ti]
            b = before[-1] if t >= g else ti - 1
            ok = ~np.isnan(y[:, b]) & ~np.isnan(y[:, ti])
            tr = np.flatnonzero(ok & (g_unit == g))
            # not yet treated at t, the cohort itself excluded (in its placebo cells it is not yet treated)
            comp = (g_unit == NEVER) | (((g_unit > t) & (g_unit != g)) if control == "notyet" else False)
            co = np.flatnonzero(ok & comp)
            if tr.size == 0:
                continue
            if co.size == 0:
                skipped["no_comparison_units"] += 1
                continue
            dy_c = y[co, ti] - y[co, b]
            ytil = y[tr, ti] - y[tr, b] - dy_c.mean()
            B = b_all[tr]
            if np.linalg.matrix_rank(B) < basis.k:
                if skip_small:
                    skipped["too_few_doses"] += 1
                    continue
                raise PanelInputError(
                    f"dose: cohort {int(g)} has {np.unique(d_unit[tr]).size} distinct doses among {tr.size} units "
                    f"observed at period {int(t)}, too few for the {basis.k} B-spline functions (degree "
                    f"{basis.degree}, {basis.inner.size} knots); lower degree or knots, or small_cohorts='skip'")
            bread = np.linalg.inv(B.T @ B)
            beta = bread @ (B.T @ ytil)
            resid = ytil - B @ beta
            # HC1: the residuals shrink by the k fitted coefficients of the cell; degree 0 (k = 1) is the
            # binary ATT, kept on Callaway–Sant'Anna's convention so that it equals ATT^o's SE
            if ssc and basis.k > 1 and tr.size > basis.k:
                resid = resid * np.sqrt(tr.size / (tr.size - basis.k))
            dB = db_all[tr]
            slopes = dB @ beta
            # the cell's binary ATT, its slopes and ACR computed once (each cell enters several columns)
            cells.append({"g": int(g), "t": int(t), "base": int(periods[b]), "post": bool(t >= g),
                          "t_idx": tr, "c_idx": co,
                          "n_treated": int(tr.size), "beta": beta, "ytil": ytil, "dc": dy_c - dy_c.mean(),
                          "infl_t": (B * resid[:, None]) @ bread, "dB_mean": dB.mean(axis=0),
                          "att": float(ytil.mean()), "slopes": slopes, "acr": float(slopes.mean())})
    return cells, {k: v for k, v in skipped.items() if v}
