"""Numerics of the de Chaisemartin & D'Haultfœuille (2024) event-study estimator (``did_multiplegt_dyn``).

Works on wide arrays: ``y`` and ``d`` are (groups × periods), periods in order. Every quantity is built
from per-group influence vectors ``U_g`` (the estimate is ``Σ_g U_g / G``), so effects, placebos, their
pooled in/out versions and the average total effect share one code path; the variance uses the
paper's cohort-demeaned version of ``U_g`` (Web Appendix; "conservative" SEs of the package):
each switcher's long difference is centred on its cohort (baseline treatment, first-switch period,
treatment at the switch), each not-yet-switcher's on its (baseline, period) cell, with a
``sqrt(n/(n−1))`` factor; singleton cohorts fall back to the union of both within (baseline, period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Groups:
    """Per-group facts (0-based period indices). ``F`` = first period whose treatment differs from the
    first period's (``T`` if never), ``T_g`` = last period at which a group with the same baseline has
    not switched yet, ``S`` = +1 switcher in / −1 out / 0 never switching."""

    d_sq: np.ndarray
    F: np.ndarray
    T_g: np.ndarray
    S: np.ndarray
    d_F: np.ndarray


def group_facts(d: np.ndarray) -> tuple[Groups, np.ndarray, np.ndarray]:
    """Baseline, first switch, ``T_g`` and direction of every group; the mask of groups kept and the
    mask of cells left out.

    As ``did_multiplegt_dyn`` by default, a cell ``(g, t)`` is left out once group ``g`` has had, by
    ``t``, both a treatment above and one below its baseline (its later effects mix both directions);
    the direction is the sign of the average treatment minus the baseline over the cells kept from the
    first switch to ``T_g``, and a group whose average equals its baseline is dropped.
    """
    n, T = d.shape
    d_sq = d[:, 0]
    changed = d != d_sq[:, None]
    F = np.where(changed.any(axis=1), changed.argmax(axis=1), T)
    cells_out = np.maximum.accumulate(d > d_sq[:, None], axis=1) & np.maximum.accumulate(d < d_sq[:, None], axis=1)
    keep = np.ones(n, dtype=bool)
    for _ in range(n + 1):  # T_g depends on the kept groups; iterate until nothing more is dropped
        T_g = np.full(n, -1)
        for v in np.unique(d_sq[keep]):
            T_g[d_sq == v] = F[keep & (d_sq == v)].max() - 1
        S = np.zeros(n, dtype=int)
        new_keep = keep.copy()
        for g in np.flatnonzero(keep & (F < T)):
            window = np.arange(F[g], min(T_g[g], T - 1) + 1)
            window = window[~cells_out[g, window]]
            avg = d[g, window].mean() if window.size else np.nan
            if not np.isfinite(avg) or avg == d_sq[g]:
                new_keep[g] = False
                continue
            S[g] = 1 if avg > d_sq[g] else -1
        if (new_keep == keep).all():
            break
        keep = new_keep
    d_F = np.where(F < T, d[np.arange(n), np.minimum(F, T - 1)], np.nan)
    return Groups(d_sq, F, T_g, S, d_F), keep, cells_out


@dataclass
class Component:
    """One effect or placebo for one direction: influence vectors (length G), switcher count, the
    switchers' mean treatment change (for the average total effect) and the switchers used."""

    U: np.ndarray
    U_var: np.ndarray
    n_switchers: int
    delta_d: float
    switchers: np.ndarray


def component(y: np.ndarray, d: np.ndarray, gr: Groups, ell: int, direction: int, placebo: bool,
              clus: np.ndarray | None) -> Component:
    """Influence vectors of effect ``ell`` (or placebo ``ell``) for switchers with ``S == direction``.

    Row ``(g, t)`` enters through ``ΔY_{g,t}``: ``Y_t − Y_{t−ℓ}`` for effects, ``Y_{t−2ℓ} − Y_{t−ℓ}``
    for placebos; the switcher's row is ``t = F_g − 1 + ℓ``; controls at ``t`` share the baseline and
    have not switched by ``t``.
    """
    G, T = y.shape
    dy = np.full((G, T), np.nan)
    if placebo:
        if 2 * ell < T:
            dy[:, 2 * ell:] = y[:, :T - 2 * ell] - y[:, ell:T - ell]
    else:
        dy[:, ell:] = y[:, ell:] - y[:, :T - ell]
    tt = np.arange(T)[None, :]
    ok = ~np.isnan(dy)
    if placebo:
        # a placebo uses the effect's switchers and controls: their effect-ℓ difference must exist too
        dy_eff = np.full((G, T), np.nan)
        dy_eff[:, ell:] = y[:, ell:] - y[:, :T - ell]
        ok &= ~np.isnan(dy_eff)
    in_window = (tt >= ell) & (tt <= gr.T_g[:, None])
    never = (gr.F[:, None] > tt) & ok & in_window
    is_sw = (gr.S[:, None] == direction) & (tt == (gr.F - 1 + ell)[:, None]) & ok & in_window
    bases = np.unique(gr.d_sq)
    n_ctrl = np.zeros((G, T))
    n_sw = np.zeros((G, T))
    for v in bases:
        m = gr.d_sq == v
        n_ctrl[m] = never[m].sum(axis=0)
        n_sw[m] = is_sw[m].sum(axis=0)
    is_sw &= n_ctrl > 0
    for v in bases:
        m = gr.d_sq == v
        n_sw[m] = is_sw[m].sum(axis=0)
    N = int(is_sw.sum())
    if N == 0:
        return Component(np.zeros(G), np.zeros(G), 0, float("nan"), np.zeros(0, dtype=int))
    ratio = np.where(n_ctrl > 0, n_sw / np.where(n_ctrl > 0, n_ctrl, 1), 0.0) * never
    wgt = (G / N) * (is_sw.astype(float) - ratio)
    dy0 = np.where(ok, dy, 0.0)
    U = (wgt * dy0).sum(axis=1)

    # cohort-demeaned version for the variance
    n_sw_t = is_sw.sum(axis=0)  # switchers at t, any baseline
    dof_s = is_sw
    dof_ns = never & (n_sw_t[None, :] > 0)
    gi, ti = np.nonzero(dof_s | dof_ns)
    rows = pd.DataFrame({"d_sq": gr.d_sq[gi], "F": gr.F[gi], "d_F": np.nan_to_num(gr.d_F[gi], nan=-1.0),
                         "t": ti, "v": dy[gi, ti], "s": dof_s[gi, ti],
                         "c": gi if clus is None else clus[gi]})
    # own cohort: switchers by (baseline, first switch, treatment at the switch); controls by (baseline, t)
    # (a switcher's cohort fixes t = F − 1 + ℓ); n = units (or clusters) in it
    own = rows.assign(k1=np.where(rows.s, rows.F, -1), k2=np.where(rows.s, rows.d_F, rows.t))
    by_own = own.groupby(["s", "d_sq", "k1", "k2"], sort=False)
    n_own = by_own["c"].transform("nunique").to_numpy()
    m_own = by_own["v"].transform("mean").to_numpy()
    by_u = rows.groupby(["d_sq", "t"], sort=False)
    n_u = by_u["c"].transform("nunique").to_numpy()
    m_u = by_u["v"].transform("mean").to_numpy()
    v = rows["v"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        c_own = np.sqrt(n_own / (n_own - 1)) * (v - m_own)
        c_u = np.sqrt(n_u / (n_u - 1)) * (v - m_u)
    # a singleton cohort falls back to the union of switchers and controls in (baseline, t); a lone row
    # with nothing to centre on contributes nothing (as the package)
    centred = np.zeros((G, T))
    centred[gi, ti] = np.where(n_own >= 2, c_own, np.where(n_u >= 2, c_u, 0.0))
    U_var = (wgt * centred).sum(axis=1)
    # switchers out: the outcome's sign is flipped (the package's convention), so a positive number is
    # the effect of the treatment's level, whichever way it moved
    U, U_var = direction * U, direction * U_var
    gs, ts = np.nonzero(is_sw)
    delta_d = float(np.abs(d[gs, ts] - gr.d_sq[gs]).mean())
    return Component(U, U_var, N, delta_d, gs)
