"""CS, imputation and Sun–Abraham, run with the params' options, all report the headline estimand
(adopter-months 0..H, equal weights) as their overall row: on a noiseless panel with dynamic effects
that differ by cohort and event time (also after H), each overall row equals the brute-force
adopter-month average of the planted effects over 0..H, and CS's equals Σ_e w_e θ_dyn(e)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimand import HEADLINE_ESTIMAND, event_time_weights
from evalkit.estimators import get_estimator, get_spec
from evalkit.params import validate_params

H = 5
LO = -4
COHORTS = {8: 3, 12: 4, 19: 2}  # adoption period: stations (19 + 11 > 25: e > H only for some)
T = 25


def _tau(g: int, e: int) -> float:
    """Planted effect of cohort ``g`` at event time ``e`` (0 before adoption)."""
    return 0.0 if e < 0 else (1.0 + 0.4 * e + 0.05 * e**2) * (1.0 + (g - 8) / 10.0)


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    sid = 0
    groups = [(g, n) for g, n in COHORTS.items()] + [(0, 6)]
    lam = rng.normal(0, 1, T + 1).cumsum()
    for g, n in groups:
        for _ in range(n):
            a = rng.normal(10, 3)
            for t in range(1, T + 1):
                eff = _tau(g, t - g) if g else 0.0
                rows.append({"station_id": f"S{sid:02d}", "period": t, "first_treat": g,
                             "y": a + lam[t] + eff})
            sid += 1
    return pd.DataFrame(rows)


def _truth(panel: pd.DataFrame) -> float:
    """Brute force: mean planted effect over adopter-months 0 <= e <= H."""
    d = panel[(panel.first_treat > 0)]
    e = d.period - d.first_treat
    d = d[(e >= 0) & (e <= H)]
    return float(np.mean([_tau(g, t - g) for g, t in zip(d.first_treat, d.period, strict=True)]))


def _opts(name: str) -> dict:
    p = validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["dispatches"],
                         "event_window": [LO, H]})
    return get_spec(name).from_params(p)


@pytest.mark.parametrize("name", ["cs", "imputation", "sa"])
def test_overall_row_is_the_adopter_month_average_over_0_H(name):
    panel = _panel()
    res = get_estimator(name)(panel, "y", **_opts(name))
    assert res.meta["estimand"] == HEADLINE_ESTIMAND and res.meta["horizon"] == [0, H]
    truth = _truth(panel)
    all_post = panel[(panel.first_treat > 0) & (panel.period >= panel.first_treat)]
    assert abs(truth - np.mean([_tau(g, t - g) for g, t in zip(all_post.first_treat, all_post.period,
                                                              strict=True)])) > 1  # the restriction matters
    assert res.headline["estimate"] == pytest.approx(truth, abs=1e-8)
    # and the same as the event-time weights applied to the planted event-time means
    d = all_post.assign(e=all_post.period - all_post.first_treat)
    d = d.assign(tau=[_tau(g, e) for g, e in zip(d.first_treat, d.e, strict=True)])
    theta = d[d.e <= H].groupby("e")["tau"].mean()
    w = event_time_weights(panel, "y", H)
    assert float((w * theta).sum()) == pytest.approx(truth, abs=1e-10)


def test_cs_overall_is_event_time_weighted_dynamic_effects():
    panel = _panel()
    res = get_estimator("cs")(panel, "y", **_opts("cs"))
    # its own ATT(g, t) cells averaged over adopter-months 0..H (each cell counted once per adopter)
    gt = res.rows("gt")
    gt = gt[(gt.event_time >= 0) & (gt.event_time <= H)]
    n = gt["group"].map({float(g): k for g, k in COHORTS.items()})
    assert res.headline["estimate"] == pytest.approx(float((n * gt.estimate).sum() / n.sum()), abs=1e-12)
    ev = res.rows("event").set_index("event_time")["estimate"]
    w = event_time_weights(panel, "y", H)
    assert res.headline["estimate"] == pytest.approx(float((w * ev.reindex(w.index)).sum()), abs=1e-10)


def test_sa_overall_aggregates_its_own_cells_over_0_H():
    panel = _panel()
    res = get_estimator("sa")(panel, "y", **_opts("sa"))
    cells = res.tables["cells"]
    inside = cells[(cells.event_time >= 0) & (cells.event_time <= H)]
    assert cells.event_time.max() > H  # later cells stay in the regression, outside the overall row
    assert res.headline["estimate"] == pytest.approx(float((inside.n * inside.estimate).sum() / inside.n.sum()),
                                                     abs=1e-12)
    assert res.rows("event")["event_time"].max() == H
    with pytest.raises(ValueError, match=r"bin_e upper end 5 pools event times after max_e=5"):
        get_estimator("sa")(panel, "y", bin_e=(LO, H), max_e=H)


def test_defaults_unchanged_and_no_headline_estimand_without_the_option():
    panel = _panel()
    imp = get_estimator("imputation")(panel, "y")
    post = panel[(panel.first_treat > 0) & (panel.period >= panel.first_treat)]
    everything = np.mean([_tau(g, t - g) for g, t in zip(post.first_treat, post.period, strict=True)])
    assert imp.headline["estimate"] == pytest.approx(everything, abs=1e-8)
    assert imp.meta["estimand"] == "att_average_over_treated_cells" and "horizon" not in imp.meta
    sa = get_estimator("sa")(panel, "y", bin_e=(LO, H))
    assert sa.meta["estimand"] == "att_cohort_share_weighted_post_periods" and "horizon" not in sa.meta
    # CS on an unbalanced panel: cells weighted by cohort size, not by observed adopter-months
    gap = panel.copy()
    gap.loc[(gap.station_id == "S00") & (gap.period == 9), "y"] = np.nan
    cs = get_estimator("cs")(gap, "y", **_opts("cs"))
    assert cs.meta["estimand"] == "att_simple_average_over_treated_cells" and "horizon" not in cs.meta
    # ... but gaps at a comparison station only (a station that did not export some months) leave every
    # cell's cohort size equal to its adopter-months: CS's overall row is still the adopter-month
    # average of its own ATT(g, t) cells over 0..H, i.e. the headline estimand (the cells themselves
    # come from CS's unbalanced path, which compares period means, as R did's allow_unbalanced_panel)
    ctrl_gap = panel.copy()
    ctrl_gap.loc[(ctrl_gap.station_id == "S09") & ctrl_gap.period.between(10, 13), "y"] = np.nan
    cs = get_estimator("cs")(ctrl_gap, "y", **_opts("cs"))
    assert not cs.meta["sample"]["balanced"] and cs.meta["estimand"] == HEADLINE_ESTIMAND
    assert cs.meta["horizon"] == [0, H]
    gt = cs.rows("gt")
    gt = gt[(gt.event_time >= 0) & (gt.event_time <= H)]
    n = gt["group"].map({float(g): k for g, k in COHORTS.items()})
    assert cs.headline["estimate"] == pytest.approx(float((n * gt.estimate).sum() / n.sum()), abs=1e-12)
    # weighted fits average with the weights: not the equal-weight estimand
    w = get_estimator("imputation")(panel.assign(pop=1.0 + (panel.station_id.str[-1] == "1")), "y",
                                    weights="pop", **_opts("imputation"))
    assert w.meta["estimand"] == "att_average_over_treated_cells"
    with pytest.raises(ValueError, match="max_e must be an integer >= 0"):
        get_estimator("imputation")(panel, "y", max_e=-1)
