"""Monte Carlo of the issue-17 estimators on the planted demo effects: bias, RMSE, SE ratio, coverage.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/mc_designs.py [--reps 200] [--seed 17000] \\
        [--only dose|switching|spillover|heterogeneity] [--scales demo,county] [--json out.json]
    PYTHONPATH=src .venv/bin/python benchmarks/mc_designs.py --report out1.json [out2.json ...] [--full]

Designs (panels: ``benchmarks/_mc_panels.py``, section "Issue 17 designs"; each at ``demo`` scale,
100 stations, and ``county`` scale, 15 stations; 84 months 2019-01..2025-12):

* ``dose``: :func:`evalkit.estimators.dose.estimate_dose` (degree 1, no knots, 999 multiplier draws:
  the params default), targets ATT^o, ACR^o and ATT(d) at the four planted doses, plus the share of
  replications whose uniform band covers the whole true curve at those doses.
* ``switching``: :func:`evalkit.estimators.switching.estimate_switching` (12 effects, 6 placebos):
  switching on (``switchers="in"``, whole panel) and switching off (``switchers="out"`` on the
  window 2023-01.. in which the stopping stations start treated); placebos (truth 0) and the size of
  the joint placebo test.
* ``spillover``: :func:`evalkit.estimators.spillover.estimate_spillover` (``max_e=24``): direct
  effect and the effect on untreated neighbours; the naive imputation (``max_e=24``) and CS
  estimators with the contaminated neighbours kept as controls, against the direct effect.
* ``heterogeneity``: imputation headline (``max_e=24``) + :func:`evalkit.heterogeneity.subgroup_effects`
  by ``area_type``: urban and rural effects; the equality test's rejection rate with equal effects
  (cell ``equal``, size) and with the planted −20 % / −5 % (cell ``planted``, power).

Columns: bias = mean(est − truth) with its Monte Carlo SE; SD est. = SD of the estimates; SD err. = SD
of est − truth (the truth varies between replications: new stations each time); SE ratio = mean
reported SE / SD err.; coverage of the 95 % CIs with its Monte Carlo SE.

Truth: every estimator here is linear in the outcome, so its value on the *expected* effect panel
(outcome = expected observed − expected status-quo counts, the status quo being the treatment the
station had in the panel's first month; for the naive spillover estimators, the adopters' expected
effect only) is its own estimand on the same sample: the expected effect, conditional on the
stations' levels and AR(1) paths, averaged over the count noise (as ``mc_verdict``). Replication
``r`` uses seed ``seed + r`` for the panel and the dose bootstrap.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _mc_panels as MP  # noqa: E402

DESIGNS = ("dose", "switching", "spillover", "heterogeneity")
ALPHA = 0.05
H = 24  # headline horizon (months 0..24), as params.event_window[1]
SWITCH_EFFECTS, SWITCH_PLACEBO = 12, 6
OUT_WINDOW = MP.ym(2023, 1)  # switching off: the window starts when every adopter is fully treated
#: event rows shown in the printed switching table (all are in --json)
SWITCH_SHOWN = ("Av_tot_effect", "Effect_1", "Effect_4", "Effect_12", "Placebo_1", "Placebo_6")


def _rec(design: str, scale: str, cell: str, rep: int, target: str, row: pd.Series | dict, truth: float,
         **extra: Any) -> dict[str, Any]:
    return {"design": design, "scale": scale, "cell": cell, "rep": rep, "target": target,
            "est": float(row["estimate"]), "se": float(row["std_error"]), "lo": float(row["ci_low"]),
            "hi": float(row["ci_high"]), "truth": float(truth), **extra}


def _test(design: str, scale: str, cell: str, rep: int, test: str, p: float, null: bool) -> dict[str, Any]:
    return {"design": design, "scale": scale, "cell": cell, "rep": rep, "test": test, "p": float(p), "null": null}


def _by_term(res: Any) -> pd.DataFrame:
    return res.estimates.set_index("term")


# ----------------------------------------------------------------------------- one replication per design
def run_dose(seed: int, scale: str, rep: int) -> list[dict[str, Any]]:
    from evalkit.estimators.dose import estimate_dose

    d = MP.dose_design(seed, scale)
    kw = {"dose": "dose", "degree": 1, "knots": 0, "dvals": MP.DOSE_LEVELS}
    res = _by_term(estimate_dose(d.panel, d.outcome, bootstrap=999, seed=seed, **kw))
    tru = _by_term(estimate_dose(d.with_outcome(d.lam - d.lam0), d.outcome, bootstrap=0, **kw))
    out = [_rec("dose", scale, "planted", rep, "ATT^o", res.loc["ATT"], tru.at["ATT", "estimate"]),
           _rec("dose", scale, "planted", rep, "ACR^o", res.loc["ACR"], tru.at["ACR", "estimate"])]
    band = []
    for dv in MP.DOSE_LEVELS:
        t = f"ATT(d={dv:g})"
        r, truth = res.loc[t], tru.at[t, "estimate"]
        band.append(r["band_low"] <= truth <= r["band_high"])
        out.append(_rec("dose", scale, "planted", rep, t, r, truth))
    out.append({"design": "dose", "scale": scale, "cell": "planted", "rep": rep, "band": "ATT(d) uniform band",
                "covers": bool(all(band))})
    return out


def run_switching(seed: int, scale: str, rep: int) -> list[dict[str, Any]]:
    from evalkit.estimators.switching import estimate_switching

    d = MP.switching_design(seed, scale)
    kw = {"treatment": "treatment", "effects": SWITCH_EFFECTS, "placebo": SWITCH_PLACEBO}
    out: list[dict[str, Any]] = []
    win = d.panel["period"].to_numpy() >= OUT_WINDOW
    cols = d.periods >= OUT_WINDOW
    # switching on: status quo untreated; off: status quo = treated (lam_on) for stations treated in 2023-01
    for cell, panel, tau, sw in (("on", d.panel, d.lam - d.lam0, "in"),
                                 ("off", d.panel[win].reset_index(drop=True), (d.lam - d.lam_on)[:, cols], "out")):
        r = estimate_switching(panel, d.outcome, switchers=sw, **kw)
        t = estimate_switching(panel.assign(**{d.outcome: tau.ravel()}), d.outcome, switchers=sw, **kw)
        est, tru = _by_term(r), _by_term(t)
        for term in est.index:
            out.append(_rec("switching", scale, cell, rep, term, est.loc[term], tru.at[term, "estimate"]))
        out.append(_test("switching", scale, cell, rep, "joint placebo test (6 placebos)",
                         r.meta["pretrend"]["p_value"], True))
        out.append(_test("switching", scale, cell, rep, "joint placebo test, small-sample F",
                         r.meta["pretrend"]["p_value_f"], True))
    return out


def run_spillover(seed: int, scale: str, rep: int) -> list[dict[str, Any]]:
    from evalkit.estimators.cs import estimate_cs
    from evalkit.estimators.imputation import estimate_imputation
    from evalkit.estimators.spillover import estimate_spillover

    d = MP.spillover_design(seed, scale)
    tau = d.lam - d.lam0
    adopt = (d.first != MP.NEVER_TREATED)[:, None]
    tau_direct = np.where(adopt, tau, 0.0)  # what a clean comparison would recover: the adopters' effect only
    out: list[dict[str, Any]] = []
    kw = {"adjacency": d.adjacency, "max_e": H}
    r, t = (_by_term(estimate_spillover(p, d.outcome, **kw)) for p in (d.panel, d.with_outcome(tau)))
    out.append(_rec("spillover", scale, "planted", rep, "direct (spillover est.)", r.loc["ATT"], t.at["ATT", "estimate"]))
    out.append(_rec("spillover", scale, "planted", rep, "neighbours (spillover est.)", r.loc["spillover"],
                    t.at["spillover", "estimate"]))
    out.append(_test("spillover", scale, "planted", rep, "neighbour effect ≠ 0 (power, +6 %)",
                     r.at["spillover", "p_value"], False))
    for name, fit in (("imputation", lambda p: estimate_imputation(p, d.outcome, max_e=H)),
                      ("cs", lambda p: estimate_cs(p, d.outcome, aggregations=("simple",)))):
        est = fit(d.panel).estimates.query("kind == 'overall'").iloc[0]
        truth = fit(d.with_outcome(tau_direct)).estimates.query("kind == 'overall'").iloc[0]["estimate"]
        out.append(_rec("spillover", scale, "planted", rep, f"direct (naive {name}, neighbours as controls)", est, truth))
    return out


def run_heterogeneity(seed: int, scale: str, rep: int) -> list[dict[str, Any]]:
    from evalkit.estimators.imputation import estimate_imputation
    from evalkit.heterogeneity import subgroup_effects

    out: list[dict[str, Any]] = []
    for cell in MP.GRID_EFFECTS:
        d = MP.heterogeneity_design(seed, scale, cell)
        fits = []
        for p in (d.panel, d.with_outcome(d.lam - d.lam0)):
            res = estimate_imputation(p, d.outcome, max_e=H)
            fits.append((res, subgroup_effects(res, "area_type", p)))
        (r, sg), (rt, sgt) = fits
        tab, ttab = sg.table.set_index("group"), sgt.table.set_index("group")
        for g in ("urban", "rural"):
            out.append(_rec("heterogeneity", scale, cell, rep, g, tab.loc[g], ttab.at[g, "estimate"]))
        ov = r.estimates.query("kind == 'overall'").iloc[0]
        out.append(_rec("heterogeneity", scale, cell, rep, "overall", ov,
                        rt.estimates.query("kind == 'overall'").iloc[0]["estimate"]))
        out.append(_test("heterogeneity", scale, cell, rep, "equality test urban = rural",
                         sg.equality["p_value"], cell == "equal"))
    return out


RUNNERS = {"dose": run_dose, "switching": run_switching, "spillover": run_spillover,
           "heterogeneity": run_heterogeneity}


def run(design: str, scales: tuple[str, ...], reps: int, seed: int, progress: bool = True) -> tuple[list[dict], dict]:
    """All replications of one design at each scale; (records, seconds by scale)."""
    from evalkit.estimators._cs_blas import blas_threads

    recs: list[dict[str, Any]] = []
    secs: dict[str, float] = {}
    for scale in scales:
        t0 = time.perf_counter()
        for r in range(reps):
            try:
                with warnings.catch_warnings(), blas_threads(1):
                    warnings.simplefilter("ignore")
                    recs += RUNNERS[design](seed + r, scale, r)
            except Exception as exc:  # recorded, counted in the table: one failure must not stop the run
                recs.append({"design": design, "scale": scale, "rep": r, "error": f"{type(exc).__name__}: {exc}"[:300]})
            if progress and (r + 1) % 20 == 0:
                print(f"[{design} {scale}] {r + 1}/{reps} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
        secs[scale] = time.perf_counter() - t0
    return recs, secs


# ----------------------------------------------------------------------------- summaries
def summarise(recs: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Three tables: estimates (bias, RMSE, SE ratio, coverage with MC SEs), tests (rejection rates),
    bands (uniform-band coverage)."""
    est = pd.DataFrame([r for r in recs if "target" in r])
    out: dict[str, pd.DataFrame] = {}
    rows = []
    if len(est):
        for (dsg, sc, cell, tgt), g in est.groupby(["design", "scale", "cell", "target"], sort=False):
            g = g[np.isfinite(g["est"]) & np.isfinite(g["se"])]
            n = len(g)
            if n == 0:
                continue
            err = g["est"] - g["truth"]
            # truth varies across replications (new stations each time): the SE estimates the spread of
            # the error est − truth, so the SE ratio uses that SD; the SD of the estimates is shown too
            sd = float(err.std(ddof=1)) if n > 1 else float("nan")
            cov = float(((g["lo"] <= g["truth"]) & (g["truth"] <= g["hi"])).mean())
            rows.append({"design": dsg, "scale": sc, "cell": cell, "target": tgt, "reps": n,
                         "truth": float(g["truth"].mean()), "mean est.": float(g["est"].mean()),
                         "bias": float(err.mean()), "MC SE": float(err.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                         "RMSE": float(np.sqrt((err ** 2).mean())),
                         "SD est.": float(g["est"].std(ddof=1)) if n > 1 else float("nan"),
                         "SD err.": sd, "mean SE": float(g["se"].mean()),
                         "SE ratio": float(g["se"].mean() / sd) if sd > 0 else float("nan"),
                         "coverage": cov, "cov. MC SE": math.sqrt(cov * (1 - cov) / n)})
    out["estimates"] = pd.DataFrame(rows)
    tst = pd.DataFrame([r for r in recs if "test" in r])
    rows = []
    if len(tst):
        for (dsg, sc, cell, name), g in tst.groupby(["design", "scale", "cell", "test"], sort=False):
            p = g["p"].dropna()
            n = len(p)
            rate = float((p < ALPHA).mean()) if n else float("nan")
            rows.append({"design": dsg, "scale": sc, "cell": cell, "test": name,
                         "under": "H0 (size)" if bool(g["null"].iloc[0]) else "effect (power)", "reps": n,
                         "not available": int(len(g) - n), "reject at 5 %": rate,
                         "MC SE": math.sqrt(rate * (1 - rate) / n) if n else float("nan")})
    out["tests"] = pd.DataFrame(rows)
    bnd = pd.DataFrame([r for r in recs if "band" in r])
    rows = []
    if len(bnd):
        for (dsg, sc, cell, name), g in bnd.groupby(["design", "scale", "cell", "band"], sort=False):
            c = float(g["covers"].mean())
            rows.append({"design": dsg, "scale": sc, "cell": cell, "band": name, "reps": len(g),
                         "covers the whole true curve": c, "MC SE": math.sqrt(c * (1 - c) / len(g))})
    out["bands"] = pd.DataFrame(rows)
    errs = [r for r in recs if "error" in r]
    out["errors"] = pd.DataFrame(errs) if errs else pd.DataFrame(columns=["design", "scale", "rep", "error"])
    return out


def printable(tabs: dict[str, pd.DataFrame], full: bool = False) -> str:
    """Markdown of the tables (switching: the rows of :data:`SWITCH_SHOWN` unless ``full``)."""
    lines = []
    e = tabs["estimates"]
    if len(e):
        if not full:
            e = e[(e["design"] != "switching") | e["target"].isin(SWITCH_SHOWN)]
        lines += [e.to_markdown(index=False, floatfmt=".3f"), ""]
    for k in ("bands", "tests"):
        if len(tabs[k]):
            lines += [tabs[k].to_markdown(index=False, floatfmt=".3f"), ""]
    if len(tabs["errors"]):
        lines += [f"failed replications: {len(tabs['errors'])}; first: {tabs['errors']['error'].iloc[0]}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=17000)
    ap.add_argument("--only", choices=DESIGNS, action="append", help="run only this design (repeatable)")
    ap.add_argument("--scales", default="demo,county", help="comma list of demo, county")
    ap.add_argument("--json", type=Path, help="write the records, tables and settings here")
    ap.add_argument("--full", action="store_true", help="print every switching event row")
    ap.add_argument("--report", type=Path, nargs="+", help="print the tables of earlier --json files and stop")
    a = ap.parse_args(argv)
    if a.report:
        recs = [r for f in a.report for r in json.loads(f.read_text(encoding="utf-8"))["records"]]
        print(printable(summarise(recs), a.full))
        return
    scales = tuple(s.strip() for s in a.scales.split(",") if s.strip())
    bad = [s for s in scales if s not in MP.SCALES17]
    if bad:
        ap.error(f"--scales {bad}: choose from {sorted(MP.SCALES17)}")
    recs: list[dict[str, Any]] = []
    secs: dict[str, dict[str, float]] = {}
    for design in a.only or DESIGNS:
        r, s = run(design, scales, a.reps, a.seed)
        recs += r
        secs[design] = s
    tabs = summarise(recs)
    print(f"reps {a.reps}, seed {a.seed} (rep r: seed + r), scales {scales}, seconds {secs}\n")
    print(printable(tabs, a.full))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"reps": a.reps, "seed": a.seed, "scales": scales, "seconds": secs,
                                      "tables": {k: v.to_dict(orient="records") for k, v in tabs.items()},
                                      "records": recs}, ensure_ascii=False, default=str, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
