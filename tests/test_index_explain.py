"""Drivers, rank stability and correlations on the tiny hand-computed warehouse of test_index_compute."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.index import compute_index, validate_definition
from evalkit.index.explain import correlations, drivers, rank_stability
from evalkit.warehouse import connect
from test_index_compute import DEFN, wh  # noqa: F401  (the module fixture)


@pytest.fixture()
def con(wh):  # noqa: F811
    c = connect(wh)
    compute_index(c, validate_definition(DEFN), period="month")
    yield c
    c.close()


def test_drivers_decompose_the_change_exactly(con):
    d = drivers(con, validate_definition(DEFN), "index_tiny_month", "2024-01", "2024-02")
    for _, g in d.groupby("station_id"):
        if g["index_from"].notna().all() and g["index_to"].notna().all():
            assert g["contribution_change"].sum() == pytest.approx(g["index_to"].iloc[0] - g["index_from"].iloc[0])
    s1 = d[d.station_id == "001"].set_index("indicator")
    # February, station 001: clearance 25/30 = 83.3 % (score 83.3), alone in the cases rank (50),
    # satisfaction missing → 0, visits missing (skipped); index = (2 × (83.3 + 50) / 2 + 0) / 3
    assert s1.loc["clearance", "score_to"] == pytest.approx(250 / 3)
    assert s1["index_to"].iloc[0] == pytest.approx((2 * (250 / 3 + 50) / 2 + 0) / 3)
    # clearance: weight 2/3 (capability) × 1/2 (indicator): (83.3 − 50) / 3 = +11.1 index points
    assert s1.loc["clearance", "contribution_change"] == pytest.approx((250 / 3 - 50) / 3)
    # cases rank 0 → 50 points: 2/3 × 1/2 × 50 = +16.7; satisfaction 100 → 0 points with weight
    # 1/3 × 1/2 in January (visits present) and 1/3 × 1 in February: −16.7; visits 1/3 × 1/2 × 20.95 → 0
    assert s1.loc["cases_10k", "contribution_change"] == pytest.approx(50 / 3)
    assert s1.loc["satisfaction", "contribution_change"] == pytest.approx(-50 / 3)
    assert list(s1.index[:2]) == ["cases_10k", "satisfaction"]  # the largest moves first (ties by name)


def test_rank_stability(con):
    defn = validate_definition(DEFN)
    zero = rank_stability(con, defn, "index_tiny_month", draws=2, weights=0.0)
    jan = zero[zero.period == "2024-01"]
    assert jan.spearman.tolist() == pytest.approx([1.0, 1.0]) and (jan.mean_abs_rank_change == 0).all()
    a = rank_stability(con, defn, "index_tiny_month", draws=5, weights=0.5, rules=0.3, seed=3)
    b = rank_stability(con, defn, "index_tiny_month", draws=5, weights=0.5, rules=0.3, seed=3)
    assert a.equals(b) and len(a) == 10
    # February: 001 first, the three others tied at 0 under every weighting
    assert a[a.period == "2024-02"].spearman.tolist() == pytest.approx([1.0] * 5)
    assert a["spearman"].between(-1 - 1e-9, 1 + 1e-9).all()


def test_correlations_match_numpy(con):
    defn = validate_definition(DEFN)
    m = correlations(con, defn, "index_tiny_month", values=True)
    df = con.execute("SELECT clearance, cases_10k, satisfaction, visits_10k FROM index_tiny_month").df()
    ok = df[["clearance", "visits_10k"]].dropna()
    assert m.loc["clearance", "visits_10k"] == pytest.approx(np.corrcoef(ok.clearance, ok.visits_10k)[0, 1])
    caps = correlations(con, defn, "index_tiny_month", level="capability")
    assert list(caps.columns) == ["cap_cases", "cap_service"] and caps.loc["cap_cases", "cap_cases"] == 1.0


def test_cli_explain_and_robustness(wh, tmp_path):  # noqa: F811
    import yaml
    from typer.testing import CliRunner

    from evalkit.cli import app

    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(DEFN, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(app, ["index", "explain", str(f), "--station", "001", "--from", "2024-01",
                                 "--to", "2024-02", "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"001: index {(50 + (100 + (50 + 25 * (100 - 250) / (50000 / 3) ** 0.5)) / 2) / 3:.1f} → " \
                       f"{(2 * (250 / 3 + 50) / 2) / 3:.1f}, rank 4 → 1"
    assert "+16.67 index points" in lines[1]
    r = CliRunner().invoke(app, ["index", "robustness", str(f), "--period", "month", "--draws", "3",
                                 "--warehouse", str(wh)])
    assert r.exit_code == 0 and "3 draws (weights ±20%, bounds ±20%, seed 0): Spearman" in r.output
