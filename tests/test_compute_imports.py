"""Issue 15 (compute): evaluate() imports its modules before its clock; ``seconds`` is compute only."""

from __future__ import annotations

import sys

from evalkit.estimators import get_spec
from evalkit.evaluation_steps import STEP_MODULES, import_modules
from evalkit.params import validate_params


def test_import_modules_loads_the_estimators_and_step_modules():
    p = validate_params({"evaluation_id": "t", "reform": "两队一室", "outcomes": ["incidents_fight"]})
    import_modules(p)
    for name in p.estimators:
        assert get_spec(name).function.split(":")[0] in sys.modules
    assert p.design == "staggered"
    assert all(m in sys.modules for m in STEP_MODULES)
