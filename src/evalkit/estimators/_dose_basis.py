"""Dose helpers for :mod:`evalkit.estimators.dose`: input checks on the dose column and the B-spline basis.

The basis is a clamped B-spline of ``degree`` on ``[d_min, d_max]`` (the treated units' doses) with
interior knots at quantiles of those doses (or given positions). Its functions sum to one at every
dose, so a constant shift of the outcome changes every coefficient by the same amount (the
influence of the comparison group's mean uses that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline

from evalkit.estimators._sample import NEVER, PanelInputError, _fail


# ----------------------------------------------------------------------------- dose column
def check_dose_column(panel: pd.DataFrame, dose: str, unit: str, time: str) -> np.ndarray:
    """The dose column as floats; one-line :class:`PanelInputError` when missing, non-numeric, inf or negative."""
    if dose not in panel.columns:
        shown = ", ".join(map(str, list(panel.columns)[:20]))
        raise PanelInputError(f"column {dose!r} (the dose) not in the panel; columns are [{shown}]; "
                              f"name the dose column with dose=...")
    s = panel[dose]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    v = pd.to_numeric(s, errors="coerce")
    bad = (v.isna() & s.notna()).to_numpy()
    if bad.any():
        raise _fail(dose, "non-numeric dose", panel, bad, "doses must be numbers >= 0", unit, time)
    if v.isna().any():
        raise _fail(dose, "missing dose", panel, v.isna().to_numpy(),
                    "give every row a dose (0 before adoption and for never-treated units)", unit, time)
    d = v.to_numpy(dtype=float)
    if np.isinf(d).any():
        raise _fail(dose, "non-finite dose (inf)", panel, np.isinf(d), "doses must be finite numbers >= 0", unit, time)
    if (d < 0).any():
        raise _fail(dose, "negative dose", panel, d < 0, "doses must be >= 0 (0 = untreated)", unit, time)
    return d


def unit_doses(panel: pd.DataFrame, d: np.ndarray, *, dose: str, unit: str, time: str, cohort: str,
               last_period: int) -> pd.Series:
    """Dose per unit (index = unit label): the constant dose from adoption on, 0 for never-treated units.

    Rules (one-line :class:`PanelInputError` otherwise): never-treated units (cohort 0) have dose 0
    in every row; an adopter's dose is the same positive number in every row from its adoption
    period on; before adoption its rows hold 0 or that same dose (a time-invariant dose column).
    Units adopting after the last period are controls and their (pre-adoption) doses are not used.
    """
    c = pd.to_numeric(panel[cohort]).to_numpy(dtype=float)
    t = pd.to_numeric(panel[time]).to_numpy(dtype=float)
    never = c == NEVER
    if (never & (d != 0)).any():
        raise _fail(dose, "positive dose for a never-treated unit (cohort 0)", panel, never & (d != 0),
                    f"set the dose to 0 or give the unit its adoption period in {cohort!r}", unit, time)
    adopter = ~never & (c <= last_period)
    post = adopter & (t >= c)
    # units as integer codes (one factorize; string ids would be hashed by every groupby and map)
    codes, labels = pd.factorize(panel[unit].to_numpy())
    per = pd.Series(d[post]).groupby(codes[post], sort=False)
    lo, hi = per.min(), per.max()  # index: the codes of the units with rows from adoption on
    varies = (hi != lo)
    if varies.any():
        mask = post & np.isin(codes, varies.index[varies])
        raise _fail(dose, "dose varies after adoption within a unit", panel, mask,
                    "this estimator needs one dose per unit from its adoption on (a switching treatment "
                    "needs another method)", unit, time)
    zero = lo == 0
    if zero.any():
        mask = post & (d == 0) & np.isin(codes, zero.index[zero])
        raise _fail(dose, "dose 0 at or after adoption", panel, mask,
                    f"give adopters a positive dose or set their {cohort!r} to 0 (never treated)", unit, time)
    by_code = np.full(len(labels), np.nan)
    by_code[lo.index.to_numpy()] = lo.to_numpy(dtype=float)
    unit_dose = by_code[codes]
    pre = adopter & (t < c)
    bad_pre = pre & (d != 0) & (d != unit_dose)
    if bad_pre.any():
        raise _fail(dose, "dose before adoption is neither 0 nor the unit's dose", panel, bad_pre,
                    f"a dose that varies before adoption means an earlier start: fix {cohort!r} or set those doses "
                    "to 0", unit, time)
    return pd.Series(lo.to_numpy(dtype=float), index=labels[lo.index.to_numpy()])


# ----------------------------------------------------------------------------- B-spline basis
def interior_knots(doses: np.ndarray, knots: int | Sequence[float]) -> np.ndarray:
    """Interior knots: ``knots`` quantiles of ``doses`` (equal-probability, strictly inside the range,
    duplicates removed) or the given positions (checked to lie strictly inside, ascending)."""
    lo, hi = float(np.min(doses)), float(np.max(doses))
    if isinstance(knots, (int, np.integer)) and not isinstance(knots, bool):
        if knots < 0:
            raise ValueError(f"knots must be >= 0 or a list of positions, got {knots}")
        if knots == 0 or hi <= lo:
            return np.empty(0)
        q = np.quantile(doses, np.linspace(0.0, 1.0, int(knots) + 2)[1:-1])
        q = q[(q > lo) & (q < hi)]
        return np.unique(q)
    k = np.asarray(list(knots), dtype=float)
    if k.size and (not np.all(np.diff(k) > 0) or k[0] <= lo or k[-1] >= hi):
        raise ValueError(f"knots {k.tolist()} must be ascending and strictly inside the treated doses' range "
                         f"({lo:g}, {hi:g})")
    return k


class DoseBasis:
    """Clamped B-spline basis of ``degree`` on ``[lo, hi]`` with ``inner`` interior knots."""

    def __init__(self, lo: float, hi: float, degree: int, inner: np.ndarray) -> None:
        if degree < 0:
            raise ValueError(f"degree must be >= 0, got {degree}")
        if hi <= lo and degree > 0:
            raise ValueError(f"every treated unit has the same dose {lo:g}: a dose-response curve cannot be "
                             "estimated; use degree=0 (the binary ATT) or a panel with several doses")
        self.lo, self.hi, self.degree = float(lo), float(hi if hi > lo else lo + 1.0), int(degree)
        self.inner = np.asarray(inner, dtype=float)
        self.t = np.r_[[self.lo] * (degree + 1), self.inner, [self.hi] * (degree + 1)]
        self.k = len(self.inner) + degree + 1

    def _x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if ((x < self.lo - 1e-12 * max(1.0, abs(self.lo))) | (x > self.hi + 1e-12 * max(1.0, abs(self.hi)))).any():
            raise ValueError(f"dose grid values must lie within the treated doses' range [{self.lo:g}, {self.hi:g}]")
        return np.clip(x, self.lo, self.hi)

    def design(self, x: np.ndarray) -> np.ndarray:
        """Basis values, shape (len(x), k); rows sum to 1."""
        return BSpline.design_matrix(self._x(x), self.t, self.degree).toarray()

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """First derivatives of the basis functions (per dose unit), shape (len(x), k); rows sum to 0."""
        x = self._x(x)
        if self.degree == 0:
            return np.zeros((len(x), self.k))
        out = np.empty((len(x), self.k))
        for j in range(self.k):
            coef = np.zeros(self.k)
            coef[j] = 1.0
            out[:, j] = BSpline(self.t, coef, self.degree, extrapolate=True).derivative()(x)
        return out
