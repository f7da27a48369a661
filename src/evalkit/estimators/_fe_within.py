"""The within-transformation of the fit engine: project absorbed fixed effects out of columns.

:class:`Within` is built once per (fixed effects, weights) and then transforms any number of
columns (outcomes, regressors, permuted regressors, bootstrap outcomes) without redoing the set-up:

* one fixed effect: weighted group means, exact;
* two fixed effects (unit and period): exact, no iterations.  With ``a`` the FE with more levels
  and ``b`` the one with fewer, ``M_{a,b} v = M_a v - M_a B g`` where ``g`` solves the small
  ``n_b x n_b`` Schur system ``(B' W M_a B) g = B' W M_a v`` (``S = diag(w_b) - C' diag(1/w_a) C``,
  ``C`` = weight sums of the ``a x b`` cells).  Redundant levels of ``b`` (one per connected
  component) are dropped left to right, which leaves the projection unchanged;
* three or more (or a two-way design whose smaller FE has more than ``MAX_SCHUR`` levels):
  weighted alternating projections to ``tol``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

MAX_SCHUR = 4000  # largest n_b for the exact two-way route (dense n_b x n_b solve)
COLLIN_TOL = 1e-10
_CHUNK_CELLS = 8_000_000  # rows x columns transformed per block (bounds temporary memory)


def rank_codes(x: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values of ``x`` (flattened; int64):
    ``np.unique(x, return_inverse=True)[1]``, without the sort when the values are integers in a
    short range — labels ``0..n-1`` that all occur are their own codes, other integer values are
    ranked by a presence count (the same integers; a draw of the imputation SE asks for six of these)."""
    x = np.asarray(x).ravel()
    if x.size and x.dtype.kind in "fiu":
        lo = x.min()
        if x.dtype.kind in "iu" and lo == 0:  # the usual FE / cluster codes: one pass (bincount finds the max)
            present = np.bincount(x)
            if present.all():
                return x.astype(np.int64, copy=False)
        hi = x.max()
        if np.isfinite(lo) and np.isfinite(hi) and float(hi) - float(lo) < 8 * x.size + 1024:
            xi = (x - lo).astype(np.int64)
            if np.array_equal(xi, x - lo):  # integer-valued: ranks from the presence of each value
                seen = np.zeros(int(hi - lo) + 1, dtype=bool)
                seen[xi] = True
                return (np.cumsum(seen) - 1)[xi]
    return np.unique(x, return_inverse=True)[1].ravel().astype(np.int64, copy=False)


def compact_codes(c: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes ``0..n-1`` for any labels (unused labels removed; :func:`rank_codes`) and ``n``."""
    codes = rank_codes(c)
    return codes, int(codes.max()) + 1 if codes.size else 0


def independent_columns(S: np.ndarray, tol: float = COLLIN_TOL) -> np.ndarray:
    """Columns of a PSD cross-product matrix kept by a greedy left-to-right collinearity check
    (a column is dropped when it is numerically spanned by the kept columns before it, as fixest)."""
    k = S.shape[0]
    if k == 0:
        return np.zeros(0, dtype=bool)
    d = np.sqrt(np.clip(np.diag(S), 0, None))
    keep = d > 0
    if not keep.any():
        return keep
    Ss = S[np.ix_(keep, keep)] / np.outer(d[keep], d[keep])
    try:
        L = np.linalg.cholesky(Ss)
        if np.min(np.diag(L)) ** 2 > tol:
            return keep
    except np.linalg.LinAlgError:
        pass
    idx = np.flatnonzero(keep)
    m = idx.size
    L = np.zeros((m, m))
    ok = np.zeros(m, dtype=bool)
    for j in range(m):
        v = Ss[j:, j] - L[j:, :j] @ L[j, :j]
        if v[0] > tol:
            L[j:, j] = v / np.sqrt(v[0])
            ok[j] = True
    out = np.zeros(k, dtype=bool)
    out[idx[ok]] = True
    return out


def sym_inv(S: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix (Cholesky)."""
    if S.shape[0] == 0:
        return S.copy()
    c = sla.cho_factor(S, lower=True)
    return sla.cho_solve(c, np.eye(S.shape[0]))


class Within:
    """Within-transformation for fixed effects ``fe`` (integer code arrays) and weights ``w``.

    ``transform(V)`` returns ``M V`` for an ``N`` vector or ``N x m`` array, where ``M`` is the
    ``W``-orthogonal projection off the fixed-effect dummies.  Build once, transform many times.
    """

    def __init__(self, fe: list[np.ndarray] | tuple[np.ndarray, ...], weights: np.ndarray | None = None,
                 *, tol: float = 1e-12, maxiter: int = 100_000, levels: list[int] | None = None,
                 grid: bool = False):
        """``levels``: the number of levels of each FE when ``fe`` are already compact codes 0..n-1
        (skips re-coding).  ``grid=True`` (with ``levels``, two FE, no weights): the caller guarantees
        that the rows are every (fe[0], fe[1]) cell once, sorted by fe[0] then fe[1] (the shared
        sample of a balanced panel, ``FESample.grid``); the O(N) verification and group counts are
        skipped (only O(1) checks of the ends)."""
        self.codes: list[np.ndarray] = []
        self.levels: list[int] = []
        for j, c in enumerate(fe):
            cc, n = (np.asarray(c, dtype=np.int64), int(levels[j])) if levels is not None else compact_codes(c)
            self.codes.append(cc)
            self.levels.append(n)
        self.n_obs = int(self.codes[0].size) if self.codes else (0 if weights is None else len(weights))
        self.w = None if weights is None else np.asarray(weights, dtype=float)
        self.tol, self.maxiter = tol, maxiter
        self.method = ("none" if not self.codes else "one-way" if len(self.codes) == 1 else "two-way exact")
        self._ww = self.w  # None = unit weights (bincount without weights is faster)
        if grid:
            self._check_grid_hint(levels)
            # complete grid: every level of one FE occurs once with each level of the other
            self._sums = [np.full(self.levels[0], float(self.levels[1])), np.full(self.levels[1], float(self.levels[0]))]
        else:
            self._sums = [np.bincount(c, weights=self.w, minlength=n).astype(float)
                          for c, n in zip(self.codes, self.levels, strict=True)]
        self._inv = [np.divide(1.0, s, out=np.zeros_like(s), where=s > 0) for s in self._sums]
        self._mats: dict[int, sp.csr_matrix] = {}  # built on first multi-column use
        self._grid: tuple[int, int] | None = None  # (n_a, n_b) of a complete, sorted, unweighted a x b panel
        if len(self.codes) == 2:
            ia, ib = (0, 1) if self.levels[0] >= self.levels[1] else (1, 0)
            if grid:  # the caller's complete sorted grid: double-demeaning, whatever the sizes
                self._grid, self._ab, self.redundant = (self.levels[0], self.levels[1]), (ia, ib), 1
            elif self.levels[ib] > MAX_SCHUR:
                self.method = "alternating projections"
            else:
                self._grid = self._complete_grid(ia, ib)
                if self._grid is None:
                    self._setup_schur(ia, ib)
                else:  # one connected component: one redundant level; no Schur system needed
                    self._ab, self.redundant = (ia, ib), 1
        elif len(self.codes) > 2:
            self.method = "alternating projections"

    # ------------------------------------------------------------------ set-up
    def _setup_schur(self, ia: int, ib: int) -> None:
        a, b = self.codes[ia], self.codes[ib]
        na, nb = self.levels[ia], self.levels[ib]
        if na * nb <= max(4 * self.n_obs, 1_000_000):  # dense cell table (balanced-ish panels)
            C = np.bincount(a * nb + b, weights=self._ww, minlength=na * nb).astype(float).reshape(na, nb)
            S = np.diag(self._sums[ib]) - (C * self._inv[ia][:, None]).T @ C
        else:
            C = sp.csr_matrix((np.ones(a.size) if self._ww is None else self._ww, (a, b)), shape=(na, nb))
            C.sum_duplicates()
            S = np.diag(self._sums[ib]) - (C.T @ sp.diags(self._inv[ia]) @ C).toarray()
        S = (S + S.T) / 2
        keep = independent_columns(S)
        self._ab = (ia, ib)
        self._C = C
        self._keep_b = np.flatnonzero(keep)
        self._cho = sla.cho_factor(S[np.ix_(keep, keep)], lower=True) if keep.any() else None
        # connected components of the bipartite a-b graph = redundant levels (for DoF counts)
        self.redundant = int(nb - keep.sum())

    def _check_grid_hint(self, levels: list[int] | None) -> None:
        c = self.codes
        if (levels is None or len(c) != 2 or self.w is not None or self.n_obs != self.levels[0] * self.levels[1]
                or self.n_obs == 0 or c[0][0] != 0 or c[1][0] != 0 or c[0][-1] != self.levels[0] - 1
                or c[1][-1] != self.levels[1] - 1 or c[1][self.levels[1] - 1] != self.levels[1] - 1):
            raise ValueError("Within(grid=True): the codes are not a complete sorted two-way grid with levels given")

    def _complete_grid(self, ia: int, ib: int) -> tuple[int, int] | None:
        """``(n_a, n_b)`` when the rows are every (a, b) cell once, sorted by a then b, unweighted (a
        balanced panel in the shared sample's order): then ``M v`` is the double-demeaning of ``v``
        as an ``n_a x n_b`` table (row means, column means, grand mean), no bincounts or gathers."""
        na, nb = self.levels[ia], self.levels[ib]
        if self.w is not None or self.n_obs != na * nb or self.n_obs == 0:
            return None
        r = np.arange(self.n_obs)
        q = r // nb
        if np.array_equal(self.codes[ia], q) and np.array_equal(self.codes[ib], r - q * nb):
            return na, nb
        return None

    # ------------------------------------------------------------------ transform
    def group_means(self, j: int, V: np.ndarray) -> np.ndarray:
        """Weighted means of the columns of ``V`` within the levels of fixed effect ``j``."""
        return self.group_sums(j, V) * self._inv[j][:, None]

    def group_sums(self, j: int, V: np.ndarray) -> np.ndarray:
        """Weighted sums of the columns of ``V`` (N x m) within the levels of fixed effect ``j``."""
        c, n = self.codes[j], self.levels[j]
        if V.shape[1] > 4:  # one sparse pass beats m bincounts
            if j not in self._mats:
                ww = np.ones(self.n_obs) if self._ww is None else self._ww
                self._mats[j] = sp.csr_matrix((ww, (c, np.arange(self.n_obs))), shape=(n, self.n_obs))
            return self._mats[j] @ V
        wV = V if self.w is None else V * self.w[:, None]
        return np.column_stack([np.bincount(c, weights=wV[:, i], minlength=n) for i in range(V.shape[1])])

    def transform(self, V: np.ndarray) -> np.ndarray:
        """``M V`` (same shape as ``V``); columns are processed in blocks to bound memory."""
        V = np.asarray(V, dtype=float)
        one_d = V.ndim == 1
        V2 = V[:, None] if one_d else V
        if not self.codes:
            out = V2.copy()
        else:
            step = max(1, _CHUNK_CELLS // max(self.n_obs, 1))
            if V2.shape[1] <= step:
                out = self._transform(V2)
            else:
                out = np.empty_like(V2)
                for s in range(0, V2.shape[1], step):
                    out[:, s:s + step] = self._transform(V2[:, s:s + step])
        return out[:, 0] if one_d else out

    def _transform(self, V: np.ndarray) -> np.ndarray:
        if self._grid is not None:
            na, nb = self._grid
            X = V.reshape(na, nb, V.shape[1])
            rm = X.mean(axis=1, keepdims=True)
            cm = X.mean(axis=0, keepdims=True)
            cm -= rm.mean(axis=0, keepdims=True)  # the grand mean (= mean of the row means on a complete grid)
            out = X - rm
            out -= cm
            return out.reshape(V.shape)
        if 1 < V.shape[1] <= 4 and self.method == "two-way exact":  # 1-D gathers beat 2-D ones
            out = np.empty_like(V)
            for j in range(V.shape[1]):
                out[:, j] = self._transform_schur_1d(V[:, j])
            return out
        if len(self.codes) == 1:
            return V - self.group_means(0, V)[self.codes[0]]
        if self.method == "two-way exact":
            return self._transform_schur(V)
        return self._transform_ap(V)

    def _transform_schur_1d(self, v: np.ndarray) -> np.ndarray:
        # M v = v - (m_a - C g / w_a)[a] - g[b], with m_a the unit means of v and g solving
        # S g = B'W M_a v = B'W v - C' m_a: two bincounts, two gathers, no N-sized temporaries beyond them
        ia, ib = self._ab
        a, b = self.codes[ia], self.codes[ib]
        wv = v if self.w is None else v * self.w
        ma = np.bincount(a, weights=wv, minlength=self.levels[ia]) * self._inv[ia]
        if self._cho is None:
            return v - ma[a]
        r = np.bincount(b, weights=wv, minlength=self.levels[ib]) - self._C.T @ ma
        g = np.zeros_like(r)
        g[self._keep_b] = sla.cho_solve(self._cho, r[self._keep_b])
        out = v - (ma - (self._C @ g) * self._inv[ia])[a]
        out -= g[b]
        return out

    def _transform_schur(self, V: np.ndarray) -> np.ndarray:
        if V.shape[1] == 1:
            return self._transform_schur_1d(V[:, 0])[:, None]
        ia, ib = self._ab
        a, b = self.codes[ia], self.codes[ib]
        Va = V - self.group_means(ia, V)[a]
        if self._cho is None:
            return Va
        r = self.group_sums(ib, Va)  # B' W M_a V  (n_b x m)
        g = np.zeros_like(r)
        g[self._keep_b] = sla.cho_solve(self._cho, r[self._keep_b])
        ga = (self._C @ g) * self._inv[ia][:, None]  # unit means of B g
        return Va - g[b] + ga[a]

    def _transform_ap(self, V: np.ndarray) -> np.ndarray:
        X = np.array(V, dtype=float, copy=True)
        scale = np.maximum(np.abs(X).max(axis=0), 1.0)
        for _ in range(self.maxiter):
            delta = 0.0
            for j, c in enumerate(self.codes):
                m = self.group_means(j, X)
                X -= m[c]
                delta = max(delta, float(np.max(np.abs(m) / scale)))
            if delta < self.tol:
                break
        else:
            raise RuntimeError(f"alternating projections did not converge in {self.maxiter} sweeps")
        return X
