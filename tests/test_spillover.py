"""Spillovers to neighbouring stations (evalkit.estimators.spillover): planted direct and displacement
effects, a brute-force two-step (estimates and BJS variance), the naive estimator's bias, the result
contract and one-line input errors. No peer package implements Butts (2023) in Python; the brute force
below is the check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import PanelInputError, get_estimator
from evalkit.estimators.imputation import estimate_imputation
from evalkit.estimators.specs import DESIGNS, default_estimators, get_spec
from evalkit.estimators.spillover import check_adjacency, estimate_spillover
from evalkit.estimators.twfe import estimate_twfe
from evalkit.results import EstimationResult

N, T = 30, 10
COHORTS = {0: 4, 6: 4, 12: 4, 18: 7, 24: 7}  # station -> adoption period (others never)


def _ring(n: int = N) -> pd.DataFrame:
    """Stations on a ring: i borders i+1 (each pair listed once)."""
    return pd.DataFrame({"station_id": np.arange(n), "neighbor_id": (np.arange(n) + 1) % n})


def _panel(direct=-3.0, spill=1.5, noise=0.0, seed=0, n=N, cohorts=COHORTS, adjacency=None) -> pd.DataFrame:
    """Unit + period effects, ``direct`` on treated station-months, ``spill`` on untreated station-months
    with a treated neighbour (the planted displacement)."""
    adj = check_adjacency(_ring(n) if adjacency is None else adjacency)
    rng = np.random.default_rng(seed)
    a = 20 + 5 * rng.normal(size=n)
    lam = rng.normal(size=T + 1)
    nbrs = adj.groupby("station_id")["neighbor_id"].apply(list).to_dict()
    rows = []
    for i in range(n):
        g = cohorts.get(i, 0)
        e = min([cohorts[j] for j in nbrs.get(i, []) if j in cohorts], default=np.inf)
        for t in range(1, T + 1):
            tr = bool(g) and t >= g
            ex = (not tr) and t >= e
            y = a[i] + lam[t] + direct * tr + spill * ex + noise * rng.normal()
            rows.append({"station_id": i, "period": t, "first_treat": g, "y": y})
    return pd.DataFrame(rows)


def _brute(panel: pd.DataFrame, adjacency: pd.DataFrame, target: str):
    """Two-step by hand: OLS of y on unit and period dummies over clean rows, tau = y - Y(0) on the
    other rows, the average over ``target`` rows ("direct" | "exposed", e >= 0), and its BJS
    conservative variance with in-sample (treated | exposed) x cohort x event-time means of tau."""
    adj = check_adjacency(adjacency)
    g = panel.groupby("station_id")["first_treat"].first().replace(0, np.inf).astype(float)
    nb_g = adj.assign(g=adj["neighbor_id"].map(g)).groupby("station_id")["g"].min()
    E = panel["station_id"].map(nb_g).fillna(np.inf).to_numpy()
    G = panel["station_id"].map(g).to_numpy()
    t = panel["period"].to_numpy(dtype=float)
    direct = t >= G
    exposed = ~direct & (t >= E)
    clean = ~direct & ~exposed
    Z = np.column_stack([pd.get_dummies(panel["station_id"]).to_numpy(float),
                         pd.get_dummies(panel["period"]).to_numpy(float)[:, 1:]])
    y = panel["y"].to_numpy()
    beta = np.linalg.lstsq(Z[clean], y[clean], rcond=None)[0]
    tau = y - Z @ beta
    w = (direct if target == "direct" else exposed).astype(float)
    w /= w.sum()
    est = float(w @ tau)
    Z0 = Z[clean]
    v = w.copy()
    v[clean] = -Z0 @ np.linalg.solve(Z0.T @ Z0, Z[~clean].T @ w[~clean])
    resid = np.zeros_like(y)
    resid[clean] = y[clean] - Z0 @ beta
    cell = pd.Series(tau[~clean]).groupby([direct[~clean], np.where(direct, G, E)[~clean],
                                           np.where(direct, t - G, t - E)[~clean]]).transform("mean")
    resid[~clean] = tau[~clean] - cell.to_numpy()
    s = pd.Series(v * resid).groupby(panel["station_id"].to_numpy()).sum()
    return est, float(np.sqrt((s ** 2).sum()))


def test_recovers_planted_direct_and_spillover_noiseless():
    p = _panel()
    r = estimate_spillover(p, "y", adjacency=_ring(), horizons=3)
    assert r.headline["estimate"] == pytest.approx(-3.0, abs=1e-8)
    sp_rows = r.rows("spillover")
    assert sp_rows.loc[sp_rows["term"] == "spillover", "estimate"].iloc[0] == pytest.approx(1.5, abs=1e-8)
    np.testing.assert_allclose(r.rows("event")["estimate"], -3.0, atol=1e-8)
    np.testing.assert_allclose(sp_rows["estimate"], 1.5, atol=1e-8)
    assert list(sp_rows["term"]) == ["spillover"] + [f"spillover_e={k}" for k in range(4)]
    # 5 treated stations, each with two untreated neighbours on the ring
    assert r.meta["n_exposed_stations"] == 10
    assert r.meta["n_exposed_obs"] == 6 * 7 + 4 * 4 and r.meta["n_direct_obs"] == 3 * 7 + 2 * 4
    assert r.headline["weight"] == 29 and sp_rows["weight"].iloc[0] == 58


def test_naive_estimators_with_neighbours_as_controls_are_biased():
    p = _panel()
    # neighbours rise by 1.5 and sit among the controls: the counterfactual is too high
    for naive in (estimate_imputation(p, "y").headline["estimate"], estimate_twfe(p, "y").headline["estimate"]):
        assert naive < -3.0 - 0.2
    assert estimate_spillover(p, "y", adjacency=_ring()).headline["estimate"] == pytest.approx(-3.0, abs=1e-8)


def test_no_spillover_panel():
    r = estimate_spillover(_panel(spill=0.0), "y", adjacency=_ring())
    assert r.rows("spillover")["estimate"].iloc[0] == pytest.approx(0.0, abs=1e-8)
    noisy = estimate_spillover(_panel(spill=0.0, noise=1.0, seed=3), "y", adjacency=_ring())
    row = noisy.rows("spillover").iloc[0]
    assert abs(row["estimate"]) < 4 * row["std_error"] and row["std_error"] > 0


@pytest.mark.parametrize("target", ["direct", "exposed"])
def test_matches_brute_force_two_step(target):
    p = _panel(noise=1.0, seed=7)
    est, se = _brute(p, _ring(), target)
    r = estimate_spillover(p, "y", adjacency=_ring(), leaveout=False)
    row = r.headline if target == "direct" else r.rows("spillover").iloc[0]
    assert row["estimate"] == pytest.approx(est, abs=1e-10)
    assert row["std_error"] == pytest.approx(se, rel=1e-9)


def test_equals_imputation_without_exposure():
    # adjacency only between never-treated stations: nobody is exposed, the fit is BJS imputation
    adj = pd.DataFrame({"station_id": [2, 3, 8], "neighbor_id": [3, 4, 9]})
    p = _panel(noise=1.0, seed=2, adjacency=adj)
    r = estimate_spillover(p, "y", adjacency=adj, max_e=3, horizons=3)
    b = estimate_imputation(p, "y", max_e=3, horizons=3)
    assert r.headline["estimate"] == pytest.approx(b.headline["estimate"], abs=1e-10)
    assert r.headline["std_error"] == pytest.approx(b.headline["std_error"], rel=1e-9)
    np.testing.assert_allclose(r.rows("event")["estimate"], b.rows("event")["estimate"], atol=1e-10)
    assert np.isnan(r.rows("spillover")["estimate"].iloc[0]) and r.meta["n_exposed_stations"] == 0
    assert r.meta["estimand"] == b.meta["estimand"] and r.meta["horizon"] == [0, 3]


def test_station_exposed_from_the_start_is_dropped():
    cohorts = {**COHORTS, 15: 1}  # station 15 treated from the first period: 14 and 16 never clean
    p = _panel(cohorts=cohorts)
    r = estimate_spillover(p, "y", adjacency=_ring())
    assert r.meta["dropped_exposed_from_start"] == 2
    assert r.headline["estimate"] == pytest.approx(-3.0, abs=1e-8)
    assert r.rows("spillover")["estimate"].iloc[0] == pytest.approx(1.5, abs=1e-8)
    assert not set(r.context.sample.frame["station_id"]) & {14, 15, 16}


def test_result_contract_registry_and_refit():
    p = _panel(noise=1.0, seed=1)
    spec = get_spec("spillover")
    assert "spillover" not in DESIGNS and all("spillover" not in default_estimators(d) for d in DESIGNS)
    r = get_estimator("spillover")(p, "y", adjacency=_ring(), max_e=2)
    assert (r.estimates["kind"] == "overall").sum() == 1
    assert r.meta["estimand"] and r.meta["sample"]["n_units"] == N and r.meta["n_treated"] == 5
    assert spec.estimand == "att_treated_cells_clean_controls"
    assert "spillover_e=0" in r.summary()  # the summary table shows the spillover rows
    back = EstimationResult.from_json(r.to_json())
    pd.testing.assert_frame_equal(back.estimates, r.estimates)
    again = get_estimator(r.context.estimator)(r.context.sample, "y", **r.context.options)
    pd.testing.assert_frame_equal(again.estimates, r.estimates)


@pytest.mark.parametrize("adj, match", [
    ("not a frame", "must be a pandas DataFrame"),
    (pd.DataFrame({"station_id": [1]}), "column 'neighbor_id' missing"),
    (pd.DataFrame({"station_id": [1, 2], "neighbor_id": [2, 2]}), "pairs station 2 with itself"),
    (pd.DataFrame({"station_id": [1, 1], "neighbor_id": [2, 2]}), r"pair \(1, 2\) listed twice"),
    (pd.DataFrame({"station_id": [1, 99], "neighbor_id": [2, 3]}), "station_id 99 .* not a station of the panel"),
    (pd.DataFrame({"station_id": [1, None], "neighbor_id": [2, 3]}), "missing station id"),
])
def test_adjacency_errors_are_one_line(adj, match):
    with pytest.raises(PanelInputError, match=match) as exc:
        estimate_spillover(_panel(), "y", adjacency=adj)
    assert "\n" not in str(exc.value)


def test_option_errors():
    with pytest.raises(ValueError, match="max_e must be an integer"):
        estimate_spillover(_panel(), "y", adjacency=_ring(), max_e=-1)
    with pytest.raises(TypeError, match="unknown option 'weights'"):
        get_estimator("spillover")(_panel(), "y", adjacency=_ring(), weights="w")


def test_small_monte_carlo_bias_and_coverage():
    # 50 seeded noisy panels of 180 stations on a ring (30 adopters, 60 exposed neighbours); the
    # 200-panel numbers are in docs/estimators-other.md § Spillovers
    n = 180
    cohorts = {i: (4 if i % 12 == 0 else 7) for i in range(0, n, 6)}
    out = []
    for s in range(50):
        r = estimate_spillover(_panel(noise=1.0, seed=s, n=n, cohorts=cohorts), "y", adjacency=_ring(n))
        h, sp_row = r.headline, r.rows("spillover").iloc[0]
        out.append((h["estimate"], h["ci_low"] <= -3 <= h["ci_high"],
                    sp_row["estimate"], sp_row["ci_low"] <= 1.5 <= sp_row["ci_high"]))
    a = np.array(out, dtype=float)
    for j, truth in ((0, -3.0), (2, 1.5)):
        assert abs(a[:, j].mean() - truth) < 3 * a[:, j].std() / np.sqrt(len(a))
        assert a[:, j + 1].mean() >= 0.86


def test_cli_estimate_spillover(tmp_path):
    p = _panel(noise=1.0, seed=4)
    p.to_csv(tmp_path / "panel.csv", index=False)
    _ring().to_csv(tmp_path / "adj.csv", index=False)
    base = [sys.executable, "-m", "evalkit", "estimate", str(tmp_path / "panel.csv"), "--outcome", "y",
            "--method", "spillover"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([*base, "--adjacency", str(tmp_path / "adj.csv"), "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "spillover_e=0" in proc.stdout
    got = EstimationResult.from_json(tmp_path / "r.json").estimates
    want = estimate_spillover(p, "y", adjacency=_ring()).estimates
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=0, atol=1e-10)
    miss = subprocess.run(base, capture_output=True, text=True, cwd=root)
    assert miss.returncode == 2 and miss.stderr.strip() == (
        "error: method spillover needs --adjacency FILE (station pairs: station_id, neighbor_id)")
    other = subprocess.run([*base[:-1], "imputation", "--adjacency", str(tmp_path / "adj.csv")],
                           capture_output=True, text=True, cwd=root)
    assert other.returncode == 2 and "--adjacency does not apply to method imputation" in other.stderr
