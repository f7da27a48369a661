"""The CS multiplier-bootstrap robustness row re-aggregates the params' own CS fit: the same
numbers as a refit with the same options and seed (and a refit when the fit is a copy)."""

import dataclasses

import numpy as np
import pandas as pd

from evalkit.estimators import get_estimator
from evalkit.evaluation_steps import _cs_bootstrap, estimator_options
from evalkit.params import validate_params


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n, T = 24, 30
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    g = rng.choice([0, 0, 12, 18], n)[u]
    y = rng.poisson(20, n)[u] + 0.1 * t + rng.normal(0, 2, u.size) - 3.0 * ((g > 0) & (t >= g))
    return pd.DataFrame({"station_id": [f"S{i:02d}" for i in u], "period": t, "first_treat": g,
                         "incidents_fight": y})


def test_bootstrap_row_is_the_refit(monkeypatch):
    import evalkit.estimators.cs as cs_mod

    calls = []
    real = cs_mod.reaggregate
    monkeypatch.setattr(cs_mod, "reaggregate", lambda *a, **k: calls.append(1) or real(*a, **k))
    p = validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_fight"],
                         "event_window": [-6, 10]})
    panel = _panel()
    main = get_estimator("cs")(panel, "incidents_fight", **estimator_options("cs", p))
    kw = {"cluster": p.cluster, "alpha": p.alpha, "trim_e": tuple(p.event_window), "aggregations": ("simple",)}
    fast = _cs_bootstrap(panel, "incidents_fight", p, main, 199, kw)
    refit = _cs_bootstrap(panel, "incidents_fight", p, None, 199, kw)
    copy = _cs_bootstrap(panel, "incidents_fight", p, dataclasses.replace(main), 199, kw)
    assert len(calls) == 2  # the fit and its copy were re-aggregated (the copy then refitted)
    for other in (refit, copy):
        a, b = fast.estimates, other.estimates
        assert list(a["kind"]) == list(b["kind"]) and (a["kind"] == "event").any()
        num = ["estimate", "std_error", "ci_low", "ci_high", "band_low", "band_high"]
        np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=0, atol=1e-12)
    assert fast.estimates["band_low"].notna().any()  # the uniform bands the chart needs
