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

# Mammen multipliers as float32 values (exact: 1 - kappa = kappa + (1 - 2 kappa), all in float32)
_V_HIGH = np.float32(MAMMEN_KAPPA)
_V_LOW = np.float32(np.float32(1.0) * np.float32((1.0 - MAMMEN_KAPPA) - MAMMEN_KAPPA) + np.float32(MAMMEN_KAPPA))
# The Bernoulli draw "weight = 1 - kappa" is ``u16 < K16`` for a uniform 16-bit integer u16:
# P = 47422 / 65536 = 0.7236023, 4.5e-6 below kappa / sqrt(5). The multipliers then have mean
# 1.0e-5 (instead of 0) and variance 1 + 1.0e-5; the mean does not matter (influence functions sum
# to zero over units, so a common shift of all multipliers cancels) and the variance error makes
# standard errors 5e-6 too large (relative), far below the bootstrap's Monte Carlo error (~4 % with 999 draws).
BITS_PER_DRAW = 16
_K16 = round(MAMMEN_P_LOW * 2**BITS_PER_DRAW)
_U16_THRESHOLD = np.uint16(_K16)
_RAW64 = ("PCG64", "PCG64DXSM", "SFC64", "Philox")  # bit generators whose raw outputs are 64-bit


class MammenStream:
    """Draws Mammen multipliers from ``rng``: 1 - kappa w.p. ~kappa/sqrt(5), kappa otherwise.

    One 16-bit uniform per multiplier (see ``_K16`` for the probability's 2^-16 resolution). For
    numpy's 64-bit bit generators (PCG64, the default, and PCG64DXSM, SFC64, Philox) each raw
    64-bit output gives four of them, lowest 16 bits first (``random_raw`` viewed as ``uint16`` on
    a little-endian machine), in row-major (draw, unit) order across calls — a quarter of the
    generator calls of one uniform per draw; other generators use ``rng.integers`` on
    ``[0, 2^16)``. The stream depends only on the seed, not on how it is cut into chunks.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        bg = rng.bit_generator
        self._raw = type(bg).__name__ in _RAW64 and np.little_endian
        self._pending = np.empty(0, dtype=np.uint16)  # unused 16-bit parts of the last raw output

    def uint16(self, n: int) -> np.ndarray:
        """Next ``n`` 16-bit uniforms."""
        if not self._raw:
            return self.rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
        head = min(len(self._pending), n)
        k = n - head
        raw = self.rng.bit_generator.random_raw((k + 3) // 4).view(np.uint16)
        if head:
            u = np.empty(n, dtype=np.uint16)
            u[:head] = self._pending[:head]
            u[head:] = raw[:k]
            self._pending = self._pending[head:]
        else:
            u = raw[:k]
        if k:
            self._pending = raw[k:].copy()
        return u

    def bits(self, b: int, m: int) -> np.ndarray:
        """The next ``b x m`` 16-bit uniforms.

        Calls must be made in stream order, but may run in another thread (numpy releases the GIL
        while generating), ahead of :meth:`indicators`.
        """
        return self.uint16(b * m).reshape(b, m)

    @staticmethod
    def indicators(u: np.ndarray, out: np.ndarray | None = None, dtype: type = np.float64) -> np.ndarray:
        """1 where the multiplier drawn from ``u`` is ``1 - kappa``, else 0."""
        b, m = u.shape
        v = np.empty((b, m), dtype=dtype) if out is None else out[:b]
        np.less(u, _U16_THRESHOLD, out=v, casting="unsafe")
        return v

    @staticmethod
    def affine(v: np.ndarray) -> np.ndarray:
        """Indicators (see :meth:`indicators`) to multipliers, in place."""
        if v.dtype == np.float32:
            v *= _V_LOW - _V_HIGH  # exact in float32: gives _V_LOW where 1, _V_HIGH (kappa) where 0
            v += _V_HIGH
        else:
            v *= (1.0 - MAMMEN_KAPPA) - MAMMEN_KAPPA
            v += MAMMEN_KAPPA
        return v

    def draw(self, b: int, m: int, out: np.ndarray | None = None, dtype: type = np.float64) -> np.ndarray:
        """The next ``b x m`` multipliers."""
        return self.affine(self.indicators(self.bits(b, m), out=out, dtype=dtype))


def indicator_blocks_ok(bounds: np.ndarray | None) -> bool:
    """Whether :class:`IndicatorProducts` can work on these cohort blocks (non-empty, and fewer
    than 2**24 units each so that float32 counts of draws are exact)."""
    if bounds is None or len(bounds) < 2:
        return False
    sizes = np.diff(bounds)
    return bool(sizes.min() > 0 and sizes.max() < 2**24)


class IndicatorProducts:
    """The bootstrap's ``(V @ X)'`` (p x B) for the unclustered compact design with a centred
    outcome, computed chunk by chunk straight from the draws — by one thread or several at once
    (:meth:`run` from each), then assembled by :meth:`result`.

    Chunks of ``sizes`` draws are taken in order under a lock and their 16-bit uniforms drawn
    there (stream order); thresholding and the float32 products ``I @ [z_c, 1]`` run outside it,
    each chunk into its own rows of a ``kc x B x (T + 1)`` buffer, so the result does not depend
    on which thread does which chunk. Needs only the outcome block ``z`` of the compact design
    (read, never written) and the cohort bounds, so with a balanced panel it can start right
    after the cohort means — while the estimates and analytic SEs are still being computed.

    With ``V = kappa + (1 - 2 kappa) I`` (``I`` the 0/1 indicators of the ``1 - kappa`` draws),
    ``V @ z_c = kappa 1'z_c + (1 - 2 kappa) I @ z_c``; ``1'z_c = 0`` when ``z`` is centred within
    cohort (``centred=False``, e.g. the ``[z, O]`` design of unbalanced panels: the float64
    column sums are added). The cohort-indicator columns are ``n_c kappa + (1 - 2 kappa) count_c``
    with ``count_c`` from the ones column of ``[z_c, 1]`` (an exact float32 sum of 0/1).
    """

    def __init__(self, stream: MammenStream, sizes: list[int], z: np.ndarray, bounds: np.ndarray,
                 centred: bool = True):
        import threading

        self.stream, self.z, self.bounds = stream, z, bounds
        self._colsum = None if centred else np.add.reduceat(z, bounds[:-1], axis=0)  # kc x T
        self.n_c = np.diff(bounds).astype(float)
        self.kc, self.t = len(bounds) - 1, z.shape[1]
        self.m = z.shape[0]
        self.b = int(sum(sizes))
        # [z, 1] padded with zero columns to a multiple of 16: OpenBLAS's sgemm kernels run ~10 %
        # faster on 64 columns than on 61 (T = 60), more than paying for the extra columns
        self.width = -(-(self.t + 1) // 16) * 16
        self._prod = np.empty((self.kc, self.b, self.width), dtype=np.float32)
        offsets = np.cumsum([0] + list(sizes[:-1])).tolist()
        self._todo = iter(list(zip(offsets, sizes, strict=True)))
        self._lock = threading.Lock()
        self._z32e: np.ndarray | None = None
        self._max = max(sizes) if sizes else 0
        self._stop = False

    @staticmethod
    def sizes(b: int, m: int) -> list[int]:
        """Chunks of draws: ~4 MB of float32 indicators, at least 64 draws (sgemm is slow on
        fewer rows) unless that would take more than 32 MB (over 131,072 units)."""
        m = max(m, 1)
        rows = max(1, min(b, max(min(64, 2**23 // m), 2**20 // m)))
        return [min(rows, b - s) for s in range(0, b, rows)]

    def _operand(self) -> np.ndarray:
        with self._lock:
            if self._z32e is None:
                z32e = np.zeros((self.m, self.width), dtype=np.float32)
                z32e[:, :self.t] = self.z
                z32e[:, self.t] = 1.0  # the ones column: each block's count of 1 - kappa draws
                self._z32e = z32e
            return self._z32e

    def run(self) -> None:
        """Compute chunks until none are left (returns when this thread can take no more)."""
        z32e = self._operand()
        buf = None
        while True:
            with self._lock:
                nxt = None if self._stop else next(self._todo, None)
                if nxt is None:
                    return
                s, b = nxt
                u = self.stream.bits(b, self.m)
            if buf is None:
                buf = np.empty((self._max, self.m), dtype=np.float32)
            v = MammenStream.indicators(u, out=buf, dtype=np.float32)
            for c in range(self.kc):
                lo, hi = self.bounds[c], self.bounds[c + 1]
                np.matmul(v[:, lo:hi], z32e[lo:hi], out=self._prod[c, s:s + b])

    def stop(self) -> None:
        """Let running threads finish their current chunk and take no more."""
        self._stop = True

    def result(self) -> np.ndarray:
        """``(V @ X)'`` (p x B), once every chunk is done. Single precision like the products it
        comes from (~1e-7 relative rounding, far below the bootstrap's Monte Carlo error)."""
        kc, t = self.kc, self.t
        hi, d = _V_HIGH, _V_LOW - _V_HIGH  # float32, exact
        vxt = np.empty((kc * t + kc, self.b), dtype=np.float32)
        for c in range(kc):
            np.multiply(self._prod[c, :, :t].T, d, out=vxt[c * t:(c + 1) * t])
            if self._colsum is not None:
                vxt[c * t:(c + 1) * t] += (np.float64(hi) * self._colsum[c]).astype(np.float32)[:, None]
        # cohort-indicator columns: n_c kappa + count (1 - 2 kappa) (counts: exact float32 sums of 0/1)
        # (in float64, then rounded once: the two terms nearly cancel)
        vxt[kc * t:] = (self.n_c * np.float64(hi))[:, None] + self._prod[:, :, t] * np.float64(d)
        return vxt


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
                g[sd, base + c] = zs2[i2].T @ cnt[i1]  # upper triangle: the lower one is dropped below
                g[base + c, base + d] = cnt[i1] @ cnt2[i2]
        # symmetrise (upper blocks were filled)
        return np.triu(g) + np.triu(g, 1).T

    # ----------------------------------------------------------------- products
    def quad(self, th1: np.ndarray, th2: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
        """``theta1' G theta2`` with ``G = X'X`` (cluster-summed rows if clustered).

        ``cols`` (only with ``th2=None``): use the columns ``cols`` of ``th1``, i.e. the same as
        ``quad(th1[:, cols])`` (same values, same BLAS calls) without materialising that slice.
        """
        if cols is not None and (th2 is not None or self.clustered):
            th1 = th1[:, cols]
            cols = None
        th2 = th1 if th2 is None else th2
        if self.clustered:
            return th1.T @ _gram_times(self._gram, th2)
        ind = self._ind()
        if cols is None:
            def sub(rows: slice, idx: np.ndarray | None = None) -> np.ndarray:
                return th1[rows] if idx is None else th1[rows][:, idx]
        else:
            def sub(rows: slice, idx: np.ndarray | None = None) -> np.ndarray:
                return th1[rows][:, cols if idx is None else cols[idx]]
        t1i = sub(ind)
        t2i = t1i if th2 is th1 else th2[ind]
        out = t1i.T @ (self.n_c[:, None] * t2i)
        if self._colsum is not None:
            s1 = np.stack([self._colsum[c] @ sub(self._cols(c)) for c in range(self.kc)])  # kc x k1
            s2 = s1 if th2 is th1 else np.stack([self._colsum[c] @ th2[self._cols(c)] for c in range(self.kc)])
            out += t1i.T @ s2 + s1.T @ t2i
        nz1 = self._touch(th1, cols)
        nz2 = nz1 if th2 is th1 else self._touch(th2)
        k1 = th1.shape[1] if cols is None else len(cols)
        k2 = k1 if th2 is th1 else th2.shape[1]
        for c in range(self.kc):
            sc = self._cols(c)
            i1, i2 = nz1[c], nz2[c]
            if len(i1) == 0 or len(i2) == 0:
                continue
            full1, full2 = len(i1) == k1, len(i2) == k2
            a1 = sub(sc, None if full1 else i1)
            if th2 is th1:
                a2 = a1 if full1 == full2 else sub(sc, None if full2 else i2)
            else:
                a2 = th2[sc] if full2 else th2[sc][:, i2]
            prod = a1.T @ (self._blocks[c] @ a2)
            if full1 and full2:
                out += prod
            else:
                out[np.ix_(i1, i2)] += prod
        return out

    def _touch(self, th: np.ndarray, cols: np.ndarray | None = None) -> list[np.ndarray]:
        """Per cohort block, the columns of ``th`` (of ``th[:, cols]``) with a nonzero entry in the block."""
        last = getattr(self, "_touched", None)  # (theta, mask): the ATT(g,t) theta is asked for twice
        if last is not None and last[0] is th:
            m = last[1]
        else:
            nz = th[:self.kc * self.t] != 0
            m = nz.reshape(self.kc, self.t, nz.shape[1]).any(axis=1)
            self._touched = (th, m)
        if cols is not None:
            m = m[:, cols]
        return [np.flatnonzero(r) for r in m]

    def quad_diag(self, th: np.ndarray) -> np.ndarray:
        if self.clustered:
            return np.einsum("ij,ij->j", _gram_times(self._gram, th), th)
        ind = self._ind()
        out = np.einsum("ij,ij->j", self.n_c[:, None] * th[ind], th[ind])
        if self._colsum is not None:
            s1 = np.stack([self._colsum[c] @ th[self._cols(c)] for c in range(self.kc)])
            out += 2.0 * np.einsum("ij,ij->j", th[ind], s1)
        for c, nz in enumerate(self._touch(th)):
            if len(nz):
                a = th[self._cols(c)]
                if len(nz) < th.shape[1]:
                    a = a[:, nz]
                out[nz] += np.einsum("ij,ij->j", self._blocks[c] @ a, a)
        return out

    boot_dtype = np.float32

    def warm(self) -> None:
        """Build the single-precision copy used by :meth:`vx` (before calling it from threads)."""
        if not hasattr(self, "_z32"):
            if self.clustered:
                self._z32 = [zs.astype(np.float32) for _, zs, _ in self._cl]
            else:
                self._z32 = self.z.astype(np.float32)

    def vx(self, v: np.ndarray) -> np.ndarray:
        """``V @ X`` for multiplier draws ``V`` (B x n_units, or B x n_clusters; clustered designs
        and the fallback of unit-level draws — the common case goes through
        :class:`IndicatorProducts`).

        Single precision: the product is the one O(B n T) step, and rounding at ~1e-6 relative is
        far below the Monte Carlo error of the bootstrap.
        """
        self.warm()
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
    """``X = [IF_gt, cohort indicators]`` (n_units x (n_gt + n_cohorts)); with sampling weights the
    indicator of unit i's cohort holds ``w_i``."""

    def __init__(self, if_gt: np.ndarray, cohort_idx: np.ndarray, kc: int, cluster: np.ndarray | None = None,
                 ind_values: np.ndarray | None = None):
        n = if_gt.shape[0]
        ind = np.zeros((n, kc))
        # the cohort-indicator columns: 1, or each unit's sampling weight (weighted aggregation terms)
        ind[np.arange(n), cohort_idx] = 1.0 if ind_values is None else ind_values
        self.x = np.hstack([if_gt, ind])
        self.p = self.x.shape[1]
        self.kc = kc
        if cluster is None:
            self.xcl = self.x
        else:
            _, self.xcl, _ = _group_rows(cluster, self.x)
        self.n_boot = self.xcl.shape[0]
        self._gram = self.xcl.T @ self.xcl

    def quad(self, th1: np.ndarray, th2: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
        if cols is not None:
            th1 = th1[:, cols]
        th2 = th1 if th2 is None else th2
        return th1.T @ (self._gram @ th2)

    def quad_diag(self, th: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", self._gram @ th, th)

    boot_dtype = np.float64

    def warm(self) -> None:
        pass

    def vx(self, v: np.ndarray) -> np.ndarray:
        return v @ self.xcl

    def materialize(self, th: np.ndarray) -> np.ndarray:
        return self.x @ th
