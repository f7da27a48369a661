"""Evaluation parameters: one YAML file in ``params/`` = one evaluation.

Validated before any notebook starts: unknown keys, wrong types, unknown reforms,
outcomes or estimators raise :class:`ParamsError` naming the file and the key.

Example (``params/two_teams_fights.yaml``)::

    evaluation_id: two_teams_fights
    reform: 两队一室
    outcomes: [incidents_fight, dispatches]
    region: {area_type: urban}
    window: {start: 2019-01, end: 2025-12}
    lang: zh
    inference: [wild_bootstrap, randomization]   # optional extra inference (default: none)
    sensitivity: true                            # Rambachan–Roth sensitivity (default: true)

Keys added for robustness and inference (see ``docs/briefs.md`` for the full reference):

``design``            ``staggered`` (→ notebook ``evaluate_reform``) or ``single_station``
                      (→ notebook ``pilot_station``); the older ``notebook`` key still works.
``inference``         list of ``wild_bootstrap`` (wild cluster bootstrap p-value/CI for TWFE) and
                      ``randomization`` (randomization-inference p-value of the headline estimator
                      and placebo chart).
``wild_weights``      ``rademacher`` (default) or ``webb`` (better with fewer than ~12 clusters).
``wild_draws``        wild bootstrap draws (default 999).
``wild_max_clusters`` largest cluster count for which the wild bootstrap runs (default 5,000; above it,
                      with ≥ 50 clusters with and without adopters, the analytic CRV1 test applies and
                      the brief says so: evalkit.inference.wild); a larger value forces the bootstrap.
``ri_draws``          randomization-inference draws (default 199); also the permutations of Romano–Wolf.
``sensitivity``       run the Rambachan–Roth (HonestDiD) sensitivity analysis (default true).
``multiple_testing``  BH and Romano–Wolf adjusted p-values across outcomes (default: true when
                      there is more than one outcome).
``bootstrap``         Callaway–Sant'Anna multiplier-bootstrap draws; 0 (default) keeps analytic
                      clustered SEs for the CS row and adds a 499-draw bootstrap variant row.
``index_definition``  the prevention-index definition behind ``index`` / ``index:<capability or
                      indicator>`` outcomes (default ``params/index/prevention_index.yaml``;
                      :mod:`evalkit.index.outcome`, ``docs/prevention-index.md``).
``dose``              dose–response DiD from the reforms' ``intensity`` (覆盖比例): ``true`` or
                      ``{degree: 3, knots: 0, bootstrap: 999, small_cohorts: error}`` (the estimator's
                      defaults; ``small_cohorts: skip`` leaves out cohort cells with too few distinct doses).
``switching``         effects of switching the reform on and off (``adopted_on``/``ended_on``; dCDH):
                      ``true`` or ``{effects: 12, placebo: 6, switchers: both}``.
``spillover``         effect on untreated neighbouring stations and the direct effect without
                      contaminated controls, from the warehouse ``adjacency`` table: ``true`` or
                      ``{max_e: 24, leaveout: true}`` (``max_e`` default: ``event_window``'s end).
``heterogeneity``     headline effect by subgroup from the headline fit, list drawn from ``area_type``,
                      ``size_class``, ``county``, ``cohort``.
                      These four run for every outcome after the headline (:mod:`evalkit.analyses_run`);
                      a failure is shown as "not available: reason". Asking for one whose data the
                      warehouse lacks (no intensity, no adjacency table) is refused before any notebook
                      starts (:func:`check_analyses`). Staggered design only.
``headline``          ``auto`` (default): the headline estimator is chosen for the design when the
                      evaluation runs (:mod:`evalkit.headline_choice`, rules in ``docs/briefs.md``
                      § Headline choice); a named estimator (one of ``estimators``) is used as given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalkit.estimators.specs import SPECS, default_estimators
from evalkit.registry import OUTCOMES, REFORMS, SAME_SERIES, outcome_id, reform_id

# estimator names, defaults and the headline preference come from the estimator specs
ESTIMATOR_NAMES = tuple(SPECS)
DEFAULT_ESTIMATORS = default_estimators("staggered")
NOTEBOOKS = ("evaluate_reform", "pilot_station")
DESIGNS = {"staggered": "evaluate_reform", "single_station": "pilot_station"}
INFERENCE_NAMES = ("wild_bootstrap", "randomization")
PILOT_ESTIMATORS = default_estimators("single_station")


class ParamsError(ValueError):
    """Invalid evaluation parameters (the message names the file and the key)."""


# Strict scalar types: YAML ``bootstrap: true`` must not become 1 draw, nor ``sensitivity: 1`` true,
# nor ``seed: "7"`` an int — the value is refused with the key named. Floats accept plain ints.
SInt = Annotated[int, Field(strict=True)]
SFloat = Annotated[float, Field(strict=True)]
SBool = Annotated[bool, Field(strict=True)]
# evaluation ids become file and folder names: letters, digits, "_" and "-" only, at most this long
MAX_ID_LENGTH = 100


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key repeated in one mapping (plain YAML keeps the last value)."""

    def construct_mapping(self, node, deep=False):  # noqa: D102
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ParamsError(
                    f"params file {key_node.start_mark.name} repeats the key '{key}' "
                    f"(line {seen[key]} and line {line}): keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = "2019-01"
    end: str = "2025-12"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _month(cls, v: Any) -> str:
        s = str(v)
        if not re.fullmatch(r"\d{4}-\d{2}", s):
            raise ValueError(f"must be a month 'YYYY-MM', got {v!r}")
        if not 1 <= int(s[5:]) <= 12:
            raise ValueError(f"month out of range in {v!r}")
        return s

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self


class Region(BaseModel):
    model_config = ConfigDict(extra="forbid")
    province: str | list[str] | None = None
    city: str | list[str] | None = None
    county: str | list[str] | None = None
    area_type: Literal["urban", "rural", "mixed"] | list[Literal["urban", "rural", "mixed"]] | None = None

    def as_filter(self) -> dict[str, str | list[str]]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DoseOptions(BaseModel):
    """``dose:`` — options of :func:`evalkit.estimators.dose.estimate_dose` (its defaults)."""

    model_config = ConfigDict(extra="forbid")
    degree: SInt = Field(3, ge=0, le=5)
    knots: SInt | list[SFloat] = 0
    bootstrap: SInt = Field(999, ge=0, le=100_000)
    small_cohorts: Literal["error", "skip"] = "error"


class SwitchingOptions(BaseModel):
    """``switching:`` — options of :func:`evalkit.estimators.switching.estimate_switching`."""

    model_config = ConfigDict(extra="forbid")
    effects: SInt = Field(12, ge=1, le=120)
    placebo: SInt = Field(6, ge=0, le=120)
    switchers: Literal["in", "out", "both"] = "both"


class SpilloverOptions(BaseModel):
    """``spillover:`` — options of :func:`evalkit.estimators.spillover.estimate_spillover`."""

    model_config = ConfigDict(extra="forbid")
    max_e: SInt | None = Field(None, ge=0, le=120)  # None: the end of ``event_window``
    leaveout: SBool = True


#: the sub-models of the analysis keys (an unknown sub-key is named with these fields)
ANALYSIS_OPTIONS: dict[str, type[BaseModel]] = {"dose": DoseOptions, "switching": SwitchingOptions,
                                                "spillover": SpilloverOptions}
#: the groupings ``heterogeneity`` may list (evalkit.heterogeneity)
HETEROGENEITY_BY = ("area_type", "size_class", "county", "cohort")


def _analysis_key(v: Any) -> Any:
    """``true`` → the defaults, ``false``/absent → off, a mapping → options; anything else refused."""
    if v is None or v is False:
        return None
    if v is True:
        return {}
    if isinstance(v, dict):
        return v
    raise ValueError(f"must be true, false or a mapping of options, got {v!r}")


class EvaluationParams(BaseModel):
    """All settings of one evaluation. Keys map 1:1 to the notebook's parameters cell."""

    model_config = ConfigDict(extra="forbid")

    evaluation_id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=MAX_ID_LENGTH)
    title: str | None = None
    notebook: Literal["evaluate_reform", "pilot_station"] = "evaluate_reform"
    design: Literal["staggered", "single_station"] | None = None  # None: follows ``notebook``
    reform: str
    outcomes: list[str] = Field(min_length=1)
    region: Region = Field(default_factory=Region)
    # adopters of these other reforms leave the comparison group (they move the outcome too)
    exclude_reforms: list[str] = Field(default_factory=list)
    window: Window = Field(default_factory=Window)
    estimators: list[str] | None = None  # default depends on the notebook (see DEFAULT_ESTIMATORS)
    # "auto": chosen for the design by evalkit.headline_choice when the evaluation runs; a named
    # estimator (one of ``estimators``) is used as given
    headline: str | None = "auto"
    control: Literal["never", "notyet"] = "never"
    cluster: Literal["station_id", "county", "city"] = "station_id"
    event_window: tuple[SInt, SInt] = (-12, 24)
    naive_window: SInt = Field(12, ge=1, le=36)
    alpha: SFloat = Field(0.05, gt=0, lt=0.5)
    bootstrap: SInt = Field(0, ge=0, le=100_000)
    placebo_reps: SInt = Field(200, ge=10, le=10_000)  # synthetic DiD / control placebo SEs
    seed: SInt = 20240101
    lang: Literal["zh", "en"] = "zh"
    suppress_below: SInt = Field(5, ge=0)
    warehouse: str = "data/warehouse.duckdb"
    # a station-month Parquet panel read instead of the warehouse's records (evalkit.panel_source)
    panel_file: str | None = None
    inference: list[str] = Field(default_factory=list)
    wild_weights: Literal["rademacher", "webb"] = "rademacher"
    wild_draws: SInt = Field(999, ge=99, le=100_000)
    wild_max_clusters: SInt | None = Field(None, ge=1)  # None: evalkit.inference.wild.WILD_MAX_CLUSTERS
    ri_draws: SInt = Field(199, ge=19, le=100_000)
    sensitivity: SBool = True
    # joint pre-trend test used by the verdict (see evalkit.inference.pretrend): "auto" = exact
    # permutation test when fewer than 100 stations adopt, Hotelling F above; "chi2" = textbook Wald
    pretrend_test: Literal["auto", "chi2", "f", "permutation"] = "auto"
    pretrend_draws: SInt = Field(199, ge=19, le=100_000)
    # standard error of the headline estimate: "auto" = delete-one-cluster jackknife for
    # Callaway–Sant'Anna when fewer than 100 stations adopt (evalkit.inference.jackknife)
    headline_se: Literal["auto", "analytic", "jackknife"] = "auto"
    multiple_testing: SBool | None = None  # None: true when there is more than one outcome
    # the index definition behind outcomes ``index``, ``index:<capability|indicator>`` (evalkit.index.outcome)
    index_definition: str = "params/index/prevention_index.yaml"
    # further analyses (issue 17; evalkit.analyses_run): None = not asked
    dose: DoseOptions | None = None
    switching: SwitchingOptions | None = None
    spillover: SpilloverOptions | None = None
    heterogeneity: list[str] = Field(default_factory=list)

    @field_validator("dose", "switching", "spillover", mode="before")
    @classmethod
    def _analysis(cls, v: Any) -> Any:
        return _analysis_key(v)

    @field_validator("heterogeneity", mode="before")
    @classmethod
    def _heterogeneity(cls, v: Any) -> list[str]:
        if v is None or v is False:
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"must be a list drawn from {list(HETEROGENEITY_BY)}, got {v!r}")
        bad = [x for x in v if x not in HETEROGENEITY_BY]
        if bad:
            raise ValueError(f"unknown grouping(s) {bad}; choose from {list(HETEROGENEITY_BY)}")
        return list(dict.fromkeys(v))

    @property
    def analyses(self) -> list[str]:
        """The further analyses asked for, in brief order (:data:`evalkit.analyses.KINDS`)."""
        return [k for k in ("dose", "switching", "spillover") if getattr(self, k) is not None] + (
            ["heterogeneity"] if self.heterogeneity else [])

    @field_validator("inference", mode="before")
    @classmethod
    def _inference(cls, v: Any) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"must be a list drawn from {list(INFERENCE_NAMES)}, got {v!r}")
        bad = [x for x in v if x not in INFERENCE_NAMES]
        if bad:
            raise ValueError(f"unknown inference method(s) {bad}; choose from {list(INFERENCE_NAMES)}")
        return list(dict.fromkeys(v))

    @field_validator("reform")
    @classmethod
    def _reform(cls, v: str) -> str:
        try:
            return reform_id(v)
        except KeyError as exc:
            raise ValueError(str(exc).strip('"')) from None

    @field_validator("exclude_reforms", mode="before")
    @classmethod
    def _exclude_reforms(cls, v: Any) -> list[str]:
        if v is None:
            return []
        out = []
        for name in [v] if isinstance(v, str) else v:
            try:
                out.append(reform_id(name))
            except KeyError as exc:
                raise ValueError(str(exc).strip('"')) from None
        return out

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, v: list[str]) -> list[str]:
        out = []
        for name in v:
            if str(name).strip() == "index" or str(name).startswith(("index:", "index_")):
                out.append(str(name).strip())  # resolved against index_definition in _index_outcomes
                continue
            try:
                out.append(outcome_id(name))
            except KeyError as exc:
                raise ValueError(str(exc).strip('"')) from None
        for a, b in SAME_SERIES:
            if a in out and b in out:
                raise ValueError(f"{a} ({OUTCOMES[a].zh}) and {b} ({OUTCOMES[b].zh}) are the same series (incidents "
                                 f"handled by the station, not diverted to 12345): list only one of them")
        return out

    @field_validator("estimators")
    @classmethod
    def _estimators(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        bad = [e for e in v if e not in ESTIMATOR_NAMES]
        if bad:
            raise ValueError(f"unknown estimator(s) {bad}; choose from {list(ESTIMATOR_NAMES)}")
        return v

    @field_validator("event_window")
    @classmethod
    def _event_window(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if lo >= -1 or hi < 0:
            raise ValueError(f"event_window must be [leads<-1, lags>=0], e.g. [-12, 24]; got {list(v)}")
        return v

    @model_validator(mode="after")
    def _index_outcomes(self) -> EvaluationParams:
        names = [o for o in self.outcomes if o == "index" or o.startswith(("index:", "index_"))]
        if names:
            from evalkit.index.outcome import load_for_params, resolve

            defn = load_for_params(self.index_definition)
            ids = {o: resolve(o, defn, self.index_definition) for o in names}
            self.outcomes = list(dict.fromkeys(ids.get(o, o) for o in self.outcomes))
        return self

    @model_validator(mode="after")
    def _headline(self) -> EvaluationParams:
        if self.reform in self.exclude_reforms:
            raise ValueError(f"exclude_reforms lists the evaluated reform {self.reform!r} itself")
        if self.design is None:
            self.design = "single_station" if self.notebook == "pilot_station" else "staggered"
        elif "notebook" in self.model_fields_set and DESIGNS[self.design] != self.notebook:
            raise ValueError(f"design {self.design!r} runs notebook {DESIGNS[self.design]!r}, but notebook is "
                             f"{self.notebook!r}; give only one of the two keys")
        else:
            self.notebook = DESIGNS[self.design]
        if self.design == "single_station" and self.analyses:
            raise ValueError(f"{', '.join(self.analyses)}: further analyses need design 'staggered' "
                             "(many stations), not 'single_station'")
        if self.multiple_testing is None:
            self.multiple_testing = len(self.outcomes) > 1
        if self.estimators is None:
            self.estimators = list(PILOT_ESTIMATORS if self.notebook == "pilot_station" else DEFAULT_ESTIMATORS)
        if self.headline is None:  # the notebooks' parameters cell says None: the same as "auto"
            self.headline = "auto"
        if self.headline != "auto" and self.headline not in self.estimators:
            raise ValueError(f"headline estimator {self.headline!r} is not in estimators {self.estimators}")
        return self

    # --------------------------------------------------------------- helpers
    @property
    def reform_info(self):
        return REFORMS[self.reform]

    @property
    def outcome_info(self):
        return [OUTCOMES[o] for o in self.outcomes]

    def notebook_parameters(self) -> dict[str, Any]:
        """Flat dict injected into the notebook's ``parameters`` cell by papermill."""
        d = self.model_dump(mode="json")
        d["region"] = self.region.as_filter()
        d["window"] = [self.window.start, self.window.end]
        d["event_window"] = list(self.event_window)
        return d

    @classmethod
    def from_notebook(cls, values: dict[str, Any]) -> EvaluationParams:
        """Rebuild from the notebook's parameter variables (inverse of ``notebook_parameters``)."""
        v = {k: values[k] for k in cls.model_fields if k in values}
        if isinstance(v.get("window"), (list, tuple)):
            v["window"] = {"start": v["window"][0], "end": v["window"][1]}
        return validate_params(v, source="notebook parameters")


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid evaluation parameters in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            sub = ANALYSIS_OPTIONS.get(str(e["loc"][0])) if len(e["loc"]) == 2 else None
            msg = f"unknown key (allowed: {', '.join((sub or EvaluationParams).model_fields)})"
        elif e["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def validate_params(data: dict[str, Any], source: str = "<dict>") -> EvaluationParams:
    """Validate a params dict; raise :class:`ParamsError` with every problem listed."""
    if not isinstance(data, dict):
        raise ParamsError(f"invalid evaluation parameters in {source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return EvaluationParams.model_validate(data)
    except ValidationError as err:
        raise ParamsError(_format_error(err, source)) from None


def read_params_yaml(p: Path) -> Any:
    """Parse a params YAML file: UTF-8 only, a repeated key refused (one-line :class:`ParamsError`)."""
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ParamsError(f"params file {p} is not UTF-8: save it as UTF-8") from None
    try:
        loader = _UniqueKeyLoader(text)
        loader.name = str(p)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ParamsError(f"params file {p} is not valid YAML{where}: {what}") from None


def load_params(path: str | Path) -> EvaluationParams:
    """Read and validate one params YAML file. ``evaluation_id`` defaults to the file stem. A file with
    ``notebook: prevention_index`` is a prevention-index report: its own model
    (:class:`evalkit.index.report_params.IndexReportParams`) is returned."""
    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"params file not found: {p}")
    data = read_params_yaml(p) or {}
    if isinstance(data, dict):
        data.setdefault("evaluation_id", p.stem)
        if data.get("notebook") == "prevention_index":  # a bureau's index report, not an evaluation
            from evalkit.index.report_params import validate_report_params

            return validate_report_params(data, source=str(p))
    return validate_params(data, source=str(p))


# ------------------------------------------------------------------------------ window against the data
def outcome_tables(outcomes: list[str]) -> list[str]:
    """The record tables (``incidents``/``disputes``) the outcomes are computed from."""
    return sorted({"disputes" if o.startswith("dispute") else "incidents" for o in outcomes})


def check_window(params: EvaluationParams, con, source: str) -> list[str]:
    """One-line problems of ``params.window`` against the warehouse behind ``con`` (empty: fine).

    Refused (never clipped, so a brief never covers months it has no data for): a window that
    starts before or ends after the covered months of a table the outcomes need, over the
    region's stations (see :mod:`evalkit.coverage`), and a window in which no adopter of the reform (in the region)
    adopts after ``window.start`` — no pre-period. Adoption after ``window.end`` is allowed
    (those stations count as never treated).
    """
    from evalkit.coverage import data_span
    from evalkit.panel import _region_sql
    from evalkit.registry import period_label

    w = params.window
    p0 = int(w.start[:4]) * 12 + int(w.start[5:]) - 1
    p1 = int(w.end[:4]) * 12 + int(w.end[5:]) - 1
    problems = []
    region_sql, args = _region_sql(params.region.as_filter())
    for table in [] if params.panel_file else outcome_tables(params.outcomes):  # a panel file: its own months
        span = data_span(con, table, params.region.as_filter())  # the covered months of the region's stations
        if span is None:
            problems.append(f"{source}: outcomes: the warehouse has no {table} records (in the region) for "
                            f"{', '.join(params.outcomes)}")
            continue
        lo, hi = span
        if p0 < lo:
            problems.append(f"{source}: window.start {w.start} lies before the {table} data (first month "
                            f"{period_label(lo)}); set window.start to {period_label(lo)} or later")
        if p1 > hi:
            problems.append(f"{source}: window.end {w.end} lies beyond the {table} data (last month "
                            f"{period_label(hi)}); set window.end to {period_label(hi)} or earlier")
    rows = con.execute(
        f"SELECT year(min(r.adopted_on)) * 12 + month(min(r.adopted_on)) - 1 FROM reforms r "
        f"JOIN stations s USING (station_id) WHERE r.reform = ? AND {region_sql} GROUP BY r.station_id",
        [params.reform, *args]).fetchall()
    adopt = [int(r[0]) for r in rows]
    if adopt and not any(p0 < a <= p1 for a in adopt):
        before = [a for a in adopt if a <= p0]
        if before:
            problems.append(f"{source}: window.start {w.start}: every adopter of {params.reform} inside the window adopts at or before "
                            f"it (latest {period_label(max(before))}), so there is no pre-period; set "
                            f"window.start before {period_label(max(before))}")
        else:
            problems.append(f"{source}: window.end {w.end}: no adopter of {params.reform} adopts inside the window "
                            f"(first adoption {period_label(min(adopt))}); extend window.end")
    return problems


def check_analyses(params: EvaluationParams, con, source: str) -> list[str]:
    """One-line problems of the further analyses asked for (``dose``, ``spillover``) whose data the
    warehouse behind ``con`` lacks, each naming the key and what to load (empty: fine). ``switching``
    runs without any ``ended_on`` (adoptions are its switches in); ``heterogeneity`` reads the
    station register."""
    problems = []
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if params.dose is not None:
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'reforms'").fetchall()}
        n = 0
        if "intensity" in cols:
            n = con.execute("SELECT count(*) FROM reforms WHERE reform = ? AND intensity IS NOT NULL",
                            [params.reform]).fetchone()[0]
        if not n:
            problems.append(f"{source}: dose: the reforms table has no intensity (覆盖比例) for {params.reform}; "
                            f"load a reforms file with that column (`evalkit ingest reforms FILE --replace`)")
    if params.spillover is not None:
        n = con.execute("SELECT count(*) FROM adjacency").fetchone()[0] if "adjacency" in tables else 0
        if not n:
            problems.append(f"{source}: spillover: the warehouse has no adjacency table; load one with "
                            f"`evalkit ingest adjacency FILE`")
    return problems


def check_against_warehouse(params: EvaluationParams, source: str, warehouse: str | Path | None = None) -> list[str]:
    """:func:`check_window` and :func:`check_analyses` on the params' warehouse (or ``warehouse``); []
    when the file is missing."""
    from evalkit.warehouse import open_db

    path = Path(warehouse or params.warehouse)
    if not path.is_file() or not isinstance(params, EvaluationParams):  # an index report has no window
        return []
    with open_db(path, read_only=True) as con:
        return warehouse_problems(params, con, source)


def warehouse_problems(params: EvaluationParams, con, source: str) -> list[str]:
    """:func:`check_window` and :func:`check_analyses` on an open connection ``con`` (``source``: the name
    the messages give, a params file or an evaluation id); [] when nothing is wrong."""
    return check_window(params, con, source) + check_analyses(params, con, source)
