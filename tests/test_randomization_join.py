"""randomization._with_panel_column: the panel's column joined on (unit, time) exactly as the merge it replaces."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalkit.estimators._fe_sample import fe_sample
from evalkit.inference.randomization import _with_panel_column


def _panel(drop_first: bool) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    units, periods = [f"s{i:02d}" for i in range(12)], np.arange(24_000, 24_010)
    g = {u: (24_004 if i % 3 == 0 else 24_000 if drop_first and i == 1 else 0) for i, u in enumerate(units)}
    df = pd.DataFrame([(u, t) for u in units for t in periods], columns=["station_id", "period"])
    df["first_treat"] = df["station_id"].map(g)
    df["y"] = rng.normal(size=len(df))
    df["treated"] = ((df["first_treat"] > 0) & (df["period"] >= df["first_treat"])).astype("int8")
    return df


def _merged(df: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    return df.merge(panel[["station_id", "period", "treated"]], on=["station_id", "period"], how="left",
                    validate="one_to_one")


def test_same_as_merge_aligned_shuffled_and_subset() -> None:
    for drop_first in (False, True):  # True: a unit treated from the first period leaves the sample
        panel = _panel(drop_first)
        for p in (panel, panel.sample(frac=1.0, random_state=2).reset_index(drop=True)):
            df = fe_sample(p, "y", unit="station_id", time="period", cohort="first_treat", cluster=None).frame
            pd.testing.assert_frame_equal(_with_panel_column(df, p, "station_id", "period", "treated"), _merged(df, p))
