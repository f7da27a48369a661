"""Small helpers shared by estimators: sample facts, baseline means, Wald tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from evalkit.registry import NEVER_TREATED


def ever_treated(panel: pd.DataFrame, cohort: str = "first_treat") -> pd.Series:
    """Boolean mask: the row's unit adopts at some point (cohort not 0/NaN)."""
    c = panel[cohort]
    return c.notna() & (c != NEVER_TREATED)


def unit_counts(panel: pd.DataFrame, unit: str, cohort: str) -> tuple[int, int]:
    """(number of ever-treated units, number of never-treated units)."""
    first = panel.groupby(unit, sort=False)[cohort].first()
    treated = int((first.notna() & (first != NEVER_TREATED)).sum())
    return treated, int(len(first) - treated)


def baseline_mean(panel: pd.DataFrame, outcome: str, *, time: str = "period", cohort: str = "first_treat") -> float:
    """Mean outcome of ever-treated units in the periods before their adoption (for percent effects)."""
    mask = ever_treated(panel, cohort) & (panel[time] < panel[cohort])
    v = panel.loc[mask, outcome].mean()
    return float(v) if pd.notna(v) else float("nan")


def wald_test(estimates: np.ndarray, vcov: np.ndarray) -> dict[str, float]:
    """Joint Wald test that all ``estimates`` are zero: chi-square statistic, df and p-value."""
    b = np.asarray(estimates, dtype=float)
    v = np.asarray(vcov, dtype=float)
    ok = np.isfinite(b)
    b, v = b[ok], v[np.ix_(ok, ok)]
    if b.size == 0:
        return {"stat": float("nan"), "df": 0, "p_value": float("nan")}
    stat = float(b @ np.linalg.pinv(v) @ b)
    df = int(np.linalg.matrix_rank(v))
    return {"stat": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df)) if df else float("nan")}
