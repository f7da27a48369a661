"""Frank–Wolfe solvers of synthetic DiD / synthetic control (R ``synthdid``'s ``sc.weight.fw``).

Each solves  min ζ²‖x‖² + ‖A x − b‖²/n  over the simplex with exact line search and R's stopping
rule (objective decrease < ``min_decrease``² after ≥ 2 steps, or ``max_iter`` steps):

* :func:`_fw_one` — one problem, A x recomputed at every step as R does (a bootstrap sample alone
  in its batch);
* :func:`_fw_point` — one problem (the point estimate) by the compiled Gram loop below;
* :func:`_fw_batch` / :func:`_fw_groups` — a batch of problems, same arithmetic (bootstrap draws);
* :func:`_fw_gram` — a batch whose gradient is updated from A'A (the placebo draws): O(k) per
  step instead of O(n·k), each problem run by the compiled loop of
  :mod:`evalkit.estimators._fw_kernel` (numba, imported on first use); see its docstring for why
  this is exact up to rounding there."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

_BARRED = 1e300  # half-gradient of a column a problem may not use (finite: 0·_BARRED stays 0)

def _stopped(t: int, max_iter: int, prev: np.ndarray | None, val: np.ndarray, thresh: float) -> np.ndarray | None:
    """R's stopping rule for a batch after step ``t``: a problem stops when its objective fell by at most
    ``thresh`` (from step 2 on) or at ``max_iter``; the mask of stopped problems, None when none stopped."""
    if t >= max_iter:
        return np.ones(val.shape[0], bool)
    if t >= 2:
        going = prev - val > thresh
        return None if going.all() else ~going
    return None


def _sum_normalize(x: np.ndarray) -> np.ndarray:
    s = x.sum()
    return x / s if s != 0 else np.full(len(x), 1.0 / len(x))


def _sparsify(v: np.ndarray) -> np.ndarray:
    """R ``sparsify_function`` row-wise: zero weights ≤ max/4, renormalise."""
    v = np.where(v <= v.max(axis=-1, keepdims=True) / 4, 0.0, v)
    return v / v.sum(axis=-1, keepdims=True)


def _fw(Y: np.ndarray, zeta: float, intercept: bool, x0: np.ndarray | None, min_decrease: float,
        max_iter: int) -> np.ndarray:
    """Frank–Wolfe for  min ζ²‖x‖² + ‖A x − b‖²/n  on the simplex (R ``sc.weight.fw``), batched.

    ``Y`` is B × n × (k+1): B independent problems whose first k columns are A and last is b.
    Each problem stops on its own (objective decrease < ``min_decrease``² after ≥ 2 steps, or
    ``max_iter`` steps), exactly as R's loop. A single problem (a bootstrap sample alone in its batch) runs
    :func:`_fw_one`; a batch runs :func:`_fw_groups`.
    """
    if Y.shape[0] == 1:
        if intercept:
            Y = Y - Y.mean(axis=1, keepdims=True)
        k = Y.shape[2] - 1
        x = np.full(k, 1.0 / k) if x0 is None else np.array(x0, dtype=float).reshape(k)
        return _fw_one(np.ascontiguousarray(Y[0, :, :-1]), np.ascontiguousarray(Y[0, :, -1]), x, float(zeta),
                       float(min_decrease), max_iter)[None]
    return _fw_groups([(Y, zeta, intercept, x0)], min_decrease, max_iter)[0]


def _fw_groups(groups: list[tuple[np.ndarray, float, bool, np.ndarray | None]], min_decrease: float,
               max_iter: int) -> list[np.ndarray]:
    """:func:`_fw` for several batches of problems, e.g. the placebo draws' time and unit weights.

    ``groups`` holds ``(Y, zeta, intercept, x0)`` per batch (B_g × n_g × (k_g+1)); returns the
    solutions per group (B_g × k_g). Each batch iterates on its own arrays: padding the batches to
    a common n and k (as before 2026-12-05) changed BLAS's summation blocks, so a padded problem's
    rounding differed from the same problem solved alone, and the padded arrays of SDID's two
    batches (~3 MB) no longer fitted the core's L2 cache (each step 3–4× slower).
    """
    return [_fw_batch(Y, zeta, intercept, x0, min_decrease, max_iter) for Y, zeta, intercept, x0 in groups]


def _fw_batch(Y: np.ndarray, zeta: float, intercept: bool, x0: np.ndarray | None, min_decrease: float,
              max_iter: int) -> np.ndarray:
    """Frank–Wolfe for a batch of B problems of one shape (Y: B × n × (k+1)); returns x (B × k).

    Each problem stops on its own (objective decrease < ``min_decrease``² after ≥ 2 steps, or
    ``max_iter`` steps), exactly as R's loop; a problem's iterations do not depend on the other
    problems of the batch (batched matmul runs one BLAS product per problem).

    A x and the gradient A'(A x − b) + nζ²x are recomputed from A at every step, as R does:
    updating them by rank-one steps (a step moves x towards one vertex) is faster but lets
    rounding accumulate, and on nearly singular problems (synthetic control's tiny ζ, bootstrap
    samples with repeated units) the 10 000-step path then drifts (draws off by 1e-2).
    """
    B, n, k1 = Y.shape
    k = k1 - 1
    if intercept:
        Y = Y - Y.mean(axis=1, keepdims=True)
    A = np.ascontiguousarray(Y[:, :, :-1])
    b = np.ascontiguousarray(Y[:, :, -1])
    x = np.full((B, k), 1.0 / k) if x0 is None else np.array(x0, dtype=float).reshape(B, k)
    zeta2 = float(zeta) ** 2
    eta = n * zeta2
    thresh = float(min_decrease) ** 2
    out = np.empty((B, k))
    At = np.ascontiguousarray(A.transpose(0, 2, 1))  # row i of problem j = column i of A_j
    matmul, vecdot = np.matmul, np.vecdot
    idx = np.arange(B)
    prev = np.full(B, np.inf)
    rows = np.arange(B)
    Ax = matmul(A, x[:, :, None])[:, :, 0]
    err = Ax - b  # A x − b, kept from the previous step's objective for the next gradient
    t = 0
    # the arithmetic of R's loop, element for element; numpy calls whose result is known are skipped
    # (A x − b is the previous step's residual; `moving` is all True on almost every step)
    while idx.size:
        t += 1
        half_grad = matmul(At, err[:, :, None])[:, :, 0]
        half_grad += eta * x
        i = half_grad.argmin(axis=1)
        d_x = -x
        d_x[rows, i] += 1.0
        d_err = At[rows, i] - Ax  # A d_x
        num = vecdot(half_grad, d_x)
        den = vecdot(d_err, d_err) + eta * vecdot(d_x, d_x)
        moving = den > 0  # den == 0 iff d_x == 0 (x is already the vertex): R returns x unchanged
        if moving.all():
            step = np.minimum(np.maximum(-num / den, 0.0), 1.0)
        else:
            step = np.minimum(np.maximum(-num / np.where(moving, den, 1.0), 0.0), 1.0) * moving
        x += step[:, None] * d_x
        Ax = matmul(A, x[:, :, None])[:, :, 0]
        err = Ax - b
        val = zeta2 * vecdot(x, x) + vecdot(err, err) / n
        done = _stopped(t, max_iter, prev, val, thresh)
        prev = val
        if done is not None:
            out[idx[done]] = x[done]
            keep = ~done
            idx, x, Ax, err, prev = idx[keep], x[keep], Ax[keep], err[keep], prev[keep]
            A, At, b = A[keep], At[keep], b[keep]
            rows = np.arange(idx.size)
    return out


def _fw_one(A: np.ndarray, b: np.ndarray, x: np.ndarray, zeta: float, min_decrease: float,
            max_iter: int) -> np.ndarray:
    """Unbatched :func:`_fw` (same iterations; fewer numpy calls per step for a single fit)."""
    n, k = A.shape
    zeta2 = zeta ** 2
    eta = n * zeta2
    thresh = min_decrease ** 2
    At = np.ascontiguousarray(A.T)
    prev = np.inf
    Ax = A @ x
    for t in range(1, max_iter + 1):
        half_grad = At @ (Ax - b) + eta * x
        i = int(half_grad.argmin())
        d_x = -x
        d_x[i] = 1.0 - x[i]
        d_err = A[:, i] - Ax
        den = d_err @ d_err + eta * (d_x @ d_x)
        if den > 0:
            step = min(1.0, max(0.0, -(half_grad @ d_x) / den))
            x = x + step * d_x
            Ax = A @ x
        err = Ax - b
        val = zeta2 * (x @ x) + (err @ err) / n
        if t >= 2 and not (prev - val > thresh):
            break
        prev = val
    return x


def _fw_point(Y: np.ndarray, zeta: float, intercept: bool, x0: np.ndarray | None, min_decrease: float,
              max_iter: int, refit: int | None = None) -> np.ndarray:
    """:func:`_fw` for one problem (Y: 1 × n × (k+1)) by the compiled Gram loop of :func:`_fw_gram`
    (the point estimate's fits; returns x, 1 × k).

    Same problem, start, stopping rule and step cap as :func:`_fw_one`, with A x and the gradient
    updated by the step instead of recomputed: O(n + k) per step instead of two O(n·k) products
    (~0.25 s per fit of 656 donors in numpy, ~0.015 s here). On the station worlds and Proposition
    99 τ̂ moves by ≤ 5e-14 relative and the weights by ≤ 2e-13 (``tests/test_compute_sdid.py``);
    the R synthdid reference values in ``tests/test_sdid.py`` hold as before. ``refit``: sparsify and
    run again for up to ``refit`` steps on the same A'A (R's second call; see :func:`_fw_gram`)."""
    if intercept:
        Y = Y - Y.mean(axis=1, keepdims=True)
    k = Y.shape[2] - 1
    x = np.full(k, 1.0 / k) if x0 is None else np.array(x0, dtype=float).reshape(k)
    return _fw_gram(Y[:, :, :-1], Y[:, :, -1], zeta, x[None], min_decrease, max_iter, refit=refit)


_warm: threading.Thread | None = None
_solve: Callable | None = None  # the loaded kernel (set by _load_kernel)


def warm_kernel() -> None:
    """Import numba and load the compiled Frank–Wolfe loop from its cache in a background thread
    (~0.65 s, mostly numba's typing registries): started when :mod:`evalkit.estimators.sdid` is
    imported — before an evaluation queries its panel (``evaluation_steps.import_modules``) — so it
    overlaps the DuckDB query, which releases the GIL. Computes nothing: the first solve waits for it
    (:func:`_kernel`). Once per process; ``EVALKIT_FW_WARM=0`` turns it off."""
    global _warm
    if _warm is not None or os.environ.get("EVALKIT_FW_WARM", "1") == "0":
        return
    _warm = threading.Thread(target=_load_kernel, name="evalkit-fw-warm", daemon=True)
    _warm.start()
    if hasattr(os, "register_at_fork"):  # a fork (evalkit.step_ahead) waits for it: never mid-import in a child
        os.register_at_fork(before=_join_warm)


def _join_warm() -> None:
    if _warm is not None and _warm is not threading.current_thread():
        _warm.join()


def _load_kernel() -> Callable:
    global _solve
    if _solve is None:
        from evalkit.estimators._fw_kernel import solve_one

        z, e = np.zeros(0), np.zeros((0, 1))  # k = 0: returns at once, after loading the machine code of the
        solve_one(z, z.copy(), z.copy(), np.zeros(1), np.zeros(1), e, np.zeros((0, 0)), 1.0, 1.0, 0.0, 1)  # signature
        _solve = solve_one
    return _solve


def _kernel() -> Callable:
    """The compiled loop (after the warm-up thread, if one runs: an error there is met again here);
    loaded once per process."""
    if _solve is not None:
        return _solve
    _join_warm()
    return _load_kernel()


def _fw_gram(A: np.ndarray | None, b: np.ndarray | None, zeta: float, x0: np.ndarray, min_decrease: float,
             max_iter: int, shared: tuple[np.ndarray, np.ndarray] | None = None,
             problem: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
             refit: int | None = None) -> np.ndarray:
    """Frank–Wolfe for a batch of B problems with the gradient updated from the Gram matrix; x (B × k).

    The problems and the stopping rule are those of :func:`_fw_batch` (each problem stops on its
    own). A step moves x to (1−s)x + s·e_i, so A x and the half-gradient p = A'(A x − b) + nζ²x
    follow exactly as  A x ← A x + s(A_i − A x)  and  p ← (1−s)p + s(G_i − A'b + nζ²e_i)  with
    G = A'A: O(n + k) per step instead of the two O(n·k) products of R's loop. The objective and
    the line search still use the explicit residual A x − b. Not used where problems are nearly
    singular with exact ties (bootstrap samples repeat units: :func:`_fw_batch` there); on the
    placebo problems the draws equal the recomputing loop to ~1e-13 relative after 10 000 steps
    (``tests/test_compute_sdid.py``).

    The problems, one of:

    * ``A`` (B × n × k, already demeaned if the problem has an intercept) and ``b`` (B × n);
    * ``problem(j) -> (A_j, b_j)`` (n × k and n), formed where problem j runs, so the batch's
      n × k matrices are never all in memory at once (the placebo draws' time weights); ``b`` None;
    * ``shared = (M, cols)``: column subsets of one n × K matrix M (``A`` None, ``b`` B × n):
      A_j = M[:, cols_j], G_j's rows read from M'M (K × K, shared by the batch) — the placebo
      draws' unit weights, where B per-problem Gram matrices would not fit.

    ``refit`` (not with ``shared``): after the run of ``max_iter`` steps, sparsify x (R's
    ``sparsify_function``) and run again for up to ``refit`` steps, as R's two calls; the problem's
    A', A'A and A'b serve both runs.

    The starting state (A x, p) is formed with numpy; each problem then runs to its stop in the
    compiled loop :func:`evalkit.estimators._fw_kernel.solve_one`, problems spread over
    :func:`fw_threads` threads. A problem's arithmetic does not depend on the others, on the thread
    that runs it or on the thread count (``tests/test_compute_sdid.py``: bit-identical).
    """
    return _gram_solve(A, b, zeta, x0, min_decrease, max_iter, shared, problem, refit)[0]


def _gram_solve(A: np.ndarray | None, b: np.ndarray | None, zeta: float, x0: np.ndarray, min_decrease: float,
                max_iter: int, shared: tuple[np.ndarray, np.ndarray] | None = None,
                problem: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
                refit: int | None = None, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_fw_gram` with the number of steps each problem ran (B, int; the last run's with
    ``refit``); ``threads`` overrides :func:`fw_threads`.

    OpenBLAS runs single-threaded meanwhile: the products here are small (e.g. 50 × 655 × 50 per
    draw) and the problems already share the cores; multi-threaded, each product cost ~100× the CPU
    on a busy machine (threads spinning while others hold the cores). Results do not change.
    """
    from evalkit.estimators._cs_blas import blas_threads

    with blas_threads(1):
        return _gram_run(A, b, zeta, x0, min_decrease, max_iter, shared, problem, refit, threads)


def _gram_run(A: np.ndarray | None, b: np.ndarray | None, zeta: float, x0: np.ndarray, min_decrease: float,
              max_iter: int, shared: tuple[np.ndarray, np.ndarray] | None, problem: Callable | None,
              refit: int | None, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    solve_one = _kernel()  # numba is imported only where SDID / SC run

    x0 = np.asarray(x0, dtype=float)
    B = x0.shape[0]
    zeta2 = float(zeta) ** 2
    thresh = float(min_decrease) ** 2
    steps = np.zeros(B, np.int64)
    if shared is None:
        if problem is None:
            def problem(j: int) -> tuple[np.ndarray, np.ndarray]:
                return A[j], b[j]
        x = np.array(x0).reshape(B, -1)

        def run(j: int) -> None:
            Aj, bj = problem(j)
            Aj, bj = np.ascontiguousarray(Aj, dtype=float), np.ascontiguousarray(bj, dtype=float)
            eta = bj.shape[0] * zeta2
            At = np.ascontiguousarray(Aj.T)  # row i is column i of A
            G, c = At @ Aj, (At @ bj[:, None])[:, 0]
            xj = x[j].copy()
            for cap in (max_iter,) if refit is None else (max_iter, refit):
                if cap != max_iter:
                    xj = _sparsify(xj)
                Ax = (Aj @ xj[:, None])[:, 0]
                p = (At @ (Ax - bj)[:, None])[:, 0]
                p += eta * xj
                steps[j] = solve_one(xj, p, c, Ax, bj, At, G, eta, zeta2, thresh, int(cap))
            x[j] = xj
    else:
        if refit is not None:
            raise ValueError("refit is for per-problem batches; sparsify and call again with shared")
        # problem j works on all K columns of M, those outside cols_j barred: their half-gradient is held
        # at _BARRED (c = −_BARRED there keeps (1−s)p + s(G_i − c) at _BARRED), their weight stays 0
        M, cols = shared
        n, K = M.shape
        eta = n * zeta2
        rows = np.arange(B)
        Mt = np.ascontiguousarray(M.T)  # K × n: row j is column j of M
        G = Mt @ M
        x = np.zeros((B, K))
        x[rows[:, None], cols] = x0.reshape(B, -1)
        barred = np.ones((B, K), bool)
        barred[rows[:, None], cols] = False
        b = np.ascontiguousarray(b, dtype=float)
        c = (Mt @ b.T).T
        c[barred] = -_BARRED
        Ax = x @ Mt
        p = (Ax - b) @ M
        p[barred] = _BARRED
        p += eta * x
        c, Ax, p = np.ascontiguousarray(c), np.ascontiguousarray(Ax), np.ascontiguousarray(p)

        def run(j: int) -> None:
            steps[j] = solve_one(x[j], p[j], c[j], Ax[j], b[j], Mt, G, eta, zeta2, thresh, int(max_iter))

    nthreads = min(B, fw_threads() if threads is None else threads)
    if nthreads <= 1:
        for j in range(B):
            run(j)
    else:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="evalkit-fw")
        try:
            list(pool.map(run, range(B)))  # the kernel releases the GIL (nogil), as do numpy's products
        finally:  # on an error or an interrupt the problems not yet started are dropped, not run
            pool.shutdown(wait=True, cancel_futures=True)
    return (x if shared is None else x[np.arange(B)[:, None], cols]), steps


def fw_threads() -> int:
    """Threads for the placebo solver: ``EVALKIT_FW_THREADS`` if set, else ``OMP_NUM_THREADS`` (what
    ``evalkit run --jobs N`` gives each evaluation), else the CPUs this process may use. Changes
    timings only: every problem is solved alone, on one thread."""
    for var in ("EVALKIT_FW_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
