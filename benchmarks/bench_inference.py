"""Permutation inference on the headline estimators, before and after the fast routes (issues 14/15).

    PYTHONPATH=src python benchmarks/bench_inference.py [--draws 199] [--before-draws 20]

One table, both columns measured in the same run:

* randomization inference (``scheme="permute"``) of CS and imputation on a 100-station x 84-month
  panel (the demo size): ``after`` = ``randomization_inference(estimator=...)``; ``before`` = the same
  call with the estimator passed as a callable (one full estimator call per draw, as before);
* Romano–Wolf over 3 outcomes (county clusters) on CS and imputation fits: ``before`` = the
  per-draw re-fits (the fast route switched off);
* the permutation pre-trend test on CS and imputation fits, on the 100-station panel and on a
  14-station county (6 adopters): ``before`` = full re-fits per draw;
* CS multiplier bootstrap (999 draws): ``cs.reaggregate`` of a stored fit vs a refit;
* the headline jackknife (``headline_se: auto``) over 3 outcomes on a 44-station x 84-month panel
  (17 adopters, the small demo world's two_teams_fights size; imputation with ``max_e=24`` as the
  params give it), by station and by county: ``before`` = one full re-fit per cluster with the
  estimator's own pre-trend test (as before), ``after`` = today's route without re-fits (imputation:
  the downdated first stage; CS: the fit's (g, t) cells with the cluster's units masked); the
  leave-one-out estimates of both asserted equal to 1e-10. ``--jackknife-only`` runs just these rows.

``before`` runs only ``--before-draws`` draws and is scaled to ``--draws`` (per-draw cost x draws,
plus the same fixed cost); the numbers of both routes are asserted equal (p-values to 1e-10).
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from _table import print_table  # benchmarks/_table.py (scripts run from this folder)

import evalkit.inference._fast as fast_mod
import evalkit.inference._refit as refit_mod
import evalkit.inference.pretrend as pt
from evalkit.estimators import get_estimator
from evalkit.estimators.cs import estimate_cs, reaggregate
from evalkit.inference import jackknife
from evalkit.inference.multiple import romano_wolf
from evalkit.inference.pretrend import pretrend_test
from evalkit.inference.randomization import randomization_inference


def panel(n: int, T: int, adopters: int, seed: int = 0) -> pd.DataFrame:
    """Staggered adoption (cohorts at T/3, T/2, 2T/3), AR(1) noise, a county per 5 stations, 3 outcomes."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    first_u = np.zeros(n, dtype=int)
    first_u[:adopters] = np.array([T // 3, T // 2, 2 * T // 3])[np.arange(adopters) % 3]
    df = pd.DataFrame({"station_id": u, "period": t, "first_treat": first_u[u], "county": u // 5})
    d = (df["first_treat"] > 0) & (df["period"] >= df["first_treat"])
    for k, eff in enumerate((0.3, 0.0, 0.1)):
        e = rng.normal(size=(n, T))
        for j in range(1, T):
            e[:, j] += 0.5 * e[:, j - 1]
        df[f"y{k}"] = 5 + rng.normal(size=n)[u] + 0.01 * t + eff * d + e.ravel()
    return df


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def scaled(fn_few, fn_one, draws: int, few: int) -> float:
    """Seconds for ``draws`` draws from runs with ``few`` and 1 draw: fixed + per-draw x draws."""
    t_few, _ = timed(fn_few)
    t_one, _ = timed(fn_one)
    per = max(t_few - t_one, 0.0) / max(few - 1, 1)
    return t_one - per + per * draws


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=199)
    ap.add_argument("--before-draws", type=int, default=20)
    ap.add_argument("--jackknife-only", action="store_true")
    a = ap.parse_args()
    B, few = a.draws, a.before_draws
    warnings.simplefilter("ignore")
    if a.jackknife_only:
        print_table(pd.DataFrame(jackknife_rows()))
        return
    demo = panel(100, 84, 30)
    county = panel(14, 84, 6, seed=1)
    rows = []

    def row(item, setting, before, after):
        rows.append({"item": item, "setting": setting, "draws": B, "before_s": before, "after_s": after,
                     "speedup": before / after if after > 0 else np.nan})

    for name in ("cs", "imputation"):
        est = get_estimator(name)

        def call(d, o, _e=est, **k):
            return _e(d, o, **k)

        after, ri = timed(lambda n=name: randomization_inference(demo, "y0", estimator=n, draws=B, seed=0))
        chk = randomization_inference(demo, "y0", estimator=call, draws=few, seed=0)
        fast_few = randomization_inference(demo, "y0", estimator=name, draws=few, seed=0)
        np.testing.assert_allclose(chk.tables["placebo"]["estimate"], fast_few.tables["placebo"]["estimate"],
                                   atol=1e-10)
        before = scaled(lambda: randomization_inference(demo, "y0", estimator=call, draws=few, seed=0),
                        lambda: randomization_inference(demo, "y0", estimator=call, draws=1, seed=0), B, few)
        row("randomization inference", f"{name}, 100 x 84", before, after)

    for name in ("cs", "imputation"):
        fits = [get_estimator(name)(demo, o, cluster="county") for o in ("y0", "y1", "y2")]
        after, rw = timed(lambda f=fits: romano_wolf(f, draws=B, seed=0))
        with patched(fast_mod, "fast_headline", lambda *x, **k: None):
            slow_few = romano_wolf(fits, draws=few, seed=0)
            before = scaled(lambda f=fits: romano_wolf(f, draws=few, seed=0),
                            lambda f=fits: romano_wolf(f, draws=1, seed=0), B, few)
        fast_few = romano_wolf(fits, draws=few, seed=0)
        np.testing.assert_allclose(slow_few.p_romano_wolf, fast_few.p_romano_wolf, atol=1e-10)
        row("Romano-Wolf, 3 outcomes", f"{name}, 100 x 84, county clusters", before, after)

    for label, data in (("100 x 84", demo), ("14-station county", county)):
        for name, hook in (("cs", "_batched_cs"), ("imputation", "_batched_imputation")):
            fit = get_estimator(name)(data, "y1")
            after, res = timed(lambda f=fit: pretrend_test(f, method="permutation", draws=B, seed=0))
            with patched(pt, hook, lambda *x, **k: None):
                slow_few = pretrend_test(fit, method="permutation", draws=few, seed=0)
                before = scaled(lambda f=fit: pretrend_test(f, method="permutation", draws=few, seed=0),
                                lambda f=fit: pretrend_test(f, method="permutation", draws=1, seed=0), B, few)
            fast_few = pretrend_test(fit, method="permutation", draws=few, seed=0)
            assert abs(slow_few.p_value - fast_few.p_value) < 1e-10 and np.isfinite(res.p_value)
            row("pre-trend permutation", f"{name}, {label}", before, after)

    fit = estimate_cs(demo, "y0", cluster="county")
    before, ref = timed(lambda: estimate_cs(demo, "y0", cluster="county", bootstrap=999, seed=1,
                                            aggregations=("simple", "dynamic")))
    after, again = timed(lambda: reaggregate(fit, bootstrap=999, seed=1))
    np.testing.assert_allclose(ref.estimates["std_error"], again.estimates["std_error"], atol=1e-12)
    rows.append({"item": "CS bootstrap re-aggregation", "setting": "100 x 84, 999 draws (refit vs reaggregate)",
                 "draws": 999, "before_s": before, "after_s": after, "speedup": before / after})
    rows += jackknife_rows()
    print_table(pd.DataFrame(rows))


def jackknife_rows() -> list[dict]:
    """Headline jackknife, 3 outcomes, 44 x 84: before (re-fits with the pre-trend test) and after."""
    jk_mod = importlib.import_module("evalkit.inference.jackknife")  # the package exports the function
    small = panel(44, 84, 17, seed=2)
    small["county"] = small["station_id"] // 7
    out = []
    for name, opts in (("imputation", {"max_e": 24, "horizons": list(range(25)), "pretrend_leads": 12}),
                       ("cs", {"trim_e": (-12, 24)})):
        for cl in ("station_id", "county"):
            kw = {} if cl == "station_id" else {"cluster": cl}
            fits = [get_estimator(name)(small, o, **opts, **kw) for o in ("y0", "y1", "y2")]
            after, fast = timed(lambda f=fits: [jackknife(r) for r in f])
            with patched(jk_mod, "_fast_thetas", lambda *x, **k: None), \
                    patched(refit_mod, "PRETREND_OFF", {}):
                before, slow = timed(lambda f=fits: [jackknife(r) for r in f])
            for x, y in zip(fast, slow, strict=True):
                assert x.ok and y.ok
                np.testing.assert_allclose(x.leave_out, y.leave_out, rtol=0, atol=1e-10)
            out.append({"item": "headline jackknife, 3 outcomes", "setting": f"{name}, 44 x 84, {cl} clusters "
                        f"({fast[0].n_clusters} fits per outcome before)", "draws": fast[0].n_clusters,
                        "before_s": before, "after_s": after, "speedup": before / after if after > 0 else np.nan})
    return out


if __name__ == "__main__":
    main()
