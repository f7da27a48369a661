"""Small typed results of inference on a fitted result (attached with ``result.with_inference``).

Every type carries ``status``: ``"ok"``, ``"failed"`` (the method ran and could not produce a
number: ``reason`` says why) or ``"not_available"`` (the method is not defined for this design,
e.g. a delete-one jackknife with one treated station). A failed method is reported as failed,
never replaced by another method's number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

STATUSES = ("ok", "failed", "not_available")


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _json(value.item())
    return value


@dataclass(frozen=True, kw_only=True)
class InferenceResult:
    """Common part: ``method`` (short name), ``status``, ``reason`` (plain words, when not ok)."""

    method: str
    status: str = "ok"
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status} {self.method} result needs a reason")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf → None, tuples → lists), with ``type`` = the class name."""
        return {"type": type(self).__name__, **_json(asdict(self))}


@dataclass(frozen=True, kw_only=True)
class JackknifeResult(InferenceResult):
    """Delete-one-cluster jackknife of the headline: ``se² = (G−1)/G · Σ (θ₍g₎ − θ̄)²`` over all G
    clusters, interval ``θ̂ ± t_{1−α/2}(G−1)·se`` (same unit as the estimate)."""

    method: str = "jackknife"
    term: str | None = None
    estimate: float = math.nan
    std_error: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    df: int | None = None
    alpha: float = 0.05
    cluster: str | None = None
    n_clusters: int = 0
    n_treated_clusters: int = 0
    leave_out: tuple[float, ...] = ()  # θ₍g₎ in cluster order (sorted cluster values)


@dataclass(frozen=True, kw_only=True)
class PretrendResult(InferenceResult):
    """Joint test that every event-study lead is zero.

    ``test``: which p-value ``p_value`` is (``chi2``, ``f`` or ``permutation``); ``statistic``:
    ``wald`` (the estimator's W = β̂'V̂⁻¹β̂) or ``t2sum`` (Σ t_e², used by the permutation test
    when V̂ cannot be inverted reliably: k leads ≥ g treated stations)."""

    method: str = "pretrend"
    test: str = "chi2"
    estimator: str | None = None
    statistic: str = "wald"
    stat: float = math.nan
    df: int = 0
    p_value: float = math.nan
    p_chi2: float | None = None
    p_f: float | None = None
    p_permutation: float | None = None
    draws: int = 0  # draws asked for (permutation)
    draws_valid: int = 0
    draws_failed: int = 0
    seed: int | None = None
    n_treated: int = 0
    notes: tuple[str, ...] = ()
    others: dict[str, str] = field(default_factory=dict)  # test -> why it is not the one reported


@dataclass(frozen=True, kw_only=True)
class RomanoWolfResult(InferenceResult):
    """Romano–Wolf stepdown (family-wise) adjusted p-values of the headline over several outcomes,
    all from one estimator (the headline's); one entry per outcome in every tuple."""

    method: str = "romano_wolf"
    estimator: str | None = None
    null: str = "permutation"  # how the joint null distribution was drawn
    outcomes: tuple[str, ...] = ()
    estimate: tuple[float, ...] = ()
    std_error: tuple[float, ...] = ()
    t_stat: tuple[float, ...] = ()
    p_value: tuple[float, ...] = ()  # unadjusted, from the same draws
    p_romano_wolf: tuple[float, ...] = ()
    p_bh: tuple[float, ...] = ()
    draws: int = 0
    draws_valid: int = 0
    draws_failed: int = 0
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome: outcome, estimate, std_error, t_stat, p_value, p_romano_wolf, p_bh."""
        return pd.DataFrame({"outcome": list(self.outcomes), "estimate": list(self.estimate),
                             "std_error": list(self.std_error), "t_stat": list(self.t_stat),
                             "p_value": list(self.p_value), "p_romano_wolf": list(self.p_romano_wolf),
                             "p_bh": list(self.p_bh)})


__all__ = ["STATUSES", "InferenceResult", "JackknifeResult", "PretrendResult", "RomanoWolfResult"]
