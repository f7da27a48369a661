"""A small county with a known reform effect, written as its bureau would export it.

Monthly incident counts per station are negative-binomial (gamma–Poisson) with station levels,
seasonality and a planted multiplicative effect on one category for the adopters of 两队一室.
Everything is drawn from one seed. Files: a register (XLSX, title row, 万人, no city/province/area
type), an adoption list with month-only dates, and yearly GB18030 incident exports with a title row,
full unit names, mixed date formats and Excel serials.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realistic.county import NAMES, PHONES, Station, full_name, messy_datetime, month_only, stations
from realistic.files import Sheet, write_csv, write_xlsx

REFORM = "两队一室"
TREATED_CATEGORY = ("电信网络诈骗", "incidents_fraud")
OTHER_CATEGORIES = {"盗窃": 8.0, "打架斗殴": 3.0, "物业纠纷": 2.0}
HEAD = ["序号", "警情编号", "报警时间", "管辖单位", "警情类别", "报警人", "联系电话"]


@dataclass
class County:
    root: Path
    stations: list[Station]
    adoption: dict[str, tuple[int, int]]  # station code → (year, month)
    effect_pct: float  # planted effect on the treated category, percent
    register: Path = Path()
    adoption_file: Path = Path()
    incident_files: list[Path] = field(default_factory=list)
    gap_station: str = ""  # a comparison station that did not export some months
    gap_months: tuple[str, ...] = ()
    rows: int = 0


def _months(start: int, end: int) -> list[tuple[int, int]]:
    return [(y, m) for y in range(start, end + 1) for m in range(1, 13)]


def write_county(root: Path, *, n_stations: int = 30, n_adopters: int = 12, effect_pct: float = -25.0,
                 base: float = 60.0, dispersion: float = 100.0, level_sd: float = 0.15, seed: int = 20261204,
                 years: tuple[int, int] = (2021, 2025)) -> County:
    """Write the county's exports under ``root``; ``dispersion`` is the gamma shape (NB size)."""
    rng = np.random.default_rng(seed)
    sts = stations(n_stations, seed=1)
    adopters = sorted(rng.choice(n_stations, size=n_adopters, replace=False).tolist())
    starts = [(2022, 7), (2022, 10), (2023, 1), (2023, 4), (2023, 7), (2023, 10), (2024, 1), (2024, 4)]
    adoption = {sts[k].code: starts[i % len(starts)] for i, k in enumerate(adopters)}
    controls = [k for k in range(n_stations) if k not in adopters]
    gap_k = controls[0]
    gap = {(2024, 6), (2024, 7), (2024, 8), (2024, 9)}
    county = County(root, sts, adoption, effect_pct, gap_station=sts[gap_k].code,
                    gap_months=tuple(f"{y}-{m:02d}" for y, m in sorted(gap)))
    level = base * np.exp(rng.normal(0, level_sd, n_stations))

    # register: title row, note row, headers with full-width brackets, population in 万人
    reg = [["临江市公安局派出所基本情况表"], ["注：人口为2020年七普常住人口"],
           ["序号", "单位代码", "单位名称", "辖区人口（万人）", "民警人数"]]
    reg += [[i + 1, s.code, s.name, s.wan, 12 + i % 9] for i, s in enumerate(sts)]
    county.register = write_xlsx(root / "派出所基本情况表.xlsx", [Sheet("Sheet1", reg, merged=["A1:E1", "A2:E2"])])

    adopt = [["序号", "单位名称", "改革项目", "启动时间"]]
    for i, (code, (y, m)) in enumerate(sorted(adoption.items())):
        st = next(s for s in sts if s.code == code)
        adopt.append([i + 1, full_name(st), REFORM, month_only(y, m, i)])
    county.adoption_file = write_csv(root / "改革推进台账.csv", adopt, encoding="gb18030")

    for year in range(years[0], years[1] + 1):
        rows: list[list[object]] = []
        for y, m in _months(year, year):
            season = 1 + 0.1 * np.sin(2 * np.pi * (m - 1) / 12)
            days = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.date(y, m, 1)).days
            for k, st in enumerate(sts):
                if k == gap_k and (y, m) in gap:
                    continue
                adopted = adoption.get(st.code)
                treated = adopted is not None and (y, m) >= adopted
                means = {TREATED_CATEGORY[0]: level[k] * season * (1 + effect_pct / 100 if treated else 1)}
                means |= {c: mu * season for c, mu in OTHER_CATEGORIES.items()}
                for cat, mu in means.items():
                    n = rng.poisson(rng.gamma(dispersion, mu / dispersion))
                    for _ in range(n):
                        t = dt.datetime(y, m, 1) + dt.timedelta(minutes=int(rng.integers(days * 1440)))
                        j = len(rows)
                        unit = full_name(st) if j % 4 else (st.code if j % 8 else st.name)
                        rows.append([j + 1, f"{st.code[:6]}{t:%Y%m%d}{j:06d}", messy_datetime(t, j), unit, cat,
                                     NAMES[j % 4], PHONES[j % 5]])
        f = write_csv(root / f"警情数据_{year}年.csv", [[f"临江市公安局{year}年警情数据导出"], HEAD, *rows],
                      encoding="gb18030")
        county.incident_files.append(f)
        county.rows += len(rows)
    return county
