"""One estimation sample for every estimator: validation, conventions and counts.

Every estimator starts from :func:`build_sample`, so the same panel gives the same units, the
same cells and the same counts everywhere. Conventions (see docs/architecture.md):

* ``cohort == 0`` is never treated. A cohort after the last period of the data is recoded to
  never treated (R ``did``'s convention) and counted in ``recoded["adopts_after_window"]``.
* A cohort equal to the first period (treated in every observed period, no pre-period): the
  unit is dropped, ``dropped_units["treated_from_first_period"]``. A cohort before the first
  period is an input error (the panel builder owns windows).
* A missing outcome (NaN) drops that unit-period row (``dropped_cells["missing_outcome"]``); a
  unit left without rows is dropped (``dropped_units["no_outcome"]``) and the sample is then
  unbalanced. ``inf`` is an input error, not a missing cell.
* Event-time trimming (``trim_e``: drop event times outside [lo, hi] from aggregation, R
  ``aggte`` min_e/max_e) and binning (``bin_e``: pool event times beyond the ends into the end
  bins) are two separate options; see :func:`check_event_window` and
  :func:`bin_event_time` (trimming is applied by each estimator that offers it).
* ``n_treated + n_control == n_units``: treated = adopts inside the window, control = never
  treated (including recoded late adopters).

Input problems raise :class:`PanelInputError` with a one-line message naming the column, what
is wrong, the first offending rows (index labels of the input frame) and what to do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

NEVER = 0  # same value as evalkit.registry.NEVER_TREATED (kept local: this module imports light)
CONTROLS = ("never", "notyet")
#: reasons a whole unit leaves the sample (the vocabulary of ``SampleInfo.dropped_units``)
UNIT_DROP_REASONS = ("treated_from_first_period", "no_outcome", "no_switch_direction")  # last: switching.py
#: reasons single unit-period rows leave the sample (``SampleInfo.dropped_cells``)
CELL_DROP_REASONS = ("missing_outcome", "above_and_below_baseline")  # last: switching.py
_SHOW = 5  # offending rows named in an error message

EventWindow = tuple[int | None, int | None]


class PanelInputError(ValueError):
    """The panel cannot be estimated as given. One line: column, problem, first rows, what to do."""


@dataclass(frozen=True)
class SampleInfo:
    """JSON-able facts about the estimation sample (stored in ``result.meta["sample"]``).

    Periods are in the panel's integer time units; counts are units or unit-period rows.
    """

    n_units: int
    n_treated: int
    n_control: int
    n_periods: int
    n_obs: int
    first_period: int
    last_period: int
    balanced: bool
    dropped_units: dict[str, int] = field(default_factory=dict)
    dropped_cells: dict[str, int] = field(default_factory=dict)
    recoded: dict[str, int] = field(default_factory=dict)
    trim_e: EventWindow | None = None
    bin_e: EventWindow | None = None
    weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists in JSON)."""
        d = asdict(self)
        for k in ("trim_e", "bin_e"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleInfo:
        d = dict(data)
        for k in ("trim_e", "bin_e"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class StaggeredSample:
    """Validated rows (sorted by unit, time; fresh RangeIndex) and the names of their columns.

    ``frame`` holds unit, time (int64), cohort (int64, 0 = never treated, late adopters already
    recoded), the outcome (float, no NaN) and, when given, cluster, weights and covariates.
    """

    frame: pd.DataFrame
    outcome: str
    unit: str
    time: str
    cohort: str
    cluster: str | None
    weights: str | None
    info: SampleInfo
    covariates: tuple[str, ...] = ()
    control: str = "never"
    #: (frame, unit codes, period codes, period values) computed by build_sample for ``frame``; valid only
    #: while ``codes_cache[0] is frame`` (a ``replace(frame=...)`` leaves it stale, so users check identity)
    codes_cache: tuple | None = field(default=None, repr=False, compare=False)

    # -- conveniences every estimator needs; all vectors align with ``frame`` rows
    @property
    def treated(self) -> np.ndarray:
        """Boolean per row: the row's unit adopts inside the window."""
        return (self.frame[self.cohort] != NEVER).to_numpy()

    @property
    def post(self) -> np.ndarray:
        """Boolean per row: treated unit at or after its adoption period."""
        c = self.frame[self.cohort].to_numpy()
        return (c != NEVER) & (self.frame[self.time].to_numpy() >= c)

    def event_time(self) -> pd.Series:
        """Periods since adoption (Int64; ``<NA>`` for never-treated units)."""
        c = self.frame[self.cohort]
        return pd.Series((self.frame[self.time] - c).where(c != NEVER), dtype="Int64", name="event_time")

    def cohorts(self) -> list[int]:
        """Adoption periods present in the sample, ascending."""
        c = self.frame[self.cohort]
        return sorted(int(g) for g in c[c != NEVER].unique())

    def units(self) -> pd.DataFrame:
        """One row per unit: unit and cohort (first row of each unit)."""
        return self.frame.groupby(self.unit, sort=True, as_index=False)[self.cohort].first()

    def with_event_window(self, *, trim_e: Sequence[int | None] | None = None,
                          bin_e: Sequence[int | None] | None = None) -> StaggeredSample:
        """A copy whose ``info`` records the estimator's event-time trimming / binning (validated)."""
        info = replace(self.info, trim_e=check_event_window(trim_e, "trim_e"),
                       bin_e=check_event_window(bin_e, "bin_e"))
        return replace(self, info=info)


# ----------------------------------------------------------------------------- event windows
def check_event_window(value: Sequence[int | None] | None, name: str) -> EventWindow | None:
    """Validate ``trim_e`` / ``bin_e``: ``None`` or ``(lo, hi)`` with integer-or-None ends, lo <= hi."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (lo, hi) of event times (None = open end), got {value!r}")
    ends: list[int | None] = []
    for v in value:
        if v is None:
            ends.append(None)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            ends.append(int(v))
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            ends.append(int(v))
        else:
            raise ValueError(f"{name} ends must be integers or None, got {value!r}")
    lo, hi = ends
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{name}=({lo}, {hi}): the lower end is above the upper end")
    return (lo, hi)


def bin_event_time(event_time: Iterable, bin_e: EventWindow | None) -> np.ndarray:
    """Binning: event times below lo become lo and above hi become hi (float, NaN kept)."""
    e = pd.to_numeric(pd.Series(event_time), errors="coerce").to_numpy(dtype=float)
    if bin_e is None:
        return e
    lo, hi = bin_e
    return np.clip(e, -np.inf if lo is None else lo, np.inf if hi is None else hi)


# ----------------------------------------------------------------------------- validation
def _where(df: pd.DataFrame, mask: np.ndarray | pd.Series, unit: str | None, time: str | None) -> str:
    """'N rows, first rows [i, j, …] (unit=…, time=…)' for an error message."""
    m = np.asarray(mask, dtype=bool)
    idx = df.index[m]
    first = ", ".join(str(i) for i in idx[:_SHOW]) + (", …" if len(idx) > _SHOW else "")
    at = ""
    if unit is not None and unit in df.columns and time is not None and time in df.columns:
        r = df.loc[idx[0]] if df.index.is_unique else df[m].iloc[0]
        at = f" (first: {unit}={_plain(r[unit])!r}, {time}={_plain(r[time])!r})"
    return f"{len(idx)} row{'s' if len(idx) != 1 else ''}, first rows [{first}]{at}"


def _plain(v: Any) -> Any:
    """numpy scalar -> Python scalar, so messages read ``period=13`` not ``np.int64(13)``."""
    return v.item() if isinstance(v, np.generic) else v


def _fail(column: str, problem: str, df: pd.DataFrame, mask, hint: str, unit: str | None = None,
          time: str | None = None) -> PanelInputError:
    return PanelInputError(f"column {column!r}: {problem} in {_where(df, mask, unit, time)}; {hint}")


def _integer_column(df: pd.DataFrame, col: str, unit: str, time: str, hint: str) -> pd.Series:
    s = df[col]
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu":  # plain integers: nothing to check
        return pd.Series(s.to_numpy().astype(np.int64, copy=False), index=df.index, name=col)
    if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s) or s.dtype == object):
        raise PanelInputError(f"column {col!r}: expected integer periods, got dtype {s.dtype}; {hint}")
    num = pd.to_numeric(s, errors="coerce")
    bad_type = num.isna() & s.notna()
    if bad_type.any():
        raise _fail(col, "non-numeric value", df, bad_type, hint, unit, time)
    missing = num.isna()
    if missing.any():
        raise _fail(col, "missing value", df, missing, hint, unit, time)
    vals = num.to_numpy(dtype=float)
    bad = ~np.isfinite(vals) | (vals != np.round(vals))
    if bad.any():
        raise _fail(col, "non-integer value", df, bad, hint, unit, time)
    return pd.Series(vals.astype(np.int64), index=df.index, name=col)


def _label_codes(values: pd.Series) -> np.ndarray:
    """Codes 0..n-1 of the sorted distinct labels (no missing values). Integer labels with a compact
    range take a bincount map (~5x faster than a sorted factorize), other labels ``pd.factorize``."""
    v = values.to_numpy() if isinstance(values.dtype, np.dtype) else None
    if v is not None and v.dtype == object and v.size > 1:
        runs = _sorted_runs(v)
        if runs is not None:
            return runs
    if v is not None and v.dtype.kind in "iu" and v.size:
        lo, hi = int(v.min()), int(v.max())
        if hi - lo <= 4 * v.size + 1000:
            c = (v - lo).astype(np.int64, copy=False)  # a fresh array
            present = np.bincount(c, minlength=hi - lo + 1) > 0
            return c if present.all() else (np.cumsum(present) - 1)[c]  # every label used: offsets are codes
    return pd.factorize(values, sort=True)[0].astype(np.int64)


def _sorted_runs(v: np.ndarray) -> np.ndarray | None:
    """Codes of object labels that arrive in runs of strictly increasing labels (a panel sorted by
    unit, e.g. the warehouse's or a panel file's station-major order): one neighbour comparison and
    a cumulative sum instead of hashing and sorting every label; ``None`` when they do not (or
    the labels are not mutually comparable), so the caller factorizes."""
    try:
        change = v[1:] != v[:-1]
        heads = v[np.r_[0, np.flatnonzero(change) + 1]]
        if not (heads[1:] > heads[:-1]).all() or len({type(x) for x in heads}) != 1:
            return None
    except TypeError:
        return None
    codes = np.empty(v.size, dtype=np.int64)
    codes[0] = 0
    np.cumsum(change, out=codes[1:])
    return codes


def _varies_within(codes: np.ndarray, order: np.ndarray | None, starts: np.ndarray, ucodes: np.ndarray
                   ) -> np.ndarray:
    """Row mask: the row's unit has more than one value of ``codes`` (integers). ``order`` sorts rows
    by unit code (``None``: they already are) and ``starts`` are the first sorted positions of units 0, 1, …"""
    s = codes if order is None else codes[order]
    bad_unit = np.minimum.reduceat(s, starts) != np.maximum.reduceat(s, starts)
    return bad_unit[ucodes]


def _validate_weights(df: pd.DataFrame, col: str, unit: str, time: str) -> pd.Series:
    s = df[col]
    num = pd.to_numeric(s, errors="coerce")
    if (num.isna() & s.notna()).any():
        raise _fail(col, "non-numeric weight", df, (num.isna() & s.notna()).to_numpy(),
                    "weights must be numbers >= 0", unit, time)
    if num.isna().any():
        raise _fail(col, "missing weight", df, num.isna().to_numpy(), "fill the weights or drop those rows", unit, time)
    v = num.to_numpy(dtype=float)
    if (~np.isfinite(v)).any():
        raise _fail(col, "non-finite weight", df, ~np.isfinite(v), "weights must be finite numbers >= 0", unit, time)
    if (v < 0).any():
        raise _fail(col, "negative weight", df, v < 0, "weights must be >= 0", unit, time)
    if not (v > 0).any():
        raise PanelInputError(f"column {col!r}: every weight is 0; weights must have a positive sum")
    return pd.Series(v, index=df.index, name=col)


# the panel whose samples are shared inside a sample scope, and those samples by arguments
_SHARED: dict[str, Any] | None = None


@contextmanager
def sample_scope() -> Iterator[None]:
    """A block inside which :func:`share_samples` may name the panel whose samples are shared."""
    global _SHARED
    before = _SHARED
    _SHARED = {"panel": None, "samples": {}}
    try:
        yield
    finally:
        _SHARED = before


def with_sample_scope(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``fn`` runs inside its own :func:`sample_scope` (left however ``fn`` ends)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sample_scope():
            return fn(*args, **kwargs)

    return wrapper


def share_samples(panel: pd.DataFrame) -> None:
    """Inside the current :func:`sample_scope` (none: nothing happens), :func:`build_sample` on
    ``panel`` (this very object) with the same arguments returns the sample it built the first time
    (``control`` aside, which does not change the rows; clustering by the unit itself shares the
    unclustered sample): one validation per outcome and sample options for every estimator and step
    of an evaluation instead of one per call. The caller promises not to change ``panel`` until the
    scope ends; samples of other frames (permuted copies, subsets) are built as always, not kept."""
    if _SHARED is not None:
        _SHARED["panel"], _SHARED["samples"] = panel, {}


@contextmanager
def shared_samples(panel: pd.DataFrame) -> Iterator[None]:
    """:func:`sample_scope` sharing ``panel``'s samples (:func:`share_samples`) for the block."""
    with sample_scope():
        share_samples(panel)
        yield


def build_sample(
    panel: pd.DataFrame | StaggeredSample,
    outcome: str,
    *,
    unit: str = "station_id",
    time: str = "period",
    cohort: str = "first_treat",
    cluster: str | None = None,
    weights: str | None = None,
    covariates: Sequence[str] = (),
    control: str = "never",
) -> StaggeredSample:
    """Validate ``panel`` and apply the sample conventions (module docstring).

    ``panel`` may also be a :class:`StaggeredSample` (e.g. ``result.context.sample`` when an
    inference method refits): with the same columns it is returned unchanged, otherwise its
    frame is rebuilt. ``control`` (``"never"`` | ``"notyet"``) is recorded for estimators that
    choose a comparison group; it does not change which units are in the sample.
    Raises :class:`PanelInputError` for bad input and ``ValueError`` for a bad ``control``.
    """
    covariates = tuple(covariates or ())
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    if isinstance(panel, StaggeredSample):
        s = panel
        if (s.outcome, s.unit, s.time, s.cohort, s.cluster, s.weights, s.covariates) == (
                outcome, unit, time, cohort, cluster, weights, covariates):
            return s if s.control == control else replace(s, control=control)
        panel = s.frame
    if not isinstance(panel, pd.DataFrame):
        raise TypeError(f"panel must be a pandas DataFrame, got {type(panel).__name__}")
    shared = _SHARED if _SHARED is not None and _SHARED["panel"] is panel else None
    if shared is None:
        return _build(panel, outcome, unit, time, cohort, cluster, weights, covariates, control)
    # clustering by the unit itself validates nothing more and keeps the same columns: one sample for both
    key = (outcome, unit, time, cohort, None if cluster == unit else cluster, weights, covariates)
    s = shared["samples"].get(key)
    if s is None:
        s = shared["samples"][key] = _build(panel, outcome, unit, time, cohort, key[4], weights, covariates, control)
    if s.cluster != cluster or s.control != control:
        s = replace(s, cluster=cluster, control=control)
    return s


def _build(panel: pd.DataFrame, outcome: str, unit: str, time: str, cohort: str, cluster: str | None,
           weights: str | None, covariates: tuple[str, ...], control: str) -> StaggeredSample:
    """:func:`build_sample` on a frame (validation, conventions, counts)."""

    wanted = list(dict.fromkeys([unit, time, cohort, outcome, *([cluster] if cluster else []),
                                 *([weights] if weights else []), *covariates]))
    missing = [c for c in wanted if c not in panel.columns]
    if missing:
        shown = ", ".join(map(str, list(panel.columns)[:20]))
        raise PanelInputError(f"column {missing[0]!r} not in the panel (missing: {missing}); columns are [{shown}]")
    df = panel[wanted]

    # unit and time
    if df[unit].isna().any():
        raise _fail(unit, "missing unit id", df, df[unit].isna().to_numpy(), "every row needs a unit id", None, None)
    t = _integer_column(df, time, unit, time, "periods must be integers (e.g. months since year 0)")
    tv = t.to_numpy()
    first, last = int(tv.min()), int(tv.max())
    # one sort by (unit, time) serves the duplicate and within-unit checks and the frame's order;
    # units are coded in sorted label order, so sorted position segments are units 0, 1, …
    ucodes = _label_codes(df[unit])
    key = ucodes * (last - first + 1) + (tv - first)
    # panels usually arrive sorted by (unit, period): then no sort, no gathers, and no duplicates
    order = None if bool((key[1:] > key[:-1]).all()) else np.argsort(key, kind="stable")
    us, ts = (ucodes, tv) if order is None else (ucodes[order], tv[order])
    same = np.zeros(0, dtype=bool) if order is None else (us[1:] == us[:-1]) & (ts[1:] == ts[:-1])
    if same.any():
        dup_sorted = np.zeros(len(order), dtype=bool)
        dup_sorted[1:] |= same
        dup_sorted[:-1] |= same
        dup = np.zeros(len(order), dtype=bool)
        dup[order] = dup_sorted
        raise _fail(time, f"duplicated ({unit}, {time}) pair", df, dup,
                    "keep one row per unit and period (aggregate or deduplicate in the panel builder)", unit, time)
    starts = np.flatnonzero(np.r_[True, us[1:] != us[:-1]])

    # cohort
    g = _integer_column(df, cohort, unit, time, f"use the adoption period, or {NEVER} for never treated")
    gv = g.to_numpy()
    varies = _varies_within(gv, order, starts, ucodes)
    if varies.any():
        raise _fail(cohort, f"adoption period varies within a {unit!r} unit", df, varies,
                    f"give every row of a unit the same {cohort!r}", unit, time)
    ug = (gv if order is None else gv[order])[starts]  # one value per unit (constant within units: checked)
    if ((ug != NEVER) & (ug < first)).any():
        early = (gv != NEVER) & (gv < first)
        raise _fail(cohort, f"adoption before the first period {first}", df, early,
                    "widen the panel window or drop these units in the panel builder", unit, time)

    # outcome
    y_raw = df[outcome]
    if isinstance(y_raw.dtype, np.dtype) and y_raw.dtype.kind == "f":  # plain floats: nothing to coerce
        y = y_raw
    elif pd.api.types.is_bool_dtype(y_raw):
        y = y_raw.astype(float)
    else:
        y = pd.to_numeric(y_raw, errors="coerce")
        nonnum = (y.isna() & y_raw.notna()).to_numpy()
        if nonnum.any():
            raise _fail(outcome, "non-numeric outcome", df, nonnum, "outcomes must be numbers (NaN = missing)", unit, time)
    yv = y.to_numpy(dtype=float)
    if np.isinf(yv).any():
        raise _fail(outcome, "non-finite outcome (inf)", df, np.isinf(yv),
                    "fix the value or set it to missing (NaN) to drop the cell", unit, time)

    # cluster, weights, covariates
    if cluster:
        if df[cluster].isna().any():
            raise _fail(cluster, "missing cluster id", df, df[cluster].isna().to_numpy(),
                        "every row needs a cluster id", unit, time)
        if cluster != unit:
            varies = _varies_within(_label_codes(df[cluster]), order, starts, ucodes)
            if varies.any():
                raise _fail(cluster, f"cluster varies within a {unit!r} unit", df, varies,
                            f"give every row of a unit the same {cluster!r}", unit, time)
    wv = _validate_weights(df, weights, unit, time).to_numpy() if weights else None
    for c in covariates:
        v = pd.to_numeric(df[c], errors="coerce")
        bad = (v.isna() | np.isinf(v.to_numpy(dtype=float))).to_numpy()
        if bad.any():
            raise _fail(c, "missing, non-numeric or non-finite covariate", df, bad,
                        "fill the covariate or drop those rows in the panel builder", unit, time)

    # conventions, per unit (cohort is constant within a unit)
    unit_g = ug
    recoded: dict[str, int] = {}
    late_unit = unit_g > last
    if late_unit.any():
        recoded["adopts_after_window"] = int(late_unit.sum())
        unit_g = np.where(late_unit, NEVER, unit_g)
    dropped_units: dict[str, int] = {}
    dropped_cells: dict[str, int] = {}
    from_first = (unit_g == first) & (unit_g != NEVER)
    if from_first.any():
        dropped_units["treated_from_first_period"] = int(from_first.sum())
    keep = ~from_first[ucodes] if from_first.any() else np.ones(len(ucodes), dtype=bool)
    miss = np.isnan(yv) & keep
    if miss.any():
        dropped_cells["missing_outcome"] = int(miss.sum())
        keep &= ~miss
    all_kept = not (from_first.any() or dropped_cells)
    rows_per_unit = np.bincount(ucodes if all_kept else ucodes[keep], minlength=len(starts))
    gone = int(((rows_per_unit == 0) & ~from_first).sum())
    if gone:
        dropped_units["no_outcome"] = gone
    if not keep.any():
        raise PanelInputError(f"column {outcome!r}: no rows left after the sample conventions "
                              f"(dropped units {dropped_units}, cells {dropped_cells}); check the panel")

    # the frame: kept rows in (unit, period) order, built once from the validated arrays
    rows = None if order is None and keep.all() else np.flatnonzero(keep) if order is None else order[keep[order]]
    # no unit recoded: the validated cohort column itself (equal to unit_g[ucodes] row by row)
    g_rows = gv if not recoded else unit_g[ucodes]
    fresh = {time: tv, cohort: g_rows, outcome: yv, **({weights: wv} if weights else {})}
    cols: dict[str, Any] = {}
    for c in wanted:
        if rows is not None:
            cols[c] = fresh[c][rows] if c in fresh else df[c].array.take(rows)
        elif c in fresh and not np.may_share_memory(fresh[c], df[c].to_numpy()):
            cols[c] = fresh[c]  # a new array: no copy
        else:  # the input's own column (unchanged values): a copy-on-write reference, not a copy
            cols[c] = df[c].reset_index(drop=True)
    frame = pd.DataFrame(cols, copy=False)
    present = rows_per_unit > 0
    n_units = int(present.sum())
    n_treated = int((present & (unit_g != NEVER)).sum())
    t_kept = tv if rows is None else tv[rows]
    span = last - first + 1
    codes_cache = None
    if span <= 4 * len(tv) + 1000:  # periods as offsets: codes by a bincount map, no sort
        tk = t_kept - first
        t_present = np.bincount(tk, minlength=span) > 0
        n_periods = int(t_present.sum())
        u_kept = ucodes if rows is None else ucodes[rows]
        if n_units < len(starts):  # units left out: renumber 0..n_units-1 (sorted label order kept)
            u_kept = (np.cumsum(present) - 1)[u_kept]
        codes_cache = (frame, u_kept, tk if t_present.all() else (np.cumsum(t_present) - 1)[tk],
                       np.flatnonzero(t_present).astype(np.int64) + first)
    else:
        n_periods = int(np.unique(t_kept).size)
    info = SampleInfo(
        n_units=n_units, n_treated=n_treated, n_control=n_units - n_treated, n_periods=n_periods,
        n_obs=int(keep.sum()), first_period=first, last_period=last,
        balanced=bool(len(frame) == n_units * n_periods),
        dropped_units=dropped_units, dropped_cells=dropped_cells, recoded=recoded, weights=weights,
    )
    return StaggeredSample(frame=frame, outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster,
                           weights=weights, info=info, covariates=covariates, control=control,
                           codes_cache=codes_cache)
