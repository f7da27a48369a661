"""Category vocabulary: official terms and common variants → the registry's category ids.

A value is looked up (after NFKC folding and removing spaces) in the user's ``values:`` mapping,
then in the exact vocabulary below, then by keyword (电信网络诈骗 contains 诈骗 → fraud). What
matches nothing is stored as ``other`` and reported (the share mapped to ``other`` is printed at
ingest). Runs once per distinct value, not per row.
"""

from __future__ import annotations

import unicodedata

from evalkit import registry

# Incident categories (registry.CATEGORIES): exact variants, then keywords (first hit wins).
INCIDENT_TERMS: dict[str, str] = {
    "电信网络诈骗": "fraud", "电信诈骗": "fraud", "网络诈骗": "fraud", "电诈": "fraud", "诈骗案": "fraud",
    "盗窃案": "theft", "入室盗窃": "theft", "扒窃": "theft", "盗窃电动车": "theft", "偷盗": "theft",
    "打架斗殴": "fight", "殴打他人": "fight", "寻衅滋事": "fight", "聚众斗殴": "fight",
    "黄赌毒": "vice", "涉黄": "vice", "涉赌": "vice", "赌博": "vice", "卖淫嫖娼": "vice", "吸毒": "vice",
    "交通事故": "traffic", "交通警情": "traffic", "道路交通": "traffic", "车辆剐蹭": "traffic",
    "矛盾纠纷": "dispute", "民间纠纷": "dispute", "邻里纠纷": "dispute", "家庭纠纷": "dispute",
    "婚姻家庭纠纷": "dispute", "经济纠纷": "dispute", "劳资纠纷": "dispute",
    "非警务求助": "nonpolice", "非警务": "nonpolice", "群众求助": "nonpolice", "求助": "nonpolice",
    "咨询": "nonpolice", "非警务警情": "nonpolice",
    "其他": "other", "其它": "other", "其他警情": "other",
}
INCIDENT_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("诈骗", "fraud"), ("电诈", "fraud"), ("骗", "fraud"),
    ("盗", "theft"), ("偷", "theft"), ("扒窃", "theft"),
    ("斗殴", "fight"), ("打架", "fight"), ("殴打", "fight"), ("滋事", "fight"),
    ("赌", "vice"), ("嫖", "vice"), ("卖淫", "vice"), ("毒品", "vice"), ("吸毒", "vice"), ("涉黄", "vice"),
    ("交通", "traffic"), ("车祸", "traffic"), ("剐蹭", "traffic"), ("酒驾", "traffic"), ("醉驾", "traffic"),
    ("纠纷", "dispute"), ("矛盾", "dispute"),
    ("非警务", "nonpolice"), ("求助", "nonpolice"), ("咨询", "nonpolice"),
)

# Dispute categories (registry.DISPUTE_CATEGORIES). 物业纠纷 (residents and the estate's
# management) is a neighbourhood dispute, not a land/property one.
DISPUTE_TERMS: dict[str, str] = {
    "婚姻家庭纠纷": "family", "婚姻家庭": "family", "家庭纠纷": "family", "婚恋纠纷": "family",
    "邻里纠纷": "neighbour", "邻里": "neighbour", "物业纠纷": "neighbour", "相邻关系纠纷": "neighbour",
    "土地山林": "property", "土地山林纠纷": "property", "宅基地纠纷": "property", "房屋纠纷": "property",
    "劳资纠纷": "labour", "劳动争议": "labour", "欠薪": "labour",
    "经济纠纷": "commercial", "债务纠纷": "commercial", "合同纠纷": "commercial", "消费纠纷": "commercial",
    "其他纠纷": "other", "其他": "other", "其它": "other",
}
DISPUTE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("婚", "family"), ("家庭", "family"), ("赡养", "family"), ("抚养", "family"), ("继承", "family"),
    ("夫妻", "family"),
    ("邻里", "neighbour"), ("相邻", "neighbour"), ("物业", "neighbour"), ("噪音", "neighbour"),
    ("土地", "property"), ("山林", "property"), ("宅基地", "property"), ("林地", "property"),
    ("房屋", "property"), ("征地", "property"), ("拆迁", "property"),
    ("劳资", "labour"), ("劳动", "labour"), ("工资", "labour"), ("欠薪", "labour"), ("讨薪", "labour"),
    ("工伤", "labour"),
    ("经济", "commercial"), ("债务", "commercial"), ("借贷", "commercial"), ("合同", "commercial"),
    ("欠款", "commercial"), ("消费", "commercial"), ("买卖", "commercial"),
)
_OTHER_WORDS = {"other", "其他", "其它", "其他纠纷", "其他警情"}


def fold(v: str) -> str:
    """NFKC (full-width → half-width) with all whitespace removed: the key values are compared on."""
    return "".join(unicodedata.normalize("NFKC", str(v)).split())


def _lookup(v: str, user: dict[str, str] | None, ids, exact: dict[str, str],
            keywords: tuple[tuple[str, str], ...], registry_names: dict[str, str]) -> tuple[str, bool]:
    key = fold(v)
    for table in ((user or {}), registry_names, exact):
        for k, cid in table.items():
            if fold(k) == key or fold(k).lower() == key.lower():
                if cid not in ids:
                    raise ValueError(f"mapping value {k!r} → {cid!r}: not a category ({', '.join(ids)})")
                return cid, True
    for kw, cid in keywords:
        if kw in key:
            return cid, True
    return "other", key.lower() in _OTHER_WORDS


def _registry_names() -> dict[str, str]:
    out = {}
    for c in registry.CATEGORIES.values():
        for n in (c.id, c.zh, c.en, *c.aliases):
            out[n] = c.id
    return out


def _dispute_registry_names() -> dict[str, str]:
    out = {}
    for cid, (zh, en) in registry.DISPUTE_CATEGORIES.items():
        for n in (cid, zh, en):
            out[n] = cid
    return out


def incident_category(v: str, user: dict[str, str] | None = None) -> tuple[str, bool]:
    """(category id, known) for an incident category as written; unknown → ('other', False)."""
    return _lookup(v, user, registry.CATEGORIES, INCIDENT_TERMS, INCIDENT_KEYWORDS, _registry_names())


def dispute_category(v: str, user: dict[str, str] | None = None) -> tuple[str, bool]:
    """(category id, known) for a dispute category as written; unknown → ('other', False)."""
    return _lookup(v, user, registry.DISPUTE_CATEGORIES, DISPUTE_TERMS, DISPUTE_KEYWORDS,
                   _dispute_registry_names())
