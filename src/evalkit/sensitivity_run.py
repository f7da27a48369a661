"""Rambachan–Roth sensitivity of an evaluation's primary outcome (orchestration, numbers only).

The statistics are in :mod:`evalkit.sensitivity` (HonestDiD port); this module chooses the event
study, the fixed grids and the breakdown bisection, and records what could not be computed and
why. The work is bounded by fixed grids and a fixed number of bisection steps — never by the
clock — so the same panel and params give the same numbers on an idle or a loaded machine.
The sentences of the brief are rendered by :mod:`evalkit.brief_text`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evalkit.estimators import get_estimator
from evalkit.params import EvaluationParams

# CS event study with a universal base period, short window
SENS_PRE, SENS_POST, SENS_POST_RM = 6, 12, 6  # RM vertex enumeration explodes beyond ~6 post coefficients
SENS_MBAR = (0.5, 1.0, 1.5, 2.0)
SENS_M_FACTORS = (0.0, 0.025, 0.05, 0.1, 0.2)  # smoothness grid M = factor × SE of the target
# breakdown bisection: bracket [0, upper], stop at width ≤ tol → at most ceil(log2(upper / tol)) steps
BREAKDOWN_RM_UPPER, BREAKDOWN_RM_TOL = 5.0, 0.05  # M̄: ≤ 7 steps
BREAKDOWN_SD_UPPER, BREAKDOWN_SD_TOL = 1.0, 0.01  # M in units of the target's SE: ≤ 7 steps
SENS_SOURCES = ("cs", "event_twfe")  # event studies tried in this order (see ``source_errors``)


@dataclass
class Sensitivity:
    """Rambachan–Roth sensitivity of the primary outcome's event study (see ``docs/briefs.md``).

    ``sd``: smoothness (Δ^SD, FLCI) robust CIs for θ = mean of the first ``num_post`` post-reform
    effects; ``rm``: relative magnitudes (Δ^RM, C-LF) for θ_RM = mean of the first ``num_post_rm``
    effects; frames with columns ``M, lb, ub, method, Delta`` in outcome units. ``robust``: whether
    the reference robust CI (RM at M̄ = 0.5, else SD at the smallest positive M) excludes zero on the
    side of ``sign`` (the headline estimate's sign); ``None`` if it could not be decided.
    ``source_errors``: why an event study earlier in :data:`SENS_SOURCES` than ``source`` was not
    usable; ``failed``: part (``rm``, ``breakdown_rm``, ``breakdown_sd``) → why it failed.
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

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("outcome", "source", "num_pre", "num_post", "num_post_rm", "original",
                                           "original_rm", "breakdown_rm", "breakdown_sd", "robust", "reference",
                                           "source_errors", "failed")}
        d["sd"] = None if self.sd is None else self.sd.to_dict(orient="records")
        d["rm"] = None if self.rm is None else self.rm.to_dict(orient="records")
        return d


class SensitivityError(ValueError):
    """No event study usable for the sensitivity analysis (the message says why, per source)."""


def reason(exc: BaseException) -> str:
    """A short plain reason for the brief (the message, not the exception class)."""
    from evalkit.inference._refit import clip_text

    return clip_text(str(exc)) or type(exc).__name__.replace("Error", "").lower() or "failed"


def _event_study(panel: pd.DataFrame, outcome: str, p: EvaluationParams, source: str
                 ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(β̂, Σ, num_pre, num_post) of one event study, window ≤ 6 pre / 12 post; raises if unusable."""
    from evalkit.sensitivity import event_inputs

    if source == "cs":  # universal base period, as the HonestDiD documentation recommends for CS
        r = get_estimator("cs")(panel, outcome, control=p.control, base_period="universal",
                                cluster=p.cluster, alpha=p.alpha, trim_e=(-(SENS_PRE + 1), SENS_POST - 1),
                                aggregations=("dynamic",))
    else:
        r = get_estimator("event_twfe")(panel, outcome, cluster=p.cluster, alpha=p.alpha,
                                        leads=SENS_PRE + 1, lags=SENS_POST - 1)
    beta, sigma, npre, npost = event_inputs(r)
    keep_pre, keep_post = min(npre, SENS_PRE), min(npost, SENS_POST)
    idx = np.r_[np.arange(npre - keep_pre, npre), np.arange(npre, npre + keep_post)]
    beta, sigma = beta[idx], sigma[np.ix_(idx, idx)]
    if keep_pre < 2 or keep_post < 1:
        raise ValueError(f"only {keep_pre} pre-reform and {keep_post} post-reform coefficients")
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        raise ValueError("event-study estimates or their covariance are not finite")
    eig = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    if eig.min() <= 1e-10 * max(eig.max(), 1e-300):
        n_cl = int(panel[p.cluster].nunique()) if p.cluster in panel else 0
        raise ValueError(f"the covariance of the {len(beta)} event-study coefficients is singular "
                         f"(too few clusters: {n_cl} {p.cluster} clusters)")
    return beta, sigma, keep_pre, keep_post


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


def run_sensitivity(panel: pd.DataFrame, outcome: str, p: EvaluationParams, *, sign: float = 1.0) -> Sensitivity:
    """Rambachan–Roth sensitivity for ``outcome`` (see :class:`Sensitivity` and ``docs/briefs.md``).

    Smoothness (FLCI) on the grid :data:`SENS_M_FACTORS` × SE; relative magnitudes for
    :data:`SENS_MBAR` and their breakdown value; the smoothness breakdown when the relative
    magnitudes' breakdown is not available. A part that fails is recorded in ``failed``.
    Raises :class:`SensitivityError` when no event study is usable.
    """
    from evalkit.sensitivity import honest_did, original_ci

    errors: dict[str, str] = {}
    for source in SENS_SOURCES:
        try:
            beta, sigma, npre, npost = _event_study(panel, outcome, p, source)
            break
        except Exception as exc:  # noqa: BLE001 - recorded; the next source is tried and the brief says so
            errors[source] = reason(exc)
    else:
        raise SensitivityError("no event study usable for the sensitivity analysis ("
                               + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")")
    lv = np.full(npost, 1.0 / npost)
    orig = original_ci(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, alpha=p.alpha)
    se = max(float(orig["se"]), 1e-12)
    sd = honest_did(beta, sigma, num_pre=npre, num_post=npost, l_vec=lv, type="sd", alpha=p.alpha,
                    M=[f * se for f in SENS_M_FACTORS])
    sd["M_factor"] = list(SENS_M_FACTORS)
    sens = Sensitivity(outcome=outcome, source=source, num_pre=npre, num_post=npost,
                       num_post_rm=min(npost, SENS_POST_RM), original={k: float(v) for k, v in orig.items()}, sd=sd,
                       source_errors=errors)
    # relative magnitudes on the first ≤ 6 post coefficients (vertex enumeration explodes beyond)
    nrm = sens.num_post_rm
    b_rm, s_rm = beta[: npre + nrm], sigma[: npre + nrm, : npre + nrm]
    lv_rm = np.full(nrm, 1.0 / nrm)
    rm_kw = {"num_pre": npre, "num_post": nrm, "l_vec": lv_rm, "type": "rm", "alpha": p.alpha,
             "grid_points": 300, "seed": p.seed % (2**32)}
    try:
        orm = original_ci(b_rm, s_rm, num_pre=npre, num_post=nrm, l_vec=lv_rm, alpha=p.alpha)
        sens.original_rm = {k: float(v) for k, v in orm.items()}
        sens.rm = pd.concat([honest_did(b_rm, s_rm, Mbar=[mb], **rm_kw) for mb in SENS_MBAR], ignore_index=True)
    except Exception as exc:  # noqa: BLE001
        sens.failed["rm"] = reason(exc)
    if sens.rm is not None:
        try:
            grid = [(float(r.M), _covers(pd.DataFrame([r]))) for r in sens.rm.itertuples()]
            sens.breakdown_rm = breakdown_bisect(lambda m: _covers(honest_did(b_rm, s_rm, Mbar=[m], **rm_kw)),
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


__all__ = ["SENS_MBAR", "SENS_M_FACTORS", "SENS_POST", "SENS_POST_RM", "SENS_PRE", "Sensitivity",
           "SensitivityError", "breakdown_bisect", "reason", "run_sensitivity"]
