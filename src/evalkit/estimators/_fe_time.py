"""Unit and period effects only (no regressors) on a large unbalanced panel: the ``absorb_fit`` of
period dummies from one ``n_units x n_periods`` count table (BJS imputation's first stage on the
untreated observations at national scale).

Same algebra as :func:`evalkit.estimators._fe.absorb_fit` with ``Z`` = period dummies (first period
dropped): ``A = D'Z`` is the count table's columns 1.., ``Z'Z`` its column sums, ``Z'y`` / ``D'y`` are
bincounts — no ``N``-row sparse products. Equal to ``absorb_fit`` up to rounding
(tests/test_fe_time.py); used from :data:`TIME_ONLY_MIN_ROWS` rows, so smaller samples keep
``absorb_fit``'s bits.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from evalkit.estimators._fe_within import COLLIN_TOL, independent_columns, sym_inv

TIME_ONLY_MIN_ROWS = 1_000_000


def absorb_time_fit(y: np.ndarray, unit: np.ndarray, time: np.ndarray, n_units: int, n_times: int):
    """Unweighted OLS of ``y`` on unit and period effects (codes ``0..n-1``): an ``AbsorbFit`` whose
    ``Z`` is ``time_dummies(time, n_times)``; ``None`` when a period is not identified (the caller
    then takes ``absorb_fit``, which reports it the same way)."""
    from evalkit.estimators._fe import AbsorbFit, time_dummies

    y = np.asarray(y, dtype=float)
    unit = np.asarray(unit, dtype=np.int64)
    time = np.asarray(time, dtype=np.int64)
    C = np.bincount(unit * n_times + time, minlength=n_units * n_times).astype(float).reshape(n_units, n_times)
    n_u = C.sum(axis=1)
    inv_u = np.divide(1.0, n_u, out=np.zeros_like(n_u), where=n_u > 0)
    A = C[:, 1:]
    S = np.diag(C.sum(axis=0)[1:]) - A.T @ (A * inv_u[:, None])
    S = (S + S.T) / 2
    keep = independent_columns(S, COLLIN_TOL)
    if not keep.all():
        return None
    ybar = np.bincount(unit, weights=y, minlength=n_units) * inv_u
    b = np.bincount(time, weights=y, minlength=n_times)[1:] - A.T @ ybar
    bread = sym_inv(S)
    theta = bread @ b
    r = y - np.concatenate([[0.0], theta])[time]
    alpha = np.bincount(unit, weights=r, minlength=n_units) * inv_u
    resid = r - alpha[unit]
    return AbsorbFit(theta=theta, keep=keep, bread=bread, resid=resid, alpha=alpha,
                     unit_means=sp.csr_matrix(A * inv_u[:, None]), Z=time_dummies(time, n_times), w_unit=n_u)
