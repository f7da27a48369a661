"""evalkit.distributions gives exactly scipy.stats' numbers, and the evaluation path no longer imports
scipy.stats (issue 15: ~0.45 s of every `evalkit run`'s kernel start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evalkit import distributions as d

SRC = str(Path(__file__).resolve().parents[1] / "src")

X = np.array([-np.inf, -1e300, -40.0, -38.5, -10.0, -3.1, -1.96, -1.0, -1e-300, -0.0, 0.0, 5e-324, 1e-12,
              0.3, 1.0, 1.959963984540054, 2.5, 8.3, 10.0, 37.5, 40.0, 1e3, 1e300, np.inf, np.nan])
Q = np.array([-0.5, -0.0, 0.0, 5e-324, 1e-300, 1e-12, 0.001, 0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975,
              0.999, 1 - 1e-12, 1 - 2 ** -53, 1.0, 1.5, np.inf, np.nan])
DF = np.array([-np.inf, -1.0, 0.0, 1e-3, 0.5, 1.0, 2.0, 3.0, 4.5, 9.0, 14.0, 30.0, 99.0, 1e4, 1e8, 1e15,
               np.inf, np.nan])


def same(a, b) -> bool:
    """Bit-identical: same type, dtype, shape and bytes (so -0.0 ≠ 0.0, NaN = NaN)."""
    if type(a) is not type(b):
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_same_is_strict():
    assert not same(np.float64(0.0), np.float64(-0.0))
    assert not same(np.float64(1.0), np.array(1.0))
    assert same(np.float64(np.nan), np.float64(np.nan))


@pytest.mark.parametrize("ours, theirs", [(d.norm_cdf, stats.norm.cdf), (d.norm_sf, stats.norm.sf)])
def test_normal_tails_bit_identical(ours, theirs):
    assert same(ours(X), theirs(X))
    for x in X:
        assert same(ours(x), theirs(x)), x
        assert same(ours(float(x)), theirs(float(x))), x
    ints = np.array([-3, 0, 2])
    assert same(ours(ints), theirs(ints))
    assert same(ours([0.5, -1.0]), theirs([0.5, -1.0]))
    assert same(ours(X.reshape(5, 5)), theirs(X.reshape(5, 5)))


def test_normal_quantile_bit_identical():
    assert same(d.norm_ppf(Q), stats.norm.ppf(Q))
    for q in Q:
        assert same(d.norm_ppf(q), stats.norm.ppf(q)), q
    assert same(d.norm_ppf(0), stats.norm.ppf(0)) and same(d.norm_ppf(1), stats.norm.ppf(1))
    assert d.norm_ppf(0.975) == stats.norm.ppf(0.975)  # the 1.96 of every CI
    assert same(d.norm_ppf(0.5), np.float64(0.0))


@pytest.mark.parametrize("ours, theirs", [(d.t_sf, stats.t.sf), (d.chi2_sf, stats.chi2.sf)])
def test_t_and_chi2_tails_bit_identical(ours, theirs):
    xs, dfs = np.meshgrid(X, DF)
    assert same(ours(xs, dfs), theirs(xs, dfs))
    for x in X:
        for df in DF:
            assert same(ours(x, df), theirs(x, df)), (x, df)
    for df in (1, 5, 14, 99, 10 ** 6):  # integer degrees of freedom, as the callers pass them
        assert same(ours(X, df), theirs(X, df)), df
        assert same(ours(3.2, df), theirs(3.2, df)), df
    assert same(ours(X, DF[:, None]), theirs(X, DF[:, None]))  # broadcasting


def test_t_quantile_bit_identical():
    qs, dfs = np.meshgrid(Q, DF)
    assert same(d.t_ppf(qs, dfs), stats.t.ppf(qs, dfs))
    for q in Q:
        for df in DF:
            assert same(d.t_ppf(q, df), stats.t.ppf(q, df)), (q, df)
    for g in range(2, 60):  # t_{0.975}(G-1) for the cluster counts of small evaluations
        assert same(d.t_ppf(0.975, g - 1), stats.t.ppf(0.975, g - 1)), g
    assert same(d.t_ppf([0.95, 0.975], 14), stats.t.ppf([0.95, 0.975], 14))


def test_f_tail_bit_identical():
    dfn = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 11.0, 1e4, np.inf, np.nan])
    dfd = np.array([-1.0, 0.0, 0.7, 1.0, 4.0, 13.0, 98.0, 1e6, 1e15, np.inf, np.nan])
    xs, n, m = X[:, None, None], dfn[None, :, None], dfd[None, None, :]
    assert same(d.f_sf(xs, n, m), stats.f.sf(xs, n, m))
    for x in (-1.0, 0.0, 0.4, 1.0, 2.7, 30.0, np.inf, np.nan):
        for k, g in ((1, 14), (3, 11), (12, 87), (0, 5), (4, 0), (2, -1)):  # pretrend: f_sf(F, k, G - k)
            assert same(d.f_sf(x, k, g), stats.f.sf(x, k, g)), (x, k, g)


def test_typical_p_values_bit_identical():
    rng = np.random.default_rng(20240101)
    z = rng.standard_normal(5000) * 3
    assert same(2 * d.norm_sf(np.abs(z)), 2 * stats.norm.sf(np.abs(z)))
    assert same(2 * d.t_sf(np.abs(z), 17), 2 * stats.t.sf(np.abs(z), 17))
    w = rng.chisquare(4, 5000)
    assert same(d.chi2_sf(w, 4), stats.chi2.sf(w, 4))
    assert same(d.f_sf(w, 4, 40), stats.f.sf(w, 4, 40))


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_evaluation_modules_do_not_import_scipy_stats():
    out = _python(
        "import sys, importlib\n"
        "import evalkit.evaluation, evalkit.report\n"
        "print('scipy.stats' in sys.modules)\n"
        "from evalkit.estimators.specs import SPECS\n"
        "from evalkit.evaluation_steps import STEP_MODULES\n"
        "for s in SPECS.values():\n"
        "    s.load()\n"
        "for m in STEP_MODULES + ('evalkit.heterogeneity', 'evalkit.design.power', 'evalkit.sensitivity_bins'):\n"
        "    importlib.import_module(m)\n"
        "print('scipy.stats' in sys.modules)\n"
    ).split()
    assert out == ["False", "False"]


def test_an_evaluation_does_not_import_scipy_stats(demo_warehouse):
    out = _python(
        "import sys\n"
        "import evalkit\n"
        "ev = evalkit.evaluate({'evaluation_id': 't', 'reform': '两队一室', 'outcomes': ['incidents_fight'],\n"
        "                       'region': {'area_type': 'urban'}, 'warehouse': sys.argv[1],\n"
        "                       'inference': ['randomization'], 'ri_draws': 19, 'pretrend_draws': 19})\n"
        "assert ev.headline() is not None\n"
        "print('scipy.stats' in sys.modules)\n".replace("sys.argv[1]", repr(str(demo_warehouse)))
    ).split()
    assert out == ["False"]
