"""Monte Carlo of the verdict rules (issue 14 Checks) on panels not drawn from the demo world.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/mc_verdict.py --out outputs/mc_verdict/reps.jsonl \\
        [--designs county,county12,few_comparison,slice,demo] [--reps 100] [--reps-cell county:0:0=200] \\
        [--jobs 2] [--seed 20261205]
    PYTHONPATH=src .venv/bin/python benchmarks/mc_verdict.py --out outputs/mc_verdict/reps.jsonl --report

Cells: every design x (no effect, selection off), (no effect, bigger stations select into adoption),
(−20 % effect, selection off). Replication ``r`` of every cell uses seed ``seed + r`` (the panels of
the null and effect cells share their stations, noise and adoption draws). Each replication runs the
numeric evaluation with the shipped defaults (``evalkit.evaluate(params, panel=panel)``: headline
rule, pre-trend test, small-sample headline SE, robustness rows, sensitivity; no brief) and appends
one JSON line to ``--out`` at once, so a partial run is usable and a re-run resumes where it
stopped (replications already in the file are skipped). Panels: ``benchmarks/_mc_panels.py``.

``evaluate`` opens a warehouse for the brief's data note even when it is given a panel: every worker
process creates one empty DuckDB file in its own temp folder (an empty database is all
:func:`evalkit.evaluation.warehouse_facts` needs) and removes it at exit.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _mc_panels as MP  # noqa: E402

ALPHA = 0.05
EFFECT = -0.20
VERDICTS = ("strong", "limited", "no_effect", "pretrend_doubtful", "no_data", "error")
LABELS = {"strong": "证据充分", "limited": "证据有限", "no_effect": "未见明显效果",
          "pretrend_doubtful": "前期趋势存疑", "no_data": "数据不足", "error": "error"}
DEFAULT_DESIGNS = ("county", "county12", "few_comparison", "slice", "demo")
FIELDS = ("cell", "design", "delta", "selection", "rep", "seed", "verdict", "verdict_reason", "caps",
          "estimator", "headline_rule", "estimand", "estimate", "ci_low", "ci_high", "p_value", "pct", "truth", "truth_pct",
          "n_treated", "n_control", "pretrend_p", "pretrend_method", "robust", "sensitivity_available",
          "sensitivity_error", "rows", "robustness_failures", "seconds", "cpu_seconds", "timings", "error")


def cells(designs: tuple[str, ...]) -> list[tuple[str, float, bool]]:
    """(design, effect, selection) of every cell, in run order."""
    return [(d, e, s) for d in designs for (e, s) in ((0.0, False), (0.0, True), (EFFECT, False))]


def cell_key(design: str, delta: float, selection: bool) -> str:
    return f"{design}:{round(delta * 100):d}:{int(selection)}"


# ---------------------------------------------------------------------------- one replication
_WAREHOUSE: str | None = None


def warehouse() -> str:
    """This process's empty DuckDB warehouse (created once, removed at exit)."""
    global _WAREHOUSE
    if _WAREHOUSE is None:
        import duckdb

        folder = tempfile.mkdtemp(prefix="mc_verdict_")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "warehouse.duckdb")
        duckdb.connect(path).close()
        _WAREHOUSE = path
    return _WAREHOUSE


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _row_estimand(ev: Any, name: str) -> str | None:
    """``meta["estimand"]`` of a robustness-table row (None when the estimator does not state one)."""
    r = ev.results.get(MP.OUTCOME, {}).get(name) or ev.robustness.get(MP.OUTCOME, {}).get(name)
    v = None if r is None else r.meta.get("estimand")
    return None if v is None else str(v)


def run_one(design: str, delta: float, selection: bool, rep: int, seed: int) -> dict[str, Any]:
    """Generate one panel, evaluate it with the shipped defaults, return the JSONL record."""
    import evalkit
    from evalkit.estimators._cs_blas import blas_threads

    P = MP.make_panel(design, seed, delta, selection)
    rec: dict[str, Any] = {k: None for k in FIELDS}
    rec.update(cell=cell_key(design, delta, selection), design=design, delta=delta, selection=selection, rep=rep,
               seed=seed, truth=P.truth, truth_pct=P.truth_pct, n_treated=P.n_treated, n_control=P.n_control,
               caps=[], rows={}, robustness_failures={}, error="")
    params = {"evaluation_id": f"mc_{design}", "reform": MP.REFORM, "outcomes": [MP.OUTCOME],
              "warehouse": warehouse(), "seed": int(seed), "alpha": ALPHA}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings(), blas_threads(1):
            warnings.simplefilter("ignore")
            ev = evalkit.evaluate(params, panel=P.panel)
            h = ev.headline()
            rows = ev.estimates()
    except Exception as exc:  # recorded: one failing replication must not stop an hour-long run
        rec.update(verdict="error", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                   seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
        rec["traceback"] = traceback.format_exc()[-1500:]
        return rec
    choice = getattr(ev, "headline_choice", None)
    pre = h.get("pretrend") or {}
    s = ev.sensitivity
    rec.update(
        verdict=h["verdict"], verdict_reason=h["verdict_reason"], caps=list(h.get("verdict_caps") or []),
        estimator=h["estimator"], headline_rule=getattr(choice, "rule", None),
        estimate=_f(h["estimate"]), ci_low=_f(h["ci_low"]), ci_high=_f(h["ci_high"]), p_value=_f(h["p_value"]),
        pct=_f(h["pct"]), n_treated=h["n_treated"], n_control=h["n_control"], pretrend_p=_f(h["pretrend_p"]),
        pretrend_method=pre.get("method"), robust=h.get("robust"),
        sensitivity_available=bool(s is not None and s.robust is not None),
        sensitivity_error=(ev.sensitivity_error or "")[:200] or None,
        estimand=h.get("estimand"),
        rows={str(r.name): {"p": _f(r.p_value), "est": _f(r.estimate), "lo": _f(r.ci_low), "hi": _f(r.ci_high),
                            "estimand": _row_estimand(ev, str(r.name))}
              for r in rows.itertuples(index=False)},
        robustness_failures={k: str(v)[:200] for k, v in ev.robustness_failures.get(MP.OUTCOME, {}).items()},
        seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
        timings={k: round(float(v), 3) for k, v in ev.timings.items()},
    )
    return rec


# ---------------------------------------------------------------------------- running
def records(out: Path) -> list[dict[str, Any]]:
    """The records of ``out`` (a torn last line from a killed run is skipped)."""
    recs = []
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                continue
    return recs


def drop_torn_tail(out: Path) -> None:
    """Cut a last line without its newline (a run killed mid-write), so appending stays valid JSONL."""
    if not out.exists():
        return
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        with out.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def done_keys(out: Path) -> set[tuple[str, int]]:
    """(cell, rep) already in ``out``."""
    return {(r["cell"], int(r["rep"])) for r in records(out)}


def plan(designs: tuple[str, ...], reps: int, per_cell: dict[str, int], seed: int,
         done: set[tuple[str, int]]) -> list[tuple[str, float, bool, int, int]]:
    tasks = []
    for d, e, s in cells(designs):
        key = cell_key(d, e, s)
        for r in range(per_cell.get(key, reps)):
            if (key, r) not in done:
                tasks.append((d, e, s, r, seed + r))
    return tasks


def run(out: Path, designs: tuple[str, ...], reps: int, *, jobs: int = 1, seed: int = 20261205,
        per_cell: dict[str, int] | None = None, progress: bool = True) -> int:
    """Run every missing replication, appending to ``out``; returns how many were run."""
    out.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(out)
    tasks = plan(designs, reps, per_cell or {}, seed, done_keys(out))
    t0 = time.perf_counter()
    with out.open("a", encoding="utf-8") as fh:
        def write(rec: dict[str, Any], i: int) -> None:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            if progress:
                print(f"[{i}/{len(tasks)} {time.perf_counter() - t0:7.0f}s] {rec['cell']} rep {rec['rep']}: "
                      f"{rec['verdict']} ({rec['seconds']:.1f}s){' ' + rec['error'] if rec['error'] else ''}",
                      file=sys.stderr, flush=True)

        if jobs <= 1:
            for i, t in enumerate(tasks, 1):
                write(run_one(*t), i)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(run_one, *t) for t in tasks]
                for i, f in enumerate(as_completed(futures), 1):
                    write(f.result(), i)
    return len(tasks)


# ---------------------------------------------------------------------------- report
def load(out: Path) -> pd.DataFrame:
    df = pd.DataFrame(records(out)).drop_duplicates(["cell", "rep"], keep="last")
    if "cpu_seconds" not in df:
        df["cpu_seconds"] = float("nan")
    return df


def mcse(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def rejections(g: pd.DataFrame, alpha: float) -> dict[str, tuple[float, int]]:
    """Estimator row -> (rejection rate at ``alpha``, replications in which the row exists)."""
    ok = g[g["verdict"] != "error"]
    out: dict[str, tuple[float, int]] = {}
    names = sorted({k for rows in ok["rows"] for k in rows})
    for name in names:
        ps = [rows[name]["p"] for rows in ok["rows"] if name in rows and rows[name]["p"] is not None]
        if ps:
            out[name] = (sum(p < alpha for p in ps) / len(ps), len(ps))
    return out


def coverage_table(df: pd.DataFrame) -> str:
    """Coverage of the truth by the 95% CI of every row that states the headline estimand, %, per cell."""
    from evalkit.estimand import HEADLINE_ESTIMAND

    cov: dict[str, dict[str, str]] = {}
    for key, g in df.groupby("cell", sort=False):
        ok = g[g["verdict"] != "error"]
        hits: dict[str, list[bool]] = {}
        for rows, truth in zip(ok["rows"], ok["truth"], strict=True):
            for name, r in rows.items():
                if r.get("estimand") == HEADLINE_ESTIMAND and r.get("lo") is not None and r.get("hi") is not None:
                    hits.setdefault(name, []).append(r["lo"] <= truth <= r["hi"])
        cov[key] = {k: f"{_pct(sum(v) / len(v))} ({len(v)})" for k, v in hits.items()}
    names = sorted({k for c in cov.values() for k in c})
    if not names:
        return f"Coverage by row: no row states the headline estimand ({HEADLINE_ESTIMAND})."
    head = ["cell (design:effect%:selection)", *names]
    out = [f"Coverage of the truth by the 95 % CI of the rows on the headline estimand ({HEADLINE_ESTIMAND}), "
           "% (replications):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join([key, *[c.get(k, "–") for k in names]]) + " |" for key, c in cov.items()]
    return "\n".join(out)


def report(df: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The Markdown report: verdict rates, estimator rejection rates and validity, coverage, bias, time."""
    if df.empty:
        return "No replications yet."
    lines = [f"Verdict Monte Carlo: α = {alpha}; MC SE = Monte Carlo standard error; "
             f"'valid' = rejection under no effect ≤ α + 2·sqrt(α(1−α)/n) in every no-effect cell of the design "
             "(random adoption and, where run, bigger stations adopting).", ""]
    head = ["design", "effect", "selection", "reps", "errors", "证据充分", "充分+有限 (MC SE)",
            *[LABELS[v] for v in VERDICTS[1:]], "headline (rule)", "sens. available", "coverage", "bias",
            "s/rep (CPU)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    valid: dict[str, set[str]] = {}
    power_rows = []
    for key, g in df.groupby("cell", sort=False):
        design, delta, sel = g["design"].iloc[0], float(g["delta"].iloc[0]), bool(g["selection"].iloc[0])
        n = len(g)
        ok = g[g["verdict"] != "error"]
        rate = {v: float((g["verdict"] == v).mean()) for v in VERDICTS}
        sig = rate["strong"] + rate["limited"]
        hl = ok.groupby(["estimator", "headline_rule"], dropna=False).size().sort_values(ascending=False)
        hl_txt = ", ".join(f"{e} ({r})" if isinstance(r, str) else str(e) for (e, r), _ in hl.items())
        cov = ((ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"])).mean() if len(ok) else float("nan")
        bias = (ok["estimate"] - ok["truth"]).mean() if len(ok) else float("nan")
        lines.append("| " + " | ".join([
            design, f"{delta:+.0%}" if delta else "0", "bigger adopt" if sel else "random", str(n),
            str(int(rate["error"] * n)), _pct(rate["strong"]), f"{_pct(sig)} ({_pct(mcse(sig, n))})",
            *[_pct(rate[v]) for v in VERDICTS[1:-1]], _pct(rate["error"]), hl_txt or "–",
            _pct(ok["sensitivity_available"].mean() if len(ok) else float("nan")), _pct(cov),
            f"{bias:.3f}", f"{g['seconds'].mean():.1f} ({g['cpu_seconds'].mean():.1f})"]) + " |")
        rej = rejections(g, alpha)
        if delta == 0:  # valid = size kept in EVERY no-effect cell of the design (random and selection)
            size_ok = {k for k, (r, m) in rej.items() if r <= alpha + 2 * mcse(alpha, m)}
            valid[design] = size_ok if design not in valid else valid[design] & size_ok
        power_rows.append((key, design, delta, sel, n, sig, rej))
    lines += ["", "Rejection rate of each robustness-table row (p < α), %; ✓ = valid in that no-effect cell; "
              "'most powerful valid' = highest rejection with the effect among the rows valid in all of the design's "
              "no-effect cells:", ""]
    names = sorted({k for *_, rej in power_rows for k in rej})
    head = ["design", "effect", "selection", *names, "most powerful valid", "its power", "充分+有限"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _key, design, delta, sel, _n, sig, rej in power_rows:
        ok_names = valid.get(design, set())
        cells_txt = []
        for k in names:
            if k not in rej:
                cells_txt.append("–")
                continue
            r, m = rej[k]
            mark = " ✓" if delta == 0 and r <= alpha + 2 * mcse(alpha, m) else ""
            cells_txt.append(f"{_pct(r)}{mark}")
        best, power = "–", float("nan")
        if delta != 0:
            cand = {k: r for k, (r, _) in rej.items() if k in ok_names}
            if cand:
                best = max(cand, key=cand.get)
                power = cand[best]
        lines.append("| " + " | ".join([design, f"{delta:+.0%}" if delta else "0",
                                         "bigger adopt" if sel else "random", *cells_txt, best, _pct(power),
                                         _pct(sig)]) + " |")
    lines += ["", coverage_table(df), ""]
    caps = df[df["verdict"] == "limited"].explode("caps")["caps"].value_counts()
    if len(caps):
        lines += ["", "Caps of 证据有限 verdicts (all cells): " + ", ".join(f"{k} {v}" for k, v in caps.items())]
    errs = df.loc[df["verdict"] == "error", "error"].value_counts()
    if len(errs):
        lines += ["", "Errors: " + "; ".join(f"{v}× {k}" for k, v in errs.head(5).items())]
    return "\n".join(lines)


def parse_cells(spec: list[str]) -> dict[str, int]:
    """``county:0:0=200`` (design:effect percent:selection=reps) -> {cell key: reps}."""
    out = {}
    for s in spec:
        key, _, n = s.partition("=")
        out[key] = int(n)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("outputs/mc_verdict/reps.jsonl"))
    ap.add_argument("--designs", default=",".join(DEFAULT_DESIGNS))
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--reps-cell", action="append", default=[], help="design:effect%%:selection=reps, "
                    "e.g. county:0:0=200 (repeatable)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--report", action="store_true", help="print the Markdown report of --out and stop")
    a = ap.parse_args(argv)
    if a.report:
        print(report(load(a.out)))
        return
    designs = tuple(d.strip() for d in a.designs.split(",") if d.strip())
    unknown = [d for d in designs if d not in MP.DESIGNS]
    if unknown:
        ap.error(f"unknown design(s) {unknown}: choose from {sorted(MP.DESIGNS)}")
    per_cell = parse_cells(a.reps_cell)
    known = {cell_key(*c) for c in cells(designs)}
    bad = sorted(set(per_cell) - known)
    if bad:
        ap.error(f"--reps-cell {bad}: not a cell of --designs; cells are {sorted(known)}")
    n = run(a.out, designs, a.reps, jobs=a.jobs, seed=a.seed, per_cell=per_cell)
    print(f"{n} replications run; results in {a.out}; report: --report", file=sys.stderr)


if __name__ == "__main__":
    main()
