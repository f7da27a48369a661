"""Canonical names: reforms, incident categories, outcomes, periods.

Everything user-facing is looked up here, so params validation, ingest, the demo world,
panels and briefs agree on one vocabulary. English identifiers are canonical; Chinese
names are accepted as aliases everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a date is built: `evalkit validate` stays light
    import pandas as pd


# ---------------------------------------------------------------------------- reforms
@dataclass(frozen=True)
class Reform:
    id: str
    zh: str
    en: str
    aliases: tuple[str, ...] = field(default_factory=tuple)
    description_en: str = ""
    description_zh: str = ""


REFORMS: dict[str, Reform] = {
    r.id: r
    for r in [
        Reform(
            "two_teams_one_room", "两队一室", "Two teams, one room",
            ("一室两队", "两队一室改革", "2t1r"),
            "A command room plus a community-policing team and a case-handling team.",
            "设立综合指挥室，组建社区警务队和执法办案队。",
        ),
        Reform(
            "patrol_dispatch", "巡处一体化", "Patrol-dispatch integration",
            ("巡处一体", "巡处一体化改革"),
            "Patrol units handle non-case incidents directly; faster arrival.",
            "巡逻与处警合一，非案类警情由巡逻力量直接处置。",
        ),
        Reform(
            "nonpolice_diversion", "非警务警情分流", "Diversion of non-police calls",
            ("非警务分流", "12345分流"),
            "Non-police service requests are diverted to the 12345 hotline.",
            "非警务求助警情分流至12345政务服务热线。",
        ),
        Reform(
            "village_auxiliary", "一村一辅警", "One auxiliary officer per village",
            ("一村一警",),
            "Each village gets a resident auxiliary officer (rural stations).",
            "每个行政村配备一名辅警（农村派出所）。",
        ),
        Reform(
            "police_grid", "警网融合", "Police-grid integration",
            ("警网融合改革",),
            "Community police embedded in the urban management grid.",
            "社区民警融入基层网格治理。",
        ),
        Reform(
            "station_pilot", "一所一品试点", "Single-station pilot",
            ("一所一品",),
            "A single station pilots its own model; evaluated by synthetic control.",
            "单个派出所试点特色工作模式。",
        ),
        Reform(
            "service_hall", "便民服务升级", "Service-hall upgrade",
            ("便民服务站", "服务窗口升级"),
            "Front-desk service upgrade (in the demo world: no true effect, a placebo).",
            "派出所服务窗口升级（演示数据中为无效果的安慰剂改革）。",
        ),
    ]
}


def reform_id(name: str) -> str:
    """Resolve an English id, Chinese name or alias to the canonical reform id."""
    key = str(name).strip()
    for r in REFORMS.values():
        if key == r.id or key == r.zh or key == r.en or key in r.aliases:
            return r.id
    known = ", ".join(f"{r.id} ({r.zh})" for r in REFORMS.values())
    raise KeyError(f"unknown reform {name!r}; known reforms: {known}")


# ---------------------------------------------------------------------------- categories
@dataclass(frozen=True)
class Category:
    id: str
    zh: str
    en: str
    aliases: tuple[str, ...] = field(default_factory=tuple)


CATEGORIES: dict[str, Category] = {
    c.id: c
    for c in [
        Category("theft", "盗窃", "Theft", ("盗窃案", "偷盗")),
        Category("fraud", "诈骗", "Fraud", ("电信诈骗", "诈骗/电信诈骗", "电诈", "网络诈骗")),
        Category("fight", "打架斗殴", "Fights", ("斗殴", "打架")),
        Category("vice", "黄赌", "Vice (gambling, prostitution)", ("黄赌毒", "赌博", "卖淫嫖娼")),
        Category("traffic", "交通", "Traffic", ("交通事故", "交通警情")),
        Category("dispute", "纠纷", "Disputes", ("矛盾纠纷", "民间纠纷", "邻里纠纷")),
        Category("nonpolice", "非警务求助", "Non-police requests", ("非警务", "求助", "非警务警情")),
        Category("other", "其他", "Other", ("其它",)),
    ]
}


def category_id(name: str) -> str:
    """Map a category name (English or Chinese or alias) to its id; unknown → ``other``."""
    key = str(name).strip()
    for c in CATEGORIES.values():
        if key == c.id or key == c.zh or key == c.en or key in c.aliases:
            return c.id
    return "other"


DISPUTE_CATEGORIES: dict[str, tuple[str, str]] = {
    "neighbour": ("邻里纠纷", "Neighbour"),
    "family": ("婚姻家庭", "Family"),
    "property": ("土地山林", "Land and property"),
    "labour": ("劳资纠纷", "Labour"),
    "commercial": ("经济纠纷", "Commercial"),
    "other": ("其他纠纷", "Other"),
}


# ---------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Outcome:
    """A station-period outcome the panel offers.

    ``kind``: ``count`` (non-negative integer; percent effects via Poisson), ``rate``
    (per 10,000 residents), ``minutes``, ``share`` (0..1), ``days``, ``score`` (0–100 points of
    the prevention index, :mod:`evalkit.index.outcome`).
    ``better``: ``lower`` or ``higher`` — which direction is an improvement.
    """

    id: str
    zh: str
    en: str
    kind: str
    unit_zh: str
    unit_en: str
    better: str = "lower"
    weight: str | None = None  # column whose sum weights period means (e.g. n responses)


def _outcomes() -> dict[str, Outcome]:
    out = [
        Outcome("incidents_total", "警情总量", "Total incidents", "count", "起", "incidents"),
        Outcome("incidents_per_10k", "每万人警情数", "Incidents per 10,000 residents", "rate", "起/万人", "per 10,000"),
        Outcome("dispatches", "处警量", "Dispatches handled (处警量)", "count", "次", "dispatches"),
        Outcome("cases", "办案量", "Cases handled (办案量)", "count", "件", "cases"),
        Outcome("response_mean_min", "平均到场时间", "Mean arrival time", "minutes", "分钟", "minutes",
                weight="n_responses"),
        Outcome("response_median_min", "到场时间中位数", "Median arrival time", "minutes", "分钟", "minutes",
                weight="n_responses"),
        Outcome("response_p90_min", "到场时间90分位", "90th percentile arrival time", "minutes", "分钟", "minutes",
                weight="n_responses"),
        Outcome("share_within_5min", "5分钟到场率", "Share arriving within 5 minutes", "share", "", "",
                better="higher", weight="n_responses"),
        Outcome("share_patrol_closed", "巡逻处置率（非案类）", "Share of non-case incidents closed by patrol",
                "share", "", "", better="higher", weight="n_noncase"),
        Outcome("disputes_opened", "受理纠纷数", "Disputes opened", "count", "件", "disputes"),
        Outcome("dispute_resolution_rate", "纠纷化解率", "Dispute resolution rate", "share", "", "",
                better="higher", weight="disputes_opened"),
        Outcome("dispute_escalation_rate", "民转刑比例", "Escalation to criminal cases", "share", "", "",
                weight="disputes_opened"),
        Outcome("dispute_days_to_resolve", "纠纷平均化解天数", "Mean days to resolve a dispute", "days", "天", "days",
                weight="disputes_resolved"),
    ]
    for c in CATEGORIES.values():
        out.append(Outcome(f"incidents_{c.id}", f"{c.zh}警情", f"{c.en} incidents", "count", "起", "incidents"))
    return {o.id: o for o in out}


OUTCOMES: dict[str, Outcome] = _outcomes()


# Outcomes that are one series under two names (the panel computes them the same way): a
# params file may list only one of each pair, so a brief never shows one series twice and the
# multiple-testing correction never counts it twice. 警情总量 here is the incidents the station
# handled (not diverted to 12345); 处警量 is the same count in the bureau's dispatch vocabulary.
SAME_SERIES: tuple[tuple[str, str], ...] = (("incidents_total", "dispatches"),)


def add_outcomes(extra) -> None:
    """Register derived outcomes (the prevention index's scores, added when a params file names
    them: :func:`evalkit.index.outcome.resolve`), so labels and kinds are looked up as for any outcome."""
    for o in extra:
        OUTCOMES[o.id] = o


def outcome_id(name: str) -> str:
    """Resolve an outcome id or Chinese label to the canonical outcome id."""
    key = str(name).strip()
    for o in OUTCOMES.values():
        if key in (o.id, o.zh, o.en):
            return o.id
    raise KeyError(f"unknown outcome {name!r}; known outcomes: {', '.join(OUTCOMES)}")


# ---------------------------------------------------------------------------- periods
# A period is a month, numbered contiguously: period = year * 12 + (month - 1).
# 2019-01 → 24228. ``first_treat = 0`` means never treated (real periods are far above 0).

NEVER_TREATED = 0


def period_of(ts: pd.Timestamp | str) -> int:
    """Month index of a date (``year*12 + month-1``)."""
    import pandas as pd

    t = pd.Timestamp(ts)
    return int(t.year) * 12 + int(t.month) - 1


def period_label(period: int) -> str:
    """``24228`` → ``'2019-01'``."""
    p = int(period)
    return f"{p // 12:04d}-{p % 12 + 1:02d}"


def period_start(period: int) -> pd.Timestamp:
    import pandas as pd

    p = int(period)
    return pd.Timestamp(year=p // 12, month=p % 12 + 1, day=1)


AREA_TYPES = ("urban", "rural", "mixed")
AREA_TYPES_ZH = {"urban": "城区", "rural": "农村", "mixed": "城乡结合"}
HANDLED_BY = ("station", "patrol", "diverted")
