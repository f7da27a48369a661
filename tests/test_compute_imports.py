"""Issue 15 (compute): evaluate() imports its modules beside the panel's queries; ``seconds`` is compute only."""

from __future__ import annotations

import sys

import pytest

from evalkit.estimators import get_spec
from evalkit.evaluation_steps import (
    ANALYSIS_MODULES,
    STEP_MODULES,
    TRUTH_MODULES,
    BackgroundImports,
    import_modules,
)
from evalkit.params import validate_params


def test_import_modules_loads_the_estimators_and_step_modules():
    p = validate_params({"evaluation_id": "t", "reform": "两队一室", "outcomes": ["incidents_fight"]})
    import_modules(p)
    for name in p.estimators:
        assert get_spec(name).function.split(":")[0] in sys.modules
    assert p.design == "staggered"
    assert all(m in sys.modules for m in STEP_MODULES)


def test_import_modules_loads_the_further_analyses_and_their_truths():
    p = validate_params({"evaluation_id": "t", "reform": "两队一室", "outcomes": ["incidents_fight"],
                         "dose": True, "heterogeneity": ["area_type"]})
    assert set(p.analyses) <= set(ANALYSIS_MODULES)
    import_modules(p, synthetic=True)
    for m in (*ANALYSIS_MODULES["dose"], *ANALYSIS_MODULES["heterogeneity"], *TRUTH_MODULES):
        assert m in sys.modules


def test_background_imports_join_and_raise_a_failed_import_in_the_callers_thread(monkeypatch):
    import threading

    import evalkit.evaluation_steps as S

    p = validate_params({"evaluation_id": "t", "reform": "两队一室", "outcomes": ["incidents_fight"]})
    where = []

    def broken(p, synthetic=False):
        where.append(threading.current_thread() is threading.main_thread())
        raise ImportError("no module named broken")

    monkeypatch.setattr(S, "import_modules", broken)
    imports = BackgroundImports(p)
    with pytest.raises(ImportError, match="broken"):
        imports.wait()
    assert where == [False, True]  # tried in the thread first, then again (raising) in the caller's
    monkeypatch.undo()
    ok = BackgroundImports(p)
    assert ok.wait() >= 0.0 and ok.seconds >= 0.0 and not ok._thread.is_alive()


def test_a_panel_error_is_not_hidden_by_a_failed_background_import(monkeypatch):
    """The panel's one-line error is raised even when the imports beside it failed too; a failed import
    alone is still raised (in the evaluation's thread) once the panel is built."""
    import contextlib

    import evalkit.evaluation as E
    import evalkit.evaluation_steps as S

    p = validate_params({"evaluation_id": "t", "reform": "两队一室", "outcomes": ["incidents_fight"]})

    def broken(p, synthetic=False):
        raise ImportError("no module named broken")

    def no_panel(con, p):
        raise E.EvaluationError("warehouse w.duckdb: table incidents has no rows — run `evalkit ingest`")

    monkeypatch.setattr(S, "import_modules", broken)
    monkeypatch.setattr(E, "open_warehouse", lambda _p: contextlib.nullcontext(None))
    monkeypatch.setattr(E, "warehouse_facts", lambda con, path: type("F", (), {"synthetic": False})())
    monkeypatch.setattr(E, "panel_with_index", no_panel)
    with pytest.raises(E.EvaluationError, match="no rows"):
        E.evaluate(p)
    monkeypatch.setattr(E, "panel_with_index", lambda con, p: None)
    with pytest.raises(ImportError, match="broken"):
        E.evaluate(p)
