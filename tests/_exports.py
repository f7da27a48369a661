"""Small exports written the way a county bureau hands them over (not by the demo writer):
full unit names with city bureau and branch, GB18030 CSV, an XLSX register, a serial-number
column, month gaps, a station that stops exporting. Shared by the repair/coverage/matching tests.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

REG_H = ["序号", "派出所编码", "派出所名称", "所属区县", "所属地市", "省份", "辖区类型", "辖区常住人口"]
# code, full unit name as the register writes it, county, population
REGISTER = [
    ("441502001", "某市公安局城区分局城关派出所", "城区", 52000),
    ("441502002", "某市公安局城区分局东门派出所", "城区", 38000),
    ("441581003", "某县公安局石桥派出所", "某县", 9000),
    ("441581004", "某县公安局城关派出所", "某县", 21000),
]
INC_H = ["警情编号", "所属派出所", "接警时间", "到场时间", "警情类别", "处置力量", "是否立案"]
DIS_H = ["纠纷编号", "受理单位", "受理日期", "办结日期", "纠纷类型", "是否化解", "是否民转刑"]


def _csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header, rows, encoding: str = "gb18030") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_csv(header, rows).encode(encoding))
    return path


def write_register(path: Path, rows=REGISTER) -> Path:
    """The station register as an XLSX (or CSV by suffix) with a 序号 column and full unit names."""
    data = [[i + 1, code, name, county, "某市", "某省", "城区" if county == "城区" else "农村", pop]
            for i, (code, name, county, pop) in enumerate(rows)]
    if path.suffix == ".xlsx":
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(data, columns=REG_H).astype({"派出所编码": str}).to_excel(path, index=False)
        return path
    return write_csv(path, REG_H, data)


def incident_rows(unit: str, months: list[str], per_month: int, prefix: str, *, seed: int = 0) -> list[list]:
    """``per_month`` incidents in each ``YYYY-MM`` of ``months`` for the unit written as ``unit``."""
    rng = np.random.default_rng(seed)
    out = []
    for m in months:
        for k in range(per_month):
            day, hour, minute = int(rng.integers(1, 28)), int(rng.integers(0, 24)), int(rng.integers(0, 50))
            rec = f"{m}-{day:02d} {hour:02d}:{minute:02d}:00"
            arr = f"{m}-{day:02d} {hour:02d}:{minute + int(rng.integers(3, 9)):02d}:00"
            out.append([f"{prefix}{m.replace('-', '')}{k:04d}", unit, rec, arr,
                        ["盗窃", "纠纷", "打架斗殴", "交通事故"][k % 4], "派出所", "否"])
    return out


def dispute_rows(unit: str, months: list[str], per_month: int, prefix: str) -> list[list]:
    out = []
    for m in months:
        for k in range(per_month):
            out.append([f"{prefix}{m.replace('-', '')}{k:03d}", unit, f"{m}-{k % 27 + 1:02d}",
                        f"{m}-{k % 27 + 2:02d}", "邻里纠纷", "是", "否"])
    return out


def months(start: str, end: str, skip: tuple[str, ...] = ()) -> list[str]:
    """``YYYY-MM`` months from start to end inclusive, without ``skip``."""
    out = [str(p) for p in pd.period_range(start, end, freq="M")]
    return [m for m in out if m not in skip]
