"""Tail probabilities and quantiles of the normal, Student t, χ² and F distributions without scipy.stats.

Importing ``scipy.stats`` costs ~0.45 s (it pulls in scipy.spatial, scipy.optimize, …) and sits on the
critical path of every ``evalkit run`` (the kernel pre-imports the evaluation's modules). The estimators
only need a handful of distribution functions, and scipy.stats computes each of them with one
``scipy.special`` function wrapped in its generic argument handling (``rv_continuous.sf`` / ``ppf``):
out-of-support and invalid arguments, NaN, the support's ends. This module repeats exactly that —
the same special function, the same expression, the same edge rules — so every value is BIT-IDENTICAL
to ``scipy.stats.<dist>.<method>`` (tests/test_distributions.py checks it on many values; checked
against scipy 1.17's ``_continuous_distns.py`` / ``_distn_infrastructure.py``).

All functions take scalars or arrays (broadcast together) and return a NumPy float64 scalar for
scalar input, else a float64 array, as scipy.stats does. Invalid degrees of freedom (<= 0 or NaN)
or a NaN argument give NaN; a probability outside [0, 1] gives NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special as sc

__all__ = ["chi2_sf", "f_sf", "norm_cdf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]

_INF = np.inf


def _shape_ok(args: tuple[np.ndarray, ...]) -> Any:
    """scipy's default ``_argcheck``: every shape parameter (degrees of freedom) > 0 (NaN is not)."""
    cond: Any = 1
    for a in args:
        cond = np.logical_and(cond, a > 0)
    return cond


def _tail(fn: Callable[..., Any], x: Any, args: tuple[Any, ...], a: float, b: float, at_a: float) -> Any:
    """``rv_continuous.cdf`` (``at_a`` = 0) or ``.sf`` (``at_a`` = 1) with support (a, b), loc 0, scale 1.

    ``fn(x, *args)`` is the distribution's ``_cdf`` / ``_sf`` inside the open support; at or beyond an
    end the value is the limit (``at_a`` at ``a``, ``1 - at_a`` at ``b``); invalid args or NaN x → NaN.
    """
    x = np.asarray(x)
    x = np.asarray(x, dtype=np.promote_types(x.dtype, np.float64))
    args = tuple(np.asarray(v) for v in args)
    cond0 = _shape_ok(args)
    with np.errstate(invalid="ignore"):
        inside = (a < x) & (x < b)
    cond = cond0 & inside
    out = np.zeros(np.shape(cond), x.dtype)
    np.place(out, (1 - cond0) + np.isnan(x), np.nan)
    end = cond0 & ((x <= a) if at_a == 1.0 else (x >= b))
    np.place(out, end, 1.0)
    if np.any(cond):
        full = np.broadcast_arrays(x, *args, cond)
        good = [np.extract(full[-1], v) for v in full[:-1]]
        np.place(out, cond, fn(*good))
    return out[()] if out.ndim == 0 else out


def _quantile(fn: Callable[..., Any], q: Any, args: tuple[Any, ...], a: float, b: float, lower: bool) -> Any:
    """``rv_continuous.ppf`` (``lower`` True: q = 0 → a) or ``.isf`` (q = 0 → b), loc 0, scale 1."""
    q = np.asarray(q)
    args = tuple(np.asarray(v) for v in args)
    cond0 = _shape_ok(args)
    cond1 = (q > 0) & (q < 1)
    cond = cond0 & cond1
    out = np.full(np.shape(cond), fill_value=np.nan)
    np.place(out, cond0 & (q == 0), a if lower else b)
    np.place(out, cond0 & (q == 1), b if lower else a)
    if np.any(cond):
        full = np.broadcast_arrays(q, *args, cond)
        good = [np.extract(full[-1], v) for v in full[:-1]]
        # "* 1.0 + 0.0" repeats scipy's ``* scale + loc`` (it would turn a -0.0 quantile into +0.0)
        np.place(out, cond, fn(*good) * 1.0 + 0.0)
    return out[()] if out.ndim == 0 else out


def norm_cdf(x: Any) -> Any:
    """P(Z <= x) for a standard normal Z (``scipy.stats.norm.cdf``: ``ndtr(x)``)."""
    return _tail(sc.ndtr, x, (), -_INF, _INF, 0.0)


def norm_sf(x: Any) -> Any:
    """P(Z > x) for a standard normal Z (``scipy.stats.norm.sf``: ``ndtr(-x)``); two-sided p = 2·sf(|z|)."""
    return _tail(lambda v: sc.ndtr(-v), x, (), -_INF, _INF, 1.0)


def norm_ppf(q: Any) -> Any:
    """z with P(Z <= z) = q (``scipy.stats.norm.ppf``: ``ndtri(q)``); e.g. 1.96 for q = 0.975."""
    return _quantile(sc.ndtri, q, (), -_INF, _INF, True)


def t_sf(x: Any, df: Any) -> Any:
    """P(T > x) for Student's t with ``df`` degrees of freedom (``scipy.stats.t.sf``: ``stdtr(df, -x)``)."""
    return _tail(lambda v, d: sc.stdtr(d, -v), x, (df,), -_INF, _INF, 1.0)


def t_ppf(q: Any, df: Any) -> Any:
    """t with P(T <= t) = q, ``df`` degrees of freedom (``scipy.stats.t.ppf``: ``stdtrit(df, q)``)."""
    return _quantile(lambda p, d: sc.stdtrit(d, p), q, (df,), -_INF, _INF, True)


def chi2_sf(x: Any, df: Any) -> Any:
    """P(X > x) for χ² with ``df`` degrees of freedom: a Wald test's p-value (``scipy.stats.chi2.sf``: ``chdtrc``)."""
    return _tail(lambda v, d: sc.chdtrc(d, v), x, (df,), 0.0, _INF, 1.0)


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """P(F > x) for F(``dfn``, ``dfd``): an F test's p-value (``scipy.stats.f.sf``: ``fdtrc(dfn, dfd, x)``)."""
    return _tail(lambda v, n, d: sc.fdtrc(n, d, v), x, (dfn, dfd), 0.0, _INF, 1.0)
