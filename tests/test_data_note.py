"""The brief's data note reports what ingest could not classify and where the data has gaps."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from evalkit.brief_text import data_note
from evalkit.evaluation import WarehouseFacts


def _ev(lang: str, rows_other: dict[str, int], gaps: dict) -> SimpleNamespace:
    panel = pd.DataFrame({"station_id": ["A", "A", "B", "B"], "period": [1, 2, 1, 2]})
    panel.attrs.update(coverage_gaps=gaps, missing_cells={t: sum(g.values()) for t, g in gaps.items()})
    facts = WarehouseFacts(path="w.duckdb", synthetic=False, quarantined=3,
                           rows={"incidents": 2000, "disputes": 100}, rows_other=rows_other)
    params = SimpleNamespace(window=SimpleNamespace(start="2021-01", end="2025-12"),
                             outcomes=["incidents_fraud", "dispute_resolution_rate"])
    return SimpleNamespace(lang=lang, facts=facts, params=params, panel=panel)


def test_other_share_and_gaps_are_stated():
    ev = _ev("zh", {"incidents": 30, "disputes": 0}, {"incidents": {"B": 4}})
    note = data_note(ev)
    assert "归入“其他”的记录 30 条（占警情记录 1.5%）" in note
    assert "纠纷类别" not in note  # nothing of the disputes was mapped to other
    assert "派出所：1 个（共 4 个派出所-月），按缺失处理，未计为零" in note
    en = data_note(_ev("en", {"disputes": 5}, {}))
    assert 'counted as "other": 5 (5.0% of dispute records)' in en
    assert "coverage" not in en
    en_gaps = data_note(_ev("en", {}, {"incidents": {"A": 2, "B": 1}, "disputes": {"B": 1}}))
    assert "outside the coverage of the data: 2 (4 station-months in all), treated as missing, never as zero" in en_gaps
    only_incidents = _ev("en", {}, {"incidents": {"A": 2}, "disputes": {"A": 60, "B": 60}})
    only_incidents.params.outcomes = ["incidents_fraud"]  # the unloaded ledger is not this evaluation's gap
    assert "coverage of the data: 1 (2 station-months" in data_note(only_incidents)


def test_clean_data_adds_nothing():
    note = data_note(_ev("en", {}, {}))
    assert "other" not in note and "coverage" not in note and "quarantined at ingest: 3" in note
