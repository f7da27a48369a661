"""Batched TWFE refits for many reassignments of the units' adoption dates (permutation pre-tests,
randomization inference) on one balanced panel — the within-transformation is done once.

When the regressors of unit ``i`` in period ``t`` are a function ``f(g_i, t)`` of the unit's cohort
only (static ``1{t >= g}``, event-time dummies), a balanced unweighted panel gives

    x~_it = f(g_i, t) - a(g_i) - b(t) + m,   a(c) = mean_t f(c, t),   b(t) = sum_c (n_c/n) f(c, t),

and ``b``, ``m`` depend on the cohort *sizes* only, which a permutation keeps.  So every unit of
cohort ``c`` has the same ``T x k`` block ``F~_c``, ``X~'X~ = sum_c n_c F~_c'F~_c`` is the same for
every draw (one bread), ``X~'y = sum_c F~_c' (sum_{i in c} y~_i)``, and the cluster scores are
``F~_{g_i}' y~_i - (F~_{g_i}'F~_{g_i}) b``: one ``n x T`` by ``T x k`` product per cohort and draw,
no regression.  Results equal a full :func:`evalkit.estimators._fe.feols` refit (tested).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evalkit.estimators._fe import Within, independent_columns, nested_in, small_sample, sym_inv
from evalkit.estimators._fe_sample import FESample


class PermutedTWFE:
    """Refits of ``y ~ f(g_i, t) | unit + period`` (CRV1, fixest factor) for many cohort vectors.

    ``pattern(cohorts, periods) -> (C, T, k)``: the regressors of a unit of each cohort in each period
    (cohort ``inf`` = never treated).  The panel must be balanced and unweighted; clusters must nest
    the units (clustering by unit or by anything coarser).
    """

    def __init__(self, sample: FESample, pattern: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 names: list[str] | None = None):
        s = sample
        n, T = s.n_units, s.n_times
        if s.y.size != n * T:
            raise ValueError("PermutedTWFE needs a balanced panel (refit the estimator per draw otherwise)")
        if s.weights is not None:
            raise ValueError("PermutedTWFE does not take observation weights")
        if not nested_in(s.unit, s.cluster):
            raise ValueError("PermutedTWFE needs clusters that nest the units")
        order = np.lexsort((s.time, s.unit))
        self.n, self.T = n, T
        self.yw = Within([s.unit, s.time]).transform(s.y)[order].reshape(n, T)  # rows: units, cols: periods
        g_rows = s.cohort[order].reshape(n, T)
        self.g_actual = g_rows[:, 0]
        self.levels, self.sizes = np.unique(self.g_actual, return_counts=True)
        F = np.asarray(pattern(self.levels, s.times.astype(float)), dtype=float)  # (C, T, k)
        a = F.mean(axis=1, keepdims=True)
        b = np.tensordot(self.sizes / n, F, axes=1)  # (T, k)
        self.Ft = F - a - b[None] + b.mean(axis=0)[None, None]
        XtX = np.einsum("c,ctk,ctl->kl", self.sizes.astype(float), self.Ft, self.Ft)
        self.keep = independent_columns((XtX + XtX.T) / 2)
        self.Ft = self.Ft[:, :, self.keep]
        self.names = [nm for nm, k in zip(names or [f"x{j}" for j in range(F.shape[2])], self.keep, strict=True) if k]
        self.bread = sym_inv(XtX[np.ix_(self.keep, self.keep)])
        self.FtF = np.einsum("ctk,ctl->ckl", self.Ft, self.Ft)
        unit_cluster = np.zeros(n, dtype=np.int64)
        unit_cluster[s.unit] = s.cluster
        self.cluster = unit_cluster
        self.G = int(s.cluster.max()) + 1
        k = int(self.keep.sum())
        self.ssc, self.dof_k, self.df_t = small_sample(
            n * T, k, "CRV1", fe_levels=[n, T], fe_nested=[True, nested_in(s.time, s.cluster)], n_clusters=self.G)

    def fit(self, g_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients ``(B, k)`` and CRV1 covariances ``(B, k, k)`` for cohort vectors ``g_units``
        (``B x n_units`` or ``n_units``; each a permutation of the actual cohorts, ``inf`` = never)."""
        G_ = np.atleast_2d(np.asarray(g_units, dtype=float))
        k = self.bread.shape[0]
        coefs = np.empty((G_.shape[0], k))
        vcovs = np.empty((G_.shape[0], k, k))
        for d, g in enumerate(G_):
            idx = np.searchsorted(self.levels, g)
            if not (np.all(idx < self.levels.size) and np.array_equal(self.levels[idx], g)
                    and np.array_equal(np.bincount(idx, minlength=self.levels.size), self.sizes)):
                raise ValueError("each cohort vector must be a permutation of the actual cohorts")
            P = np.empty((self.n, k))  # F~_{g_i}' y~_i
            for c in range(self.levels.size):
                m = idx == c
                P[m] = self.yw[m] @ self.Ft[c]
            beta = self.bread @ P.sum(axis=0)
            scores = P - (self.FtF @ beta)[idx]  # (F~_c'F~_c) b per cohort, then per unit
            S = np.column_stack([np.bincount(self.cluster, weights=scores[:, j], minlength=self.G)
                                 for j in range(k)])
            V = self.ssc * self.bread @ (S.T @ S) @ self.bread
            coefs[d], vcovs[d] = beta, (V + V.T) / 2
        return coefs, vcovs

    def wald(self, g_units: np.ndarray, columns: list[int] | np.ndarray) -> np.ndarray:
        """χ² Wald statistics that the coefficients ``columns`` (of the kept ones) are zero, per draw."""
        b, V = self.fit(g_units)
        cols = np.asarray(columns)
        out = np.empty(b.shape[0])
        for d in range(b.shape[0]):
            bb = b[d, cols]
            out[d] = float(bb @ np.linalg.pinv(V[d][np.ix_(cols, cols)]) @ bb)
        return out


def event_pattern(leads: int, lags: int, reference: int = -1) -> tuple[Callable, list[str]]:
    """``pattern`` and names of :func:`evalkit.estimators.twfe.estimate_event_twfe`'s dummies."""
    ks = [k for k in range(-leads, lags + 1) if k != reference]

    def pattern(cohorts: np.ndarray, periods: np.ndarray) -> np.ndarray:
        treated = np.isfinite(cohorts)[:, None]
        e = np.clip(periods[None, :] - np.where(np.isfinite(cohorts), cohorts, 0)[:, None], -leads, lags)
        return np.stack([(treated & (e == k)).astype(float) for k in ks], axis=2)

    return pattern, [f"e={k}" for k in ks]


def static_pattern(cohorts: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """``D = 1{t >= g}`` (static TWFE)."""
    return (periods[None, :] >= cohorts[:, None]).astype(float)[:, :, None]
