"""The Mammen multiplier bootstrap of the Callaway–Sant'Anna estimator (R ``did``'s ``mboot``).

Each estimate's bootstrap distribution is ``(V X theta)' / n`` for multiplier draws ``V`` (units, or
clusters, x draws) and the design ``X`` of the influence functions; SEs are the normalised IQR of
that distribution and the uniform bands use the sup-t critical value, as R does. ``(V X)'`` comes
either from 0/1 draws and float32 products (:class:`IndicatorProducts`: unclustered, unweighted,
no covariates) or from the multipliers themselves (``design.vx``). The draws depend only on the
seed; an ``executor`` shares the work (never the numbers) and may start it before the estimates
(:func:`start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from evalkit.distributions import norm_ppf
from evalkit.estimators._cs_attgt import cohort_means
from evalkit.estimators._cs_design import (
    CompactDesign,
    DenseDesign,
    IndicatorProducts,
    MammenStream,
    indicator_blocks_ok,
)
from evalkit.estimators._cs_prepare import Prepared
from evalkit.estimators._cs_schedule import BitsAhead, share, split_rows

DEGENERATE = np.sqrt(np.finfo(float).eps) * 10
_IQR_NORM = norm_ppf(0.75) - norm_ppf(0.25)


def _chunks(bootstrap: int, m: int) -> list[int]:
    """Draws per chunk of multipliers (~2 MB of them per chunk)."""
    chunk = max(1, min(bootstrap, int(2**19 // max(m, 1))))
    return [min(chunk, bootstrap - s) for s in range(0, bootstrap, chunk)]


def products_route(prep: Prepared, covariates) -> bool:
    """Whether ``(V X)'`` comes from 0/1 draws and float32 products (:class:`IndicatorProducts`):
    unit-level draws (no clusters), no covariates, no weights (the indicator columns are then counts)."""
    return not covariates and prep.w is None and prep.cluster is None and indicator_blocks_ok(prep.bounds)


@dataclass
class Ahead:
    """A bootstrap started before (or beside) the estimates: the products route's work object, or
    multipliers drawn ahead. Used at most once (:meth:`take`)."""

    bootstrap: int
    seed: Any
    products: IndicatorProducts | None = None
    fut: Any = None  # the executor's share of ``products.run``
    bits: BitsAhead | None = None
    used: bool = False

    def take(self, bootstrap: int, seed: Any) -> Ahead | None:
        if self.used or bootstrap != self.bootstrap or seed != self.seed:
            return None
        self.used = True
        return self

    def close(self) -> None:
        """Stop work nobody will use (e.g. an aggregation without this bootstrap)."""
        if not self.used:
            self.used = True
            if self.products is not None:
                self.products.stop()
                if self.fut is not None:
                    self.fut.result()
            if self.bits is not None:
                self.bits.close()


def start(prep: Prepared, bootstrap: int, seed: Any, covariates, executor: Any) -> tuple[Ahead, np.ndarray | None]:
    """Start the bootstrap before the estimates. With the products route on a balanced panel the
    outcome is centred within cohort here, in place (returned: the cohort means, which the
    estimates then reuse), and the executor starts computing the products from it; otherwise, with
    an executor, the multipliers are drawn ahead. Same draws and numbers either way."""
    ahead, ybar = Ahead(bootstrap, seed), None
    n = prep.y.shape[0]
    if products_route(prep, covariates):
        if not prep.unbalanced:
            ybar = cohort_means(prep)
            for c in range(len(prep.cohorts)):  # prep.y is ours: centre within cohort in place
                prep.y[prep.bounds[c]:prep.bounds[c + 1]] -= ybar[c]
            ahead.products = IndicatorProducts(MammenStream(np.random.default_rng(seed)),
                                               IndicatorProducts.sizes(bootstrap, n), prep.y, prep.bounds)
            if executor is not None:
                ahead.fut = executor.submit(ahead.products.run)
        # unbalanced: the [z, O] design exists only after the estimates (start_products)
    elif executor is not None:
        m = prep.n_clusters if prep.cluster is not None else n
        sizes = _chunks(bootstrap, m)
        dtype = DenseDesign.boot_dtype if (covariates or prep.w is not None) else CompactDesign.boot_dtype
        ahead.bits = BitsAhead(MammenStream(np.random.default_rng(seed)), sizes, m,
                               max_ahead=max(2, int(2**26 // (8 * sizes[0] * max(m, 1)))), dtype=dtype)
    return ahead, ybar


def start_products(ahead: Ahead, z: np.ndarray, bounds: np.ndarray, centred: bool, executor: Any) -> None:
    """The products route on a design matrix ``z`` that exists only now (e.g. ``[z, O]`` of the unbalanced path)."""
    n = z.shape[0]
    ahead.products = IndicatorProducts(MammenStream(np.random.default_rng(ahead.seed)),
                                       IndicatorProducts.sizes(ahead.bootstrap, n), z, bounds, centred=centred)
    if executor is not None:
        ahead.fut = executor.submit(ahead.products.run)


def finish_products(ahead: Ahead) -> np.ndarray:
    """``(V X)'`` of the products route: this thread takes the chunks the executor has not."""
    products = ahead.products
    try:
        products.run()
    finally:
        products.stop()
        if ahead.fut is not None:
            ahead.fut.result()
    return products.result()


def multiplier_products(design: Any, bootstrap: int, seed: Any, executor: Any, bits: BitsAhead | None) -> np.ndarray:
    """``(V X)'`` (p x B) from Mammen multipliers (``design.vx``), chunk by chunk in stream order;
    with ``bits`` (drawn ahead) the chunks are shared with the executor, each into its own columns."""
    m = design.n_boot
    if bits is not None and (bits.m != m or bits.dtype != design.boot_dtype):
        bits.close()  # unexpected: draw from a fresh stream instead
        bits = None
    sizes = bits.sizes if bits is not None else _chunks(bootstrap, m)
    vxt = np.empty((design.p, bootstrap))  # (V @ X)' : draws along the contiguous axis
    offsets = np.cumsum([0] + sizes[:-1]).tolist()
    try:
        if bits is not None:
            design.warm()  # before threads use it

            def work(item):
                (s, b), v = item
                vxt[:, s:s + b] = design.vx(v).T

            share(executor, zip(offsets, sizes, strict=True), work, take=lambda sb: (sb, bits.get()),
                  parallel=len(sizes) > 1)
        else:
            stream = MammenStream(np.random.default_rng(seed))
            vbuf = np.empty((sizes[0], m), dtype=design.boot_dtype)
            for s, b in zip(offsets, sizes, strict=True):
                v = MammenStream.affine(MammenStream.indicators(stream.bits(b, m), out=vbuf, dtype=design.boot_dtype))
                vxt[:, s:s + b] = design.vx(v).T
    finally:
        if bits is not None:
            bits.close()
    return vxt


def fresh_products(design: Any, bounds: np.ndarray, unbalanced: bool, bootstrap: int, seed: Any,
                   use_products: bool, executor: Any) -> np.ndarray:
    """``(V X)'`` from scratch (a second aggregation of a stored fit): the same draws as the first."""
    if use_products:
        ahead = Ahead(bootstrap, seed, used=True)
        start_products(ahead, design.z, bounds, not unbalanced, executor)
        return finish_products(ahead)
    bits = None
    if executor is not None:
        m = design.n_boot
        sizes = _chunks(bootstrap, m)
        bits = BitsAhead(MammenStream(np.random.default_rng(seed)), sizes, m,
                         max_ahead=max(2, int(2**26 // (8 * sizes[0] * max(m, 1)))), dtype=design.boot_dtype)
    return multiplier_products(design, bootstrap, seed, executor, bits)


def bootstrap_se(blocks: dict, th_sp: Any, vxt: np.ndarray, ses: dict, n: int, alpha: float, executor: Any,
                 tht: Any = None) -> tuple[dict, dict, dict]:
    """Bootstrap SEs (replacing ``ses`` where the bootstrap is not degenerate), uniform-band half
    widths and sup-t critical values per kind of estimate. ``tht``: :func:`boot_rows`, if done already."""
    bands: dict[str, np.ndarray] = {}
    crit: dict[str, float] = {}
    keys = [k for k, (_est, th) in blocks.items() if th.shape[1]]
    if not keys:
        return ses, bands, crit
    # (V X theta)' : one row per estimate, one column per draw (theta' is sparse)
    tht = boot_rows(blocks, th_sp) if tht is None else tht
    if vxt.dtype != tht.dtype:  # single precision (V X)' (IndicatorProducts): half the memory traffic
        tht = tht.astype(vxt.dtype)
    bres_t = np.vstack(split_rows(executor, lambda a: np.asarray(a @ vxt), tht))
    bres_t /= n
    parts = split_rows(executor, lambda a: _row_quantiles(a, (75, 25)), bres_t)
    q75, q25 = (np.concatenate(x) for x in zip(*parts, strict=True))
    offs = np.cumsum([0] + [blocks[k][1].shape[1] for k in keys])
    for i, k in enumerate(keys):
        sl = slice(offs[i], offs[i + 1])
        se_b = (q75[sl] - q25[sl]) / _IQR_NORM
        ok = ~np.isnan(ses[k]) & (se_b > DEGENERATE)
        se_b = np.where(ok, se_b, np.nan)
        ses[k] = se_b
        if ok.any() and k != "overall":
            bt = _max_abs_t(bres_t[sl], se_b, ok)
            bt = bt[np.isfinite(bt)]
            crit[k] = float(np.quantile(bt, 1 - alpha, method="inverted_cdf"))
            bands[k] = crit[k] * se_b
    return ses, bands, crit


def _row_quantiles(a: np.ndarray, pcts: tuple[float, ...], block: int = 128) -> list[np.ndarray]:
    """``np.percentile(a, pcts, axis=1, method="inverted_cdf")``, exactly, but faster.

    inverted_cdf percentiles are order statistics; their ranks are read off ``np.percentile`` on
    ``0..B-1``. The order statistics are selected on a float32 copy (rounding is monotone, so the
    r-th float32 value is the rounded r-th value), by one (SIMD) sort of the float32 rows for two
    or more ranks, else one partition; the exact value is then the row's only element
    that rounds to it (rows with ties at that value are redone exactly in float64). Rows are
    processed in blocks so that the temporaries stay small (cache-resident, no fresh pages).
    Falls back to ``np.percentile`` when ``a`` has NaN.
    """
    nr, nb = a.shape
    if nb == 0 or nr == 0 or np.isnan(a).any():
        return list(np.percentile(a, pcts, axis=1, method="inverted_cdf"))
    ranks = np.percentile(np.arange(nb, dtype=float), pcts, method="inverted_cdf").astype(np.intp)
    order = np.argsort(-ranks, kind="stable")
    out = [np.empty(nr) for _ in pcts]
    for s in range(0, nr, block):
        ab = a[s:s + block]
        rows = np.arange(ab.shape[0])
        with np.errstate(over="ignore"):  # overflow to +-inf keeps the order (ties are handled below)
            y = ab if ab.dtype == np.float32 else ab.astype(np.float32)  # (sorted / partitioned in a copy)
        # one (SIMD) sort of the float32 rows gives every rank at once; faster than a partition
        # per rank for two or more ranks
        work = np.sort(y, axis=1) if len(order) > 1 else None
        for i in order:
            r = int(ranks[i])
            if work is None:
                work = y.copy()
                work.partition(r, axis=1)
            if ab.dtype == np.float32:  # the float32 order statistic is the exact value
                out[i][s:s + block] = work[:, r]
                continue
            eq = y == work[:, r:r + 1]
            res = ab[rows, np.argmax(eq, axis=1)]
            tied = np.flatnonzero(np.count_nonzero(eq, axis=1) != 1)
            if len(tied):
                res[tied] = np.partition(ab[tied], r, axis=1)[:, r]
            out[i][s:s + block] = res
    return out


def _max_abs_t(b: np.ndarray, se: np.ndarray, ok: np.ndarray, block: int = 128) -> np.ndarray:
    """``np.max(np.abs(b[ok] / se[ok, None]), axis=0)`` over blocks of rows (small temporaries)."""
    idx = np.flatnonzero(ok)
    out = None
    for s in range(0, len(idx), block):
        i = idx[s:s + block]
        r = b[i]
        r /= se[i][:, None]
        m = np.abs(r, out=r).max(axis=0)
        out = m if out is None else np.maximum(out, m, out=out)
    return out


def boot_rows(blocks, th_sp) -> sparse.csr_matrix | None:
    """theta' of every estimate with a bootstrap distribution (CSR, one row per estimate, in the
    order of ``blocks``), or None when there is none."""
    keys = [k for k, (_est, th) in blocks.items() if th.shape[1]]
    if not keys:
        return None
    return sparse.vstack([th_sp.T if (k == "gt" and th_sp is not None) else _sparse_rows(blocks[k][1].T)
                          for k in keys], format="csr")


def _sparse_rows(a: np.ndarray) -> sparse.csr_matrix:
    """CSR form of a dense matrix (explicit zeros dropped)."""
    rows, cols = np.nonzero(a)
    return sparse.csr_matrix((a[rows, cols], (rows, cols)), shape=a.shape)
