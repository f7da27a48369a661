"""The headline estimand's event-time weights, computed by hand on a tiny panel."""

import numpy as np
import pandas as pd
import pytest

from evalkit.estimand import event_time_weights, horizon


def _panel() -> pd.DataFrame:
    # periods 1..6; A adopts at 3, B at 5, C never (0), D after the data (9: recoded as never)
    rows = []
    for sid, g in (("A", 3), ("B", 5), ("C", 0), ("D", 9)):
        for t in range(1, 7):
            rows.append({"station_id": sid, "period": t, "first_treat": g, "y": float(t)})
    df = pd.DataFrame(rows)
    df.loc[(df.station_id == "A") & (df.period == 4), "y"] = np.nan  # a missing adopter-month
    return df


def test_weights_by_hand():
    w = event_time_weights(_panel(), "y", 2)
    # adopter-months with 0 <= e <= 2 and observed y: A e=0 (t3), A e=2 (t5); B e=0 (t5), B e=1 (t6)
    assert list(w.index) == [0, 1, 2]
    assert w.tolist() == pytest.approx([2 / 4, 1 / 4, 1 / 4])


def test_event_time_without_rows_gets_zero_and_horizon():
    w = event_time_weights(_panel(), "y", 4)
    assert w.loc[4] == 0.0 and w.sum() == pytest.approx(1.0)
    assert horizon((-12, 24)) == (0, 24)


def test_no_adopter_month_is_an_error():
    df = _panel()
    df.loc[df.first_treat.isin([3, 5]), "y"] = np.nan
    with pytest.raises(ValueError, match="no adopting station-month with an observed y in months 0–2"):
        event_time_weights(df, "y", 2)
