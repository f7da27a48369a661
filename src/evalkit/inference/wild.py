"""Wild cluster bootstrap (WCR, null imposed) for TWFE coefficients with few clusters.

Algorithm ("fast and wild", Roodman, MacKinnon, Nielsen & Webb 2019):

1. Partial the unit and period fixed effects out of the outcome and the regressors once
   (exact within transformation of the shared engine, :class:`evalkit.estimators._fe.Within`).  By Frisch–Waugh–Lovell the
   coefficient, the residuals and the cluster-robust variance of the dummy-variable regression
   are reproduced exactly by the regression of demeaned ``y`` on demeaned ``X``.
2. For a hypothesis ``R'β = r`` the restricted residuals are linear in ``r``:
   ``ü(r) = ü₀ − r·ẍ``.  Every bootstrap quantity is then a linear function of the cluster
   weights ``v`` (a ``G × B`` matrix): the numerator ``β*−r = C(r)'v`` and the cluster scores
   of the bootstrap CRV1 variance ``P(r) = diag(C(r))·v − Q·(S(r)·v)`` with ``C``, ``Q``, ``S``
   small (``G``, ``G×k``, ``k×G``).  A bootstrap run is a handful of matrix products; no
   regression is re-run per draw.
3. ``P(r) = P₀ − r·P₁`` so the bootstrap t statistics for *any* ``r`` follow from five
   ``B``-vectors; confidence intervals are found by inverting the bootstrap test (bisection on
   ``r``), as ``boottest`` does.

The p-value is the share of draws with ``|t*| ≥ |t|`` (ties, such as the all-ones weight vector
that reproduces the actual sample, count as exceedances; ``wildboottest`` counts them too).  With Rademacher weights and ``2^G ≤ B`` all ``2^G`` sign vectors are
enumerated (the result is then exact and does not depend on the seed).  Random draws use
``numpy.random.default_rng(seed)`` exactly as ``wildboottest`` does, so on the same data and seed
the two give identical p-values.

Many clusters (``max_clusters``, the evaluation's ``wild_max_clusters``, default
:data:`WILD_MAX_CLUSTERS`): the wild bootstrap exists for few (or few treated) clusters, where the
analytic CRV1 t(G-1) test over-rejects. With thousands of clusters and at least
:data:`WILD_MIN_SIDE_CLUSTERS` clusters with and without adopters the CRV1 asymptotics hold and the WCR
p-value equals the analytic one up to Monte Carlo error (Djogbenou, MacKinnon & Nielsen 2019;
MacKinnon & Webb 2017 on few treated clusters), while drawing ``G x B`` weights costs tens of seconds at
40,000 clusters. Above the limit :func:`wild_bootstrap` raises :class:`ManyClusters` (the evaluation
records the reason and the brief says the step was not used; the static TWFE row keeps its analytic
CRV1 p-value and interval). A larger ``wild_max_clusters`` forces the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evalkit.estimators._common import baseline_mean, ever_treated, unit_counts
from evalkit.estimators._cs_schedule import blas_pinned
from evalkit.estimators._fe import (
    Within,
    check_options,
    independent_columns,
    nested_in,
    small_sample,
    sym_inv,
    time_dummies,
    unit_cross,
)
from evalkit.estimators._fe_sample import fe_sample
from evalkit.estimators.twfe import event_dummies
from evalkit.results import EstimationResult

SE_TYPE = "wild cluster bootstrap (WCR)"
WEBB = np.concatenate([-np.sqrt(np.array([3.0, 2.0, 1.0]) / 2), np.sqrt(np.array([1.0, 2.0, 3.0]) / 2)])
_TIE = 1e-10
WILD_MAX_CLUSTERS = 5_000  # above: the analytic CRV1 test is used instead (module docstring)
WILD_MIN_SIDE_CLUSTERS = 50  # ... when at least this many clusters have adopters and as many have none


class ManyClusters(RuntimeError):
    """The wild bootstrap is not run: enough clusters for the analytic CRV1 test (module docstring)."""


def many_clusters_reason(panel: pd.DataFrame, outcome: str, max_clusters: int, *, unit: str = "station_id",
                         time: str = "period", cohort: str = "first_treat", cluster: str | None = None
                         ) -> str | None:
    """Why the wild bootstrap is not needed on this sample (more than ``max_clusters`` clusters and at
    least :data:`WILD_MIN_SIDE_CLUSTERS` with and without adopters), else ``None``. Reads the shared
    sample's codes (no design is built)."""
    smp = fe_sample(panel, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster)
    G = int(smp.cluster.max()) + 1
    treated = int(np.unique(smp.cluster[np.isfinite(smp.cohort)]).size)
    if G <= max_clusters or min(treated, G - treated) < WILD_MIN_SIDE_CLUSTERS:
        return None
    # one line of at most 200 characters (the brief's technical appendix prints it whole)
    return (f"{G:,} clusters ({treated:,} with adopters) > wild_max_clusters={max_clusters:,}: the wild cluster "
            "bootstrap is not run; the TWFE row's analytic CRV1 p-value and interval apply (raise the key to force it)")


# ---------------------------------------------------------------------------- design
@dataclass
class TwfeDesign:
    """Demeaned two-way FE regression data (one outcome, any regressors)."""

    y: np.ndarray  # demeaned outcome (N)
    X: np.ndarray  # demeaned regressors (N x k), collinear columns dropped
    names: list[str]
    cluster: np.ndarray  # cluster codes 0..G-1 (sorted levels)
    n_clusters: int
    unit: np.ndarray
    time: np.ndarray
    n_units: int
    n_times: int
    frame: pd.DataFrame  # the estimation sample (rows used)
    ssc: float = 1.0
    dropped: list[str] = field(default_factory=list)

    @property
    def n_obs(self) -> int:
        return int(self.y.size)

    def cluster_matrix(self) -> sp.csr_matrix:
        N = self.y.size
        return sp.csr_matrix((np.ones(N), (self.cluster, np.arange(N))), shape=(self.n_clusters, N))


def event_regressors(df: pd.DataFrame, time: str, cohort: str, leads: int, lags: int, reference: int
                     ) -> dict[str, np.ndarray]:
    """Event-time dummies ``e=-leads..lags`` (endpoints binned, reference omitted): the columns of
    :func:`evalkit.estimators.twfe.estimate_event_twfe` (same function)."""
    g = df[cohort].to_numpy(dtype=float)
    X, ks = event_dummies(np.where(g == 0, np.inf, g), df[time].to_numpy(dtype=float), leads, lags, reference)
    X = X.toarray()
    return {f"e={k}": X[:, j] for j, k in enumerate(ks)}


def static_regressor(df: pd.DataFrame, time: str, cohort: str) -> np.ndarray:
    return (ever_treated(df, cohort) & (df[time] >= df[cohort])).to_numpy().astype(float)


def twfe_design(panel: pd.DataFrame, outcome: str, regressors, *, unit: str = "station_id",
                time: str = "period", cohort: str = "first_treat", cluster: str | None = None,
                extra_outcomes: list[str] | None = None) -> TwfeDesign | tuple[TwfeDesign, np.ndarray]:
    """Build the demeaned design on the shared sample (the rows and conventions of
    :func:`evalkit.estimators.twfe.estimate_twfe`; rows missing an extra outcome are left out first).
    ``regressors`` is ``"static"``, ``("event", leads, lags, ref)`` or a callable ``df -> dict[name, array]``.

    With ``extra_outcomes`` also returns their demeaned values as an ``N x m`` array.  The small-sample
    factor is the engine's (:func:`evalkit.estimators._fe.small_sample`, fixest CR1).
    """
    extra = list(extra_outcomes or [])
    base = panel.dropna(subset=extra) if extra else panel
    smp = fe_sample(base, outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, covariates=extra)
    df = smp.frame
    if regressors == "static":
        reg = {"treated_post": static_regressor(df, time, cohort)}
    elif isinstance(regressors, tuple) and regressors[0] == "event":
        reg = event_regressors(df, time, cohort, *regressors[1:])
    else:
        reg = regressors(df)
    names = list(reg)
    u, t, c = smp.unit, smp.time, smp.cluster
    n_u, n_t, G = smp.n_units, smp.n_times, int(c.max()) + 1
    ys = [smp.y] + [df[o].to_numpy(float) for o in extra]
    M = np.column_stack(ys + [reg[n] for n in names])
    Mt = Within([u, t]).transform(M)
    m = len(ys)
    yt, Xt = Mt[:, 0], Mt[:, m:]
    keep = independent_columns(Xt.T @ Xt)
    dropped = [n for n, k in zip(names, keep, strict=True) if not k]
    Xt = Xt[:, keep]
    names = [n for n, k in zip(names, keep, strict=True) if k]
    ssc, _, _ = small_sample(yt.size, Xt.shape[1], "CRV1", fe_levels=[n_u, n_t],
                             fe_nested=[nested_in(u, c), nested_in(t, c)], n_clusters=G)
    des = TwfeDesign(y=yt, X=Xt, names=names, cluster=c, n_clusters=G, unit=u, time=t, n_units=n_u,
                     n_times=n_t, frame=df, ssc=ssc, dropped=dropped)
    if extra:
        return des, Mt[:, 1:m]
    return des


# ---------------------------------------------------------------------------- weights
def draw_weights(G: int, B: int, kind: str = "rademacher", seed=None, enumerate_if_possible: bool = True
                 ) -> tuple[np.ndarray, bool]:
    """Cluster weights ``G x B``. Rademacher with ``2^G ≤ B``: all ``2^G`` sign vectors (exact)."""
    if kind == "rademacher" and enumerate_if_possible and G < 31 and 2 ** G <= B:
        n = 2 ** G
        bits = (np.arange(n, dtype=np.int64)[None, :] >> np.arange(G, dtype=np.int64)[:, None]) & 1
        return (2.0 * bits - 1.0), True
    rng = np.random.default_rng(seed)
    if kind == "rademacher":
        v = rng.choice(np.array([-1.0, 1.0]), size=G * B, replace=True)
    elif kind == "webb":
        v = rng.choice(WEBB, size=G * B, replace=True)
    elif kind in ("normal", "norm"):
        v = rng.normal(size=G * B)
    else:
        raise ValueError(f"unknown weights {kind!r}: rademacher, webb or normal")
    return v.reshape(G, B), False


# ---------------------------------------------------------------------------- engine
@dataclass
class WCRTest:
    """Bootstrap test of ``R'β = r`` for all ``r`` (precomputed quadratic forms in ``r``)."""

    estimate: float
    se: float  # CRV1 with ssc
    n0: np.ndarray
    n1: np.ndarray
    A: np.ndarray
    Bc: np.ndarray
    Cc: np.ndarray
    ssc: float

    def t_stat(self, r: float = 0.0) -> float:
        return (self.estimate - r) / self.se

    def t_boot(self, r: float = 0.0) -> np.ndarray:
        den = self.ssc * np.maximum(self.A - 2 * r * self.Bc + r * r * self.Cc, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.n0 - r * self.n1) / np.sqrt(den)

    def p_value(self, r: float = 0.0) -> float:
        t = abs(self.t_stat(r))
        tb = np.abs(self.t_boot(r))
        return float(np.mean(tb >= t - _TIE * max(1.0, t)))

    def conf_int(self, alpha: float = 0.05, tol: float = 1e-7) -> tuple[float, float]:
        """Test inversion: the set of ``r`` with ``p(r) > alpha`` (outermost crossings found by
        bracketing from the CRV1 interval, then bisection)."""
        b, se = self.estimate, self.se
        if not np.isfinite(se) or se <= 0:
            return float("nan"), float("nan")

        def bound(sign: float) -> float:
            inside = b
            step = se * 2.0
            out = b + sign * step
            for _ in range(60):
                if self.p_value(out) <= alpha:
                    break
                inside, step = out, step * 2
                out = b + sign * step
            else:
                return float(sign * np.inf)
            lo, hi = inside, out
            for _ in range(200):
                if abs(hi - lo) <= tol * se:
                    break
                mid = (lo + hi) / 2
                if self.p_value(mid) > alpha:
                    lo = mid
                else:
                    hi = mid
            return (lo + hi) / 2

        return bound(-1.0), bound(1.0)


@dataclass
class _TimeProj:
    """Pieces to re-project the absorbed period effects out of the bootstrap residuals."""

    Tm: sp.csr_matrix  # N x (T-1) period dummies
    Sinv: np.ndarray  # (T' M_unit T)^{-1}


def _time_projection(des: TwfeDesign) -> _TimeProj:
    Tm = time_dummies(des.time, des.n_times)
    _, _, S = unit_cross(Tm, des.unit, des.n_units)
    keep = independent_columns(S)
    Tm = Tm[:, np.flatnonzero(keep)].tocsr()
    return _TimeProj(Tm=Tm, Sinv=sym_inv(S[np.ix_(keep, keep)]))


def wcr_test(des: TwfeDesign, R: np.ndarray, V: np.ndarray, y: np.ndarray | None = None,
             XtXinv: np.ndarray | None = None, Cm: sp.csr_matrix | None = None,
             tp: _TimeProj | None = None) -> WCRTest:
    """WCR bootstrap of ``R'β`` in the two-way FE regression (CRV1 studentisation).

    The bootstrap residuals are those of the full dummy-variable regression,
    ``û* = M_D(ü∘v) − X̃β*``: the unit effects drop out because the units are nested in the
    clusters; the period effects (which cut across clusters) are projected out exactly through
    the small ``(T-1) x (T-1)`` Schur complement ``T' M_unit T``.
    """
    X = des.X
    y = des.y if y is None else y
    XtXinv = sym_inv(X.T @ X) if XtXinv is None else XtXinv
    Cm = des.cluster_matrix() if Cm is None else Cm
    tp = _time_projection(des) if tp is None else tp
    R = np.asarray(R, dtype=float)
    a = XtXinv @ R  # k
    beta = XtXinv @ (X.T @ y)
    est = float(R @ beta)
    uhat = y - X @ beta
    Xa = X @ a
    s_unres = np.asarray(Cm @ (Xa * uhat)).ravel()  # a' X_g' u_g
    se = float(np.sqrt(des.ssc * np.sum(s_unres ** 2)))
    # restricted residuals: u(r) = u0 - r * xdd
    xdd = Xa / float(R @ a)
    u0 = uhat + xdd * est
    S0 = np.asarray(Cm @ (X * u0[:, None])).T  # k x G
    S1 = np.asarray(Cm @ (X * xdd[:, None])).T
    C0, C1 = a @ S0, a @ S1  # G
    Q = np.asarray(Cm @ (X * Xa[:, None])) @ XtXinv  # G x k: a' X_g'X_g (X'X)^-1
    # period-effect re-projection: K = diag(C) - L W
    L = np.asarray((Cm @ tp.Tm.multiply(Xa[:, None])).todense())  # G x (T-1)
    CmT = Cm.T.tocsc()
    W0 = tp.Sinv @ np.asarray((tp.Tm.T @ sp.diags(u0) @ CmT).todense())  # (T-1) x G
    W1 = tp.Sinv @ np.asarray((tp.Tm.T @ sp.diags(xdd) @ CmT).todense())
    n0, n1 = C0 @ V, C1 @ V
    P0 = C0[:, None] * V - L @ (W0 @ V) - Q @ (S0 @ V)
    P1 = C1[:, None] * V - L @ (W1 @ V) - Q @ (S1 @ V)
    return WCRTest(estimate=est, se=se, n0=n0, n1=n1, A=np.einsum("gb,gb->b", P0, P0),
                   Bc=np.einsum("gb,gb->b", P0, P1), Cc=np.einsum("gb,gb->b", P1, P1), ssc=des.ssc)


# ---------------------------------------------------------------------------- public API
# BLAS pinned (EVALKIT_BLAS_THREADS, default 1 thread): the products are G x B and (T-1) x G; with two
# OpenBLAS threads on a shared machine they spin (small world: 125 ms CPU per call against 15 ms on one
# thread, same numbers)
@blas_pinned
def wild_bootstrap(
    panel: pd.DataFrame,
    outcome: str,
    *,
    param: str | list[str] = "treated_post",
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    weights: str = "rademacher",
    B: int = 9999,
    seed: int | None = 0,
    alpha: float = 0.05,
    impose_null: bool = True,
    leads: int = 12,
    lags: int = 24,
    reference: int = -1,
    full_enumeration: bool = True,
    max_clusters: int | None = None,
    **options: object,
) -> EstimationResult:
    """Wild cluster bootstrap (WCR) p-values and test-inversion CIs for TWFE coefficients.

    ``param="treated_post"`` tests the static TWFE coefficient (row kind ``overall``).
    ``param="event"`` (or an event term such as ``"e=2"`` or a list of them) fits the event-study
    TWFE of :func:`evalkit.estimators.twfe.estimate_event_twfe` (same ``leads``, ``lags``,
    ``reference``, binned endpoints) and bootstraps every requested event coefficient (rows kind
    ``event``) and the mean of the post coefficients (row kind ``overall``), each with its own
    null imposed and the same weight draws.

    ``std_error`` is the analytic CRV1 standard error (fixest small-sample factor, see
    ``meta['ssc']``); ``p_value``, ``ci_low`` and ``ci_high`` come from the bootstrap.

    ``max_clusters``: raise :class:`ManyClusters` instead when :func:`many_clusters_reason` says the
    analytic test suffices (``None``, default: always run).
    """
    check_options("wild_bootstrap", options, ("param", "unit", "time", "cohort", "cluster", "weights", "B", "seed",
                                              "alpha", "impose_null", "leads", "lags", "reference",
                                              "full_enumeration", "max_clusters"))
    if not impose_null:
        raise NotImplementedError("only the restricted (WCR) bootstrap is implemented; impose_null=True")
    if max_clusters is not None:
        why = many_clusters_reason(panel, outcome, max_clusters, unit=unit, time=time, cohort=cohort, cluster=cluster)
        if why:
            raise ManyClusters(why)
    event = param != "treated_post"
    spec = ("event", leads, lags, reference) if event else "static"
    des = twfe_design(panel, outcome, spec, unit=unit, time=time, cohort=cohort, cluster=cluster)
    G, k = des.n_clusters, des.X.shape[1]
    if not nested_in(des.unit, des.cluster):
        raise ValueError(f"units ({unit}) must be nested in the clusters ({cluster}) for the wild bootstrap")
    V, enumerated = draw_weights(G, B, weights, seed, full_enumeration)
    XtXinv = sym_inv(des.X.T @ des.X)
    Cm = des.cluster_matrix()
    tp = _time_projection(des)

    def run(R: np.ndarray) -> dict:
        w = wcr_test(des, R, V, XtXinv=XtXinv, Cm=Cm, tp=tp)
        lo, hi = w.conf_int(alpha)
        return {"estimate": w.estimate, "std_error": w.se, "ci_low": lo, "ci_high": hi,
                "p_value": w.p_value(0.0), "t_stat": w.t_stat(0.0)}

    rows = []
    if not event:
        rows.append({"kind": "overall", "term": "treated_post", **run(np.eye(k)[0])})
    else:
        wanted = des.names if param == "event" else ([param] if isinstance(param, str) else list(param))
        missing = [p for p in wanted if p not in des.names]
        if missing:
            raise KeyError(f"event terms {missing} not estimable; available: {des.names}")
        for p in wanted:
            j = des.names.index(p)
            rows.append({"kind": "event", "term": p, "event_time": int(p.split("=")[1]), **run(np.eye(k)[j])})
        rows.append({"kind": "event", "term": f"e={reference}", "event_time": reference, "estimate": 0.0,
                     "std_error": 0.0})
        post = [i for i, n in enumerate(des.names) if int(n.split("=")[1]) >= 0]
        if post:
            R = np.zeros(k)
            R[post] = 1.0 / len(post)
            rows.append({"kind": "overall", "term": "mean of post coefficients", **run(R)})
    df = des.frame
    n_t, n_c = unit_counts(df, unit, cohort)
    meta = {
        "label": "TWFE, wild cluster bootstrap (WCR)" + (" — event study" if event else ""),
        "se_type": SE_TYPE, "bootstrap": f"WCR11, {weights}, B={V.shape[1]}" + (" (full enumeration)" if enumerated else ""),
        "B": int(V.shape[1]), "B_requested": int(B), "weights": weights, "seed": seed,
        "full_enumeration": enumerated, "n_clusters": G, "cluster": cluster or unit,
        "ssc": des.ssc, "std_error_type": "CRV1 (fixest ssc); p-value and CI from the bootstrap",
        "ci_method": "test inversion of the WCR bootstrap (bisection)", "impose_null": True,
        "n_treated": n_t, "n_control": n_c, "n_obs": des.n_obs, "n_periods": des.n_times,
        "baseline_mean": baseline_mean(df, outcome, time=time, cohort=cohort), "alpha": alpha,
        "param": param, "dropped_collinear": des.dropped,
    }
    if event:
        meta.update({"leads": leads, "lags": lags, "reference_period": reference})
    if G < 6:
        meta["warning"] = f"only {G} clusters: even the wild bootstrap is unreliable"
    return EstimationResult("twfe_wild", outcome, pd.DataFrame(rows), meta=meta)
