"""The estimator contract, checked over the spec registry (evalkit.estimators.SPECS).

Registry checks run for every spec. The result checks run for the estimators listed in
``CONVERTED`` (those that start from ``build_sample`` and fill the result contract); the lead
widens that list as the estimator branches are merged.
"""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from evalkit.estimators import SPECS, check_options, get_estimator, get_spec, names
from evalkit.params import validate_params

# estimators converted to the sample and the result contract on this branch
CONVERTED = ["naive_yoy", "sdid", "sc"]


def test_every_spec_is_complete():
    assert list(SPECS) == ["naive_yoy", "did2x2", "twfe", "event_twfe", "cs", "sa", "imputation", "bacon",
                           "poisson", "sdid", "sc"]
    for name, spec in SPECS.items():
        assert spec.name == name
        assert spec.label["zh"] and spec.label["en"] and spec.estimand
        assert {"unit", "time", "cohort", "alpha"} <= set(spec.options)
        assert callable(spec.load())


@pytest.mark.parametrize("name", list(SPECS))
def test_from_params_gives_accepted_options(name):
    p = validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["dispatches"]})
    opts = SPECS[name].from_params(p)
    assert set(opts) <= set(SPECS[name].options)
    SPECS[name].check(opts)


@pytest.mark.parametrize("name", list(SPECS))
def test_registry_rejects_unknown_options(name):
    with pytest.raises(TypeError) as exc:
        get_estimator(name)(pd.DataFrame(), "y", clsuter="county")
    msg = str(exc.value)
    assert f"{name}: unknown option 'clsuter'" in msg and "accepted options: unit, time, cohort" in msg
    with pytest.raises(TypeError, match="unknown option 'clsuter'"):
        get_spec(name)(pd.DataFrame(), "y", clsuter="county")


def test_check_options_wording():
    check_options("twfe", {"cluster": "county", "weights": "pop"})
    with pytest.raises(TypeError, match=r"^bacon: unknown option 'weights' \(also \['tol'\]\); accepted options: "):
        check_options("bacon", ["weights", "tol"])


def test_unknown_estimator_lists_names():
    with pytest.raises(KeyError, match="choose from naive_yoy, did2x2"):
        get_spec("cs2")


def test_selections_come_from_specs():
    assert names(role="single_station") == ["sdid", "sc"]
    assert set(names(pretrend_test=True)) == {"event_twfe", "cs", "sa", "imputation"}
    assert "bacon" not in names(weights=True)


def test_i18n_labels_are_the_specs_labels():
    from evalkit.i18n import estimator_label

    for name, spec in SPECS.items():
        assert estimator_label(name, "zh") == spec.label["zh"]
        assert estimator_label(name, "en") == spec.label["en"]


def _signature_options(fn) -> tuple[set[str], bool]:
    params = list(inspect.signature(fn).parameters.values())[2:]
    named = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@pytest.mark.parametrize("name", CONVERTED)
def test_spec_options_match_the_function(name):
    spec = SPECS[name]
    fn = spec.load()
    named, var_kw = _signature_options(fn)
    assert named <= set(spec.options)
    assert var_kw or set(spec.options) <= named


@pytest.mark.parametrize("name", CONVERTED)
def test_direct_call_rejects_unknown_options(name):
    with pytest.raises(TypeError, match="clsuter"):
        SPECS[name].load()(pd.DataFrame({"y": [1.0]}), "y", clsuter="county")
