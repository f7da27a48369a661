"""Synthetic control and synthetic difference-in-differences for a treated block.

Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), "Synthetic Difference-in-Differences",
*American Economic Review* 111(12). The numerical recipe follows the reference R package
``synthdid`` (``synthdid_estimate``, ``sc_estimate``, ``did_estimate``, ``vcov``):

* unit weights ω solve  min ζ²_ω T0‖ω‖² + ‖(Y_co,pre − mean) ω − (ȳ_tr,pre − mean)‖²  over the
  simplex, with an intercept (columns demeaned), ζ_ω = (N1·T1)^{1/4} · σ̂ where σ̂ is the standard
  deviation of the first differences of the control units' pre-period outcomes;
* time weights λ solve the analogous problem across control units (post-period mean of each
  control unit on its pre-period outcomes, intercept, ζ_λ = 1e-6 · σ̂);
* both by Frank–Wolfe (exact line search), 100 iterations, then the sparsification step
  (weights ≤ max/4 set to zero, renormalised) and a second run of up to 10 000 iterations,
  stopping when the objective decreases by less than (1e-5 · σ̂)²;
* τ̂ = (ȳ_tr,post − ω'Y_co,post) − (λ'ȳ_tr,pre − λ'ω'Y_co,pre).

``method="sc"`` is synthdid's ``sc_estimate`` (no intercept, ζ_ω = 1e-6 · σ̂, λ = 0: the
post-period gap between the treated mean and ω'Y_co) and ``method="did"`` is ``did_estimate``
(uniform ω and λ: the 2×2 DiD of block means).

Standard errors (paper's Algorithms 2–4, R ``vcov.synthdid_estimate``):

* ``placebo`` (Algorithm 4): permute the control units, label the last N1 as treated, re-estimate
  (weights re-solved, started from the original ω restricted to the placebo controls and the
  original λ; ζ and the stopping rule kept from the original fit); SE =
  sqrt((B−1)/B)·sd(τ̂_b). Works with one treated unit; needs N0 > N1.
* ``jackknife`` (Algorithm 3): leave one unit out with the weights held fixed (ω renormalised);
  needs ≥ 2 treated units and more than one control with positive weight.
* ``bootstrap`` (Algorithm 2): resample units, re-estimate; needs ≥ 2 treated units.

Intended for one treated station or a small group sharing one adoption period (block design);
staggered panels raise an error (estimate each cohort separately).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evalkit.estimators._common import finish_result, inference_meta
from evalkit.estimators._sample import StaggeredSample, build_sample
from evalkit.estimators._sdid_fw import (
    _fw,
    _fw_gram,
    _fw_groups,
    _fw_point,
    _sparsify,
    _sum_normalize,
    warm_kernel,
)
from evalkit.estimators.specs import check_options
from evalkit.results import EstimationResult, normal_inference

METHODS = ("sdid", "sc", "did")
SE_TYPES = ("placebo", "jackknife", "bootstrap", "none")
LABELS = {"sdid": "Synthetic DiD", "sc": "Synthetic control", "did": "DiD (synthdid form)"}

warm_kernel()  # numba and the compiled solver load meanwhile (e.g. while the evaluation queries its panel)


def _collapsed(Y: np.ndarray, N0: int, T0: int) -> np.ndarray:
    """R ``collapsed.form`` for a batch B × N × T: B × (N0+1) × (T0+1) block means."""
    top = np.concatenate([Y[:, :N0, :T0], Y[:, :N0, T0:].mean(axis=2, keepdims=True)], axis=2)
    bottom = np.concatenate([Y[:, N0:, :T0].mean(axis=1), Y[:, N0:, T0:].mean(axis=(1, 2))[:, None]], axis=1)
    return np.concatenate([top, bottom[:, None, :]], axis=1)


@dataclass
class _Opts:
    zeta_omega: float
    zeta_lambda: float
    omega_intercept: bool
    lambda_intercept: bool
    update_omega: bool
    update_lambda: bool
    min_decrease: float
    max_iter: int = 10_000
    max_iter_pre_sparsify: int = 100
    sparsify: bool = True


@dataclass
class _Fit:
    tau: float
    omega: np.ndarray
    lam: np.ndarray
    opts: _Opts
    noise_level: float = float("nan")
    extra: dict = field(default_factory=dict)


def _solve_weights(Y: np.ndarray, N0: int, T0: int, opts: _Opts, omega0: np.ndarray | None,
                   lam0: np.ndarray | None, point: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Weights for a batch of outcome matrices Y (B × N × T); returns ω (B × N0) and λ (B × T0).

    A weight that is not updated is returned as passed (``omega0`` / ``lam0``, B × · or 1-d to
    broadcast); one that is updated uses the passed value as the solver's starting point. ``point``
    (B = 1, the point estimate): solved by the compiled Gram loop :func:`_fw_point`. (Placebo batches:
    :func:`_placebo_weights`.)
    """
    B = Y.shape[0]
    Yc = _collapsed(Y, N0, T0) if (opts.update_lambda or opts.update_omega) else None
    lam = None if lam0 is None else np.broadcast_to(np.asarray(lam0, float), (B, T0)).copy()
    omega = None if omega0 is None else np.broadcast_to(np.asarray(omega0, float), (B, N0)).copy()
    if opts.update_lambda and opts.update_omega and B > 1:
        # SDID replications: time and unit weights are independent problems, solved in one loop
        Al, Ao = Yc[:, :N0, :], Yc[:, :, :T0].transpose(0, 2, 1)
        lam, omega = _fw_groups([(Al, opts.zeta_lambda, opts.lambda_intercept, lam),
                                 (Ao, opts.zeta_omega, opts.omega_intercept, omega)],
                                opts.min_decrease, opts.max_iter_pre_sparsify)
        if opts.sparsify:
            lam, omega = _fw_groups([(Al, opts.zeta_lambda, opts.lambda_intercept, _sparsify(lam)),
                                     (Ao, opts.zeta_omega, opts.omega_intercept, _sparsify(omega))],
                                    opts.min_decrease, opts.max_iter)
        return omega, lam
    def fw(A: np.ndarray, zeta: float, intercept: bool, x0: np.ndarray | None) -> np.ndarray:
        """R's two calls: ``max_iter_pre_sparsify`` steps, then (``sparsify``) up to ``max_iter`` from the
        sparsified weights; the point fit's compiled loop runs both on one A'A."""
        if point:
            return _fw_point(A, zeta, intercept, x0, opts.min_decrease, opts.max_iter_pre_sparsify,
                             refit=opts.max_iter if opts.sparsify else None)
        x = _fw(A, zeta, intercept, x0, opts.min_decrease, opts.max_iter_pre_sparsify)
        return _fw(A, zeta, intercept, _sparsify(x), opts.min_decrease, opts.max_iter) if opts.sparsify else x

    if opts.update_lambda:
        lam = fw(Yc[:, :N0, :], opts.zeta_lambda, opts.lambda_intercept, lam)
    if opts.update_omega:
        omega = fw(Yc[:, :, :T0].transpose(0, 2, 1), opts.zeta_omega, opts.omega_intercept, omega)
    return omega, lam


def _placebo_weights(Yt: np.ndarray, T0: int, opts: _Opts, omega0: np.ndarray | None, lam0: np.ndarray | None,
                     Y_co: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_solve_weights` for placebo draws, by the Gram-updated Frank–Wolfe :func:`_fw_gram`.

    Draw j's outcome matrix is the original controls' rows ``cols[j]`` of ``Y_co`` (N0_orig × T) over
    its placebo-treated rows ``Yt[j]`` (Yt: B × N1 × T); it is never formed whole.

    Same problems, starting values, ζ, sparsification and stopping rule as R's ``placebo_se``
    refits. λ's problems (control units × pre-periods, demeaned over each draw's controls) carry
    their own T0 × T0 Gram matrices; ω's problems are column subsets of one matrix — the original
    controls' pre-period outcomes (demeaned over time when ω has an intercept) — so they share its
    Gram matrix (N0 × N0).
    """
    B, N0 = cols.shape
    lam = np.broadcast_to(np.asarray(lam0, float), (B, T0)).copy()
    omega = None if omega0 is None else np.broadcast_to(np.asarray(omega0, float), (B, N0)).copy()
    if opts.update_lambda:
        # R collapsed.form's control rows (pre-periods, post-period mean), formed once for the original
        # controls and gathered per draw: the same numbers as collapsing each draw's matrix (~2 s on medium)
        Z = np.concatenate([Y_co[:, :T0], Y_co[:, T0:].mean(axis=1, keepdims=True)], axis=1)
        def problem(j: int) -> tuple[np.ndarray, np.ndarray]:  # draw j's controls, formed where it is solved
            Al = Z[cols[j]]
            if opts.lambda_intercept:
                Al = Al - Al.mean(axis=0, keepdims=True)
            return Al[:, :-1], Al[:, -1]

        lam = _fw_gram(None, None, opts.zeta_lambda, lam, opts.min_decrease, opts.max_iter_pre_sparsify,
                       problem=problem, refit=opts.max_iter if opts.sparsify else None)
    if opts.update_omega:
        M = np.array(Y_co[:, :T0].T)  # T0 × N0_orig: the placebo problems' columns
        b = Yt[:, :, :T0].mean(axis=1)  # the placebo-treated units' pre-period mean (R collapsed.form)
        if opts.omega_intercept:
            M -= M.mean(axis=0, keepdims=True)
            b = b - b.mean(axis=1, keepdims=True)
        x = np.full((B, N0), 1.0 / N0) if omega is None else omega
        omega = _fw_gram(None, b, opts.zeta_omega, x, opts.min_decrease, opts.max_iter_pre_sparsify,
                         shared=(M, cols))
        if opts.sparsify:
            omega = _fw_gram(None, b, opts.zeta_omega, _sparsify(omega), opts.min_decrease, opts.max_iter,
                             shared=(M, cols))
    return omega, lam


def _tau(Y: np.ndarray, N0: int, T0: int, omega: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """τ̂ for a batch: (ȳ_tr,post − ω'Y_co,post) − (λ'ȳ_tr,pre − λ'ω'Y_co,pre)."""
    N1, T1 = Y.shape[1] - N0, Y.shape[2] - T0
    w_unit = np.concatenate([-omega, np.full((omega.shape[0], N1), 1.0 / N1)], axis=1)
    w_time = np.concatenate([-lam, np.full((lam.shape[0], T1), 1.0 / T1)], axis=1)
    return np.einsum("bn,bnt,bt->b", w_unit, Y, w_time)


def noise_level(Y: np.ndarray, N0: int, T0: int) -> float:
    """σ̂: sd (ddof 1) of first differences of the control units' pre-period outcomes."""
    if T0 < 2:
        return 0.0
    d = np.diff(Y[:N0, :T0], axis=1).ravel()
    return float(np.std(d, ddof=1)) if d.size > 1 else 0.0


def fit_matrix(Y: np.ndarray, N0: int, T0: int, method: str = "sdid") -> _Fit:
    """Fit SDID / SC / DiD on an outcome matrix: rows 0..N0-1 controls, columns 0..T0-1 pre-periods."""
    Y = np.asarray(Y, dtype=float)
    N, T = Y.shape
    if not (0 < N0 < N and 0 < T0 < T):
        raise ValueError(f"need controls, treated units, pre- and post-periods (N0={N0}, N={N}, T0={T0}, T={T})")
    N1, T1 = N - N0, T - T0
    sigma = noise_level(Y, N0, T0)
    min_dec = 1e-5 * sigma
    if method == "sdid":
        opts = _Opts(zeta_omega=(N1 * T1) ** 0.25 * sigma, zeta_lambda=1e-6 * sigma, omega_intercept=True,
                     lambda_intercept=True, update_omega=True, update_lambda=True, min_decrease=min_dec)
        omega0, lam0 = None, None
    elif method == "sc":
        opts = _Opts(zeta_omega=1e-6 * sigma, zeta_lambda=1e-6 * sigma, omega_intercept=False,
                     lambda_intercept=True, update_omega=True, update_lambda=False, min_decrease=min_dec)
        omega0, lam0 = None, np.zeros(T0)
    elif method == "did":
        opts = _Opts(zeta_omega=(N1 * T1) ** 0.25 * sigma, zeta_lambda=1e-6 * sigma, omega_intercept=True,
                     lambda_intercept=True, update_omega=False, update_lambda=False, min_decrease=min_dec)
        omega0, lam0 = np.full(N0, 1.0 / N0), np.full(T0, 1.0 / T0)
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    omega, lam = _solve_weights(Y[None], N0, T0, opts, omega0, lam0, point=True)
    tau = float(_tau(Y[None], N0, T0, omega, lam)[0])
    return _Fit(tau=tau, omega=omega[0], lam=lam[0], opts=opts, noise_level=sigma)


def _refit(Ys: np.ndarray, N0: int, T0: int, fit: _Fit, omega0: np.ndarray) -> np.ndarray:
    """Re-estimate a batch of resampled matrices with the original options (R's ``do.call(..., opts)``):
    ζ and the stopping rule of the original fit, its λ and the given ω as starting values."""
    omega, lam = _solve_weights(Ys, N0, T0, fit.opts, omega0, fit.lam)
    return _tau(Ys, N0, T0, omega, lam)


_TAU_CHUNK = 16  # draws whose outcome matrices are gathered at once for τ̂ (16 × 657 × 84 doubles: 7 MB)


# ----------------------------------------------------------------------------- standard errors
def placebo_draws(Y: np.ndarray, N0: int, T0: int, fit: _Fit, reps: int = 200,
                  seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Algorithm 4: placebo estimates from controls relabelled as treated.

    Draw b uses ``rng.permutation(N0)`` of a ``numpy.random.default_rng(seed)`` stream, the same
    scheme as the ``synthdid-py`` port, so equal seeds give equal draws there.

    A draw's estimate depends only on which controls are relabelled treated (its last N1
    positions), not on the order of the permutation: λ solves over the remaining controls and ω
    over the same columns, both from starting values that follow the units. So each distinct
    placebo split is solved once and its estimate shared by every draw that repeats it — with one
    treated station there are only N0 splits for the 200 draws (time and unit weights shared per
    split). The draws equal the one-solve-per-draw recursion up to floating-point rounding.
    """
    N1 = Y.shape[0] - N0
    if N0 <= N1:
        raise ValueError("placebo SE needs more control units than treated units")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n0 = N0 - N1
    perms = np.stack([rng.permutation(N0) for _ in range(reps)])
    split = np.sort(perms[:, n0:], axis=1)
    _, first, which = np.unique(split, axis=0, return_index=True, return_inverse=True)
    perms = perms[first]  # first draw of each distinct split, in its own order
    omega0 = fit.omega[perms[:, :n0]]
    sums = omega0.sum(axis=1, keepdims=True)
    omega0 = np.where(sums != 0, omega0 / np.where(sums != 0, sums, 1.0), 1.0 / n0)
    # R's refit of each draw (its ζ and stopping rule, λ and the restricted ω as starting values); the draws'
    # B × N × T outcome matrices (77 MB on the medium world) are never formed at once: the weights read
    # the controls and the placebo-treated rows, τ̂ gathers a few draws at a time (the same bits)
    omega, lam = _placebo_weights(Y[perms[:, n0:]], T0, fit.opts, omega0, fit.lam, Y[:N0], perms[:, :n0])
    tau = np.concatenate([_tau(Y[perms[a:a + _TAU_CHUNK]], n0, T0, omega[a:a + _TAU_CHUNK], lam[a:a + _TAU_CHUNK])
                          for a in range(0, len(perms), _TAU_CHUNK)])
    return tau[which.ravel()]


def jackknife_se(Y: np.ndarray, N0: int, T0: int, fit: _Fit) -> float:
    """Algorithm 3 with fixed weights (R ``synthdid_se(method='jackknife')``); NaN if undefined."""
    N = Y.shape[0]
    if N0 == N - 1 or np.count_nonzero(fit.omega) == 1:
        return float("nan")
    u = np.empty(N)
    for i in range(N):
        keep = np.delete(np.arange(N), i)
        n0 = int((keep < N0).sum())
        om = _sum_normalize(fit.omega[keep[keep < N0]])
        u[i] = _tau(Y[keep][None], n0, T0, om[None], fit.lam[None])[0]
    return float(np.sqrt((N - 1) / N * (N - 1) * np.var(u, ddof=1)))


def bootstrap_draws(Y: np.ndarray, N0: int, T0: int, fit: _Fit, reps: int = 200,
                    seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Algorithm 2: unit bootstrap, re-estimating weights (draws with no treated or no control unit are redrawn)."""
    N = Y.shape[0]
    if N0 == N - 1:
        raise ValueError("bootstrap SE needs at least two treated units")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    samples = []
    while len(samples) < reps:
        ind = np.sort(rng.integers(0, N, N))
        n0 = int((ind < N0).sum())
        if 0 < n0 < N:
            samples.append(ind)
    out = np.empty(reps)
    n0s = np.array([int((ind < N0).sum()) for ind in samples])
    for n0 in np.unique(n0s):  # one batch per number of sampled controls
        which = np.flatnonzero(n0s == n0)
        inds = np.stack([samples[j] for j in which])
        omega0 = np.stack([_sum_normalize(fit.omega[ind[ind < N0]]) for ind in inds])
        out[which] = _refit(Y[inds], int(n0), T0, fit, omega0)
    return out


def _se_from_draws(draws: np.ndarray) -> float:
    r = len(draws)
    return float(np.sqrt((r - 1) / r) * np.std(draws, ddof=1)) if r > 1 else float("nan")


# ----------------------------------------------------------------------------- panel interface
def _block(sample: StaggeredSample):
    """Controls-then-treated outcome matrix (units × periods) of a block-design sample."""
    df, unit, time, cohort, outcome = sample.frame, sample.unit, sample.time, sample.cohort, sample.outcome
    first = df.groupby(unit, sort=True)[cohort].first()
    treated_mask = first != 0
    cohorts = pd.unique(first[treated_mask])
    if len(cohorts) == 0:
        raise ValueError(f"no treated unit in the sample (every {cohort!r} is 0 or after the window)")
    if len(cohorts) > 1:
        raise ValueError(
            f"synthetic DiD here needs one common adoption period (block design); found cohorts {sorted(cohorts)}. "
            "Estimate each cohort separately against the never-treated units.")
    adoption = int(cohorts[0])
    if not sample.info.balanced:
        wide = df.pivot(index=unit, columns=time, values=outcome)
        bad = wide.index[wide.isna().any(axis=1)].tolist()[:5]
        raise ValueError(f"synthetic DiD needs a balanced panel (R synthdid); the sample is unbalanced "
                         f"(dropped cells {sample.info.dropped_cells}), e.g. units {bad} miss periods")
    wide = df.pivot(index=unit, columns=time, values=outcome).sort_index(axis=1)
    controls = first.index[~treated_mask]
    treated = first.index[treated_mask]
    if len(controls) == 0:
        raise ValueError("no never-treated control unit")
    wide = pd.concat([wide.loc[controls], wide.loc[treated]])
    times = wide.columns.to_numpy()
    T0 = int((times < adoption).sum())
    if T0 == 0 or T0 == len(times):
        raise ValueError(f"adoption period {adoption} leaves no pre- or no post-period in the panel")
    return wide, len(controls), T0, adoption


def estimate_sdid(
    panel: pd.DataFrame | StaggeredSample,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    alpha: float = 0.05,
    method: str = "sdid",
    se: str = "placebo",
    reps: int = 200,
    seed: int | None = None,
    **options,
) -> EstimationResult:
    """Synthetic DiD (``method="sdid"``), synthetic control (``"sc"``) or DiD (``"did"``).

    Parameters
    ----------
    panel: balanced unit × period panel; ``cohort`` holds the adoption period (0 = never treated).
        All treated units must share one adoption period.
    method: ``"sdid"`` | ``"sc"`` | ``"did"`` (synthdid's ``synthdid_estimate`` / ``sc_estimate`` /
        ``did_estimate``).
    se: ``"placebo"`` (any number of treated units, needs N0 > N1), ``"jackknife"`` (≥ 2 treated,
        fixed weights), ``"bootstrap"`` (≥ 2 treated) or ``"none"``.
    reps, seed: replications and seed of the placebo / bootstrap draws.
    cluster: ``None`` or the unit column (placebo, jackknife and bootstrap resample whole units;
        any other cluster is refused rather than ignored).

    The sample follows the shared conventions (:func:`~evalkit.estimators._sample.build_sample`):
    adopters after the window are controls, units treated from the first period are dropped, and
    an unbalanced sample (missing cells) is refused, as in R synthdid.

    Returns an :class:`EstimationResult` with one ``overall`` row, meta (``n_treated``,
    ``n_control``, ``adoption``, ``zeta`` = ζ_ω, ``zeta_lambda``, ``noise_level``, ``se_type``,
    ``effective_controls`` = 1/Σω²) and tables ``unit_weights`` (unit, weight),
    ``time_weights`` (time, weight; pre-periods), ``trajectory`` (time, treated, synthetic,
    synthetic_adjusted, effect, post).
    """
    check_options("sdid", options)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if se not in SE_TYPES:
        raise ValueError(f"se must be one of {SE_TYPES}, got {se!r}")
    if cluster is not None and cluster != unit:
        raise ValueError(f"{method}: cluster={cluster!r} is not supported; the {se} SE resamples whole units "
                         f"({unit!r}); leave cluster unset")
    sample = build_sample(panel, outcome, unit=unit, time=time, cohort=cohort)
    wide, N0, T0, adoption = _block(sample)
    Y = wide.to_numpy(dtype=float)
    N, T = Y.shape
    N1, T1 = N - N0, T - T0
    fit = fit_matrix(Y, N0, T0, method)

    draws = None
    se_note = None
    if se == "placebo":
        if N0 > N1:
            draws = placebo_draws(Y, N0, T0, fit, reps, seed)
            std_error = _se_from_draws(draws)
        else:
            std_error, se_note = float("nan"), "placebo SE needs more controls than treated units"
    elif se == "jackknife":
        std_error = jackknife_se(Y, N0, T0, fit)
        if np.isnan(std_error):
            se_note = "jackknife SE undefined with one treated unit or one control with positive weight"
    elif se == "bootstrap":
        if N1 >= 2:
            draws = bootstrap_draws(Y, N0, T0, fit, reps, seed)
            std_error = _se_from_draws(draws)
        else:
            std_error, se_note = float("nan"), "bootstrap SE needs at least two treated units"
    else:
        std_error = float("nan")

    inf = normal_inference(np.array([fit.tau]), np.array([std_error]), alpha)
    rows = [{
        "kind": "overall", "term": "ATT", "group": adoption, "estimate": fit.tau, "std_error": std_error,
        "ci_low": inf["ci_low"][0], "ci_high": inf["ci_high"][0], "p_value": inf["p_value"][0],
    }]

    times = wide.columns.to_numpy()
    controls, treated = wide.index[:N0], wide.index[N0:]
    treated_path = Y[N0:].mean(axis=0)
    synth_path = fit.omega @ Y[:N0]
    gap = treated_path - synth_path
    offset = float(fit.lam @ gap[:T0])  # 0 for SC (λ = 0)
    trajectory = pd.DataFrame({
        "time": times, "treated": treated_path, "synthetic": synth_path,
        "synthetic_adjusted": synth_path + offset, "effect": gap - offset, "post": times >= adoption,
    })
    unit_weights = pd.DataFrame({"unit": controls.to_numpy(), "weight": fit.omega})
    time_weights = pd.DataFrame({"time": times[:T0], "weight": fit.lam})
    frame = sample.frame
    base = frame.loc[frame[unit].isin(treated) & (frame[time] < adoption), outcome].mean()
    meta = {
        "label": LABELS[method], "method": method, "n_treated": N1, "n_control": N0, "adoption": adoption,
        "n_pre": T0, "n_post": T1, "n_periods": T, "n_obs": N * T, "zeta": fit.opts.zeta_omega,
        "zeta_lambda": fit.opts.zeta_lambda, "noise_level": fit.noise_level, "se_type": se,
        "reps": reps if se in ("placebo", "bootstrap") else None, "seed": seed, "alpha": alpha,
        "omega_intercept": fit.opts.omega_intercept, "lambda_intercept": fit.opts.lambda_intercept,
        "effective_controls": float(1.0 / np.sum(fit.omega ** 2)) if np.any(fit.omega) else None,
        "intercept_offset": offset, "treated_units": treated.tolist(), "control_group": "never_treated",
        "baseline_mean": float(base) if pd.notna(base) else None, "cluster": unit,
    }
    if se_note:
        meta["se_note"] = se_note
    tables = {"unit_weights": unit_weights, "time_weights": time_weights, "trajectory": trajectory}
    if draws is not None:
        tables["se_draws"] = pd.DataFrame({"draw": np.arange(len(draws)), "estimate": draws})
    result = EstimationResult(estimator=method if method != "did" else "sdid_did", outcome=outcome,
                              estimates=rows, meta=meta, tables=tables)
    spec = "sc" if method == "sc" else "sdid"
    options = {"unit": unit, "time": time, "cohort": cohort, "cluster": cluster, "alpha": alpha,
               "se": se, "reps": reps, "seed": seed}
    if spec == "sdid":
        options["method"] = method
    inference = inference_meta(se, n_clusters=N if se != "none" else None, cluster=unit,
                               reps=meta["reps"], seed=seed)
    return finish_result(result, sample, spec=spec, options=options, inference=inference)


def estimate_sc(panel: pd.DataFrame | StaggeredSample, outcome: str, **kwargs) -> EstimationResult:
    """Synthetic control (synthdid's ``sc_estimate``); same options as :func:`estimate_sdid` but ``method``."""
    check_options("sc", kwargs)
    return estimate_sdid(panel, outcome, method="sc", **kwargs)
