"""Shared references for the Callaway–Sant'Anna tests against the ``moderndid`` peer: the mpdta data
(copied to ``tests/data/mpdta.csv.gz``, see ``tests/data/mpdta.SOURCE.md``), the unbalanced variant,
R ``aggte``'s SE formula, and the aggregation checks."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

MPDTA = os.path.join(os.path.dirname(__file__), "data", "mpdta.csv.gz")


def load_mpdta() -> pd.DataFrame:
    """mpdta (R ``did``'s county minimum-wage panel, 500 counties x 2003-2007) with ``state``."""
    d = pd.read_csv(MPDTA)
    d["state"] = d["countyreal"] // 1000
    return d


def with_holes(mpdta: pd.DataFrame) -> pd.DataFrame:
    """mpdta with 10% of the rows deleted at random (fixed seed)."""
    rng = np.random.default_rng(1)
    return mpdta.drop(index=rng.choice(mpdta.index, size=len(mpdta) // 10, replace=False))


def r_agg_se(mp, gu: np.ndarray, keep: np.ndarray) -> float:
    """R aggte SE of the pg-weighted mean of ATT(g,t) over ``keep``, with the wif term.

    Uses moderndid's unit-level influence functions (rows = sorted unit ids) and cohorts ``gu``
    aligned with them (moderndid's own aggte pairs them with cohort-sorted G on this path).
    """
    g, att, inf = mp.groups[keep], mp.att_gt[keep], mp.influence_func[:, keep]
    pg = np.array([np.mean(gu == c) for c in g])
    dev = np.column_stack([(gu == c).astype(float) - np.mean(gu == c) for c in g])
    wif = (dev / pg.sum() - np.outer(dev.sum(axis=1) / pg.sum() ** 2, pg)) @ att
    f = inf @ (pg / pg.sum()) + wif
    return np.sqrt(np.sum(f**2)) / len(gu)


def assert_aggregations_match(res, mp, panel: pd.DataFrame, *, atol_se: float) -> None:
    """Every aggregation of ``res`` against moderndid's ``aggte`` (estimates, 1e-8) and R's aggte SE
    formula on the peer's influence functions (simple ATT, each event time, each calendar period)."""
    import moderndid

    est = res.estimates.set_index("term")
    for typ, term in [("simple", "ATT"), ("group", "ATT_group"), ("dynamic", "ATT_dynamic"),
                      ("calendar", "ATT_calendar")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ag = moderndid.aggte(mp, type=typ, boot=False, cband=False)
        assert est.loc[term, "estimate"] == pytest.approx(ag.overall_att, abs=1e-8)
    gu = panel.groupby("countyreal")["first.treat"].first().sort_index().to_numpy().astype(float)
    post = mp.groups <= mp.times
    assert est.loc["ATT", "std_error"] == pytest.approx(r_agg_se(mp, gu, post), abs=atol_se)
    for r in res.rows("event").itertuples():
        ref = r_agg_se(mp, gu, (mp.times - mp.groups) == r.event_time)
        if np.isnan(r.std_error):  # universal base period: the reference event time (R: NA)
            assert ref < 1e-12
            continue
        assert r.std_error == pytest.approx(ref, abs=atol_se)
    for r in res.rows("calendar").itertuples():
        assert r.std_error == pytest.approx(r_agg_se(mp, gu, (mp.times == r.time) & post), abs=atol_se)


def r_aggte_weighted(mp, gu: np.ndarray, wu: np.ndarray) -> dict[str, tuple[float, float]]:
    """R ``aggte`` (simple, group, dynamic) with sampling weights, on moderndid's weighted ATT(g,t)
    and unit-level influence functions: ``pg = mean(w * 1{G = g})`` and the weight influence
    ``w * 1{G = g} - pg`` as in R ``did``'s ``compute.aggte`` (``weights.ind = dta$.w``).

    ``gu``/``wu``: cohort and weight per unit, aligned with the rows of ``mp.influence_func`` (sorted
    unit ids). moderndid 0.2.0's own ``aggte`` cannot be used here: its ``MPResult.weights_ind`` is
    None (``weightsname`` is renamed during preprocessing), so it aggregates with unweighted shares.
    Returns ``{term: (estimate, se)}`` with evalkit's terms.
    """
    n = len(gu)
    att, inf, groups, times = mp.att_gt, mp.influence_func, mp.groups, mp.times

    def combo(keep, est_k, f_k, g_k):  # pg-weighted mean of estimates est_k (IF columns f_k), cohorts g_k
        pg = np.array([np.mean(wu * (gu == c)) for c in g_k])
        dev = np.column_stack([wu * (gu == c) - np.mean(wu * (gu == c)) for c in g_k])
        wif = (dev / pg.sum() - np.outer(dev.sum(axis=1) / pg.sum() ** 2, pg)) @ est_k
        return float(est_k @ (pg / pg.sum())), f_k @ (pg / pg.sum()) + wif

    def se(f):
        return float(np.sqrt(np.sum(f**2)) / n)

    out: dict[str, tuple[float, float]] = {}
    post = groups <= times
    e, f = combo(post, att[post], inf[:, post], groups[post])
    out["ATT"] = (e, se(f))
    gl = np.unique(groups)
    g_est, g_if = [], []
    for g in gl:
        k = post & (groups == g)
        g_est.append(att[k].mean())
        g_if.append(inf[:, k].mean(axis=1))
        out[f"g={int(g)}"] = (g_est[-1], se(g_if[-1]))
    e, f = combo(None, np.array(g_est), np.column_stack(g_if), gl)
    out["ATT_group"] = (e, se(f))
    ev = times - groups
    d_est, d_if = [], []
    for k_e in np.unique(ev):
        k = ev == k_e
        e, f = combo(k, att[k], inf[:, k], groups[k])
        out[f"e={int(k_e)}"] = (e, se(f))
        if k_e >= 0:
            d_est.append(e)
            d_if.append(f)
    out["ATT_dynamic"] = (float(np.mean(d_est)), se(np.mean(d_if, axis=0)))
    return out
