"""The robustness table's regression estimators vs their peers, one table (issue 15: each at least as
fast as the fastest peer that has it; TWFE and event TWFE >= 5x faster than pyfixest).

    PYTHONPATH=src python benchmarks/bench_fe.py [--sizes 10000x60,40000x120] [--repeat 3]
                                                 [--slow-peer-max-rows 600000] [--did-imputation-max-rows N]
                                                 [--only twfe,event_twfe,sa,imputation,imputation_nlo]
                                                 [--skip-peers event_twfe]

Balanced staggered panels (a quarter never treated, three cohorts), station-clustered.  Per estimator
and size: ``evalkit_s`` is the estimator end to end (the shared sample's validation included) and
``engine_s`` (TWFE rows) the fit engine alone on ready arrays; each peer is timed on the same panel in
the same run (best of ``--repeat`` warm runs; a peer call over 20 s runs once).  ``*_cpu_s``: the
process CPU time of the same calls (best of the repeats): on a shared machine where this niced
process gets a varying share of a core, wall-time ratios move with the scheduler and CPU-time ratios
do not (every evalkit call here runs one thread; pyfixest's numba kernels may use more than one, which
counts against it in CPU time, so both ratios are printed).  Peers:

* twfe, event_twfe: pyfixest ``feols`` (CRV1 by station; numba kernels compiled by a warm-up call);
* sa: pyfixest ``event_study(estimator="saturated")`` + ``aggregate()`` and diff-diff ``SunAbraham``
  (both take minutes at 10,000 x 60: they run only up to ``--slow-peer-max-rows`` rows);
* imputation: diff-diff ``ImputationDiD(leave_one_out=True)`` (the BJS leave-out variance, as ours).
  Both imputation rows time ours with ``pretrend_leads=0``: the peers compute the estimate and its SE
  only, while our default also runs BJS test 1 (a second regression on the untreated rows with lead
  dummies, about half of our time; ``benchmarks/bench_evaluation.py`` times the default);
* imputation_nlo (ours with ``leaveout=False``, the in-sample cell means of BJS Theorem 3): the
  ``did-imputation`` package (PyPI, MIT; a port of BJS's Stata ``did_imputation``, which has no
  leave-out option yet) and diff-diff ``ImputationDiD(leave_one_out=False)``.  did-imputation finds
  the fixed effects and imputation weights iteratively to tolerance 1e-6, so its estimate and SE are
  asserted equal to ours to rtol 1e-5 (diff-diff's to 1e-6).
  pyfixest ``did2s`` is not timed: it reports Gardner's GMM SE (a different variance) and its dense
  first-stage model matrix with 10,000 unit effects does not fit this machine.

``--did-imputation-max-rows``: largest panel on which did-imputation runs (about 2 minutes of wall
time at 10,000 x 60 on the loaded machine; its pandas group-wise loops grow with the rows).

``--skip-peers``: estimators whose peers are not run (pyfixest's event study at 40,000 x 120 held
more than 17 GB of this 23 GB machine and was stopped).

Estimates and SEs are asserted equal before a row is printed (rtol 1e-6: pyfixest's demeaning is
iterative with tolerance 1e-8; static TWFE rtol 1e-8, where it converges to ~1e-14).  Peak memory: ``tracemalloc`` over one call (Python/numpy allocations;
not measured for peer calls over 20 s).  ``speed-up`` = fastest peer / evalkit.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from _table import print_table  # benchmarks/_table.py (scripts run from this folder)

from evalkit.estimators import _fe
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators.imputation import estimate_imputation
from evalkit.estimators.sunab import estimate_sunab
from evalkit.estimators.twfe import estimate_event_twfe, estimate_twfe, event_dummies

LEADS, LAGS = 12, 24
SLOW_S = 20.0  # a peer call slower than this runs once, without the memory trace


def panel(n: int, T: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    first = rng.choice([0, T // 3, T // 2, 2 * T // 3], n)[u]
    y = rng.normal(size=n)[u] + 0.01 * t + ((first > 0) & (t >= first)) * 0.3 + rng.normal(size=u.size)
    return pd.DataFrame({"station_id": u, "period": t, "first_treat": first, "y": y})


def best(fn, repeat: int) -> tuple[float, object, float]:
    """(best wall s, last output, best CPU s of this process over the same calls)."""
    out, times, cpu = None, [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if times[-1] > SLOW_S:
            break
    return min(times), out, min(cpu)


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


# ------------------------------------------------------------------ equality checks (raise if unequal)
def _close(a, b, what: str, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol, err_msg=what)


def check_feols(got: np.ndarray, f, rtol: float = 1e-6) -> None:
    _close(got[:, 0], f.coef().to_numpy(), "coefficients", rtol=rtol)
    _close(got[:, 1], f.se().to_numpy(), "standard errors", rtol=rtol, atol=0)


def check_feols_1e8(got: np.ndarray, f) -> None:  # static TWFE: pyfixest's demeaning converges to ~1e-14 here
    check_feols(got, f, rtol=1e-8)


def check_sa_pyfixest(r, es_agg) -> None:
    es, agg = es_agg
    tid = es.tidy()
    _close(np.sort(r.tables["cells"]["estimate"]), np.sort(tid["Estimate"]), "cell estimates", atol=1e-8)
    _close(np.sort(r.tables["cells"]["std_error"]), np.sort(tid["Std. Error"]), "cell SEs", atol=0)
    ev = r.event_study().set_index("event_time")
    idx = agg.index.astype(float).astype(int)
    _close(ev.loc[idx, "estimate"], agg["Estimate"].astype(float), "event estimates", atol=1e-8)
    _close(ev.loc[idx, "std_error"], agg["Std. Error"].astype(float), "event SEs", atol=0)


def check_overall(r, res) -> None:
    _close([r.att, r.se], [res.overall_att, res.overall_se], "overall ATT and SE", atol=0)


def check_did_imputation(r, out) -> None:  # iterative to tolerance 1e-6 (module docstring)
    _close([r.att, r.se], [out.estimates["tau_ate"], out.std_errors["tau_ate"]], "overall ATT and SE",
           rtol=1e-5, atol=0)


# ------------------------------------------------------------------ jobs
def jobs(d: pd.DataFrame, only: set[str], slow_ok: bool, did_imputation_ok: bool = True) -> list[dict]:
    """One dict per estimator: ours, engine (or None), peers {name: (call, check)}."""
    import pyfixest as pf

    out = []
    s = fe_sample(d, "y", unit="station_id", time="period", cohort="first_treat", cluster=None)
    g = d["first_treat"].replace(0, np.inf).to_numpy(float)
    if "twfe" in only:
        dd = d.assign(D=(d["period"].to_numpy() >= g).astype(float))
        D = (np.isfinite(s.cohort) & (s.period >= s.cohort)).astype(float)
        out.append({
            "estimator": "twfe", "ours": lambda: estimate_twfe(d, "y"),
            "got": lambda r: np.array([[r.att, r.overall["std_error"]]]),
            "engine": lambda: _fe.feols(s.y, D, [s.unit, s.time], cluster=s.cluster, grid=s.grid),
            "peers": {"pyfixest feols": (lambda: pf.feols("y ~ D | station_id + period", data=dd,
                                                          vcov={"CRV1": "station_id"}), check_feols_1e8)}})
    if "event_twfe" in only:
        X, ks = event_dummies(g, d["period"].to_numpy(float), LEADS, LAGS, -1)
        names = [f"e{j}" for j in range(len(ks))]
        dpf = pd.concat([d, pd.DataFrame(X.toarray(), columns=names)], axis=1)
        Xs, _ = event_dummies(s.cohort, s.period, LEADS, LAGS, -1)

        def got_ev(r):
            ev = r.rows("event").query("event_time != -1").sort_values("event_time")
            return ev[["estimate", "std_error"]].to_numpy()

        out.append({
            "estimator": "event_twfe", "ours": lambda: estimate_event_twfe(d, "y", leads=LEADS, lags=LAGS),
            "got": got_ev, "engine": lambda: _fe.feols(s.y, Xs, [s.unit, s.time], cluster=s.cluster),
            "peers": {"pyfixest feols": (lambda: pf.feols("y ~ " + "+".join(names) + " | station_id + period",
                                                          data=dpf, vcov={"CRV1": "station_id"}), check_feols)}})
    if "sa" in only:
        from diff_diff import SunAbraham

        def pf_sat():
            es = pf.event_study(data=d, yname="y", idname="station_id", tname="period", gname="first_treat",
                                estimator="saturated", cluster="station_id")
            return es, es.aggregate()

        peers = {"pyfixest saturated": (pf_sat, check_sa_pyfixest),
                 "diff-diff SunAbraham": (lambda: SunAbraham(cluster="station_id").fit(
                     d, "y", "station_id", "period", "first_treat"), check_overall)} if slow_ok else {}
        out.append({"estimator": "sa", "ours": lambda: estimate_sunab(d, "y"), "engine": None, "peers": peers})
    if "imputation" in only:
        from diff_diff import ImputationDiD

        out.append({"estimator": "imputation", "ours": lambda: estimate_imputation(d, "y", pretrend_leads=0), "engine": None,
                    "peers": {"diff-diff ImputationDiD": (lambda: ImputationDiD(
                        cluster="station_id", leave_one_out=True).fit(d, "y", "station_id", "period", "first_treat"),
                        check_overall)}})
    if "imputation_nlo" in only:
        from diff_diff import ImputationDiD

        peers = {"diff-diff ImputationDiD": (lambda: ImputationDiD(cluster="station_id", leave_one_out=False).fit(
            d, "y", "station_id", "period", "first_treat"), check_overall)}
        if did_imputation_ok:
            from did_imputation import did_imputation

            di = d.assign(Ei=d["first_treat"].replace(0, np.nan).astype(float))
            peers["did-imputation"] = (lambda: did_imputation(di, "y", "station_id", "period", "Ei", minn=0),
                                       check_did_imputation)
        out.append({"estimator": "imputation_nlo", "ours": lambda: estimate_imputation(d, "y", leaveout=False, pretrend_leads=0),
                    "engine": None, "peers": peers})
    return out


def run_size(n: int, T: int, repeat: int, only: set[str], slow_peer_max_rows: int,
             skip_peers: set[str] = frozenset(), did_imputation_max_rows: int = 10**9) -> list[dict]:
    d = panel(n, T)
    rows = []
    for job in jobs(d, only, n * T <= slow_peer_max_rows, n * T <= did_imputation_max_rows):
        if job["estimator"] in skip_peers:
            job["peers"] = {}
        job["ours"]()  # warm-up (imports, first-call allocations)
        t_ours, r, c_ours = best(job["ours"], repeat)
        row = {"estimator": job["estimator"], "size": f"{n:,} x {T}", "evalkit_s": t_ours, "evalkit_cpu_s": c_ours,
               "engine_s": best(job["engine"], repeat)[0] if job["engine"] else np.nan,
               "evalkit_peak_MiB": peak_mib(job["ours"])}
        peer_times, peer_cpu = {}, {}
        for name, (call, check) in job["peers"].items():
            if name.startswith("pyfixest feols"):
                call()  # warm-up (numba compilation)
            t_peer, f, peer_cpu[name] = best(call, repeat)
            if "got" in job:
                check(job["got"](r), f)
            else:
                check(r, f)
            peer_times[name] = t_peer
            mem = peak_mib(call) if t_peer <= SLOW_S else np.nan
            row.update({f"{name} s": t_peer, f"{name} peak_MiB": mem})
        if peer_times:
            fastest = min(peer_times, key=peer_times.get)
            row.update({"fastest peer": fastest, "peer_s": peer_times[fastest],
                        "speed-up": peer_times[fastest] / t_ours, "peer_cpu_s": peer_cpu[fastest],
                        "speed-up CPU": peer_cpu[fastest] / c_ours, "equal": "asserted",
                        "peer_peak_MiB": row[f"{fastest} peak_MiB"],
                        "other peers": "; ".join(f"{k} {v:.2f} s" for k, v in peer_times.items() if k != fastest)})
        else:
            row.update({"fastest peer": "not run (--skip-peers / --slow-peer-max-rows)", "peer_s": np.nan,
                        "speed-up": np.nan, "peer_cpu_s": np.nan, "speed-up CPU": np.nan, "equal": "—", "peer_peak_MiB": np.nan, "other peers": ""})
        row["load avg (1 min)"] = round(os.getloadavg()[0], 1)  # the machine's load when the row finished
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format="%.3f"), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000x60,40000x120")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="twfe,event_twfe,sa,imputation,imputation_nlo")
    ap.add_argument("--slow-peer-max-rows", type=int, default=600_000,
                    help="largest panel (rows) on which the Sun-Abraham peers (minutes per call) run")
    ap.add_argument("--did-imputation-max-rows", type=int, default=10**9,
                    help="largest panel (rows) on which the did-imputation package runs")
    ap.add_argument("--skip-peers", default="", help="estimators whose peers are not run (comma-separated)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for size in args.sizes.split(","):
        n, T = (int(v) for v in size.split("x"))
        rows += run_size(n, T, args.repeat, set(args.only.split(",")), args.slow_peer_max_rows,
                         set(filter(None, args.skip_peers.split(","))), args.did_imputation_max_rows)
    print()
    cols = ["estimator", "size", "evalkit_s", "engine_s", "fastest peer", "peer_s", "speed-up", "evalkit_cpu_s",
            "peer_cpu_s", "speed-up CPU", "equal",
            "evalkit_peak_MiB", "peer_peak_MiB", "load avg (1 min)", "other peers"]
    print_table(pd.DataFrame(rows)[cols], ".3f")


if __name__ == "__main__":
    main()
