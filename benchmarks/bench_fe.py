"""TWFE and event-study TWFE on the shared fit engine vs pyfixest (issue 15 target: >= 5x faster).

    PYTHONPATH=src python benchmarks/bench_fe.py [--sizes 10000x60,40000x120] [--repeat 3]

Balanced staggered panels (a quarter never treated, three cohorts), station-clustered CRV1.  Each
cell is the best of ``--repeat`` warm runs; ``evalkit_s`` is the estimator end to end (the shared sample's
validation included), ``engine_s`` the fit engine alone on ready arrays (pyfixest's numba kernels compiled by a warm-up call);
memory is the peak traced by ``tracemalloc`` during one call (Python/numpy allocations).  The
coefficients and standard errors of both are asserted equal (rtol 1e-6: pyfixest's demeaning is
iterative with tolerance 1e-8) before a row is printed.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from _table import print_table  # benchmarks/_table.py (scripts run from this folder)

from evalkit.estimators import _fe
from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe, event_dummies

LEADS, LAGS = 12, 24


def panel(n: int, T: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    first = rng.choice([0, T // 3, T // 2, 2 * T // 3], n)[u]
    y = rng.normal(size=n)[u] + 0.01 * t + ((first > 0) & (t >= first)) * 0.3 + rng.normal(size=u.size)
    return pd.DataFrame({"station_id": u, "period": t, "first_treat": first, "y": y})


def best(fn, repeat: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def run_size(n: int, T: int, repeat: int, pf) -> list[dict]:
    """Both estimators at one size: evalkit end to end (sample validation included), the engine
    alone (``feols`` on ready arrays) and pyfixest; asserts equal coefficients and SEs."""
    d = panel(n, T)
    s = _fe.fe_sample(d, "y", unit="station_id", time="period", cohort="first_treat", cluster=None)
    g = d["first_treat"].replace(0, np.inf).to_numpy(float)
    d["D"] = (d["period"].to_numpy() >= g).astype(float)
    X, ks = event_dummies(g, d["period"].to_numpy(float), LEADS, LAGS, -1)
    ev_names = [f"e{j}" for j in range(len(ks))]
    dpf = pd.concat([d, pd.DataFrame(X.toarray(), columns=ev_names)], axis=1)
    Xs, _ = event_dummies(s.cohort, s.period, LEADS, LAGS, -1)
    D = (np.isfinite(s.cohort) & (s.period >= s.cohort)).astype(float)
    jobs = {
        "TWFE": (lambda: estimate_twfe(d, "y"),
                 lambda: _fe.feols(s.y, D, [s.unit, s.time], cluster=s.cluster),
                 lambda: pf.feols("y ~ D | station_id + period", data=d, vcov={"CRV1": "station_id"})),
        "event TWFE": (lambda: estimate_event_twfe(d, "y", leads=LEADS, lags=LAGS),
                       lambda: _fe.feols(s.y, Xs, [s.unit, s.time], cluster=s.cluster),
                       lambda: pf.feols("y ~ " + "+".join(ev_names) + " | station_id + period", data=dpf,
                                        vcov={"CRV1": "station_id"})),
    }
    rows = []
    for name, (ours, engine, peer) in jobs.items():
        peer()  # warm-up (numba compilation)
        t_ours, r = best(ours, repeat)
        t_engine, _ = best(engine, repeat)
        t_peer, f = best(peer, repeat)
        if name == "TWFE":
            got = np.array([[r.att, r.overall["std_error"]]])
        else:
            ev = r.rows("event").query("event_time != -1").sort_values("event_time")
            got = ev[["estimate", "std_error"]].to_numpy()
        np.testing.assert_allclose(got[:, 0], f.coef().to_numpy(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got[:, 1], f.se().to_numpy(), rtol=1e-6)
        rows.append({"estimator": name, "size": f"{n:,} x {T}", "evalkit_s": t_ours, "engine_s": t_engine,
                     "pyfixest_s": t_peer, "speed-up": t_peer / t_ours, "engine speed-up": t_peer / t_engine,
                     "evalkit_peak_MiB": peak_mib(ours), "pyfixest_peak_MiB": peak_mib(peer)})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000x60,40000x120")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import pyfixest as pf

    warnings.simplefilter("ignore")
    rows = []
    for size in args.sizes.split(","):
        n, T = (int(v) for v in size.split("x"))
        rows += run_size(n, T, args.repeat, pf)
    print()
    table = pd.DataFrame(rows)
    print_table(table, ".3f")


if __name__ == "__main__":
    main()
