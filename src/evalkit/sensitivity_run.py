"""Rambachan–Roth sensitivity of an evaluation's primary outcome (orchestration, numbers only).

It bounds the headline estimand (:mod:`evalkit.estimand`: adopter-month weighted average effect
over months 0..H) as l'β over an event study binned by :mod:`evalkit.sensitivity_bins` (monthly
when the clusters support it). The statistics are in :mod:`evalkit.sensitivity` (HonestDiD port);
this module chooses the event study, the fixed grids and the breakdown bisection, and records what could not be computed and
why. The work is bounded by fixed grids and a fixed number of bisection steps — never by the
clock — so the same panel and params give the same numbers on an idle or a loaded machine.
The sentences of the brief are rendered by :mod:`evalkit.brief_text`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimand import HEADLINE_ESTIMAND, event_time_weights, horizon
from evalkit.estimators import get_estimator
from evalkit.params import EvaluationParams
from evalkit.sensitivity_bins import (
    PRE_MONTHS_NEEDED,
    BinnedEventStudy,
    choose_bins,
    small_sample_factor,
)

SENS_MBAR = (0.5, 1.0, 1.5, 2.0)
SENS_M_FACTORS = (0.0, 0.025, 0.05, 0.1, 0.2)  # smoothness grid M = factor × SE of the target
# breakdown bisection: bracket [0, upper], stop at width ≤ tol → at most ceil(log2(upper / tol)) steps
BREAKDOWN_RM_UPPER, BREAKDOWN_RM_TOL = 5.0, 0.05  # M̄: ≤ 7 steps
BREAKDOWN_SD_UPPER, BREAKDOWN_SD_TOL = 1.0, 0.01  # M in units of the target's SE: ≤ 7 steps
SENS_SOURCES = ("cs", "event_twfe")  # event studies tried in this order (see ``source_errors``)
RM_GRID_POINTS = 300  # θ grid of the relative-magnitudes test inversion


@dataclass
class Sensitivity:
    """Rambachan–Roth sensitivity of the primary outcome's headline estimand (``docs/sdid-and-sensitivity.md``).

    The target θ = ``estimand`` (:data:`evalkit.estimand.HEADLINE_ESTIMAND`): the adopter-month
    weighted average effect over months ``horizon = [0, H]`` after adoption, written as l'β over a
    ``bin_months``-wide binned event study (1 = monthly; :mod:`evalkit.sensitivity_bins`):
    ``num_pre`` pre bins besides the base bin, ``num_post`` post bins with weights ``weights``
    (l, the bins' shares of adopter-months), ``bins`` their event months.
    ``sd``: smoothness (Δ^SD, FLCI) robust CIs; ``rm``: relative magnitudes (Δ^RM, C-LF); frames with
    columns ``M, lb, ub, method, Delta`` in outcome units (M of Δ^SD per bin, not per month).
    ``robust``: whether the reference robust CI (RM at M̄ = 0.5, else SD at the smallest positive M)
    excludes zero on the side of ``sign`` (the headline estimate's sign); ``None`` if it could not be
    decided. ``note``: the key facts in plain English for the brief (what is bounded, why bins).
    ``source_errors``: why an event study earlier in :data:`SENS_SOURCES` than ``source`` was not
    usable; ``failed``: part (``rm``, ``breakdown_rm``, ``breakdown_sd``) → why it failed.
    ``num_post_rm``/``original_rm`` equal ``num_post``/``original`` (RM bounds the same target);
    ``months`` (property): post-adoption months the target covers, for the brief's "first n months".
    ``sigma_factor``: the small-sample factor applied to the event study's covariance.
    """

    outcome: str
    source: str  # estimator of the event study: "cs" (universal base period) or "event_twfe"
    num_pre: int
    num_post: int
    num_post_rm: int
    original: dict[str, float]
    original_rm: dict[str, float] | None = None
    sd: pd.DataFrame | None = None
    rm: pd.DataFrame | None = None
    breakdown_rm: float | None = None
    breakdown_sd: float | None = None
    robust: bool | None = None
    reference: str | None = None  # "rm" or "sd": which robust CI decided ``robust``
    source_errors: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    estimand: str = HEADLINE_ESTIMAND
    horizon: list[int] = field(default_factory=lambda: [0, 24])
    bin_months: int = 1
    bins: list[list[int]] = field(default_factory=list)  # [first, last] event month of each coefficient
    weights: list[float] = field(default_factory=list)  # l: post bins' shares of adopter-months
    n_clusters: int | None = None
    sigma_factor: float = 1.0  # small-sample factor on the event study's covariance (sensitivity_bins)
    base_shift: float = 0.0  # mean pre-reform coefficient of the base bin: original["estimate"] + base_shift
    #                          = the headline estimand measured against the single month before adoption
    note: str = ""

    @property
    def months(self) -> int:
        """Post-adoption months the target covers (months 0..months−1; ``H + 1`` unless the panel ends
        earlier) — the ``n`` of the brief's "average effect over the first n months"."""
        return int(self.bins[-1][1]) + 1 if self.bins else self.num_post

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("outcome", "source", "num_pre", "num_post", "num_post_rm", "original",
                                           "original_rm", "breakdown_rm", "breakdown_sd", "robust", "reference",
                                           "source_errors", "failed", "estimand", "horizon", "bin_months", "bins",
                                           "weights", "n_clusters", "sigma_factor", "base_shift", "note", "months")}
        d["sd"] = None if self.sd is None else self.sd.to_dict(orient="records")
        d["rm"] = None if self.rm is None else self.rm.to_dict(orient="records")
        return d


class SensitivityError(ValueError):
    """No event study usable for the sensitivity analysis (the message says why, per source)."""


def reason(exc: BaseException) -> str:
    """A short plain reason for the brief (the message, not the exception class)."""
    from evalkit.inference._refit import clip_text

    return clip_text(str(exc)) or type(exc).__name__.replace("Error", "").lower() or "failed"


def monthly_event_study(panel: pd.DataFrame, outcome: str, p: EvaluationParams, source: str, last: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(event_times, θ, Σ, clusters): the monthly event study ``−PRE_MONTHS_NEEDED..last`` with the
    base month −1 included (θ = 0, zero variance); raises if it has no coefficient or is not finite."""
    if source == "cs":  # universal base period, as the HonestDiD documentation recommends for CS
        r = get_estimator("cs")(panel, outcome, control=p.control, base_period="universal",
                                cluster=p.cluster, alpha=p.alpha, trim_e=(-PRE_MONTHS_NEEDED, last),
                                aggregations=("dynamic",))
        ends: tuple[float, float] = (-np.inf, np.inf)
    else:  # endpoints are pooled dummies: left out
        r = get_estimator("event_twfe")(panel, outcome, cluster=p.cluster, alpha=p.alpha,
                                        leads=PRE_MONTHS_NEEDED + 1, lags=last + 1)
        ends = (-(PRE_MONTHS_NEEDED + 1), last + 1)
    ev = r.event_study()
    V = r.vcov.get("event")
    if V is None:
        raise ValueError("the event study has no covariance")
    et = ev["event_time"].astype(float).to_numpy()
    keep = ev["term"].isin(V.index).to_numpy() & (et > ends[0]) & (et < ends[1]) & (et != -1)
    ev = ev[keep]
    terms = ev["term"].tolist()
    e = np.r_[ev["event_time"].astype(int).to_numpy(), -1]
    theta = np.r_[ev["estimate"].to_numpy(float), 0.0]
    sig = np.zeros((e.size, e.size))
    sig[:-1, :-1] = V.loc[terms, terms].to_numpy(float)
    order = np.argsort(e, kind="stable")
    e, theta, sig = e[order], theta[order], sig[np.ix_(order, order)]
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(sig))):
        raise ValueError("event-study estimates or their covariance are not finite")
    if not (e >= 0).any():
        raise ValueError("the event study has no post-reform coefficient")
    n_cl = r.meta.get("n_clusters")
    if not n_cl:
        n_cl = int(panel[p.cluster].nunique()) if p.cluster in panel else int(panel["station_id"].nunique())
    return e, theta, sig, int(n_cl)


def _note(b: BinnedEventStudy, h: int, n_cl: int, cluster: str, source: str, se: float) -> str:
    """The plain-English key facts the brief prints (what is bounded, why bins)."""
    src = "Callaway–Sant'Anna" if source == "cs" else "dynamic TWFE"
    word = {"station_id": "station", "county": "county", "city": "city"}.get(cluster, cluster)
    what = (f"Bounds the headline's average effect over months 0–{h} after adoption (each adopter-month "
            f"weighted equally), from a {src} event study with {n_cl} {word} clusters")
    if b.bin_months == 1:
        return f"{what}, monthly coefficients ({b.num_pre} pre-reform, {b.num_post} post-reform months)."
    out = (f"{what}, in {b.bin_months}-month bins ({b.num_pre} pre-reform bins, {b.num_post} post-reform bins, "
           f"effects measured against the {b.bin_months} months before adoption); narrower bins were not usable ("
           + "; ".join(b.skipped) + ").")
    if abs(b.base_mean) > se:  # the headline compares with the single month before adoption
        out += (f" Measured against the {b.bin_months} months before adoption the estimate differs from the "
                f"headline's (measured against the month before) by more than one standard error: the month "
                f"before adoption differs from the months before it.")
    return out


def _excludes_zero(lb: float, ub: float, sign: float) -> bool | None:
    if _nan(lb) or _nan(ub):
        return None
    return bool(lb > 0) if sign > 0 else bool(ub < 0)


def _covers(df: pd.DataFrame) -> bool:
    lb, ub = df["lb"].iloc[0], df["ub"].iloc[0]
    return bool(not _nan(lb) and lb <= 0 <= ub)


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def breakdown_bisect(covers: Any, grid: list[tuple[float, bool]], upper: float, tol: float) -> float:
    """Smallest M at which the robust CI covers 0: bracketed by the already computed ``grid``
    (M, covers), then bisection to width ≤ ``tol`` (a fixed number of steps for a given bracket);
    ``inf`` when the CI still excludes 0 at ``upper``."""
    grid = sorted(grid)
    lo = 0.0
    hi = None
    for m, c in grid:
        if c:
            hi = m
            break
        lo = m
    if hi is None:
        if covers(upper):
            hi = upper
        else:
            return float("inf")
    if lo == 0.0 and covers(0.0):
        return 0.0
    from evalkit.sensitivity import bisect_smallest

    return bisect_smallest(covers, lo, hi, tol)


def binned_event_study(panel: pd.DataFrame, outcome: str, p: EvaluationParams
                       ) -> tuple[BinnedEventStudy, str, dict[str, str], int]:
    """(binned event study, source, source_errors, clusters) for the headline estimand of ``outcome``.

    The event studies of :data:`SENS_SOURCES` are tried in order until one estimates; its monthly
    covariance is scaled by :func:`evalkit.sensitivity_bins.small_sample_factor` (few clusters)
    and the vector is binned by :func:`evalkit.sensitivity_bins.choose_bins` with the weights
    :func:`evalkit.estimand.event_time_weights` over ``0..H``. Raises :class:`SensitivityError`
    with a plain reason when no event study estimates or no bin width is usable.
    """
    h = horizon(p.event_window)[1]
    try:
        weights = event_time_weights(panel, outcome, h)
    except ValueError as exc:
        raise SensitivityError(str(exc)) from exc
    errors: dict[str, str] = {}
    for source in SENS_SOURCES:
        try:
            et, theta, vcov, n_cl = monthly_event_study(panel, outcome, p, source, h)
            break
        except Exception as exc:  # noqa: BLE001 - recorded; the next source is tried and the brief says so
            errors[source] = reason(exc)
    else:
        raise SensitivityError("no event study usable for the sensitivity analysis ("
                               + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")")
    factor = small_sample_factor(n_cl, p.alpha, cluster_factor=source == "cs")  # event_twfe: CRV1 has G/(G−1)
    try:
        b = replace(choose_bins(et, theta, vcov * factor, weights, n_cl), sigma_factor=factor)
    except ValueError as exc:  # the same data would fail with the next source: say why, plainly
        raise SensitivityError(str(exc)) from exc
    return b, source, errors, n_cl


def run_sensitivity(panel: pd.DataFrame, outcome: str, p: EvaluationParams, *, sign: float = 1.0) -> Sensitivity:
    """Rambachan–Roth sensitivity of the headline estimand of ``outcome`` (see :class:`Sensitivity`).

    θ = l'β over the binned event study of :func:`binned_event_study`. Smoothness (FLCI) on the
    grid :data:`SENS_M_FACTORS` × SE; relative magnitudes for :data:`SENS_MBAR` and their breakdown
    value; the smoothness breakdown when the relative magnitudes' breakdown is not available. A
    part that fails is recorded in ``failed``. Raises :class:`SensitivityError` (plain reason) when
    the analysis cannot be computed.
    """
    from evalkit.sensitivity import honest_did, original_ci

    b, source, errors, n_cl = binned_event_study(panel, outcome, p)
    beta, sigma, npre, npost, lv = b.beta, b.sigma, b.num_pre, b.num_post, b.l_vec
    h = horizon(p.event_window)[1]
    orig = original_ci(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, alpha=p.alpha)
    se = max(float(orig["se"]), 1e-12)
    sd = honest_did(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, type="sd", alpha=p.alpha,
                    M=[f * se for f in SENS_M_FACTORS])
    sd["M_factor"] = list(SENS_M_FACTORS)
    original = {k: float(v) for k, v in orig.items()}
    sens = Sensitivity(outcome=outcome, source=source, num_pre=npre, num_post=npost, num_post_rm=npost,
                       original=original, original_rm=dict(original), sd=sd, source_errors=errors,
                       horizon=[0, h], bin_months=b.bin_months, bins=[list(x) for x in b.bins],
                       weights=[float(x) for x in lv], n_clusters=n_cl, sigma_factor=b.sigma_factor,
                       base_shift=b.base_mean, note=_note(b, h, n_cl, p.cluster, source, se))
    rm_kw = {"num_pre": npre, "num_post": npost, "l_vec": lv, "type": "rm", "alpha": p.alpha,
             "grid_points": RM_GRID_POINTS, "seed": p.seed % (2**32)}
    try:
        sens.rm = pd.concat([honest_did(beta, sigma, Mbar=[mb], **rm_kw) for mb in SENS_MBAR], ignore_index=True)
    except Exception as exc:  # noqa: BLE001
        sens.failed["rm"] = reason(exc)
    if sens.rm is not None:
        try:
            grid = [(float(r.M), _covers(pd.DataFrame([r]))) for r in sens.rm.itertuples()]
            sens.breakdown_rm = breakdown_bisect(lambda m: _covers(honest_did(beta, sigma, Mbar=[m], **rm_kw)),
                                                 grid, upper=BREAKDOWN_RM_UPPER, tol=BREAKDOWN_RM_TOL)
        except Exception as exc:  # noqa: BLE001
            sens.failed["breakdown_rm"] = reason(exc)
    if sens.breakdown_rm is None:
        try:
            grid = [(float(r.M), _covers(pd.DataFrame([r]))) for r in sd.itertuples()]
            sens.breakdown_sd = breakdown_bisect(
                lambda m: _covers(honest_did(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, type="sd",
                                             alpha=p.alpha, M=[m])),
                grid, upper=BREAKDOWN_SD_UPPER * se, tol=BREAKDOWN_SD_TOL * se)
        except Exception as exc:  # noqa: BLE001
            sens.failed["breakdown_sd"] = reason(exc)
    # the verdict's robustness input: RM at M̄ = 0.5, else SD at the smallest positive M
    if sens.rm is not None and (sens.rm["M"] == SENS_MBAR[0]).any():
        r0 = sens.rm[sens.rm["M"] == SENS_MBAR[0]].iloc[0]
        sens.robust, sens.reference = _excludes_zero(r0["lb"], r0["ub"], sign), "rm"
    else:
        r0 = sd[sd["M"] > 0].iloc[0] if (sd["M"] > 0).any() else sd.iloc[0]
        sens.robust, sens.reference = _excludes_zero(r0["lb"], r0["ub"], sign), "sd"
    return sens


__all__ = ["SENS_MBAR", "SENS_M_FACTORS", "SENS_SOURCES", "Sensitivity", "SensitivityError", "binned_event_study",
           "breakdown_bisect", "monthly_event_study", "reason", "run_sensitivity"]
