"""The CS multiplier bootstrap's draws and its products path (``IndicatorProducts``)."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.estimators import _cs_boot, _cs_schedule
from evalkit.estimators._cs_design import (
    MAMMEN_KAPPA,
    MAMMEN_P_LOW,
    CompactDesign,
    IndicatorProducts,
    MammenStream,
)
from evalkit.estimators.cs import estimate_cs


def test_stream_does_not_depend_on_chunking():
    a = MammenStream(np.random.default_rng(5)).bits(1, 1001).ravel()
    s = MammenStream(np.random.default_rng(5))
    parts = [s.bits(1, k).ravel() for k in (3, 1, 2, 7, 0, 5, 983)]  # odd sizes: partial raw outputs
    np.testing.assert_array_equal(np.concatenate(parts), a)


def test_stream_is_the_documented_one():
    # four 16-bit uniforms per raw PCG64 output, lowest bits first
    raw = np.random.default_rng(11).bit_generator.random_raw(3)
    want = np.array([(int(r) >> (16 * j)) & 0xFFFF for r in raw for j in range(4)], dtype=np.uint16)
    np.testing.assert_array_equal(MammenStream(np.random.default_rng(11)).bits(1, 12).ravel(), want)


def test_mammen_moments():
    w = MammenStream(np.random.default_rng(3)).draw(400, 5000)
    assert set(np.unique(w)) == {1 - MAMMEN_KAPPA, MAMMEN_KAPPA}
    p = np.mean(w < 0)
    assert abs(p - MAMMEN_P_LOW) < 4 * np.sqrt(MAMMEN_P_LOW * (1 - MAMMEN_P_LOW) / w.size)
    assert abs(w.mean()) < 0.003 and abs(w.var() - 1) < 0.005
    assert abs(np.mean(w**3) - 1) < 0.02  # Mammen: third moment 1


def test_other_bit_generators():
    s = MammenStream(np.random.Generator(np.random.MT19937(1)))
    u = s.bits(4, 100)
    assert u.dtype == np.uint16 and u.shape == (4, 100)
    again = MammenStream(np.random.Generator(np.random.MT19937(1))).bits(4, 100)
    np.testing.assert_array_equal(u, again)


@pytest.mark.parametrize("centred", [True, False])
def test_products_equal_design_product(centred):
    """(V X)' from IndicatorProducts (float32, chunked, by two threads) equals the design's
    product with the same draws as multipliers and the exact float64 product, up to
    single-precision rounding — for a centred outcome block and for a non-centred one (the
    ``[z, O]`` design of unbalanced panels)."""
    import threading

    rng = np.random.default_rng(0)
    bounds = np.array([0, 40, 95, 180, 300])
    z = rng.normal(size=(300, 7)) + 3.0
    if centred:
        for c in range(4):
            z[bounds[c]:bounds[c + 1]] -= z[bounds[c]:bounds[c + 1]].mean(axis=0)
    b = 130
    prod = IndicatorProducts(MammenStream(np.random.default_rng(9)), [64, 64, 2], z, bounds, centred=centred)
    th = threading.Thread(target=prod.run)
    th.start()
    prod.run()
    th.join()
    got = prod.result()
    v = MammenStream(np.random.default_rng(9)).draw(b, 300)
    design = CompactDesign(z, bounds, centred=centred)
    ref = design.vx(v.astype(np.float32)).T
    assert got.shape == ref.shape == (design.p, b)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * np.abs(ref).max())
    exact = (v @ _blocks(z, bounds)).T  # float64 multipliers times the dense design
    np.testing.assert_allclose(got, exact, rtol=0, atol=2e-5 * np.abs(exact).max())


def _blocks(z, bounds):
    """The compact design matrix X (units x (cohorts*T + cohorts)), dense."""
    kc, t = len(bounds) - 1, z.shape[1]
    x = np.zeros((z.shape[0], kc * t + kc))
    for c in range(kc):
        s, e = bounds[c], bounds[c + 1]
        x[s:e, c * t:(c + 1) * t] = z[s:e]
        x[s:e, kc * t + c] = 1.0
    return x


@pytest.fixture()
def panel():
    rng = np.random.default_rng(1)
    n, t = 600, 12
    g = rng.choice([0, 5, 8, 10], n)
    unit = np.repeat(np.arange(n), t)
    per = np.tile(np.arange(1, t + 1), n)
    gg = np.repeat(g, t)
    y = rng.normal(size=n * t) + np.repeat(rng.normal(size=n), t) + 0.5 * ((gg > 0) & (per >= gg))
    import pandas as pd

    return pd.DataFrame({"station_id": unit, "period": per, "first_treat": gg, "y": y})


def test_bootstrap_same_with_and_without_helper_thread(panel, monkeypatch):
    out = {}
    for mode in ("1", "2"):
        monkeypatch.setenv("EVALKIT_CS_THREADS", mode)
        _cs_schedule._POOL.clear()
        out[mode] = estimate_cs(panel, "y", bootstrap=499, seed=4).estimates
    import pandas as pd

    pd.testing.assert_frame_equal(out["1"], out["2"])


def test_bootstrap_products_path_matches_generic_path(panel, monkeypatch):
    """The products path (0/1 draws, float32 products) and the multiplier path (same draws as
    multipliers, ``CompactDesign.vx``) give the same bootstrap SEs and bands up to
    single-precision rounding."""
    monkeypatch.setenv("EVALKIT_CS_THREADS", "1")
    fast = estimate_cs(panel, "y", bootstrap=499, seed=4).estimates
    monkeypatch.setattr(_cs_boot, "indicator_blocks_ok", lambda bounds: False)  # forces the generic path
    slow = estimate_cs(panel, "y", bootstrap=499, seed=4).estimates
    def half_width(e):  # of the uniform band (its ends can be near zero: compare the widths)
        return (e["band_high"] - e["band_low"]).to_numpy(float) / 2

    for a, b in ((fast["std_error"].to_numpy(float), slow["std_error"].to_numpy(float)),
                 (half_width(fast), half_width(slow))):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-4)
