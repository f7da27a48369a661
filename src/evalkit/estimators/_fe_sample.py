"""The estimation sample of the fixed-effects estimators: the shared validated sample
(``_sample.build_sample``) plus unit / period / cluster codes, cohorts as floats and the weights —
built in one place (:func:`fe_sample`) for every regression-based estimator."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from evalkit.estimators._fe import codes
from evalkit.estimators._sample import SampleInfo, StaggeredSample, build_sample

__all__ = ["FESample", "fe_sample"]


@dataclass
class FESample:
    """The rows and codes a fixed-effects estimator fits on (built in one place: :func:`fe_sample`)."""

    sample: StaggeredSample  # the shared validated sample (conventions of _sample.build_sample)
    y: np.ndarray
    unit: np.ndarray  # codes 0..n_units-1
    time: np.ndarray  # codes 0..n_times-1 (sorted periods)
    times: np.ndarray  # period values
    cohort: np.ndarray  # float, never treated = inf
    period: np.ndarray  # float period of each row
    cluster: np.ndarray  # codes 0..G-1
    weights: np.ndarray | None
    n_zero_weight: int = 0  # rows of the shared sample left out of the fit for a weight of 0 (as fixest)

    @property
    def frame(self) -> pd.DataFrame:
        return self.sample.frame

    @property
    def info(self) -> SampleInfo:
        return self.sample.info

    @property
    def n_units(self) -> int:
        return int(self.unit.max()) + 1

    @property
    def n_times(self) -> int:
        return int(self.times.size)

    @property
    def grid(self) -> tuple[int, int] | None:
        """``(n_units, n_times)`` when the rows are every (unit, period) cell once in (unit, period) order
        and unweighted — a balanced panel (the shared sample's frame is always sorted that way) — else
        ``None``.  The fit engine then double-demeans ``n_units x n_times`` tables (``feols(grid=)``)."""
        info = self.info
        if self.weights is not None or not info.balanced or self.y.size != info.n_units * info.n_periods:
            return None
        return info.n_units, self.n_times

    def baseline_mean(self) -> float:
        """Mean outcome of treated units before adoption (for percent effects)."""
        m = np.isfinite(self.cohort) & (self.period < self.cohort)
        return float(self.y[m].mean()) if m.any() else float("nan")


def fe_sample(panel: pd.DataFrame | StaggeredSample, outcome: str, *, unit: str, time: str, cohort: str,
              cluster: str | None, weights: str | None = None, covariates: tuple[str, ...] | list[str] = ()
              ) -> FESample:
    """The estimation sample of the regression-based estimators: :func:`build_sample` (validation and
    the shared conventions: late adopters recoded to never treated, units treated from the first
    period dropped, missing outcome cells dropped) plus codes for unit, period and cluster, cohorts as
    floats (never treated = ``inf``) and the weights."""
    s = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights,
                     covariates=covariates)
    n_zero = 0
    if weights is not None:  # fixest removes observations with weight 0 (they would count in n and G)
        zero = (s.frame[weights] == 0).to_numpy()
        n_zero = int(zero.sum())
        if n_zero:
            s = replace(s, frame=s.frame[~zero].reset_index(drop=True))
    df = s.frame
    if s.codes_cache is not None and s.codes_cache[0] is df:  # codes build_sample made for this frame
        _, uc, tc, tvals = s.codes_cache
    else:
        uc, _ = codes(df[unit])
        tc, tvals = codes(df[time])
    cc = uc if cluster in (None, unit) else codes(df[cluster])[0]
    g = df[cohort].to_numpy(dtype=float, copy=True)  # a fresh array: never-treated recoded in place
    g[g == 0] = np.inf
    return FESample(sample=s, y=df[outcome].to_numpy(dtype=float), unit=uc, time=tc, times=tvals,
                    cohort=g, period=df[time].to_numpy(dtype=float), cluster=cc,
                    weights=None if weights is None else df[weights].to_numpy(dtype=float), n_zero_weight=n_zero)
