"""Subgroup effects from one headline fit (src/evalkit/heterogeneity.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _hetero_sim import sim_panel
from evalkit.estimators.cs import estimate_cs
from evalkit.estimators.imputation import estimate_imputation
from evalkit.heterogeneity import SIZE_LABELS, equality_test, station_groups, subgroup_effects

H = 12


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def planted():
    p = sim_panel(1)  # urban -30 %, rural -5 %
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return p, estimate_imputation(p, "y", max_e=H)


def _overall(res):
    return res.estimates.query("kind == 'overall'").iloc[0]


def test_planted_urban_rural_difference_recovered_and_rejected(planted):
    p, r = planted
    sg = subgroup_effects(r, "area_type", p)
    t = sg.table.set_index("group")
    assert list(t.index) == ["rural", "urban"]
    # effects in percent of the adopters' pre-adoption mean: planted -30 % and -5 %
    assert t.loc["urban", "pct"] == pytest.approx(-30, abs=3)
    assert t.loc["rural", "pct"] == pytest.approx(-5, abs=3)
    assert t.loc["urban", "ci_low"] < t.loc["urban", "estimate"] < t.loc["urban", "ci_high"]
    assert sg.equality["status"] == "ok" and sg.equality["df"] == 1
    assert sg.equality["p_value"] < 1e-6
    assert (t["n_adopters"] == 15).all() and (t["n_comparison"] == 30).all()
    # the overall line is the headline row of the same fit
    assert sg.overall["estimate"] == pytest.approx(_overall(r)["estimate"], abs=1e-12)


def _refit_subgroup(p, keep_stations, **kw):
    """The estimator refitted with the other adopters' treated rows removed: the same untreated
    rows (first stage), only the subgroup's treated rows."""
    post = (p["first_treat"] > 0) & (p["period"] >= p["first_treat"] - kw.get("anticipation", 0))
    drop = post & ~p["station_id"].isin(keep_stations)
    return estimate_imputation(p[~drop].reset_index(drop=True), "y", max_e=H, **kw)


@pytest.mark.parametrize(("by", "kw"), [("area_type", {}), ("county", {}), ("area_type", {"weights": "population"}),
                                        ("county", {"leaveout": False}), ("area_type", {"anticipation": 1})])
def test_imputation_subgroups_exact_against_refit(planted, by, kw):
    p, r = planted
    r = estimate_imputation(p, "y", max_e=H, **kw) if kw else r
    sg = subgroup_effects(r, by, p)
    groups = station_groups(p, by)
    for _, row in sg.table.iterrows():
        ref = _overall(_refit_subgroup(p, groups.index[groups.astype(str) == row["group"]], **kw))
        assert row["estimate"] == pytest.approx(ref["estimate"], abs=1e-10)
        assert row["std_error"] == pytest.approx(ref["std_error"], abs=1e-10)


def test_one_group_reproduces_the_headline(planted):
    p, r = planted
    sg = subgroup_effects(r, "all", p.assign(all="x"))
    row = sg.table.iloc[0]
    assert row["estimate"] == pytest.approx(_overall(r)["estimate"], abs=1e-10)
    assert row["std_error"] == pytest.approx(_overall(r)["std_error"], abs=1e-10)
    assert sg.equality["status"] == "not available" and "fewer than two" in sg.equality["reason"]


def test_cs_by_cohort_matches_group_aggregation_and_headline():
    p = sim_panel(2)
    c = estimate_cs(p, "y", trim_e=(-H, H))
    sg = subgroup_effects(c, "cohort", p)
    grp = c.estimates.query("kind == 'group'").set_index("term")
    for _, row in sg.table.iterrows():  # a one-cohort simple aggregation is that cohort's group ATT
        ref = grp.loc[f"g={row['group']}"]
        assert row["estimate"] == pytest.approx(ref["estimate"], abs=1e-10)
        assert row["std_error"] == pytest.approx(ref["std_error"], rel=1e-8)
    one = subgroup_effects(c, "all", p.assign(all="x")).table.iloc[0]
    assert one["estimate"] == pytest.approx(_overall(c)["estimate"], abs=1e-10)
    assert one["std_error"] == pytest.approx(_overall(c)["std_error"], rel=1e-8)
    assert sg.equality["status"] == "ok" and sg.equality["df"] == 2


def test_cs_station_level_grouping_across_cohorts_is_refused():
    p = sim_panel(2)
    c = estimate_cs(p, "y", trim_e=(-H, H))
    with pytest.raises(ValueError, match=r"^subgroups: CS averages whole adoption cohorts, but 'area_type' varies "
                                         r"within the cohort adopting in period 13; use the imputation headline"):
        subgroup_effects(c, "area_type", p)
    with pytest.raises(ValueError, match=r"^subgroups: adopting station 'S000' of the fit is not in the panel given"):
        subgroup_effects(c, "county", p[p["station_id"] != "S000"])


def test_floors_cap_small_subgroups(planted):
    p, r = planted
    # one urban adopter alone in its own group
    lone = p["station_id"] == "S000"
    sg = subgroup_effects(r, "grp", p.assign(grp=np.where(lone, "lone", "rest")))
    t = sg.table.set_index("group")
    assert t.loc["lone", "n_adopters"] == 1
    assert t.loc["lone", "verdict"] == "limited" and t.loc["lone", "caps"].startswith("one_adopter")
    # with the headline's diagnostics passed in, the big group is strong and the lone one still capped
    sg2 = subgroup_effects(r, "grp", p.assign(grp=np.where(lone, "lone", "rest")), pretrend_p=0.5, robust=True)
    t2 = sg2.table.set_index("group")
    assert t2.loc["rest", "verdict"] == "strong"
    assert t2.loc["lone", "verdict"] == "limited" and t2.loc["lone", "caps"] == "one_adopter"


def test_few_comparison_stations_capped():
    p = sim_panel(3)
    never = p.loc[p["first_treat"] == 0, "station_id"].unique()
    p = p[~p["station_id"].isin(never[3:])].reset_index(drop=True)  # 3 comparison stations left
    r = estimate_imputation(p, "y", max_e=H)
    sg = subgroup_effects(r, "area_type", p, pretrend_p=0.5, robust=True)
    assert (sg.table["n_comparison"] == 3).all()
    assert set(sg.table["caps"]) == {"few_comparison"}


def test_size_classes_are_terciles(planted):
    p, _ = planted
    s = station_groups(p, "size_class")
    assert s.value_counts().to_dict() == {k: 20 for k in SIZE_LABELS}
    pop = p.drop_duplicates("station_id").set_index("station_id")["population"]
    assert pop[s == "small"].max() <= pop[s == "medium"].min() <= pop[s == "medium"].max() <= pop[s == "large"].min()


def test_one_line_errors(planted):
    p, r = planted
    with pytest.raises(ValueError, match=r"^subgroups: no column 'nope' in the panel \(by='nope'\); choose one of: "):
        subgroup_effects(r, "nope", p)
    bad = p.copy()
    bad.loc[bad.index[1], "area_type"] = "rural"  # S000 is urban in its other rows
    with pytest.raises(ValueError, match=r"^subgroups: column 'area_type' takes several values for station 'S000'"):
        subgroup_effects(r, "area_type", bad)
    miss = p.copy()
    miss.loc[miss["station_id"] == "S001", "area_type"] = None
    with pytest.raises(ValueError, match=r"^subgroups: column 'area_type' is missing for station 'S001'"):
        subgroup_effects(r, "area_type", miss)
    with pytest.raises(ValueError, match=r"^subgroups: adopting station 'S000' of the fit is not in the panel given"):
        subgroup_effects(r, "area_type", p[p["station_id"] != "S000"])
    with pytest.raises(ValueError, match="need the panel"):
        subgroup_effects(r, "area_type")
    with pytest.raises(ValueError) as exc:
        subgroup_effects(r, "nope", p)
    assert "\n" not in str(exc.value)


def test_singular_covariance_not_available():
    V = np.array([[1.0, 1.0], [1.0, 1.0]])  # the difference has zero variance
    out = equality_test(np.array([1.0, 2.0]), V)
    assert out["status"] == "not available" and np.isnan(out["stat"])
    assert "singular" in out["reason"]
    few = equality_test(np.array([1.0, 2.0, 3.0]), np.eye(3), n_clusters=2)
    assert few["status"] == "not available" and "only 2 clusters" in few["reason"]
    ok = equality_test(np.array([1.0, 3.0]), np.eye(2))
    assert ok["stat"] == pytest.approx(2.0) and ok["df"] == 1


@pytest.mark.slow
def test_equality_test_size_under_no_difference():
    """100 panels with the same -20 % effect in urban and rural stations: the test rejects at about
    alpha (binomial 99 % range for 100 draws at 5 %: 0–11)."""
    rejections = 0
    for seed in range(100):
        p = sim_panel(1000 + seed, urban_effect=-0.2, rural_effect=-0.2)
        r = estimate_imputation(p, "y", max_e=H)
        rejections += subgroup_effects(r, "area_type", p).equality["p_value"] < 0.05
    assert rejections <= 11


def test_result_frame_columns(planted):
    p, r = planted
    t = subgroup_effects(r, "area_type", p).table
    assert isinstance(t, pd.DataFrame)
    assert {"group", "estimate", "std_error", "ci_low", "ci_high", "p_value", "n_adopters", "n_comparison",
            "n_adopter_months", "verdict", "caps", "pct", "pct_low", "pct_high"} <= set(t.columns)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_forest_plot(planted, tmp_path, lang):
    from evalkit.viz import plot_subgroups

    p, r = planted
    sg = subgroup_effects(r, "area_type", p)
    words = {"zh": ("城乡分组效果", "变化（%）", "总体", "{n} 个派出所"),
             "en": ("Effect by area type", "change (%)", "overall", "n={n}")}[lang]
    names = {"rural": "农村", "urban": "城区"} if lang == "zh" else None
    ax = plot_subgroups(sg, title=words[0], xlabel=words[1], overall_label=words[2], n_label=words[3],
                        group_labels=names)
    assert [t.get_text() for t in ax.get_yticklabels()] == (["农村", "城区"] if names else ["rural", "urban"])
    notes = [t.get_text() for t in ax.texts]
    assert notes == [words[3].format(n=15)] * 2
    line = [ln for ln in ax.get_lines() if ln.get_label() == words[2]][0]
    assert line.get_xdata()[0] == pytest.approx(sg.overall["estimate_pct"])
    out = tmp_path / f"forest_{lang}.png"
    ax.figure.savefig(out)
    assert out.stat().st_size > 5000


def test_cli_estimate_by(tmp_path):
    from typer.testing import CliRunner

    from evalkit.cli import app

    f = tmp_path / "panel.csv"
    sim_panel(1).to_csv(f, index=False)
    r = CliRunner().invoke(app, ["estimate", str(f), "--outcome", "y", "--method", "imputation", "--by", "area_type"])
    assert r.exit_code == 0, r.output
    assert "Effect by area_type (one imputation fit" in r.output
    assert "Equal effects across area_type: Wald chi2(1) = " in r.output
    bad = CliRunner().invoke(app, ["estimate", str(f), "--outcome", "y", "--method", "imputation", "--by", "nope"])
    assert bad.exit_code == 2 and "subgroups: no column 'nope' in the panel" in bad.output
    twfe = CliRunner().invoke(app, ["estimate", str(f), "--outcome", "y", "--method", "twfe", "--by", "county"])
    assert twfe.exit_code == 2 and "--by needs method imputation or cs" in twfe.output


def test_cs_subgroup_of_cohorts_exact_against_refit():
    """A subgroup of whole cohorts (never-treated comparisons) equals the CS simple ATT refitted on
    those cohorts' stations and all comparison stations (the estimated-weight term of the other
    cohorts' units vanishes in the ratio of shares)."""
    p = sim_panel(4)
    p["wave"] = np.where(p["first_treat"].isin([13, 19]), "early", np.where(p["first_treat"] == 25, "late", "none"))
    c = estimate_cs(p, "y", trim_e=(-H, H))
    sg = subgroup_effects(c, "wave", p).table.set_index("group")
    assert list(sg.index) == ["early", "late"]
    for name in ("early", "late"):
        sub = p[(p["wave"] == name) | (p["first_treat"] == 0)].reset_index(drop=True)
        ref = _overall(estimate_cs(sub, "y", trim_e=(-H, H)))
        assert sg.loc[name, "estimate"] == pytest.approx(ref["estimate"], abs=1e-10)
        assert sg.loc[name, "std_error"] == pytest.approx(ref["std_error"], abs=1e-10)
