"""The estimator contract, checked over the spec registry (evalkit.estimators.SPECS).

Registry checks and result checks run for every registered estimator: each starts from
``build_sample`` (or ``_fe_sample.fe_sample``) and fills the result contract (``_common.finish_result``).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evalkit.estimators import SPECS, check_options, get_estimator, get_spec, names
from evalkit.estimators._sample import build_sample
from evalkit.params import validate_params
from evalkit.results import ESTIMATE_COLUMNS, EstimationResult, _clean

# every registered estimator starts from the shared sample and fills the result contract; "dose" and
# "switching" need a dose / treatment column the shared panels lack, "spillover" an adjacency table: their
# contracts are checked in tests/test_dose.py, tests/test_switching.py and tests/test_spillover.py
CONVERTED = [n for n in SPECS if n not in ("dose", "switching", "spillover")]

# estimators that need a balanced panel: on an unbalanced sample they refuse with a clear error
BALANCED_ONLY = ["bacon", "sdid", "sc"]


def test_every_spec_is_complete():
    assert list(SPECS) == ["naive_yoy", "did2x2", "twfe", "event_twfe", "cs", "sa", "imputation", "bacon",
                           "poisson", "sdid", "sc", "dose", "switching", "spillover"]
    for name, spec in SPECS.items():
        assert spec.name == name
        assert spec.label["zh"] and spec.label["en"] and spec.estimand
        # "switching" reads a unit-period treatment column instead of an adoption cohort
        assert {"unit", "time", "alpha"} | ({"treatment"} if name == "switching" else {"cohort"}) <= set(spec.options)
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
    first = "unit, time, treatment" if name == "switching" else "unit, time, cohort"
    assert f"{name}: unknown option 'clsuter'" in msg and f"accepted options: {first}" in msg
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


@pytest.mark.parametrize("name", list(SPECS))
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


# ---------------------------------------------------------------------------- results on shared panels
def _panel(cohorts: dict[str, int], periods: range, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, (s, g) in enumerate(cohorts.items()):
        level = rng.normal(10, 2)
        for t in periods:
            effect = -1.5 if g and t >= g else 0.0
            rows.append({"station_id": s, "period": t, "first_treat": g, "county": f"c{i % 5}",
                         "pop": 1.0 + (i % 3), "y": level + 0.05 * t + effect + rng.normal(0, 0.5)})
    return pd.DataFrame(rows)


def staggered_panel() -> pd.DataFrame:
    """Two in-window cohorts, a cohort adopting after the window, never-treated stations, a station
    treated from the first period, an unbalanced station (rows absent) and a missing cell."""
    cohorts = {f"n{i:02d}": 0 for i in range(12)}
    cohorts |= {f"a{i:02d}": 14 for i in range(6)} | {f"b{i:02d}": 20 for i in range(6)}
    cohorts |= {f"late{i}": 40 for i in range(4)} | {"first": 1}
    p = _panel(cohorts, range(1, 31), seed=3)
    p = p[~((p["station_id"] == "n03") & (p["period"] > 26))]         # unbalanced station
    p.loc[(p["station_id"] == "a02") & (p["period"] == 9), "y"] = np.nan  # missing cell
    return p.reset_index(drop=True)


def block_panel() -> pd.DataFrame:
    """One in-window cohort, a late cohort, never-treated stations and one treated from the start (balanced)."""
    cohorts = {f"n{i:02d}": 0 for i in range(14)} | {f"a{i}": 16 for i in range(3)}
    cohorts |= {f"late{i}": 45 for i in range(3)} | {"first": 1}
    return _panel(cohorts, range(1, 31), seed=4)


PANELS = {"staggered": staggered_panel, "block": block_panel}
EXTRA = {"sdid": {"reps": 10, "seed": 1}, "sc": {"reps": 10, "seed": 1}}


def _cases():
    for name in CONVERTED:
        for panel in PANELS:
            if panel == "staggered" and name in BALANCED_ONLY:
                continue  # see test_balanced_only_estimators_refuse_unbalanced_samples
            yield name, panel


@pytest.mark.parametrize("name", BALANCED_ONLY)
def test_balanced_only_estimators_refuse_unbalanced_samples(name):
    p = block_panel()
    p.loc[(p["station_id"] == "n05") & (p["period"] == 7), "y"] = np.nan
    with pytest.raises(ValueError, match="balanced"):
        get_estimator(name)(p, "y", **EXTRA.get(name, {}))


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name, panel):
        if (name, panel) not in cache:
            cache[name, panel] = get_estimator(name)(PANELS[panel](), "y", **EXTRA.get(name, {}))
        return cache[name, panel]

    return get


def test_contract_panels_have_the_intended_features():
    s = build_sample(staggered_panel(), "y")
    i = s.info
    assert (i.n_units, i.n_treated, i.n_control) == (28, 12, 16)
    assert i.recoded == {"adopts_after_window": 4} and i.dropped_units == {"treated_from_first_period": 1}
    assert i.dropped_cells == {"missing_outcome": 1} and not i.balanced
    b = build_sample(block_panel(), "y").info
    assert (b.n_units, b.n_treated, b.n_control, b.balanced) == (20, 3, 17, True)


@pytest.mark.parametrize("name, panel", list(_cases()))
def test_result_contract(fitted, name, panel):
    r = fitted(name, panel)
    spec = SPECS[name]
    assert list(r.estimates.columns[: len(ESTIMATE_COLUMNS)]) == ESTIMATE_COLUMNS
    assert (r.estimates["kind"] == "overall").sum() == 1 and np.isfinite(r.headline["estimate"])
    # one meaning per kind (results.py): other whole-sample aggregations are "aggregate", never a 2nd overall
    assert set(r.estimates["kind"]) <= {"overall", "aggregate", "event", "group", "calendar", "gt", "coef", "component"}
    info = r.sample_info
    assert info.n_treated + info.n_control == info.n_units
    assert (r.meta["n_treated"], r.meta["n_control"], r.meta["n_units"]) == (info.n_treated, info.n_control,
                                                                            info.n_units)
    assert r.meta["estimand"] == spec.estimand
    assert r.meta["inference"]["se_type"] and "n_clusters" in r.meta["inference"] and "df" in r.meta["inference"]
    assert r.context is not None and r.context.estimator == name and r.context.sample.info == info


@pytest.mark.parametrize("name, panel", list(_cases()))
def test_every_estimator_reports_the_same_sample(fitted, name, panel):
    expected = build_sample(PANELS[panel](), "y").info
    got = fitted(name, panel).sample_info
    strip = {"trim_e": None, "bin_e": None, "weights": None}  # set by the estimator's options
    assert replace(got, **strip) == replace(expected, **strip)


@pytest.mark.parametrize("name, panel", list(_cases()))
def test_json_round_trip(fitted, name, panel):
    r = fitted(name, panel).with_inference("note", {"status": "ok", "p_value": 0.5})
    back = EstimationResult.from_json(r.to_json())
    pd.testing.assert_frame_equal(back.estimates, r.estimates)
    assert back.meta == json.loads(json.dumps(_clean(r.meta)))
    assert back.sample_info == r.sample_info
    assert back.inference == {"note": {"status": "ok", "p_value": 0.5}}
    assert back.context is None
    for k, v in r.vcov.items():
        np.testing.assert_allclose(back.vcov[k].to_numpy(), v.to_numpy())


@pytest.mark.parametrize("name, panel", list(_cases()))
def test_context_refits_the_same_estimate(fitted, name, panel):
    r = fitted(name, panel)
    again = get_estimator(r.context.estimator)(r.context.sample, r.outcome, **r.context.options)
    pd.testing.assert_frame_equal(again.estimates, r.estimates)


def test_with_inference_returns_a_copy(fitted):
    r = fitted("naive_yoy", "staggered")

    class Inf:
        def to_dict(self):
            return {"method": "x", "p_value": 0.25}

    r2 = r.with_inference("x", Inf())
    assert r.inference == {} and set(r2.inference) == {"x"}
    r2.meta["sample"]["n_units"] = -1
    r2.estimates.loc[0, "estimate"] = 99.0
    assert r.meta["sample"]["n_units"] == 28 and r.estimates.loc[0, "estimate"] != 99.0
    assert r2.context is r.context
    assert json.loads(r2.to_json())["inference"] == {"x": {"method": "x", "p_value": 0.25}}


def test_results_and_registry_import_light():
    """results.py, the estimators package and the sample module load no scipy and no estimator module."""
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "evalkit"
    code = ("import sys, types; pkg = types.ModuleType('evalkit'); pkg.__path__ = [" + repr(str(src)) + "]\n"
            "sys.modules['evalkit'] = pkg\n"
            "import evalkit.results, evalkit.estimators, evalkit.estimators._sample\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('scipy', 'linearmodels', 'matplotlib')"
            " or m.startswith('evalkit.estimators.') and m not in ('evalkit.estimators.specs', 'evalkit.estimators._sample')]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_an_option_a_catch_all_would_swallow_is_refused():
    from evalkit.estimators import specs

    def estimate_fake(panel, outcome, *, unit="station_id", alpha=0.05, **_):
        return "ran"

    spec = SPECS["twfe"]
    assert specs._run(spec, estimate_fake, None, "y", {"unit": "u"}) == "ran"
    with pytest.raises(TypeError, match="twfe: option 'weights' is in the spec but estimate_fake does not implement"):
        specs._run(spec, estimate_fake, None, "y", {"weights": "pop"})
