"""The demo world's manifest (``manifest.json``: sizes, files, encodings, planted effects, notes) and the
readers of a generated world's manifest and truth file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit import registry
from evalkit.demo.exports import _enc_for_disputes, _enc_for_incidents
from evalkit.demo.params import EFFECT_TEXT, REFORM_ORDER, World
from evalkit.demo.truth import TRUTH_CELLS_FILE


def manifest_dict(w: World, size: str, seed: int, start: str, end: str, n_reform_rows: int,
              inc_rows: dict[int, int], dis_rows: dict[int, int], files: list[str], years: list[int],
              slash: int | None, national: bool, truth: pd.DataFrame) -> dict:
    """The manifest of a generated world ``w``: what was written, how, and what was planted."""
    reforms = []
    overall = truth[(truth["kind"] == "overall") & truth["cohort"].isna()]
    for r in REFORM_ORDER:
        sub = w.reforms[w.reforms["reform"] == r]
        if sub.empty:
            continue
        ov = overall[(overall["reform"] == r) & (overall["att_level"] != 0)]
        reforms.append({
            "reform": r,
            "zh": registry.REFORMS[r].zh,
            "n_stations": int(len(sub)),
            "cohorts": sorted({registry.period_label(int(c)) for c in sub["cohort"]}),
            "stations": EFFECT_TEXT[r]["stations"],
            "planted_effect": EFFECT_TEXT[r]["effect"],
            "outcomes_affected": EFFECT_TEXT[r]["outcomes"],
            "true_overall_att_pct": {o: round(float(p), 2) for o, p in zip(ov["outcome"], ov["att_pct"], strict=True)
                                     if np.isfinite(p)},
            "pre_trend_violation": r == "village_auxiliary",
            "selection_into_treatment": r == "station_pilot",
            "placebo": r == "service_hall",
            "dose": r == "village_auxiliary",
            "switch_off": r == "nonpolice_diversion" and bool((w.end > 0).any()),
            "displacement": r == "patrol_dispatch" and bool(w.exposed.any()),
            "urban_rural": r == "police_grid",
        })
    return {
        "synthetic": True,
        "generated_by": "evalkit demo-data",
        "size": size,
        "seed": seed,
        "start": start,
        "end": end,
        "n_stations": w.n_stations,
        "n_months": int(len(w.periods)),
        "rows": {
            "stations": w.n_stations,
            "reforms": n_reform_rows,
            "incidents": int(sum(inc_rows.values())),
            "disputes": int(sum(dis_rows.values())),
            "incidents_by_year": {str(y): int(n) for y, n in inc_rows.items()},
            "disputes_by_year": {str(y): int(n) for y, n in dis_rows.items()},
            "panel": int(w.n_stations * len(w.periods)),
        },
        "files": files,
        "encodings": {
            **({f"incidents_{y}.csv": _enc_for_incidents(y) for y in years} if not national else
               {"incidents/": "parquet"}),
            **{f"disputes_{y}.csv": _enc_for_disputes(y) for y in years},
            "reforms.csv": "utf-8",
        },
        "timestamp_formats": {"default": "%Y-%m-%d %H:%M:%S",
                              **({f"incidents_{slash}.csv": "%Y/%-m/%-d %H:%M"} if slash else {})},
        "reforms": reforms,
        "notes": [
            "Each station adopts at most one reform; the truth is each reform's ATT on its own stations.",
            "Stations treated by another reform that affects the same outcome are not clean controls: "
            "two_teams_one_room and nonpolice_diversion both lower dispatches/incidents_total; "
            "village_auxiliary and police_grid lower incidents_dispute and incidents_total slightly.",
            "issue-17 plants: 一村一辅警 doses (覆盖比例), one county stopping 非警务警情分流 (停止日期), theft "
            "displaced from 巡处一体化 adopters onto their untreated neighbours (adjacency.csv), 警网融合 effects "
            "by area type; 'plants' holds each plant's truth (evalkit.demo.truth.plant_truths; null for national).",
            "Stations exposed to the displacement (neighbours of 巡处一体化 adopters) are not clean controls for "
            "theft outcomes; their theft rises 6% from 2022-07 whatever their own reform.",
            "truth: att_level/att_pct are expected-value based (E[Y(1)]-E[Y(0)] per treated station-month); "
            "att_pct = 100*sum(Y1-Y0)/sum(Y0); kind='overall' averages all post-adoption treated "
            "station-months in the window (the Callaway-Sant'Anna 'simple' target); cohort NA = all cohorts.",
            "true_overall_att_pct is that all-months figure, not the headline estimand of an evaluation (months "
            "0..H of its own sample's adopters); briefs show the truth for the evaluation's sample, computed from "
            f"{TRUTH_CELLS_FILE} (expected Y0/Y1 per treated station-month; not written for the national size).",
        ],
    }


def rounded(x):
    """The plant summaries for the manifest: floats to 6 significant digits, dose keys as text."""
    if isinstance(x, dict):
        return {(f"{k:g}" if isinstance(k, float) else k): rounded(v) for k, v in x.items()}
    if isinstance(x, float):
        return float(f"{x:.6g}") if np.isfinite(x) else None
    return x


# ---------------------------------------------------------------------------- readers
def load_truth(root: str | Path) -> pd.DataFrame:
    """The world's ``truth.parquet`` (expected-value ATTs by reform, outcome, cohort)."""
    return pd.read_parquet(Path(root) / "truth.parquet")


def read_manifest(root: str | Path) -> dict:
    """The world's ``manifest.json``."""
    return json.loads((Path(root) / "manifest.json").read_text(encoding="utf-8"))


__all__ = ["load_truth", "manifest_dict", "read_manifest", "rounded"]
