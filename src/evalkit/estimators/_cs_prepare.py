"""The sample entry point of the Callaway–Sant'Anna estimator: panel rows -> units x periods arrays.

:func:`prepare` is the one function that turns the caller's panel into the estimator's sample
(validation, R ``did``'s cohort conventions, balancing or the unbalanced path, sampling weights);
once the shared sample (``evalkit.estimators._sample.build_sample``) is merged, it starts from that.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimators import _cs_unbalanced


@dataclass
class Prepared:
    y: np.ndarray  # n x T, units sorted by cohort
    periods: np.ndarray
    units: np.ndarray
    gu: np.ndarray  # cohort per unit (np.inf = never)
    cohorts: np.ndarray  # cohort value per cohort index (treated ascending, then inf)
    bounds: np.ndarray
    cluster: np.ndarray | None
    n_clusters: int
    covs: np.ndarray | None  # n x T x k
    info: dict[str, Any] = field(default_factory=dict)
    unbalanced: bool = False  # y has NaN for unobserved (unit, period): repeated-cross-section path
    w: np.ndarray | None = None  # sampling weight per unit (None = unweighted)


# --------------------------------------------------------------------------- data preparation
def _num(series: pd.Series) -> np.ndarray:
    """Numeric numpy view of a column (no copy when it already is numeric)."""
    a = series.to_numpy()
    if a.dtype.kind in "iuf":
        return a
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _distinct(a: np.ndarray) -> bool:
    """No repeated values in ``a`` (cheap when ``a`` is strictly increasing)."""
    if a.dtype.kind in "iuf" and len(a) > 1 and bool((a[1:] > a[:-1]).all()):
        return True
    return len(pd.unique(a)) == len(a)


def _rows_equal(m: np.ndarray, ref: np.ndarray, block: int = 1 << 16) -> bool:
    """``(m == ref).all()`` for a 2-D ``m`` and a broadcastable ``ref`` (one row, or one column
    with a row per row of ``m``), in blocks of rows: the boolean temporaries stay small and
    cache-resident instead of a fresh ``m``-sized array (page faults) per check."""
    rows = max(1, block // max(m.shape[1], 1))
    per_row = ref.ndim == 2 and ref.shape[0] == m.shape[0]
    for s in range(0, m.shape[0], rows):
        r = ref[s:s + rows] if per_row else ref
        if not (m[s:s + rows] == r).all():
            return False
    return True


def prepare(panel, outcome, unit, time, cohort, covariates, cluster, anticipation, control,
            allow_unbalanced=False, weights=None) -> Prepared:
    """The estimator's sample from ``panel`` (see the module docstring). ``weights``: a column of
    sampling weights per unit (R ``did`` ``weightsname``): finite, >= 0, constant within unit."""
    info: dict[str, Any] = {}
    u = panel[unit].to_numpy()
    t = panel[time].to_numpy()
    g = _num(panel[cohort])
    y = _num(panel[outcome])
    if y.dtype.kind != "f":
        y = y.astype(float)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"time column {time!r} must be numeric (integer periods)")
    periods = None
    sorted_ut = False  # rows verified sorted by unit, then time, every unit in every period
    if len(t) > 1:
        # the common layout: one row per (unit, period), sorted by unit then time; then the
        # periods are the first run of increasing times and one comparison verifies the layout
        head = t[:4097]
        brk = np.flatnonzero(head[1:] <= head[:-1])
        k = int(brk[0]) + 1 if len(brk) else len(head)
        if k > 1 and len(t) % k == 0 and (len(brk) or len(t) == k) and _rows_equal(t.reshape(-1, k), t[:k]):
            periods, sorted_ut = t[:k].copy(), True
    if periods is None:
        tmin, tmax = (t.min(), t.max()) if len(t) else (0, 0)
        if t.dtype.kind in "iu" and tmax - tmin < 4 * len(t) + 1000:
            present = np.bincount((t - tmin).astype(np.intp), minlength=int(tmax - tmin) + 1) > 0
            periods = (np.flatnonzero(present) + tmin).astype(t.dtype)
        else:
            periods = np.sort(pd.unique(t))
    nt = len(periods)
    if nt < 2:
        raise ValueError("need at least two time periods")
    extra = [] if covariates is None else list(covariates)
    xcols = [_num(panel[c]).astype(float, copy=False) for c in extra]
    cl_raw = None if cluster is None else panel[cluster].to_numpy()
    w_raw = None if weights is None else _weights_column(panel, weights)

    def same_in_row(m: np.ndarray) -> bool:
        if _rows_equal(m, m[:, :1]):
            return True
        eq = m == m[:, :1]
        if m.dtype.kind == "f":  # NaN == NaN counts as constant
            return bool((eq | (np.isnan(m) & np.isnan(m[:, :1]))).all())
        return False

    n_rows = len(y)
    fast = False
    if n_rows % nt == 0 and n_rows > 0:
        uu = u.reshape(-1, nt)
        # rows sorted by unit, then time, one row per (unit, period): reshape without scatter
        if (sorted_ut or _rows_equal(t.reshape(-1, nt), periods)) and _rows_equal(uu, uu[:, :1]):
            units = uu[:, 0]
            fast = _distinct(units)
        elif t[0] == periods[0] and t[-1] == periods[-1]:
            # rows sorted by time, then the same unit order in every period: transpose
            ut = u.reshape(nt, -1)
            if (t.reshape(nt, -1) == periods[:, None]).all() and (ut == ut[:1]).all():
                units = ut[0]
                if _distinct(units):
                    fast = True

                    def _tr(a):
                        return None if a is None else np.ascontiguousarray(a.reshape(nt, -1).T).ravel()

                    y, g, cl_raw, w_raw = _tr(y), _tr(g), _tr(cl_raw), _tr(w_raw)
                    xcols = [_tr(x) for x in xcols]
    if fast:
        n = len(units)
        Y = y.reshape(n, nt)  # view of the caller's data; copied below
        gm = g.reshape(n, nt)
        if not same_in_row(gm):
            raise ValueError(f"cohort column {cohort!r} varies within unit")
        gu = gm[:, 0].astype(float)
        X = [x.reshape(n, nt) for x in xcols]
        clu = None
        if cl_raw is not None:
            cm = cl_raw.reshape(n, nt)
            if not (cm == cm[:, :1]).all():
                raise ValueError(f"cluster variable {cluster!r} varies within unit")
            clu = cm[:, 0]
        wu = None
        if w_raw is not None:
            wm = w_raw.reshape(n, nt)
            if not (wm == wm[:, :1]).all():
                _weights_vary(weights, units[np.flatnonzero((wm != wm[:, :1]).any(axis=1))])
            wu = wm[:, 0]
    else:
        if periods.dtype.kind in "iu" and periods[-1] - periods[0] == nt - 1:
            tc = (t - periods[0]).astype(np.intp)
        else:
            tc = np.searchsorted(periods, t)
        ucodes, units = pd.factorize(u, sort=True)
        units = np.asarray(units)
        n = len(units)
        key = ucodes.astype(np.int64) * nt + tc
        cnt = np.bincount(key, minlength=n * nt)
        if (cnt > 1).any():
            raise ValueError(f"duplicate ({unit}, {time}) rows in panel")
        Y = np.full(n * nt, np.nan)
        Y[key] = y
        Y = Y.reshape(n, nt)
        gf = g.astype(float)
        gu = np.full(n, np.nan)
        gu[ucodes] = gf
        if not (np.isclose(gf, gu[ucodes]) | (np.isnan(gf) & np.isnan(gu[ucodes]))).all():
            raise ValueError(f"cohort column {cohort!r} varies within unit")
        X = []
        for x in xcols:
            a = np.full(n * nt, np.nan)
            a[key] = x
            X.append(a.reshape(n, nt))
        clu = None
        if cl_raw is not None:
            first = np.full(n, -1, dtype=np.int64)
            first[ucodes[::-1]] = np.arange(n_rows)[::-1]
            clu = cl_raw[first]
            if not (cl_raw == clu[ucodes]).all():
                raise ValueError(f"cluster variable {cluster!r} varies within unit")
        wu = None
        if w_raw is not None:
            wu = np.empty(n)
            wu[ucodes] = w_raw
            if not (w_raw == wu[ucodes]).all():
                _weights_vary(weights, units[np.unique(ucodes[w_raw != wu[ucodes]])])
    if allow_unbalanced:
        # R did allow_unbalanced_panel: rows with a missing outcome or covariate are dropped
        # (complete.cases), units keep whatever periods they are observed in
        _refuse_inf(Y, units, periods, outcome, unit, time)
        obs_cell = ~np.isnan(Y)
        for x in X:
            obs_cell &= ~np.isnan(x)
        if X:
            Y = np.where(obs_cell, Y, np.nan)  # a new array (Y may be a view of the caller's data)
        keep = obs_cell.any(axis=1)
        info["n_obs_missing_dropped"] = int(n_rows - np.count_nonzero(obs_cell))
        info["n_units_no_observed_outcome"] = int((~keep).sum())
        info["n_units_dropped_unbalanced"] = 0
    else:
        rs = Y.sum(axis=1)  # NaN-free rows have a non-NaN sum (+-inf rows are checked exactly)
        if np.isfinite(rs).all():
            observed = np.ones(len(rs), dtype=bool)
        else:
            _refuse_inf(Y, units, periods, outcome, unit, time)
            observed = ~np.isnan(Y).any(axis=1)
        for x in X:
            observed &= ~np.isnan(x).any(axis=1)

        # balance: R did (allow_unbalanced_panel = FALSE) keeps only units observed in every period
        keep = observed
        n_unbal = int((~keep).sum())
        info["n_units_dropped_unbalanced"] = n_unbal
        info["unbalanced_handling"] = (
            "balanced panel" if n_unbal == 0 else f"dropped {n_unbal} units not observed in every period (as R did)"
        )
        if n_unbal:
            warnings.warn(f"Dropped {n_unbal} units not observed (non-missing) in every period", stacklevel=3)

    # cohort conventions
    gu = np.where(np.isnan(gu) | (gu == 0) | (gu > periods[-1]), np.inf, gu)
    early = np.isfinite(gu) & (gu <= periods[0] + anticipation)
    info["n_units_dropped_early"] = int((early & keep).sum())
    if info["n_units_dropped_early"]:
        warnings.warn(
            f"Dropped {info['n_units_dropped_early']} units already treated in the first period", stacklevel=3
        )
    keep &= ~early

    tkeep = None
    if not np.isinf(gu[keep]).any():
        if not keep.any():
            raise ValueError("no units left")
        latest = gu[keep].max()
        tkeep = periods < latest - anticipation
        if control == "never":
            warnings.warn("No never-treated units: the last cohort is used as comparison group "
                          "and periods from its treatment on are dropped (as R did)", stacklevel=3)
            gu = np.where(gu == latest, np.inf, gu)
            info["last_cohort_as_control"] = float(latest)
        else:
            warnings.warn("No never-treated units: periods from the last cohort's treatment on are "
                          "dropped (as R did)", stacklevel=3)
        info["periods_dropped_no_never_treated"] = int((~tkeep).sum())

    unbalanced = False
    if allow_unbalanced:
        if tkeep is not None:  # units observed only in dropped periods leave the sample
            keep &= obs_cell[:, tkeep].any(axis=1)
            obs_cell = obs_cell[:, tkeep]
        n_inc = int((keep & ~obs_cell.all(axis=1)).sum())
        info["n_units_unbalanced"] = n_inc
        unbalanced = n_inc > 0 or _cs_unbalanced.FORCE_RC
        if unbalanced:
            info["unbalanced_handling"] = "repeated cross sections (R did allow_unbalanced_panel)"
        else:
            info["unbalanced_handling"] = ("balanced panel (allow_unbalanced=True: panel estimator, as R did >= 2.2 "
                                           "does for a balanced panel; identical to the RC path without covariates)")

    # one gather: kept units, sorted by cohort (never-treated last)
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(gu[idx], kind="stable")]
    Y = Y[idx]  # always a fresh array (safe to centre in place later)
    X = [x[idx] for x in X]
    if tkeep is not None:
        Y = np.ascontiguousarray(Y[:, tkeep])
        X = [x[:, tkeep] for x in X]
        periods = periods[tkeep]
    units = units[idx]
    gu = gu[idx]
    wu = None if wu is None else np.ascontiguousarray(wu[idx], dtype=float)
    if wu is not None and not (wu > 0).any():
        raise ValueError(f"weights column {weights!r}: every kept unit has weight 0; give positive weights")
    covs = np.stack(X, axis=2) if X else None
    cohorts, starts = np.unique(gu, return_index=True)
    bounds = np.r_[starts, len(gu)]
    cl_codes, n_cl = None, len(units)
    if clu is not None:
        cl_codes, uniq = pd.factorize(clu[idx])
        n_cl = len(uniq)
    return Prepared(Y, periods, units, gu, cohorts, bounds, cl_codes, n_cl, covs, info, unbalanced, wu)


def _refuse_inf(Y: np.ndarray, units, periods, outcome, unit, time) -> None:
    """A non-finite (+-inf) outcome is broken input, not a missing cell: one-line error naming the rows."""
    bad = np.argwhere(np.isinf(Y))
    if len(bad):
        where = ", ".join(f"({unit}={units[i]!r}, {time}={periods[j]!r})" for i, j in bad[:3])
        raise ValueError(f"outcome column {outcome!r} has {len(bad)} non-finite (inf) values, first at {where}; "
                         "fix or drop those rows (a missing value must be NaN)")


def _weights_column(panel: pd.DataFrame, weights: str) -> np.ndarray:
    """The weights column as float, refusing missing, non-finite and negative values (one-line errors)."""
    if weights not in panel.columns:
        raise KeyError(f"weights column {weights!r} not in the panel")
    w = pd.to_numeric(panel[weights], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        rows = ", ".join(str(panel.index[i]) for i in bad[:3])
        raise ValueError(f"weights column {weights!r}: {len(bad)} rows missing, non-numeric, non-finite or "
                         f"negative (first rows {rows}); sampling weights must be finite and >= 0")
    return w


def _weights_vary(weights: str, units: np.ndarray) -> None:
    shown = ", ".join(repr(u) for u in units[:3])
    raise ValueError(f"weights column {weights!r} varies within unit ({len(units)} units, first {shown}); "
                     "sampling weights are per unit (constant over periods), as R did's weightsname")

