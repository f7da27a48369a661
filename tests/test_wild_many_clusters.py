"""The wild bootstrap's many-clusters rule (evalkit.inference.wild.many_clusters_reason): above
``max_clusters`` clusters, with enough clusters with and without adopters, the step is not run and the
brief says it was not used; the evaluation's ``wild_max_clusters`` forces it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.brief_words import failed_step_sentence, reason_key
from evalkit.inference.wild import WILD_MAX_CLUSTERS, ManyClusters, many_clusters_reason, wild_bootstrap
from evalkit.sensitivity_run import reason


def _panel(n: int = 240, T: int = 12, treated_share: float = 0.4, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = np.where(rng.random(n) < treated_share, rng.choice([5, 8], n), 0)
    uu, tt = np.meshgrid(np.arange(n), np.arange(T), indexing="ij")
    ff = first[uu]
    y = rng.normal(size=uu.shape) + 0.1 * tt + 0.3 * ((ff > 0) & (tt >= ff))
    return pd.DataFrame({"station_id": uu.ravel(), "period": tt.ravel(), "first_treat": ff.ravel(),
                         "county": (uu // 2).ravel(), "y": y.ravel()})


def test_many_clusters_skip_with_a_reason_the_brief_words():
    df = _panel()
    with pytest.raises(ManyClusters) as exc:
        wild_bootstrap(df, "y", B=99, seed=1, max_clusters=100)
    msg = reason(exc.value)
    assert msg.startswith("240 clusters (") and "wild_max_clusters=100" in msg and len(msg) <= 200
    assert "…" not in msg  # the whole reason fits on the brief's line
    assert reason_key(msg) == "reason_wild_many"
    assert failed_step_sentence("TWFE wild", msg, "en").startswith("TWFE wild not used: with thousands of clusters")
    assert "未采用" in failed_step_sentence("TWFE wild", msg, "zh")


def test_rule_counts_clusters_not_stations_and_can_be_forced():
    df = _panel(n=400)
    assert many_clusters_reason(df, "y", 150, cluster="county") is not None  # 200 counties > 150
    assert many_clusters_reason(df, "y", 200, cluster="county") is None  # not more than the limit
    df = _panel()
    forced = wild_bootstrap(df, "y", B=99, seed=1, max_clusters=1000)  # a larger limit: it runs
    plain = wild_bootstrap(df, "y", B=99, seed=1)  # direct calls have no limit
    pd.testing.assert_frame_equal(forced.estimates, plain.estimates)


def test_few_treated_clusters_keep_the_bootstrap():
    """Many clusters but few with adopters: exactly the case the analytic CRV1 test gets wrong."""
    df = _panel(n=400, treated_share=0.08)  # ~32 adopting stations < 50
    assert many_clusters_reason(df, "y", 100) is None
    assert WILD_MAX_CLUSTERS >= 1_500  # the medium demo world (1,500 stations) keeps its bootstrap


def test_params_key_reaches_the_step():
    from evalkit.params import validate_params

    p = validate_params({"evaluation_id": "x", "reform": "两队一室", "outcomes": ["incidents_fight"],
                         "window": {"start": "2020-01", "end": "2021-12"}, "wild_max_clusters": 20_000})
    assert p.wild_max_clusters == 20_000
    assert "wild_max_clusters" not in validate_params({"evaluation_id": "x", "reform": "两队一室",
                                                       "outcomes": ["incidents_fight"],
                                                       "window": {"start": "2020-01", "end": "2021-12"}}
                                                      ).model_dump(exclude_none=True)
