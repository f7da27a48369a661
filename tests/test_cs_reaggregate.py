"""CS re-aggregation of a stored fit (``cs.reaggregate``) against a full refit: same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators.cs import estimate_cs, reaggregate


def _panel(n=60, T=20, seed=0, holes=0.0):
    rng = np.random.default_rng(seed)
    uu, tt = np.meshgrid(np.arange(n), np.arange(T), indexing="ij")
    first = np.array([0, 0, 8, 11, 14])[np.arange(n) % 5]
    ff = first[uu]
    y = rng.normal(0, 1, n)[uu] + 0.1 * tt + rng.normal(0, 1, (n, T)) - 0.5 * ((ff > 0) & (tt >= ff))
    df = pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel() + 1, "first_treat": np.where(ff > 0, ff + 1, 0).ravel(),
                       "y": y.ravel(), "county": (uu % 7).ravel(), "pop": (1 + uu % 4).ravel().astype(float)})
    if holes:
        df = df.drop(df.sample(frac=holes, random_state=seed).index).reset_index(drop=True)
    return df


CASES = [
    ("balanced", {}),
    ("balanced", {"weights": "pop", "cluster": "county"}),
    ("balanced", {"cluster": "county", "control": "notyet", "trim_e": (-3, 5)}),
    ("unbalanced", {"cluster": "county"}),
    ("unbalanced", {}),
]


@pytest.mark.parametrize(("shape", "opts"), CASES)
@pytest.mark.parametrize("bootstrap", [0, 199])
def test_reaggregate_equals_refit(shape, opts, bootstrap):
    df = _panel(holes=0.05 if shape == "unbalanced" else 0.0)
    fit = estimate_cs(df, "y", **opts)  # all four aggregations, analytic
    for aggs in [("simple", "dynamic"), ("group",), ("simple", "dynamic", "group", "calendar")]:
        again = reaggregate(fit, bootstrap=bootstrap, seed=7, aggregations=aggs)
        refit = estimate_cs(df, "y", **opts, bootstrap=bootstrap, seed=7, aggregations=aggs)
        a, b = again.estimates, refit.estimates
        assert list(a["term"]) == list(b["term"]) and list(a["kind"]) == list(b["kind"])
        num = [c for c in b.columns if pd.api.types.is_float_dtype(b[c])]
        np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=0, atol=1e-12)
        assert again.meta["bootstrap"] == bootstrap and again.meta["trim_e"] == refit.meta["trim_e"]


def test_reaggregate_twice_and_alpha():
    df = _panel()
    fit = estimate_cs(df, "y", bootstrap=99, seed=1)
    a = reaggregate(fit, bootstrap=99, seed=3)
    b = reaggregate(fit, bootstrap=99, seed=3)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    c = reaggregate(fit, bootstrap=0, alpha=0.1)
    ref = estimate_cs(df, "y", alpha=0.1, aggregations=("simple", "dynamic"))
    np.testing.assert_allclose(c.estimates["ci_low"], ref.estimates["ci_low"], atol=1e-12)


def test_reaggregate_needs_a_cs_fit_in_memory():
    df = _panel()
    fit = estimate_cs(df, "y")
    fit._gt = None
    with pytest.raises(ValueError, match="fit estimate_cs on the panel again"):
        reaggregate(fit, bootstrap=0)
