"""Multiple outcomes of one evaluation: adjusted p-values.

* :func:`adjust_pvalues` — Benjamini–Hochberg (``bh``, false discovery rate), Benjamini–Yekutieli
  (``by``), Holm (``holm``) and Bonferroni (``bonferroni``) adjustments (same numbers as
  ``statsmodels.stats.multitest.multipletests``).
* :func:`romano_wolf` — Romano–Wolf stepdown adjusted p-values (family-wise error rate) from a
  joint bootstrap of all outcomes. For ``twfe`` the bootstrap is the wild cluster bootstrap
  (WCR) of :mod:`evalkit.inference.wild` with the *same* cluster weights for every outcome, so
  the dependence between the outcomes' statistics is kept. Any other registered estimator uses
  a cluster pairs bootstrap (clusters resampled with replacement; slow: one estimator call per
  outcome and draw) with centred t statistics ``(β*_b − β̂)/se*_b``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from evalkit.inference.wild import draw_weights, twfe_design, wcr_tstats


def _bh(p: np.ndarray, m: int, c: float = 1.0) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m * c / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def _holm(p: np.ndarray, m: int) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    ranked = p[order] * (m - np.arange(m))
    adj = np.maximum.accumulate(ranked)
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def adjust_pvalues(pvalues: dict[str, float] | pd.Series, method: str = "bh") -> dict[str, float]:
    """Adjusted p-values (``bh``/``fdr_bh``, ``by``/``fdr_by``, ``holm``, ``bonferroni``).

    Missing p-values (NaN) are left NaN and not counted in the family.
    """
    items = dict(pvalues)
    keys = list(items)
    p = np.array([items[k] for k in keys], dtype=float)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    method = method.lower()
    if m == 0:
        adj = q
    elif method in ("bh", "fdr_bh"):
        adj = _bh(q, m)
    elif method in ("by", "fdr_by"):
        adj = _bh(q, m, float(np.sum(1.0 / np.arange(1, m + 1))))
    elif method == "holm":
        adj = _holm(q, m)
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    else:
        raise ValueError(f"unknown method {method!r}: bh, by, holm, bonferroni")
    out = np.full(p.size, np.nan)
    out[ok] = adj
    return {k: float(v) for k, v in zip(keys, out, strict=True)}


def stepdown(t: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Romano–Wolf stepdown p-values from actual ``|t|`` (m) and bootstrap null ``|t*|`` (B x m)."""
    ta, tba = np.abs(t), np.abs(tb)
    order = np.argsort(-ta, kind="stable")
    m = ta.size
    # running max over the remaining (less significant) hypotheses: suffix maxima in `order`
    rem_max = np.maximum.accumulate(tba[:, order[::-1]], axis=1)[:, ::-1]  # B x m
    tol = 1e-10 * np.maximum(1.0, ta[order])
    p_step = np.mean(rem_max >= (ta[order] - tol)[None, :], axis=0)
    p_step = np.maximum.accumulate(p_step)
    out = np.empty(m)
    out[order] = p_step
    return out


def romano_wolf(
    panel: pd.DataFrame,
    outcomes: list[str],
    *,
    estimator: str | Callable = "twfe",
    B: int = 999,
    seed: int | None = 0,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    weights: str = "rademacher",
    alpha: float = 0.05,
    **options,
) -> pd.DataFrame:
    """Romano–Wolf stepdown adjusted p-values for the headline effect on several outcomes.

    Returns a frame with ``outcome, estimate, std_error, t_stat, p_value`` (unadjusted bootstrap
    p-value from the same draws), ``p_romano_wolf`` and ``p_bh`` (BH on ``p_value``), plus
    ``B``, ``method``. For ``twfe`` all outcomes are estimated on the rows where none is missing.
    """
    outcomes = list(outcomes)
    if estimator == "twfe" and not options:
        des, Yx = twfe_design(panel, outcomes[0], "static", unit=unit, time=time, cohort=cohort,
                              cluster=cluster, extra_outcomes=outcomes[1:])
        Y = np.column_stack([des.y, Yx]) if len(outcomes) > 1 else des.y[:, None]
        V, enumerated = draw_weights(des.n_clusters, B, weights, seed)
        R = np.zeros(des.X.shape[1])
        R[0] = 1.0
        t, tb = wcr_tstats(des, R, V, Y)
        XtXinv = 1.0 / float(des.X[:, 0] @ des.X[:, 0])
        est = XtXinv * (des.X[:, 0] @ Y)
        se = est / t
        method = f"wild cluster bootstrap (WCR, {weights}, common weights)" + (" full enumeration" if enumerated else "")
        B_used = V.shape[1]
    else:
        est, se, t, tb = _pairs_bootstrap(panel, outcomes, estimator, B, seed, unit, time, cohort, cluster,
                                          alpha, options)
        method = "cluster pairs bootstrap (centred t)"
        B_used = tb.shape[0]
    tol = 1e-10 * np.maximum(1.0, np.abs(t))
    p_raw = np.mean(np.abs(tb) >= (np.abs(t) - tol)[None, :], axis=0)
    p_rw = stepdown(t, tb)
    p_bh = adjust_pvalues(dict(zip(outcomes, p_raw, strict=True)), "bh")
    return pd.DataFrame({
        "outcome": outcomes, "estimate": est, "std_error": se, "t_stat": t, "p_value": p_raw,
        "p_romano_wolf": p_rw, "p_bh": [p_bh[o] for o in outcomes], "B": B_used, "method": method,
    })


def _pairs_bootstrap(panel, outcomes, estimator, B, seed, unit, time, cohort, cluster, alpha, options):
    from evalkit.inference.randomization import get_estimator_fn

    est_fn = get_estimator_fn(estimator)
    cl = cluster or unit
    kw = dict(unit=unit, time=time, cohort=cohort, cluster=cluster, alpha=alpha, **options)
    fits = [est_fn(panel, o, **kw) for o in outcomes]
    est = np.array([f.att for f in fits])
    se = np.array([f.se for f in fits])
    t = est / se
    levels = np.sort(panel[cl].unique())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, levels.size, size=(B, levels.size))
    groups = {k: g for k, g in panel.groupby(cl, sort=True)}
    tb = np.full((B, len(outcomes)), np.nan)
    for b in range(B):
        parts = []
        for copy, j in enumerate(idx[b]):  # loop over resampled clusters (bootstrap pairs)
            g = groups[levels[j]]
            parts.append(g.assign(**{unit: g[unit].astype(str) + f"#{copy}"}))
        pb = pd.concat(parts, ignore_index=True)
        if cluster:
            pb[cluster] = pb[unit].str.split("#").str[1]
        for k, o in enumerate(outcomes):
            try:
                r = est_fn(pb, o, **kw)
                tb[b, k] = (r.att - est[k]) / r.se
            except Exception:  # noqa: BLE001 - a degenerate resample
                continue
    tb = tb[np.all(np.isfinite(tb), axis=1)]
    return est, se, t, tb
