"""Binned event study for the sensitivity analysis: the headline estimand as l'β over bins.

The headline estimand (:mod:`evalkit.estimand`) is ``Σ_e w_e θ(e)`` over event times ``0..H``
(``w_e``: share of adopter-months). A county of 12–15 stations cannot support ~30 monthly
event-study coefficients (their clustered covariance has rank ≤ clusters − 1), and the
relative-magnitudes test enumerates vertices whose number explodes beyond ~6 post coefficients.
So the monthly event-time vector θ (with θ(−1) = 0, universal base period) is mapped linearly
into ``b``-month bins, ``β_bins = A θ`` and ``Σ_bins = A Σ A'`` (Σ from the influence functions):

* base bin ``[−b, −1]`` (equal weights), subtracted from every bin (re-centring: δ = 0 there);
* ``num_pre`` pre bins ``[−(j+1)b, −jb−1]``, ``j = 1..num_pre`` (equal width, equal weights);
* post bins ``[kb, (k+1)b−1]`` over ``0..H_eff`` (``H_eff``: last event time with adopter-months),
  the remainder of ``(H_eff+1) / b`` merged into the last bin; inside a post bin the months are
  weighted by ``w_e / W_k`` (``W_k``: the bin's share), so ``l = (W_k)`` gives
  ``l'β_post = Σ_e w_e θ(e) − mean_{e∈base} θ(e)`` — exactly the headline estimand when ``b = 1``
  and, for ``b > 1``, the same estimand measured against the ``b`` months before adoption instead
  of the single month before (the two differ by the base bin's mean pre-coefficient, zero under
  parallel trends).

The width is chosen deterministically (:func:`choose_bins`): the smallest of :data:`BIN_CHOICES`
with at most :data:`MAX_POST_BINS` post bins, at least :data:`MIN_PRE_BINS` pre bins, at most
``clusters // 2`` coefficients and a correlation matrix with condition number ≤ :data:`MAX_COND`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BIN_CHOICES = (1, 2, 3, 4, 6, 12)  # bin widths tried, in months, smallest first
MAX_POST_BINS = 6  # relative magnitudes: vertex enumeration stays small (C(2·6, 6) subsets)
MIN_PRE_BINS, MAX_PRE_BINS = 2, 3  # pre bins besides the base bin
MAX_COND = 1e6  # condition number of the binned coefficients' correlation matrix
PRE_MONTHS_NEEDED = (MAX_PRE_BINS + 1) * max(BIN_CHOICES)  # pre event times the event study must keep


@dataclass(frozen=True)
class BinnedEventStudy:
    """β̂ (pre bins oldest first, then post bins; the base bin left out), Σ, and the target ``l_vec``.

    ``bins``: ``(first, last)`` event months of every bin in β̂'s order; ``base``: the base bin;
    ``A``: the map from the monthly vector (``event_times``) to β̂; ``cond``: condition number
    of Σ's correlation matrix.
    """

    beta: np.ndarray
    sigma: np.ndarray
    num_pre: int
    num_post: int
    l_vec: np.ndarray
    bin_months: int
    bins: tuple[tuple[int, int], ...]
    base: tuple[int, int]
    A: np.ndarray
    event_times: np.ndarray
    cond: float
    skipped: tuple[str, ...] = ()  # why each narrower width was not used ("3 months: …")
    sigma_factor: float = 1.0  # small-sample factor already applied to Σ (:func:`small_sample_factor`)
    base_mean: float = 0.0  # mean of θ over the base bin: l'β_post = Σ_e w_e θ(e) − base_mean


def bin_map(event_times: np.ndarray, weights: pd.Series, width: int, num_pre: int
            ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], tuple[int, int]]:
    """(A, l_vec, bins, base) for bins of ``width`` months (see the module docstring).

    ``event_times``: the monthly vector's event times (must contain every month of every bin);
    ``weights``: :func:`evalkit.estimand.event_time_weights` (index ``e = 0..H``). Raises
    ``ValueError`` naming the first missing event month.
    """
    et = np.asarray(event_times, int)
    pos = {int(e): i for i, e in enumerate(et)}
    w = weights[weights > 0]
    h_eff = int(w.index.max())
    n_post = max(1, (h_eff + 1) // width)

    def row(months: range, wts: np.ndarray | None = None) -> np.ndarray:
        r = np.zeros(et.size)
        wts = np.full(len(months), 1.0 / len(months)) if wts is None else wts
        for m, x in zip(months, wts, strict=True):
            if m not in pos:
                raise ValueError(f"the event study has no coefficient for month {m} relative to adoption")
            r[pos[m]] += x
        return r

    base = (-width, -1)
    base_row = row(range(-width, 0))
    rows, bins, lv = [], [], []
    for j in range(num_pre, 0, -1):
        lo = -(j + 1) * width
        rows.append(row(range(lo, lo + width)))
        bins.append((lo, lo + width - 1))
    for k in range(n_post):
        lo, hi = k * width, (h_eff if k == n_post - 1 else (k + 1) * width - 1)
        months = range(lo, hi + 1)
        wk = weights.reindex(list(months), fill_value=0.0).to_numpy(float)
        share = float(wk.sum())
        rows.append(row(months, wk / share if share > 0 else None))
        bins.append((lo, hi))
        lv.append(share)
    A = np.array(rows) - base_row[None, :]
    return A, np.array(lv), bins, base


def small_sample_factor(n_clusters: int, alpha: float = 0.05, *, cluster_factor: bool = True) -> float:
    """Σ multiplier ``G/(G−1) · (t_{1−α/2}(G−1) / z_{1−α/2})²``: the clustered influence-function
    covariance has no small-sample correction and HonestDiD's critical values are normal, while the
    headline's interval uses t(G−1) (the jackknife's reference); 1.28 with 15 clusters, 1.03 with 100.
    ``cluster_factor=False`` leaves out ``G/(G−1)`` (a CRV1 covariance already has it)."""

    from evalkit.distributions import norm_ppf, t_ppf

    g = int(n_clusters)
    if g < 2:
        return float("inf")
    z = norm_ppf(1 - alpha / 2)
    return (g / (g - 1) if cluster_factor else 1.0) * (float(t_ppf(1 - alpha / 2, g - 1)) / z) ** 2


def _pre_months(event_times: np.ndarray) -> int:
    """Number of consecutive pre-adoption months −1, −2, … present in ``event_times``."""
    have = {int(e) for e in event_times}
    n = 0
    while -(n + 1) in have:
        n += 1
    return n


def condition_number(sigma: np.ndarray) -> float:
    """Condition number of Σ's correlation matrix (``inf`` if singular or not finite)."""
    if not np.all(np.isfinite(sigma)):
        return float("inf")
    d = np.sqrt(np.clip(np.diag(sigma), 0.0, None))
    if np.any(d <= 0):
        return float("inf")
    corr = sigma / np.outer(d, d)
    eig = np.linalg.eigvalsh((corr + corr.T) / 2)
    return float("inf") if eig.min() <= 0 else float(eig.max() / eig.min())


def choose_bins(event_times: np.ndarray, theta: np.ndarray, vcov: np.ndarray, weights: pd.Series,
                n_clusters: int, *, choices: tuple[int, ...] = BIN_CHOICES) -> BinnedEventStudy:
    """The first width of ``choices`` that gives a usable binned event study (rule: module docstring).

    ``theta``/``vcov``: the monthly event-study vector and its covariance on ``event_times``
    (the base month −1 included with 0 and zero variance). Raises ``ValueError`` with the plain
    reason the widest bins failed when no width is usable.
    """
    et = np.asarray(event_times, int)
    theta = np.asarray(theta, float)
    vcov = np.asarray(vcov, float)
    h_eff = int(weights[weights > 0].index.max())
    pre_avail = _pre_months(et)
    why: list[str] = []
    for b in choices:
        n_post = max(1, (h_eff + 1) // b)
        if n_post > MAX_POST_BINS:
            why.append(f"{n_post} post bins, more than {MAX_POST_BINS}")
            continue
        n_pre = min(MAX_PRE_BINS, pre_avail // b - 1, n_clusters // 2 - n_post)
        if n_pre < MIN_PRE_BINS:
            if pre_avail // b - 1 < MIN_PRE_BINS:
                why.append(f"{pre_avail} pre-reform months give {max(pre_avail // b - 1, 0)} pre bins "
                           f"besides the base bin, fewer than {MIN_PRE_BINS}")
            else:
                why.append(f"{n_post + MIN_PRE_BINS} coefficients, more than half of {n_clusters} clusters")
            continue
        A, lv, bins, base = bin_map(et, weights, b, n_pre)
        beta, sigma = A @ theta, A @ vcov @ A.T
        sigma = (sigma + sigma.T) / 2
        cond = condition_number(sigma)
        if not (np.all(np.isfinite(beta)) and cond <= MAX_COND):
            why.append(f"the covariance of the {len(beta)} coefficients is singular or ill-conditioned "
                       f"(condition number {cond:.1e} > {MAX_COND:.0e})")
            continue
        base_mean = float(np.mean([theta[list(et).index(e)] for e in range(base[0], base[1] + 1)]))
        return BinnedEventStudy(beta=beta, sigma=sigma, num_pre=n_pre, num_post=len(lv), l_vec=lv, bin_months=b,
                                base_mean=base_mean,
                                bins=tuple(bins), base=base, A=A, event_times=et, cond=cond,
                                skipped=tuple(f"{w} month{'s' if w > 1 else ''}: {y}"
                                              for w, y in zip(choices, why, strict=False)))
    raise ValueError(f"not computable with {n_clusters} clusters: even {choices[-1]}-month bins fail "
                     f"({why[-1]})")


__all__ = ["BIN_CHOICES", "MAX_COND", "MAX_POST_BINS", "MAX_PRE_BINS", "MIN_PRE_BINS", "PRE_MONTHS_NEEDED",
           "BinnedEventStudy", "bin_map", "choose_bins", "condition_number", "small_sample_factor"]
