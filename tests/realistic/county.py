"""临江市 (a fictitious city): its stations and the messy forms bureau systems write values in."""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

CITY = "临江市"
PROVINCE = "江南省"
BUREAU = "临江市公安局"


@dataclass(frozen=True)
class Station:
    code: str  # 12-digit public-security unit code
    name: str  # as in the register, with 派出所
    branch: str  # 分局 (city district bureau)
    county: str
    area_type: str  # urban | rural | mixed
    population: int  # residents

    @property
    def short(self) -> str:
        """"城关派出所" → "城关"."""
        return self.name.removesuffix("派出所")

    @property
    def full(self) -> str:
        """The unit as incident systems write it: "临江市公安局城南分局城关派出所"."""
        return f"{BUREAU}{self.branch}{self.name}"

    @property
    def wan(self) -> str:
        """Population in 万人 with two decimals, as registers print it."""
        return f"{self.population / 10_000:.2f}"


_NAMES = [
    ("城关", "城南分局", "临江区", "urban"), ("东门", "城南分局", "临江区", "urban"),
    ("西街", "城南分局", "临江区", "urban"), ("南湖", "城南分局", "临江区", "urban"),
    ("北山", "城北分局", "江北区", "mixed"), ("新河", "城北分局", "江北区", "urban"),
    ("柳塘", "城北分局", "江北区", "rural"), ("石桥", "城北分局", "江北区", "rural"),
    ("白沙", "开发区分局", "高新区", "urban"), ("青云", "开发区分局", "高新区", "mixed"),
    ("桃源", "临溪县公安局", "临溪县", "rural"), ("凤岭", "临溪县公安局", "临溪县", "rural"),
    ("龙潭", "临溪县公安局", "临溪县", "rural"), ("安和", "临溪县公安局", "临溪县", "rural"),
    ("金港", "开发区分局", "高新区", "urban"), ("云台", "城北分局", "江北区", "mixed"),
    ("梅溪", "临溪县公安局", "临溪县", "rural"), ("杏坛", "城南分局", "临江区", "urban"),
    ("望江", "城南分局", "临江区", "urban"), ("双桥", "城北分局", "江北区", "mixed"),
    ("平湖", "开发区分局", "高新区", "urban"), ("清泉", "临溪县公安局", "临溪县", "rural"),
    ("长乐", "临溪县公安局", "临溪县", "rural"), ("荷塘", "城北分局", "江北区", "rural"),
    ("玉屏", "开发区分局", "高新区", "mixed"), ("松岗", "临溪县公安局", "临溪县", "rural"),
    ("江湾", "城南分局", "临江区", "urban"), ("东岳", "城北分局", "江北区", "urban"),
    ("红旗", "开发区分局", "高新区", "urban"), ("新村", "临溪县公安局", "临溪县", "rural"),
]


def stations(n: int = 8, *, seed: int = 0) -> list[Station]:
    """The first ``n`` (≤ 30) stations; populations are fixed numbers of whole hundreds, so that
    a 万人 value with two decimals is exact."""
    if n > len(_NAMES):
        raise ValueError(f"at most {len(_NAMES)} stations")
    out = []
    for i, (short, branch, county, area) in enumerate(_NAMES[:n]):
        pop = 18_000 + ((i * 7919 + seed * 104729) % 60) * 1_100
        out.append(Station(f"3310{i + 1:02d}510000", f"{short}派出所", branch.replace("临溪县公安局", "临溪县局"),
                           county, area, pop))
    return out


def full_name(st: Station) -> str:
    # county bureaus are written "临溪县公安局…派出所" (no city prefix), district branches with it
    if st.branch == "临溪县局":
        return f"临溪县公安局{st.name}"
    return st.full


def unit_forms(st: Station) -> list[str]:
    """Every form a station reference takes in exports: code, name, short name, full names."""
    return [st.code, st.name, st.short, full_name(st), f"{BUREAU}{st.name}", f" {st.name} "]


# ------------------------------------------------------------------ dates as systems write them
def excel_serial(t: dt.datetime) -> float:
    """Days since 1899-12-30 (Excel's epoch, 1900 date system)."""
    return (t - dt.datetime(1899, 12, 30)).total_seconds() / 86_400


def messy_datetime(t: dt.datetime, k: int) -> str:
    """Form ``k`` (cycled) of a timestamp: ISO, slashes without zero padding, Chinese, serial."""
    forms = [
        t.strftime("%Y-%m-%d %H:%M:%S"),
        f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}",
        f"{t.year}年{t.month}月{t.day}日{t.hour}时{t.minute:02d}分",
        t.strftime("%Y-%m-%d %H:%M"),
        f"{excel_serial(t):.6f}",
    ]
    return forms[k % len(forms)]


def messy_date(d: dt.date, k: int) -> str:
    forms = [d.isoformat(), f"{d.year}/{d.month}/{d.day}", f"{d.year}年{d.month}月{d.day}日", d.strftime("%Y%m%d")]
    return forms[k % len(forms)]


def month_only(year: int, month: int, k: int) -> str:
    """2023年1月 | 2023-01 | 2023.01 | 2023年01月."""
    return [f"{year}年{month}月", f"{year}-{month:02d}", f"{year}.{month:02d}", f"{year}年{month:02d}月"][k % 4]


# ------------------------------------------------------------------ personal data that must never be stored
NAMES = ("张三丰", "李建国", "王秀英", "赵德明")
PHONES = ("138 1234 5678", "139-8765-4321", "１３６１１１１２２２２", "137.2468.1357", "0571-88123456")
IDS = ("330102800101123", "33010219800101123X", "330102 19800101 1234", "110105194912310029")
PERSONAL_STRINGS = (*NAMES, *PHONES, *IDS)
# digits-only forms, to find a phone or ID stored with its separators stripped
PERSONAL_DIGITS = tuple("".join(ch for ch in unicodedata.normalize("NFKC", s) if ch.isalnum())
                        for s in (*PHONES, *IDS))


def citizen_id(body17: str) -> str:
    """An 18-digit resident ID with a valid GB 11643 check digit."""
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(a) * b for a, b in zip(body17, w, strict=True)) % 11]
