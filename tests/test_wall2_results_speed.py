"""The speed-ups of results.py / evaluation.py change no number (issue 15, branch wall2).

``EstimationResult.rows`` is cached per kind, ``Evaluation.estimates`` per outcome: both must
answer as a fresh computation, hand out copies, and start over when a result is replaced.
``results.json`` is written by :func:`evalkit.results.dumps_readable` (same JSON values as
``json.dumps(indent=2)``) and leaves out the ``gt`` covariance (listed in ``vcov_omitted``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from evalkit.evaluation import RESULTS_JSON_OMIT_VCOV, Evaluation, _result_dict
from evalkit.results import EstimationResult, _frame_records, dumps_readable


def _result(shift: float = 0.0, estimator: str = "cs") -> EstimationResult:
    rows = [{"kind": "overall", "term": "ATT", "estimate": -1.5 + shift, "std_error": 0.5, "ci_low": -2.5 + shift,
             "ci_high": -0.5 + shift, "p_value": 0.003}]
    rows += [{"kind": "event", "term": f"e={e}", "event_time": e, "estimate": 0.1 * e + shift, "std_error": 0.2,
              "ci_low": 0.1 * e - 0.4, "ci_high": 0.1 * e + 0.4, "p_value": float("nan")} for e in (-2, 0, 1)]
    rows += [{"kind": "gt", "term": f"g={g},t={t}", "group": g, "time": t, "estimate": g - t + shift}
             for g in (5, 7) for t in (4, 6)]
    terms = [r["term"] for r in rows if r["kind"] == "gt"]
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    gt = a @ a.T
    gt[0, 1] = gt[1, 0] = np.nan
    ev = pd.DataFrame(np.eye(3) * 0.04, index=["e=-2", "e=0", "e=1"], columns=["e=-2", "e=0", "e=1"])
    return EstimationResult(estimator, "incidents_fight", pd.DataFrame(rows),
                            meta={"n_treated": 10, "n_control": 20, "baseline_mean": 30.0, "arr": np.arange(3)},
                            vcov={"event": ev, "gt": pd.DataFrame(gt, index=terms, columns=terms)},
                            tables={"cells": pd.DataFrame({"g": pd.array([1, None], dtype="Int64"),
                                                           "x": [0.5, np.nan], "s": ["a", "中"]})})


def _fresh(r: EstimationResult, kind: str) -> pd.DataFrame:
    return r.estimates[r.estimates["kind"] == kind].reset_index(drop=True)


@pytest.mark.parametrize("kind", ["overall", "event", "gt", "calendar"])
def test_rows_cache_answers_as_a_fresh_filter(kind):
    r = _result()
    for _ in range(2):  # first call fills the cache, the second reads it
        pd.testing.assert_frame_equal(r.rows(kind), _fresh(r, kind))


def test_rows_hands_out_copies_the_cache_cannot_be_corrupted():
    r = _result()
    got = r.rows("event")
    got.loc[0, "estimate"] = 999.0
    got["extra"] = 1
    head = r.overall
    head["estimate"] = 999.0
    pd.testing.assert_frame_equal(r.rows("event"), _fresh(r, "event"))
    assert r.overall["estimate"] == -1.5 and r.att == -1.5 and r.headline["estimate"] == -1.5
    assert (r.estimates["estimate"] != 999.0).all()


def test_rows_cache_starts_over_when_estimates_is_replaced():
    r = _result()
    assert r.att == -1.5 and len(r.rows("event")) == 3
    est = r.estimates.copy()
    est.loc[est["kind"] == "overall", "estimate"] = 4.0
    r.estimates = est[est["term"] != "e=1"]
    assert r.att == 4.0 and len(r.rows("event")) == 2
    pd.testing.assert_frame_equal(r.rows("event"), _fresh(r, "event"))


def test_with_inference_copy_keeps_its_own_rows():
    r = _result()
    _ = r.rows("overall")
    out = r.with_inference("x", {"a": 1})
    est = out.estimates.copy()
    est.loc[est["kind"] == "overall", "std_error"] = 7.0
    out.estimates = est
    assert out.se == 7.0 and r.se == 0.5


def _old_frame_records(df: pd.DataFrame) -> list[dict]:
    """The row-by-row implementation before the column-wise one (the reference)."""
    from evalkit.results import _clean

    return [_clean({k: (None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v) for k, v in r.items()})
            for r in df.to_dict(orient="records")]


def test_frame_records_equal_the_row_by_row_version():
    r = _result()
    for df in (r.estimates, r.tables["cells"], pd.DataFrame({"b": [True, False], "o": [np.int64(3), "x"]}),
               pd.DataFrame({"f": [np.inf, -0.0]}), r.estimates.iloc[:0]):
        assert _frame_records(df) == _old_frame_records(df)


def test_to_dict_omits_the_asked_vcov_and_round_trips_the_rest():
    r = _result()
    full = r.to_dict()
    assert "vcov_omitted" not in full and set(full["vcov"]) == {"event", "gt"}
    assert full["vcov"]["gt"]["matrix"][0][1] is None  # NaN → null, as before
    back = EstimationResult.from_dict(json.loads(json.dumps(full)))
    pd.testing.assert_frame_equal(back.vcov["gt"], r.vcov["gt"])
    slim = r.to_dict(omit_vcov=RESULTS_JSON_OMIT_VCOV)
    assert set(slim["vcov"]) == {"event"} and slim["vcov_omitted"] == {"gt": 4}
    assert {k: v for k, v in slim.items() if k not in ("vcov", "vcov_omitted")} == \
        {k: v for k, v in full.items() if k != "vcov"}
    back = EstimationResult.from_dict(json.loads(dumps_readable(slim)))
    assert set(back.vcov) == {"event"}
    pd.testing.assert_frame_equal(back.vcov["event"], r.vcov["event"])
    pd.testing.assert_frame_equal(back.estimates, r.estimates)
    assert back.att == r.att and back.rows("gt")["estimate"].tolist() == r.rows("gt")["estimate"].tolist()
    assert _result_dict(r, {}, "x")["vcov_omitted"] == {"gt": 4}  # results.json's writer leaves gt out


def test_dumps_readable_is_the_same_json():
    r = _result()
    data = {"a": r.to_dict(), "b": [], "c": {}, "d": [[1, [2, {"e": "中文"}]], None, True, 1e-300, -0.0],
            "f": {"g": {"h": []}}}
    text = dumps_readable(data)
    assert json.loads(text) == json.loads(json.dumps(data, ensure_ascii=False, indent=2))
    assert '"中文"' in text and '"e=-2"' in text
    assert '[0.04, 0.0, 0.0]' in text  # a matrix row on one line
    assert dumps_readable([]) == "[]" and dumps_readable({}) == "{}" and dumps_readable(3) == "3"


def _ev(results: dict) -> Evaluation:
    return Evaluation(params=None, panel=None, results=results, failures={}, facts=None)  # type: ignore[arg-type]


def test_evaluation_estimates_cache_follows_the_results():
    ev = _ev({"incidents_fight": {"cs": _result(), "twfe": _result(1.0, "twfe")}})
    first = ev.estimates("incidents_fight")
    pd.testing.assert_frame_equal(first, ev._estimates_table("incidents_fight"))
    first.loc[0, "estimate"] = 999.0  # a copy: the next call is unchanged
    assert ev.estimates("incidents_fight").loc[0, "estimate"] == -1.5
    ev.results["incidents_fight"]["twfe"] = _result(2.0, "twfe")  # replaced → rebuilt
    assert ev.estimates("incidents_fight")["estimate"].tolist() == [-1.5, 0.5]
    ev.robustness["incidents_fight"] = {"cs_never": _result(3.0)}  # added → rebuilt
    assert ev.estimates("incidents_fight")["name"].tolist() == ["cs", "twfe", "cs_never"]
    r = ev.results["incidents_fight"]["cs"]
    est = r.estimates.copy()
    est.loc[est["kind"] == "overall", "estimate"] = 5.0
    r.estimates = est  # a new estimates frame → rebuilt
    assert ev.estimates("incidents_fight")["estimate"].tolist() == [5.0, 0.5, 1.5]
    del ev.robustness["incidents_fight"]["cs_never"]
    pd.testing.assert_frame_equal(ev.estimates("incidents_fight"), ev._estimates_table("incidents_fight"))


def test_make_estimates_of_its_own_output_equals_a_rebuild(monkeypatch):
    """``make_estimates`` of a frame it built (every EstimationResult's ``__post_init__``) returns a
    shallow copy instead of rebuilding: the same frame as the rebuild, columns, dtypes and values;
    a frame that is not canonical (extra index, other dtypes, columns out of order) is rebuilt."""
    import evalkit.results as R

    built = R.make_estimates(_result().estimates.assign(extra=["x"] * 8, n=np.arange(8)))
    variants = {"canonical": built, "int index": built.set_axis(np.arange(8) + 3),
                "float group": built.assign(group=built["group"].astype(float)),
                "object kind": built.assign(kind=built["kind"].astype(object)),
                "reordered": built[list(built.columns[::-1])], "empty": built.iloc[:0].reset_index(drop=True)}
    for name, frame in variants.items():
        got = R.make_estimates(frame)
        with monkeypatch.context() as m:
            m.setattr(R, "_canonical", lambda df: False)
            want = R.make_estimates(frame)
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
        assert got is not frame
    assert R._canonical(built) and not R._canonical(variants["reordered"])
    copy = R.make_estimates(built)
    copy.loc[0, "estimate"] = 99.0  # copy-on-write: the source frame is not changed
    assert built.loc[0, "estimate"] != 99.0
