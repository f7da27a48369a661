"""The shared estimation sample for Callaway–Sant'Anna, without pandas work when there is none to do.

:func:`shared_sample` returns exactly what :func:`evalkit.estimators._sample.build_sample` returns.
When the panel already is a sample's frame — one row per (unit, period), sorted by unit then time,
int64 periods and cohorts, a finite float64 outcome, every cohort 0 or inside (first, last], valid
cluster and weight columns, no covariates — it builds the :class:`StaggeredSample` directly from that
certificate (a few vectorised comparisons, O(rows) once); in every other case (anything to drop,
recode or refuse) it calls ``build_sample``, which does the work and words the errors. The test
``tests/test_cs_sample.py`` checks that both give the same sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators._cs_prepare import _rows_equal
from evalkit.estimators._sample import NEVER, SampleInfo, StaggeredSample, build_sample


def _rows_constant(m: np.ndarray) -> bool:
    return _rows_equal(m, m[:, :1])


def _certified(panel: pd.DataFrame, outcome, unit, time, cohort, cluster, weights, covariates) -> SampleInfo | None:
    """The sample's facts when ``panel`` needs no change (module docstring), else None."""
    idx = panel.index if isinstance(panel, pd.DataFrame) else None
    if covariates or not (isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1):
        return None  # (the sample's frame has a fresh RangeIndex)
    cols = [unit, time, cohort, outcome, *([cluster] if cluster else []), *([weights] if weights else [])]
    if len(set(cols)) != len(cols) or any(c not in panel.columns for c in cols):
        return None
    u, t, g, y = (panel[c].to_numpy() for c in (unit, time, cohort, outcome))
    if t.dtype != np.int64 or g.dtype != np.int64 or y.dtype != np.float64 or u.dtype.kind not in "iu" or len(t) < 2:
        return None
    head = t[:4097]  # the periods: the first run of increasing times (verified for every unit below)
    brk = np.flatnonzero(head[1:] <= head[:-1])
    nt = int(brk[0]) + 1 if len(brk) else len(head)
    if len(t) % nt or nt < 2:
        return None
    periods, n = t[:nt], len(t) // nt
    tt, uu, gg = t.reshape(n, nt), u.reshape(n, nt), g.reshape(n, nt)
    if not (_rows_equal(tt, periods) and _rows_constant(uu) and _rows_constant(gg)):
        return None
    units = uu[:, 0]
    if n > 1 and not (units[1:] > units[:-1]).all():  # sorted by unit, each once
        return None
    if not np.isfinite(y.sum()):  # a NaN (missing cell) or inf: build_sample drops or refuses it
        return None
    first, last = int(periods[0]), int(periods[-1])
    gu = gg[:, 0]
    if not ((gu == NEVER) | ((gu > first) & (gu <= last))).all():  # late, from-first-period or early cohorts
        return None
    if cluster:
        c = panel[cluster]
        if c.isna().any() or not _rows_constant(c.to_numpy().reshape(n, nt)):
            return None
    if weights:
        w = panel[weights].to_numpy()
        if w.dtype.kind != "f" or not (np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()):
            return None
    n_treated = int((gu != NEVER).sum())
    return SampleInfo(n_units=n, n_treated=n_treated, n_control=n - n_treated, n_periods=nt, n_obs=len(t),
                      first_period=first, last_period=last, balanced=True, weights=weights)


def shared_sample(panel, outcome: str, *, unit: str, time: str, cohort: str, cluster: str | None,
                  weights: str | None, covariates: tuple[str, ...], control: str) -> tuple[StaggeredSample, bool]:
    """``(build_sample(...), certified)``; ``certified``: the panel needed no change (see the module
    docstring), so its rows are one per (unit, period), sorted, with cohorts constant within unit."""
    if isinstance(panel, pd.DataFrame):
        info = _certified(panel, outcome, unit, time, cohort, cluster, weights, covariates)
        if info is not None:
            wanted = list(dict.fromkeys([unit, time, cohort, outcome, *([cluster] if cluster else []),
                                         *([weights] if weights else [])]))
            frame = panel[wanted] if list(panel.columns) != wanted else panel.copy(deep=False)
            return StaggeredSample(frame=frame, outcome=outcome, unit=unit, time=time, cohort=cohort,
                                   cluster=cluster, weights=weights, info=info, covariates=(),
                                   control=control), True
    sample = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights,
                          covariates=covariates, control=control)
    return sample, False
