"""Influence-function "designs" for the Callaway–Sant'Anna estimator.

Every estimated quantity k (an ATT(g,t) or an aggregation of them) has an influence function that
is linear in a per-unit design row: ``IF_i(k) = X_i @ theta[:, k]`` (R ``did`` scaling, i.e.
``se_k = sqrt(sum_i IF_i(k)**2) / n``). Two designs:

* :class:`CompactDesign` (no covariates). Units are sorted by cohort. For unit i in cohort c,
  ``X_i`` has the centred outcome row ``Y_i - Ybar_c`` in the T columns of block c and a 1 in the
  cohort indicator column c; all else is zero. Unconditional ATT(g,t) influence functions are
  exactly of that form (difference of cohort means of Y_t - Y_base), and so are aggregations and
  the aggregation-weight terms (``wif`` in R, which are constant within a cohort). Variances then
  need only the per-cohort T x T scatter matrices, and the multiplier bootstrap needs one product
  ``V @ (Y - Ybar)`` per cohort block — never an n_units x n_gt matrix.
* :class:`DenseDesign` (covariates): ``X = [IF_gt, cohort indicators]`` materialised.

With clustering, rows are summed within clusters first (R ``did``'s cluster-robust IF variance,
no small-sample factor).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

MAMMEN_KAPPA = 0.5 * (1.0 + np.sqrt(5.0))
MAMMEN_P_LOW = MAMMEN_KAPPA / np.sqrt(5.0)  # P(weight = 1 - kappa), as in R did


def mammen_weights(rng: np.random.Generator, b: int, m: int, out: np.ndarray | None = None,
                   dtype: type = np.float64) -> np.ndarray:
    """``b x m`` Mammen multipliers: 1 - kappa w.p. kappa/sqrt(5), kappa otherwise (mean 0, var 1).

    Uniforms are drawn in float32 (24-bit resolution of the Bernoulli probability) and written into
    ``out`` when given, to avoid touching fresh memory for every chunk of draws.
    """
    u = rng.random((b, m), dtype=np.float32)
    v = np.empty((b, m), dtype=dtype) if out is None else out[:b]
    np.less(u, np.float32(MAMMEN_P_LOW), out=v, casting="unsafe")
    v *= (1.0 - MAMMEN_KAPPA) - MAMMEN_KAPPA
    v += MAMMEN_KAPPA
    return v


def _group_rows(codes: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum rows of ``z`` by integer ``codes``: (unique codes, summed rows, counts)."""
    order = np.argsort(codes, kind="stable")
    cs = codes[order]
    if len(cs) == 0:
        return cs, z[:0], np.zeros(0)
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    uniq = cs[starts]
    summed = np.add.reduceat(z[order], starts, axis=0)
    counts = np.diff(np.r_[starts, len(cs)]).astype(float)
    return uniq, summed, counts


def _gram_times(g: np.ndarray, th: np.ndarray) -> np.ndarray:
    """``G @ theta`` exploiting that theta columns are sparse (each touches few cohort blocks)."""
    if th.size and np.count_nonzero(th) < 0.05 * th.size:
        ths = sparse.csc_matrix(th)
        return np.asarray((ths.T @ g.T).T)
    return g @ th


class CompactDesign:
    """Design for unconditional estimation (see module docstring)."""

    def __init__(self, zc: np.ndarray, bounds: np.ndarray, cluster: np.ndarray | None = None,
                 centred: bool = True):
        self.z = zc  # n x T, centred within cohort, units sorted by cohort
        self.bounds = bounds  # cohort c occupies rows bounds[c]:bounds[c+1]
        self.kc = len(bounds) - 1
        self.t = zc.shape[1]
        self.p = self.kc * self.t + self.kc
        self.n_c = np.diff(bounds).astype(float)
        self.clustered = cluster is not None
        self._colsum = None
        if not self.clustered:
            self.n_boot = zc.shape[0]
            self._blocks = []
            # column sums of each cohort block: zero when z is centred within cohort; otherwise
            # (centred=False, e.g. the [z, O] design of the unbalanced path) the cross terms between
            # the block and the cohort indicator enter the quadratic forms
            self._colsum = None if centred else np.add.reduceat(zc, bounds[:-1], axis=0)
            for c in range(self.kc):
                zb = self.z[bounds[c]:bounds[c + 1]]
                self._blocks.append(zb.T @ zb)
        else:
            self.n_boot = int(cluster.max()) + 1 if len(cluster) else 0
            self._cl = []
            for c in range(self.kc):
                s, e = bounds[c], bounds[c + 1]
                ids, zs, cnt = _group_rows(cluster[s:e], self.z[s:e])
                self._cl.append((ids, zs, cnt))
            self._gram = self._cluster_gram()

    # ----------------------------------------------------------------- helpers
    def _cols(self, c: int) -> slice:
        return slice(c * self.t, (c + 1) * self.t)

    def _ind(self) -> slice:
        return slice(self.kc * self.t, self.p)

    def _cluster_gram(self) -> np.ndarray:
        g = np.zeros((self.p, self.p))
        base = self.kc * self.t
        for c in range(self.kc):
            ids, zs, cnt = self._cl[c]
            sc = self._cols(c)
            g[sc, sc] = zs.T @ zs
            g[sc, base + c] = zs.T @ cnt
            g[base + c, base + c] = cnt @ cnt
            for d in range(c + 1, self.kc):
                ids2, zs2, cnt2 = self._cl[d]
                _, i1, i2 = np.intersect1d(ids, ids2, assume_unique=True, return_indices=True)
                if len(i1) == 0:
                    continue
                sd = self._cols(d)
                g[sc, sd] = zs[i1].T @ zs2[i2]
                g[sc, base + d] = zs[i1].T @ cnt2[i2]
                g[base + c, sd] = cnt[i1] @ zs2[i2]
                g[base + c, base + d] = cnt[i1] @ cnt2[i2]
        # symmetrise (upper blocks were filled)
        return np.triu(g) + np.triu(g, 1).T

    # ----------------------------------------------------------------- products
    def quad(self, th1: np.ndarray, th2: np.ndarray | None = None) -> np.ndarray:
        """``theta1' G theta2`` with ``G = X'X`` (cluster-summed rows if clustered)."""
        th2 = th1 if th2 is None else th2
        if self.clustered:
            return th1.T @ _gram_times(self._gram, th2)
        ind = self._ind()
        out = th1[ind].T @ (self.n_c[:, None] * th2[ind])
        if self._colsum is not None:
            s1 = np.stack([self._colsum[c] @ th1[self._cols(c)] for c in range(self.kc)])  # kc x k1
            s2 = np.stack([self._colsum[c] @ th2[self._cols(c)] for c in range(self.kc)])
            out += th1[ind].T @ s2 + s1.T @ th2[ind]
        for c in range(self.kc):
            sc = self._cols(c)
            a1, a2 = th1[sc], th2[sc]
            nz1 = np.flatnonzero(a1.any(axis=0))  # columns touching cohort c
            nz2 = np.flatnonzero(a2.any(axis=0))
            if len(nz1) == 0 or len(nz2) == 0:
                continue
            out[np.ix_(nz1, nz2)] += a1[:, nz1].T @ (self._blocks[c] @ a2[:, nz2])
        return out

    def quad_diag(self, th: np.ndarray) -> np.ndarray:
        if self.clustered:
            return np.einsum("ij,ij->j", _gram_times(self._gram, th), th)
        ind = self._ind()
        out = np.einsum("ij,ij->j", self.n_c[:, None] * th[ind], th[ind])
        if self._colsum is not None:
            s1 = np.stack([self._colsum[c] @ th[self._cols(c)] for c in range(self.kc)])
            out += 2.0 * np.einsum("ij,ij->j", th[ind], s1)
        for c in range(self.kc):
            a = th[self._cols(c)]
            nz = np.flatnonzero(a.any(axis=0))
            if len(nz):
                a = a[:, nz]
                out[nz] += np.einsum("ij,ij->j", self._blocks[c] @ a, a)
        return out

    boot_dtype = np.float32

    def vx(self, v: np.ndarray) -> np.ndarray:
        """``V @ X`` for multiplier draws ``V`` (B x n_units, or B x n_clusters).

        Single precision: the product is the one O(B n T) step, and rounding at ~1e-6 relative is
        far below the Monte Carlo error of the bootstrap.
        """
        if not hasattr(self, "_z32"):
            if self.clustered:
                self._z32 = [zs.astype(np.float32) for _, zs, _ in self._cl]
            else:
                self._z32 = self.z.astype(np.float32)
        out = np.empty((v.shape[0], self.p))
        base = self.kc * self.t
        for c in range(self.kc):
            sc = self._cols(c)
            if self.clustered:
                ids, _, cnt = self._cl[c]
                vb = v[:, ids]
                out[:, sc] = vb @ self._z32[c]
                out[:, base + c] = vb.astype(np.float64) @ cnt
            else:
                s, e = self.bounds[c], self.bounds[c + 1]
                vb = v[:, s:e]
                out[:, sc] = vb @ self._z32[s:e]
                out[:, base + c] = vb.sum(axis=1, dtype=np.float64)
        return out

    def materialize(self, th: np.ndarray) -> np.ndarray:
        """Unit-level influence functions ``X @ theta`` (n_units x k, units in cohort order)."""
        out = np.empty((self.z.shape[0], th.shape[1]))
        ind = self._ind()
        for c in range(self.kc):
            s, e = self.bounds[c], self.bounds[c + 1]
            out[s:e] = self.z[s:e] @ th[self._cols(c)] + th[ind][c]
        return out


class DenseDesign:
    """``X = [IF_gt, cohort indicators]`` (n_units x (n_gt + n_cohorts))."""

    def __init__(self, if_gt: np.ndarray, cohort_idx: np.ndarray, kc: int, cluster: np.ndarray | None = None):
        n = if_gt.shape[0]
        ind = np.zeros((n, kc))
        ind[np.arange(n), cohort_idx] = 1.0
        self.x = np.hstack([if_gt, ind])
        self.p = self.x.shape[1]
        self.kc = kc
        if cluster is None:
            self.xcl = self.x
        else:
            _, self.xcl, _ = _group_rows(cluster, self.x)
        self.n_boot = self.xcl.shape[0]
        self._gram = self.xcl.T @ self.xcl

    def quad(self, th1: np.ndarray, th2: np.ndarray | None = None) -> np.ndarray:
        th2 = th1 if th2 is None else th2
        return th1.T @ (self._gram @ th2)

    def quad_diag(self, th: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", self._gram @ th, th)

    boot_dtype = np.float64

    def vx(self, v: np.ndarray) -> np.ndarray:
        return v @ self.xcl

    def materialize(self, th: np.ndarray) -> np.ndarray:
        return self.x @ th
