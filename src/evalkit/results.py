"""One results type for every estimator.

An :class:`EstimationResult` holds a tidy frame of estimates (one row per reported
quantity) plus metadata. Every estimator in :mod:`evalkit.estimators` returns one, so
robustness tables, briefs, JSON export and batch summaries treat them alike.

Tidy frame columns (``ESTIMATE_COLUMNS``):

``kind``        what the row is: ``overall`` (the headline effect), ``event`` (event time),
                ``group`` (cohort), ``calendar`` (calendar period), ``gt`` (group-time ATT),
                ``coef`` (a regression coefficient), ``component`` (e.g. a 2x2 piece).
``term``        a readable label (``"ATT"``, ``"e=-2"``, ``"g=24279,t=24280"``, ``"treated:post"``).
``group``       cohort (first treated period) or ``<NA>``.
``time``        calendar period or ``<NA>``.
``event_time``  periods since adoption or ``<NA>``.
``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value``: pointwise inference.
``band_low``, ``band_high``: simultaneous (uniform) band where the estimator gives one.
``weight``      aggregation weight where meaningful.

The contract every estimator fills (checked by tests/test_estimator_contract.py; see
docs/results-schema.md): exactly one ``overall`` row (the headline; other whole-sample
aggregations use kind ``aggregate``), ``meta["sample"]`` (the
:class:`~evalkit.estimators._sample.SampleInfo` as a dict), ``meta["inference"]`` (``se_type``,
``n_clusters``, ``ssc``, ``df``, ...), ``meta["estimand"]`` (a plain-words key from the
estimator's spec) and, at runtime only, ``result.context`` (a :class:`FitContext`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.estimators._sample import SampleInfo, StaggeredSample

ESTIMATE_COLUMNS = [
    "kind",
    "term",
    "group",
    "time",
    "event_time",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "band_low",
    "band_high",
    "weight",
]

SCHEMA_VERSION = 2  # 2: exactly one "overall" row; meta sample/inference/estimand; "inference" block
READABLE_SCHEMA_VERSIONS = (1, 2)


@dataclass(frozen=True)
class FitContext:
    """What a fit used, so inference methods can refit on the same sample with the same options.

    ``estimator`` is the registry name (``evalkit.estimators.SPECS``); ``options`` the keyword
    arguments of the call (without panel and outcome), so
    ``get_estimator(ctx.estimator)(ctx.sample, outcome, **ctx.options)`` reproduces the fit.
    Runtime only: never serialised, ``None`` after :meth:`EstimationResult.from_json`.
    """

    estimator: str
    sample: StaggeredSample
    options: dict[str, Any]


def normal_inference(estimate: np.ndarray, std_error: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Pointwise normal CI and two-sided p-value for arrays of estimates and SEs."""

    from evalkit.distributions import norm_ppf, norm_sf  # here: results stays light to import

    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    z = norm_ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * norm_sf(np.abs(est / se))
    p = np.where(se > 0, p, np.nan)
    return {"ci_low": est - z * se, "ci_high": est + z * se, "p_value": p}


_INT_COLUMNS = ("group", "time", "event_time")
_FLOAT_COLUMNS = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "band_low", "band_high", "weight")


def make_estimates(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build a tidy estimates frame with the canonical columns and dtypes (group / time / event_time
    ``Int64``, the numbers ``float64``, kind / term ``str``; other columns kept after them)."""
    if isinstance(rows, pd.DataFrame) and _canonical(rows):
        # already this function's output (EstimationResult.__post_init__ of an estimator's frame): the
        # same columns, dtypes and values; a shallow copy (copy-on-write) as the rebuild was a new frame
        return rows.copy(deep=False)
    df = pd.DataFrame(rows)
    n = len(df)
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        df = df.reset_index(drop=True)
    # one frame built from columns: assigning 13 columns one by one cost ~10 ms per result (58 results
    # per evaluation); same values and dtypes as pd.to_numeric(..., errors="coerce") column by column
    cols: dict[str, Any] = {}
    for col in ESTIMATE_COLUMNS:
        s = df[col] if col in df.columns else None
        if col in _INT_COLUMNS:
            cols[col] = pd.array(np.full(n, np.nan) if s is None else _numeric(s), dtype="Int64")
        elif col in _FLOAT_COLUMNS:
            cols[col] = np.full(n, np.nan) if s is None else np.array(_numeric(s), dtype=float)
        else:
            cols[col] = pd.Series(np.full(n, np.nan)).astype(str) if s is None else s.astype(str)
    for col in df.columns:
        if col not in cols:
            cols[col] = df[col]
    return pd.DataFrame(cols, index=pd.RangeIndex(n))


_STR_DTYPE = pd.Series(["x"]).astype(str).dtype


def _canonical(df: pd.DataFrame) -> bool:
    """Whether ``df`` is what :func:`make_estimates` returns: a 0..n-1 RangeIndex, the canonical columns
    first and in order, each with its canonical dtype (``make_estimates`` then changes nothing)."""
    k = len(ESTIMATE_COLUMNS)
    idx = df.index
    if not (isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1):
        return False
    if list(df.columns[:k]) != ESTIMATE_COLUMNS or len(set(df.columns)) != len(df.columns):
        return False
    for col, dt in zip(ESTIMATE_COLUMNS, df.dtypes.iloc[:k], strict=True):
        if col in _INT_COLUMNS:
            if not isinstance(dt, pd.Int64Dtype):
                return False
        elif col in _FLOAT_COLUMNS:
            if dt != np.float64:
                return False
        elif dt != _STR_DTYPE:
            return False
    return True


def _numeric(s: pd.Series) -> Any:
    """``pd.to_numeric(s, errors="coerce")``, without the call for plain numeric numpy columns."""
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiub":
        return s.to_numpy()
    return pd.to_numeric(s, errors="coerce")


def _clean(value: Any) -> Any:
    """Make metadata JSON-safe (numpy scalars, NaN → None, tuples → lists)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":  # fast path (a covariance matrix has ~10^5 cells): same values
            return _clean_floats(value.tolist())
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if value is pd.NA:
        return None
    return value


def _clean_floats(values: Any) -> Any:
    """:func:`_clean` of a float array's ``tolist()`` (nested lists of Python floats): NaN/inf → None."""
    if not isinstance(values, list):  # a 0-d array
        return values if math.isfinite(values) else None
    if values and isinstance(values[0], list):
        return [_clean_floats(v) for v in values]
    isfinite = math.isfinite
    return [v if isfinite(v) else None for v in values]


@dataclass
class EstimationResult:
    """Estimates from one estimator on one outcome.

    Attributes
    ----------
    estimator: short name (``naive_yoy``, ``did2x2``, ``twfe``, ``event_twfe``, ``cs``, ``sa``,
        ``imputation``, ``bacon``, ``poisson``, ...).
    outcome: the panel column estimated.
    estimates: tidy frame, see module docstring.
    meta: estimator, control group, base period, clusters, n treated/control units, periods,
        n_obs, se_type, alpha, baseline_mean (treated pre-period mean, for percent effects), ...
    vcov: optional covariance matrices keyed by ``kind`` (index/columns = ``term``).
    tables: optional extra frames (e.g. Bacon 2x2 components), serialised with the result.
    inference: extra inference attached after the fit (:meth:`with_inference`), name -> result
        object with ``to_dict()`` (plain dicts after a JSON round trip).
    context: runtime-only :class:`FitContext` (not serialised, not compared).
    """

    estimator: str
    outcome: str
    estimates: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    vcov: dict[str, pd.DataFrame] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    context: FitContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.estimates = make_estimates(self.estimates)
        self.meta.setdefault("estimator", self.estimator)
        self.meta.setdefault("outcome", self.outcome)
        self.meta.setdefault("alpha", 0.05)

    # ------------------------------------------------------------------ access
    def _kind_rows(self, kind: str) -> pd.DataFrame:
        """The cached rows of ``kind`` (callers must not modify it: :meth:`rows` hands out copies).

        A brief reads the same results hundreds of times (``rows``, ``overall``: ~750 filters per
        evaluation, a third of the notebook's table time), so each kind is filtered once per
        ``estimates`` frame. The cache is keyed on that frame's identity: assigning a new frame
        (``r.estimates = est``, as the jackknife step does) starts a fresh cache. ``estimates``
        itself is treated as immutable once the result is built — replace it, never edit it in place.
        """
        cache = self.__dict__.get("_rows_cache")
        if cache is None or cache[0] is not self.estimates:
            cache = (self.estimates, {})
            self.__dict__["_rows_cache"] = cache
        by_kind = cache[1]
        if kind not in by_kind:
            by_kind[kind] = self.estimates[self.estimates["kind"] == kind].reset_index(drop=True)
        return by_kind[kind]

    def rows(self, kind: str) -> pd.DataFrame:
        """Rows of one kind (``overall``, ``event``, ``group``, ``calendar``, ``gt``, ``coef``).

        A copy the caller may change freely (shallow: pandas' copy-on-write copies the data on
        the first write, so the cached rows never change)."""
        return self._kind_rows(kind).copy(deep=False)

    @property
    def overall(self) -> pd.Series:
        """The headline row (kind ``overall``)."""
        rows = self._kind_rows("overall")
        if rows.empty:
            raise KeyError(f"{self.estimator} result for {self.outcome!r} has no overall estimate")
        return rows.iloc[0]

    @property
    def headline(self) -> pd.Series:
        """The one ``overall`` row; ``ValueError`` if the result has none or several."""
        rows = self._kind_rows("overall")
        if len(rows) != 1:
            raise ValueError(f"{self.estimator} result for {self.outcome!r} has {len(rows)} 'overall' rows; "
                             "the contract is exactly one headline row")
        return rows.iloc[0]

    @property
    def sample_info(self) -> SampleInfo | None:
        """``meta["sample"]`` as a :class:`SampleInfo` (``None`` for results without one)."""
        from evalkit.estimators._sample import SampleInfo

        d = self.meta.get("sample")
        return None if d is None else SampleInfo.from_dict(d)

    def with_inference(self, name: str, inference: Any) -> EstimationResult:
        """A copy with ``inference`` attached under ``self.inference[name]``; ``self`` is unchanged."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"inference name must be a non-empty string, got {name!r}")
        return replace(self, meta=copy.deepcopy(self.meta), vcov=dict(self.vcov), tables=dict(self.tables),
                       inference={**self.inference, name: inference})

    @property
    def att(self) -> float:
        return float(self.overall["estimate"])

    @property
    def se(self) -> float:
        return float(self.overall["std_error"])

    def conf_int(self, kind: str = "overall", alpha: float | None = None) -> pd.DataFrame:
        """Confidence intervals (``lower``, ``upper``) for rows of ``kind``, indexed by term."""
        rows = self.rows(kind)
        a = self.meta.get("alpha", 0.05) if alpha is None else alpha
        if alpha is None or math.isclose(a, self.meta.get("alpha", 0.05)):
            lo, hi = rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
        else:
            inf = normal_inference(rows["estimate"].to_numpy(), rows["std_error"].to_numpy(), a)
            lo, hi = inf["ci_low"], inf["ci_high"]
        return pd.DataFrame({"lower": lo, "upper": hi}, index=rows["term"].to_numpy())

    def event_study(self) -> pd.DataFrame:
        """Event-time rows sorted by event time."""
        return self.rows("event").sort_values("event_time").reset_index(drop=True)

    def percent(self, value: float | None = None) -> float:
        """Express an effect (default: the headline) in percent of the treated baseline mean.

        Estimators that estimate proportional effects directly (Poisson, log outcomes) set
        ``meta['scale'] = 'percent'`` and their estimates are already percentages.
        """
        v = self.att if value is None else value
        if self.meta.get("scale") == "percent":
            return float(v)
        base = self.meta.get("baseline_mean")
        if not base:
            return float("nan")
        return 100.0 * float(v) / float(base)

    def tidy(self) -> pd.DataFrame:
        """Estimates with ``estimator`` and ``outcome`` columns prepended (for stacking)."""
        out = self.estimates.copy()
        out.insert(0, "outcome", self.outcome)
        out.insert(0, "estimator", self.estimator)
        return out

    # ------------------------------------------------------------------ display
    def summary(self, kinds: tuple[str, ...] = ("overall", "coef", "event", "group", "calendar", "spillover")) -> str:
        """A plain-text summary table (metadata, then estimates)."""
        lines = [f"{self.meta.get('label', self.estimator)} — outcome: {self.outcome}"]
        keys = [
            "estimand", "control_group", "base_period", "n_units", "n_treated", "n_control", "n_obs", "n_periods",
            "n_clusters", "cluster", "se_type", "bootstrap", "baseline_mean",
        ]
        for k in keys:
            if k in self.meta and self.meta[k] is not None:
                lines.append(f"  {k:<14} {self.meta[k]}")
        smp = self.meta.get("sample") or {}
        changes = {**smp.get("dropped_units", {}), **{f"{k} (rows)": v for k, v in smp.get("dropped_cells", {}).items()},
                   **{f"recoded {k}": v for k, v in smp.get("recoded", {}).items()}}
        if changes:
            lines.append("  sample         " + ", ".join(f"{k}: {v}" for k, v in changes.items()))
        table = self.estimates[self.estimates["kind"].isin(kinds)]
        if not table.empty:
            cols = ["kind", "term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]
            lines.append(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        return "\n".join(lines)

    def __repr__(self) -> str:  # pragma: no cover - display only
        return self.summary()

    def _repr_html_(self) -> str:  # pragma: no cover - display only
        cols = ["kind", "term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]
        return (
            f"<b>{self.meta.get('label', self.estimator)}</b> — {self.outcome}"
            + self.estimates[cols].to_html(index=False, float_format=lambda x: f"{x:.4f}", na_rep="")
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self, omit_vcov: tuple[str, ...] = ()) -> dict[str, Any]:
        """JSON-safe dict (schema version ``SCHEMA_VERSION``).

        ``omit_vcov``: ``vcov`` kinds left out (``results.json`` leaves out the saturated
        cohort × period matrix ``gt``, docs/results-schema.md); each one left out is listed in
        ``vcov_omitted`` (kind → number of terms), a key present only then."""
        d = {
            "schema_version": SCHEMA_VERSION,
            "estimator": self.estimator,
            "outcome": self.outcome,
            "meta": _clean(self.meta),
            "estimates": _frame_records(self.estimates),
            "vcov": {k: {"terms": list(map(str, v.index)), "matrix": _clean(v.to_numpy())}
                     for k, v in self.vcov.items() if k not in omit_vcov},
            "tables": {k: _frame_records(v) for k, v in self.tables.items()},
            "inference": {k: _clean(v.to_dict() if hasattr(v, "to_dict") else v) for k, v in self.inference.items()},
        }
        omitted = {k: int(v.shape[0]) for k, v in self.vcov.items() if k in omit_vcov}
        if omitted:
            d["vcov_omitted"] = omitted
        return d

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EstimationResult:
        """Read :meth:`to_dict` output (schema versions ``READABLE_SCHEMA_VERSIONS``); ``context`` is ``None``."""
        version = data.get("schema_version", 1)
        if version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"result schema_version {version!r} not readable by this evalkit "
                             f"(reads {list(READABLE_SCHEMA_VERSIONS)}); upgrade evalkit")
        vcov = {
            k: pd.DataFrame(np.asarray(v["matrix"], dtype=float), index=v["terms"], columns=v["terms"])
            for k, v in data.get("vcov", {}).items()
        }
        tables = {k: pd.DataFrame(v) for k, v in data.get("tables", {}).items()}
        return cls(
            estimator=data["estimator"],
            outcome=data["outcome"],
            estimates=pd.DataFrame(data["estimates"]),
            meta=dict(data.get("meta", {})),
            vcov=vcov,
            tables=tables,
            inference=dict(data.get("inference") or {}),
        )

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> EstimationResult:
        """Read a result written by :meth:`to_json` (a JSON string or a file path)."""
        p = Path(text_or_path) if not str(text_or_path).lstrip().startswith("{") else None
        text = p.read_text(encoding="utf-8") if p is not None else str(text_or_path)
        return cls.from_dict(json.loads(text))


_NA_TYPE = type(pd.NA)
_AS_IS = frozenset({str, int, bool, type(None), _NA_TYPE})  # values :func:`_clean` returns unchanged (NA → None)


def _frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-safe dict per row (missing → None), column by column: float columns take the fast
    path of :func:`_clean_floats`; columns of only str / int / bool / missing values (kind, term,
    group, time, event_time) are taken as they are, missing → None; the others go value by value
    through :func:`_clean`."""
    cols: list[list[Any]] = []
    for name in df.columns:
        col = df[name]
        if col.dtype.kind == "f" and isinstance(col.dtype, np.dtype):
            cols.append(_clean_floats(col.to_numpy().tolist()))
            continue
        values = col.tolist()
        kinds = set(map(type, values))
        if kinds <= _AS_IS:  # kind / term (str), group / time / event_time (int, NA): no value walk
            cols.append([None if v is pd.NA else v for v in values] if _NA_TYPE in kinds else values)
        else:
            cols.append([_clean(None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v)
                         for v in values])
    keys = [str(k) for k in df.columns]
    return [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)] if cols else [{} for _ in range(len(df))]


def dumps_readable(value: Any, indent: int = 2) -> str:
    """JSON text as ``json.dumps(value, indent=indent, ensure_ascii=False)`` but with every dict or
    list that holds only scalars on one line (an estimate row, a matrix row, a list of terms).

    The same JSON values; written by json's C encoder, ~5× faster than the indenting pure-Python
    encoder on a results.json of ~10^5 numbers, and shorter to read. A list that starts with a
    scalar is encoded in one C call and kept whole when the text holds no nested container (a
    nested list or dict always writes ``[`` or ``{`` past the first character; only then are its
    items checked one by one), so a matrix row costs one call rather than a Python scan of its
    numbers. Mostly float formatting now (one ``json.dumps`` of the whole value takes ~70% of this)."""
    enc = json.JSONEncoder(ensure_ascii=False).encode
    out: list[str] = []
    append = out.append
    containers = (dict, list)

    def emit(v: Any, level: int) -> None:
        if isinstance(v, dict):
            if not v or not any(isinstance(x, containers) for x in v.values()):
                append(enc(v))
                return
            inner = "\n" + " " * (indent * (level + 1))
            sep = "{" + inner
            for k, x in v.items():
                append(sep + enc(str(k)) + ": ")
                sep = "," + inner
                emit(x, level + 1)
            append("\n" + " " * (indent * level) + "}")
            return
        if isinstance(v, list):
            if not v:
                append("[]")
                return
            if not isinstance(v[0], containers):
                text = enc(v)
                if (text.find("[", 1) < 0 and text.find("{") < 0) or not any(isinstance(x, containers) for x in v):
                    append(text)
                    return
            inner = "\n" + " " * (indent * (level + 1))
            sep = "[" + inner
            for x in v:
                append(sep)
                sep = "," + inner
                emit(x, level + 1)
            append("\n" + " " * (indent * level) + "]")
            return
        append(enc(v))

    emit(value, 0)
    return "".join(out)


def stack(results: list[EstimationResult]) -> pd.DataFrame:
    """Stack several results into one tidy frame (for robustness tables and batch summaries)."""
    if not results:
        return pd.DataFrame(columns=["estimator", "outcome", *ESTIMATE_COLUMNS])
    return pd.concat([r.tidy() for r in results], ignore_index=True)
