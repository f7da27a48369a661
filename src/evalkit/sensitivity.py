"""Sensitivity of event-study conclusions to violations of parallel trends (Rambachan & Roth 2023).

Given event-study estimates β̂ = (β̂_pre, β̂_post) (the reference period, normalised to zero, left
out) and their covariance Σ, robust confidence sets for θ = l'τ_post under

* ``type="sd"`` — smoothness Δ^SD(M): |δ_{t+1} − 2δ_t + δ_{t−1}| ≤ M (δ_0 = 0 at the reference
  period). Fixed-length CI (FLCI, Armstrong & Kolesár style) as in HonestDiD's
  ``createSensitivityResults(method="FLCI")``: affine estimator v'β̂ with v_post = l, v_pre free
  subject to invariance to linear trends; its worst-case bias over Δ^SD(M) is
  M·Σ_k |v'g_k| (g_k: the trend paths of unit second differences), and the half-length
  σ_v·cv_α(bias/σ_v) (cv_α(t): 1−α quantile of |N(t,1)|) is a convex function of v_pre that
  is minimised exactly (SLSQP on a smooth reformulation) — HonestDiD searches a grid of σ_v.
* ``type="rm"`` — relative magnitudes Δ^RM(M̄): every post-period first difference of δ is at
  most M̄ times the largest pre-period first difference. Δ^RM is a union of polyhedra
  Δ^RM_{s,±}; for each, the Andrews–Roth–Pakes conditional test with least-favourable hybrid
  (``C-LF``, κ = α/10) is inverted on HonestDiD's θ grid (1000 points) and the union taken, as in
  HonestDiD's ``computeConditionalCS_DeltaRM``. The linear programme of the test
  (min η s.t. Y − Xγ ≤ η·σ̃) is solved through its dual: the vertices of
  {λ ≥ 0, X'λ = 0, σ̃'λ = 1} are enumerated, which gives η̂, the conditioning interval
  [v_lo, v_up] and the least-favourable draws in closed form (``scipy.optimize.linprog`` is used
  as a cross-check and as the fallback when there are too many vertices).

``breakdown`` finds the smallest M̄ / M at which the robust CI contains 0.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import ndtr, ndtri

from evalkit.distributions import norm_ppf
from evalkit.estimators._cs_blas import blas_threads

# ----------------------------------------------------------------------------- inputs


def event_inputs(result: Any, sigma: Any = None, num_pre: int | None = None,
                 num_post: int | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(β̂, Σ, num_pre, num_post) from an ``EstimationResult`` (``event`` rows + ``vcov['event']``)
    or from raw arrays. The reference period (zero SE or absent from the vcov) is dropped."""
    if hasattr(result, "event_study"):
        ev = result.event_study()
        V = result.vcov.get("event")
        if V is None:
            raise ValueError("result has no vcov['event']: pass betas and sigma explicitly")
        ev = ev[ev["term"].isin(V.index) & ev["std_error"].gt(0)]
        terms = ev["term"].tolist()
        beta = ev["estimate"].to_numpy(float)
        sig = V.loc[terms, terms].to_numpy(float)
        et = ev["event_time"].astype(float).to_numpy()
        n_pre, n_post = int((et < 0).sum()), int((et >= 0).sum())
        if num_pre is not None and num_pre != n_pre or num_post is not None and num_post != n_post:
            raise ValueError(f"result has {n_pre} pre and {n_post} post coefficients, not {num_pre}/{num_post}")
        return beta, sig, n_pre, n_post
    beta = np.asarray(result, float).ravel()
    sig = np.asarray(sigma, float)
    if num_pre is None or num_post is None:
        raise ValueError("num_pre and num_post are required with raw arrays")
    if beta.size != num_pre + num_post or sig.shape != (beta.size, beta.size):
        raise ValueError("betas and sigma do not match num_pre + num_post")
    return beta, sig, int(num_pre), int(num_post)


def _lvec(l_vec: Any, num_post: int) -> np.ndarray:
    if l_vec is None:
        out = np.zeros(num_post)
        out[0] = 1.0
        return out
    out = np.asarray(l_vec, float).ravel()
    if out.size != num_post:
        raise ValueError(f"l_vec needs {num_post} entries")
    return out


def original_ci(betas: Any, sigma: Any = None, *, num_pre: int | None = None, num_post: int | None = None,
                l_vec: Any = None, alpha: float = 0.05) -> dict[str, float]:
    """The usual CI for l'τ_post (HonestDiD ``constructOriginalCS``)."""
    beta, sig, npre, npost = event_inputs(betas, sigma, num_pre, num_post)
    lv = _lvec(l_vec, npost)
    est = float(lv @ beta[npre:])
    se = float(np.sqrt(lv @ sig[npre:, npre:] @ lv))
    z = norm_ppf(1 - alpha / 2)
    return {"estimate": est, "se": se, "lb": est - z * se, "ub": est + z * se}


# ----------------------------------------------------------------------------- smoothness: FLCI


def folded_normal_quantile(p: float, t: float) -> float:
    """cv such that P(|N(t,1)| ≤ cv) = p."""
    t = abs(float(t))
    if t > 40:
        return t + norm_ppf(p)
    f = lambda c: ndtr(c - t) - ndtr(-c - t) - p  # noqa: E731  (ndtr = norm.cdf without scipy.stats' overhead)
    return optimize.brentq(f, 0.0, t + 10.0, xtol=1e-14, rtol=1e-14)


def _npdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _cv_and_slope(p: float, t: float) -> tuple[float, float]:
    c = folded_normal_quantile(p, t)
    a, b = _npdf(c - t), _npdf(c + t)
    return c, (a - b) / (a + b)


def _sd_bias_basis(num_pre: int, num_post: int) -> tuple[np.ndarray, np.ndarray]:
    """δ = c·t + Σ_k η_k g_k with |η_k| ≤ M spans Δ^SD(M) (δ_0 = 0). Returns (G, t) on β's indices."""
    times = np.r_[np.arange(-num_pre, 0), np.arange(1, num_post + 1)].astype(float)
    full_t = np.arange(-num_pre, num_post + 1)  # includes the reference period 0
    n_second = num_pre + num_post - 1  # second differences centred at t = -num_pre+1 .. num_post-1
    G = np.zeros((num_pre + num_post, n_second))
    for k, centre in enumerate(range(-num_pre + 1, num_post)):
        # slope path with a unit kink at `centre`, zero slope change elsewhere, δ_0 = 0, slope c = 0 at 0..1
        delta = np.zeros(full_t.size)
        for j, t in enumerate(full_t):
            if centre >= 1 and t > centre:
                delta[j] = t - centre
            elif centre <= 0 and t < centre:
                delta[j] = centre - t
        # for centre <= 0 the kink moves the pre-period slope: δ_t = (centre - t) for t < centre
        G[:, k] = np.delete(delta, num_pre)
    return G, times


def flci_sd(beta: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray, M: float,
            alpha: float = 0.05) -> dict[str, Any]:
    """Optimal FLCI for θ = l'τ_post under Δ^SD(M)."""
    # one BLAS thread: SLSQP stops at its tolerance, so the summation order of the threads moved the bounds
    # by ~1e-9 relative between `evalkit run --jobs 1` and `--jobs 2` (workers get one thread each)
    with blas_threads(1):
        return _flci_sd(beta, sigma, num_pre, num_post, l_vec, M, alpha)


def _flci_sd(beta: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray, M: float,
             alpha: float) -> dict[str, Any]:
    G, times = _sd_bias_basis(num_pre, num_post)
    G = G * M
    npre = num_pre
    t_pre, t_post = times[:npre], times[npre:]
    rhs = -float(l_vec @ t_post)  # v_pre't_pre = -l't_post (invariance to linear trends)
    Gp, Gq = G[:npre], G[npre:]
    base = Gq.T @ l_vec  # contribution of the fixed post weights to each bias term
    K = G.shape[1]
    p = 1 - alpha

    def parts(z):
        v = np.r_[z[:npre], l_vec]
        s2 = float(v @ sigma @ v)
        return v, max(s2, 1e-300)

    def obj(z):
        v, s2 = parts(z)
        s = math.sqrt(s2)
        bias = float(np.sum(z[npre:]))
        c, slope = _cv_and_slope(p, bias / s)
        dv = (sigma @ v)[:npre] / s
        grad = np.r_[(c - bias / s * slope) * dv, np.full(K, slope)]
        return c * s, grad

    cons = [
        {"type": "eq", "fun": lambda z: np.array([z[:npre] @ t_pre - rhs]),
         "jac": lambda z: np.r_[t_pre, np.zeros(K)][None, :]},
        {"type": "ineq", "fun": lambda z: z[npre:] - (Gp.T @ z[:npre] + base),
         "jac": lambda z: np.c_[-Gp.T, np.eye(K)]},
        {"type": "ineq", "fun": lambda z: z[npre:] + (Gp.T @ z[:npre] + base),
         "jac": lambda z: np.c_[Gp.T, np.eye(K)]},
    ]
    # start: the minimum-variance trend-invariant weights
    S_pp, S_pq = sigma[:npre, :npre], sigma[:npre, npre:]
    Sinv = np.linalg.pinv(S_pp)
    a = -Sinv @ S_pq @ l_vec
    b = Sinv @ t_pre
    v0 = a + b * (rhs - t_pre @ a) / (t_pre @ b)
    z0 = np.r_[v0, np.abs(Gp.T @ v0 + base) + 1e-9]
    best = None
    for start in (z0, np.r_[v0 * 0.5, np.abs(Gp.T @ (v0 * 0.5) + base) + 1.0]):
        start = start.copy()
        if abs(start[:npre] @ t_pre - rhs) > 1e-12 and npre:
            start[:npre] = v0
            start[npre:] = np.abs(Gp.T @ v0 + base) + 1e-9
        res = optimize.minimize(lambda z: obj(z)[0], start, jac=lambda z: obj(z)[1], constraints=cons,
                                method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
        if best is None or res.fun < best.fun:
            best = res
    z = best.x
    v = np.r_[z[:npre], l_vec]
    sd = math.sqrt(float(v @ sigma @ v))
    bias = float(np.sum(np.abs(G.T @ v)))
    half = sd * folded_normal_quantile(p, bias / sd)
    center = float(v @ beta)
    return {"lb": center - half, "ub": center + half, "half_length": half, "weights": v, "max_bias": bias, "sd": sd}


# ----------------------------------------------------------------------------- relative magnitudes: ARP C-LF


def _A_rm(num_pre: int, num_post: int, Mbar: float, s: int, max_positive: bool) -> np.ndarray:
    """HonestDiD ``.create_A_RM``: δ ∈ Δ^RM_{s,±}(M̄) ⇔ A δ ≤ 0 (columns: β without the reference)."""
    n = num_pre + num_post
    At = np.zeros((n, n + 1))
    for r in range(n):
        At[r, r], At[r, r + 1] = -1.0, 1.0
    vmax = np.zeros(n + 1)
    vmax[num_pre + s - 1], vmax[num_pre + s] = -1.0, 1.0
    if not max_positive:
        vmax = -vmax
    UB = np.vstack([np.tile(vmax, (num_pre, 1)), np.tile(Mbar * vmax, (num_post, 1))])
    A = np.vstack([At - UB, -At - UB])
    A = A[(A * A).sum(axis=1) > 1e-10]
    return np.delete(A, num_pre, axis=1)


@functools.lru_cache(maxsize=32)
def _subsets(m: int, size: int) -> np.ndarray:
    """All ``size``-subsets of ``range(m)`` as rows (lexicographic, as ``itertools.combinations``)."""
    out = np.array(list(itertools.combinations(range(m), size)), dtype=int).reshape(-1, size)
    out.setflags(write=False)
    return out


def _dual_vertices(X: np.ndarray, sd: np.ndarray, max_subsets: int = 200_000) -> np.ndarray | None:
    """Vertices of {λ ≥ 0, X'λ = 0, sd'λ = 1} (rows). ``None`` if there are too many to enumerate."""
    m, k = X.shape
    size = k + 1
    if math.comb(m, size) > max_subsets:
        return None
    E = np.c_[X, sd].T  # (k+1) × m ; constraints E λ = e_last
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    # all subsets at once (batched LAPACK: the same determinants and solves as one by one, far less overhead)
    subsets = _subsets(m, size)
    ES = np.transpose(E[:, subsets], (1, 0, 2))  # (n_subsets, k+1, k+1)
    scale = np.maximum(1.0, np.abs(ES).max(axis=(1, 2)) ** size)
    ok = np.abs(np.linalg.det(ES)) >= 1e-12 * scale
    if not ok.any():
        return np.zeros((0, m))
    lam_S = np.linalg.solve(ES[ok], np.broadcast_to(rhs, (int(ok.sum()), size))[..., None])[..., 0]
    feas = np.all(lam_S >= -1e-10, axis=1)
    if not feas.any():
        return np.zeros((0, m))
    verts = np.zeros((int(feas.sum()), m))
    verts[np.arange(verts.shape[0])[:, None], subsets[ok][feas]] = np.maximum(lam_S[feas], 0.0)
    return _unique_rows(np.round(verts, 12) + 0.0)  # + 0.0: a -0.0 is the same vertex coordinate as 0.0


def _unique_rows(R: np.ndarray) -> np.ndarray:
    """``np.unique(R, axis=0)`` (distinct rows in lexicographic order) by a lexsort: the row-wise
    sort of np.unique compares structured records, several times slower for a few hundred rows."""
    if R.shape[0] == 0:
        return np.unique(R, axis=0)
    Rs = R[np.lexsort(R.T[::-1])]
    keep = np.empty(Rs.shape[0], dtype=bool)
    keep[0] = True
    np.any(Rs[1:] != Rs[:-1], axis=1, out=keep[1:])
    return Rs[keep]


def _eta_lp(y: np.ndarray, X: np.ndarray, sd: np.ndarray) -> float:
    """min η s.t. y − Xγ ≤ η·sd (scipy linprog); +inf if infeasible, -inf if unbounded."""
    m, k = X.shape
    c = np.r_[1.0, np.zeros(k)]
    A_ub = -np.c_[sd, X]
    res = optimize.linprog(c, A_ub=A_ub, b_ub=-y, bounds=[(None, None)] * (k + 1), method="highs")
    if res.status == 3:
        return -np.inf
    return float(res.fun) if res.status == 0 else np.inf


def _truncnorm_quantile(p: float, lo: float, hi: float) -> float:
    """Quantile of a standard normal truncated to [lo, hi] (HonestDiD ``.norminvp_generalized``)."""
    a, b = ndtr(lo), ndtr(hi)  # scipy.special: the same numbers as scipy.stats.norm, ~100× less overhead
    if b - a < 1e-300:
        return lo
    q = a + p * (b - a)
    if q > 1 - 1e-15:  # deep upper tail: use survival functions
        sa, sb = ndtr(-lo), ndtr(-hi)
        return float(-ndtri(sa - p * (sa - sb)))
    return float(ndtri(q))


class _ArpPolytope:
    """Moments Y(θ) = Aβ̂ − A_post τ0 θ with nuisance X = A_post N (l'N = 0), restricted to the ARP rows."""

    def __init__(self, beta, sigma, A, num_pre, num_post, l_vec, alpha, kappa, sims, rng, rows):
        A = A[rows]
        Apost = A[:, num_pre:]
        tau0 = l_vec / (l_vec @ l_vec)
        self.y0 = A @ beta
        self.y1 = Apost @ tau0  # Y(θ) = y0 − y1 θ
        if num_post > 1:
            from scipy.linalg import null_space

            self.X = Apost @ null_space(l_vec[None, :])
        else:
            self.X = np.zeros((A.shape[0], 0))
        self.S = A @ sigma @ A.T
        self.sd = np.sqrt(np.diag(self.S))
        self.alpha, self.kappa = alpha, kappa
        self.V = _dual_vertices(self.X, self.sd)
        if self.V is not None and len(self.V):
            xi = rng.multivariate_normal(np.zeros(len(self.sd)), self.S, size=sims, method="cholesky" if
                                         np.all(np.linalg.eigvalsh(self.S) > 1e-14) else "eigh")
            self.lf_cv = float(np.quantile((xi @ self.V.T).max(axis=1), 1 - kappa))
        else:
            self.lf_cv = np.inf

    def accept(self, theta: float) -> bool:
        y = self.y0 - self.y1 * theta
        V = self.V
        if V is None:
            raise RuntimeError("too many dual vertices to enumerate")
        if len(V) == 0:
            return True  # dual infeasible: the primal is unbounded below, never reject
        vals = V @ y
        j = int(np.argmax(vals))
        eta = float(vals[j])
        if eta > self.lf_cv:
            return False
        lam = V[j]
        s2 = float(lam @ self.S @ lam)
        if s2 < 1e-20:
            return not eta > 0
        sB = math.sqrt(s2)
        gam = self.S @ lam / s2  # λ'γ = 1
        a = vals - (V @ gam) * eta  # λ_i'(y − γ η) : intercepts of the lines λ_i'(S + γ c)
        b = V @ gam
        a_star = a[j]
        lo, hi = -np.inf, np.inf
        tol = 1e-10
        below = b < 1 - tol
        above = b > 1 + tol
        if below.any():
            lo = float(np.max((a[below] - a_star) / (1 - b[below])))
        if above.any():
            hi = float(np.min((a_star - a[above]) / (b[above] - 1)))
        hi = min(hi, self.lf_cv)
        zlo, zup, stat = lo / sB, hi / sB, eta / sB
        if not (zlo <= stat + 1e-9 and stat <= zup + 1e-9):
            return True
        size = (self.alpha - self.kappa) / (1 - self.kappa)
        cval = max(0.0, _truncnorm_quantile(1 - size, zlo, zup))
        return not stat > cval


    def accept_many(self, thetas: np.ndarray) -> np.ndarray:
        """:meth:`accept` for every θ of ``thetas`` at once (the same arithmetic, vectorised)."""
        thetas = np.asarray(thetas, float)
        V = self.V
        if V is None:
            raise RuntimeError("too many dual vertices to enumerate")
        n = thetas.size
        if len(V) == 0 or n == 0:
            return np.ones(n, bool)
        Y = self.y0[:, None] - self.y1[:, None] * thetas[None, :]  # moments × θ
        vals = V @ Y  # vertices × θ
        cols = np.arange(n)
        j = np.argmax(vals, axis=0)
        eta = vals[j, cols]
        lam = V[j]  # θ × moments
        SL = lam @ self.S  # S symmetric: row i = (S λ_i)'
        s2 = np.einsum("ij,ij->i", SL, lam)
        out = np.ones(n, bool)
        lf = eta > self.lf_cv
        degenerate = ~lf & (s2 < 1e-20)
        out[lf] = False
        out[degenerate] = ~(eta[degenerate] > 0)
        k = ~lf & ~degenerate
        if not k.any():
            return out
        s2k, etak, vk, jk = s2[k], eta[k], vals[:, k], j[k]
        sB = np.sqrt(s2k)
        gam = SL[k] / s2k[:, None]
        b = V @ gam.T  # vertices × θ
        a = vk - b * etak[None, :]
        a_star = a[jk, np.arange(jk.size)]
        tol = 1e-10
        below, above = b < 1 - tol, b > 1 + tol
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = np.where(below, (a - a_star[None, :]) / (1 - b), -np.inf).max(axis=0)
            hi = np.where(above, (a_star[None, :] - a) / (b - 1), np.inf).min(axis=0)
        hi = np.minimum(hi, self.lf_cv)
        zlo, zup, stat = lo / sB, hi / sB, etak / sB
        inside = (zlo <= stat + 1e-9) & (stat <= zup + 1e-9)
        size = (self.alpha - self.kappa) / (1 - self.kappa)
        res = np.ones(int(k.sum()), bool)
        for i in np.flatnonzero(inside):  # few distinct conditioning intervals: scalar quantiles are cheap
            cval = max(0.0, _truncnorm_quantile(1 - size, float(zlo[i]), float(zup[i])))
            res[i] = not stat[i] > cval
        out[k] = res
        return out


def rm_clf(beta: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray, Mbar: float,
           alpha: float = 0.05, grid_points: int = 1000, grid_lb: float | None = None,
           grid_ub: float | None = None, sims: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Conditional-least-favourable hybrid CS for θ = l'τ_post under Δ^RM(M̄) (HonestDiD ``C-LF``)."""
    kappa = alpha / 10
    post = slice(num_pre, num_pre + num_post)
    sd_theta = float(np.sqrt(l_vec @ sigma[post, post] @ l_vec))
    if grid_lb is None or grid_ub is None:
        if num_pre > 1:
            maxpre = float(np.max(np.abs(np.diff(np.r_[beta[:num_pre], 0.0]))))
        else:
            maxpre = float(abs(beta[0]))
        off = float(beta[post] @ l_vec)
        half = float(Mbar * np.arange(1, num_post + 1) @ np.abs(l_vec) * maxpre) + 20 * sd_theta
        grid_lb = off - half if grid_lb is None else grid_lb
        grid_ub = off + half if grid_ub is None else grid_ub
    grid = np.linspace(grid_lb, grid_ub, grid_points)
    accept = np.zeros(grid_points, bool)
    rng = np.random.default_rng(seed)
    for s in range(-(num_pre - 1), 1):
        for sign in (True, False):
            A = _A_rm(num_pre, num_post, Mbar, s, sign)
            if num_post > 1:
                rows = np.flatnonzero(np.any(A[:, num_pre:] != 0, axis=1))
            else:
                rows = np.arange(A.shape[0])
            poly = _ArpPolytope(beta, sigma, A, num_pre, num_post, l_vec, alpha, kappa, sims, rng, rows)
            todo = ~accept
            accept[todo] = poly.accept_many(grid[todo])
    if not accept.any():
        return {"lb": np.nan, "ub": np.nan, "grid": grid, "accept": accept}
    return {"lb": float(grid[accept].min()), "ub": float(grid[accept].max()), "grid": grid, "accept": accept}


# ----------------------------------------------------------------------------- public API


def honest_did(result_or_betas: Any, sigma: Any = None, *, num_pre: int | None = None,
               num_post: int | None = None, l_vec: Any = None, type: str = "rm",  # noqa: A002
               Mbar: Any = None, M: Any = None, alpha: float = 0.05, grid_points: int = 1000,
               sims: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Robust CIs for θ = l'τ_post under Δ^RM(M̄) (``type="rm"``, method C-LF) or Δ^SD(M)
    (``type="sd"``, method FLCI). Returns a frame with columns ``M, lb, ub, method, Delta``.

    ``l_vec`` defaults to the first post period; ``[1/T̄]*T̄`` gives the average post effect.
    ``Mbar`` defaults to 0.5, 1, 1.5, 2 and ``M`` to 0, 0.01, …, 0.05 (as in HonestDiD's README).
    """
    beta, sig, npre, npost = event_inputs(result_or_betas, sigma, num_pre, num_post)
    lv = _lvec(l_vec, npost)
    rows = []
    if type == "rm":
        vals = [0.5, 1.0, 1.5, 2.0] if Mbar is None else list(np.atleast_1d(Mbar))
        if npre < 1:
            raise ValueError("relative magnitudes need at least one pre-period coefficient")
        for mb in vals:
            out = rm_clf(beta, sig, npre, npost, lv, float(mb), alpha, grid_points, sims=sims, seed=seed)
            rows.append({"M": float(mb), "lb": out["lb"], "ub": out["ub"], "method": "C-LF", "Delta": "DeltaRM"})
    elif type == "sd":
        vals = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05] if M is None else list(np.atleast_1d(M))
        for m in vals:
            out = flci_sd(beta, sig, npre, npost, lv, float(m), alpha)
            rows.append({"M": float(m), "lb": out["lb"], "ub": out["ub"], "method": "FLCI", "Delta": "DeltaSD"})
    else:
        raise ValueError("type must be 'rm' or 'sd'")
    return pd.DataFrame(rows, columns=["M", "lb", "ub", "method", "Delta"])


def bisect_smallest(covers: Any, lo: float, hi: float, tol: float) -> float:
    """Smallest M in (``lo``, ``hi``] at which ``covers(M)`` holds, to within ``tol``, given that it
    fails at ``lo`` and holds at ``hi``: bisection with a fixed number of steps for a given bracket
    (no clock, so the same inputs give the same answer on any machine load)."""
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if covers(mid):
            hi = mid
        else:
            lo = mid
    return hi


def breakdown(result_or_betas: Any, sigma: Any = None, *, num_pre: int | None = None, num_post: int | None = None,
              l_vec: Any = None, type: str = "rm", alpha: float = 0.05, upper: float | None = None,  # noqa: A002
              tol: float | None = None, **kwargs) -> float:
    """Smallest M̄ (``rm``) or M (``sd``) at which the robust CI includes 0 (bisection).

    Returns 0.0 if the CI already includes 0 at M = 0 and ``inf`` if it excludes 0 up to ``upper``
    (default 10 for M̄; for M, 10 × the largest |β̂|).
    """
    beta, sig, npre, npost = event_inputs(result_or_betas, sigma, num_pre, num_post)
    lv = _lvec(l_vec, npost)
    key = "Mbar" if type == "rm" else "M"

    def covers_zero(m: float) -> bool:
        df = honest_did(beta, sig, num_pre=npre, num_post=npost, l_vec=lv, type=type, alpha=alpha, **{key: [m]},
                        **kwargs)
        lb, ub = df["lb"].iloc[0], df["ub"].iloc[0]
        return bool(not np.isnan(lb) and lb <= 0 <= ub)

    hi = (10.0 if type == "rm" else 10 * float(np.max(np.abs(beta)))) if upper is None else upper
    tol = (1e-3 if type == "rm" else 1e-5 * max(hi, 1e-12)) if tol is None else tol
    if covers_zero(0.0):
        return 0.0
    if not covers_zero(hi):
        return float("inf")
    lo = 0.0
    return bisect_smallest(covers_zero, lo, hi, tol)
