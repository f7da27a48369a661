"""The plan of one file's ingest: for each column of the table its parsed expression (SQL over the
raw text ``v_<column>``), the joins to the value maps built from the file's distinct values, and
the ordered checks whose first failure is a row's quarantine reason (see :mod:`evalkit.ingest.core`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from evalkit.ingest import sql as S
from evalkit.ingest import values as V
from evalkit.ingest.errors import IngestError
from evalkit.ingest.headers import HeaderMap
from evalkit.ingest.privacy import id_number_sql
from evalkit.ingest.sources import clean_sql
from evalkit.ingest.stations import station_map_table
from evalkit.ingest.words import (
    STATION_REF_TABLES,
    _category_map,
    _dispute_category_map,
    _make_map,
    _reform_map,
    _word_join,
    _words_source,
)
from evalkit.schema import COUNT_BOUNDS, REPORT_TABLES, Table

KEYS = {
    "stations": ("station_id",),
    "reforms": ("station_id", "reform"),
    "incidents": ("incident_id",),
    "disputes": ("dispute_id",),
    **{t: ("station_id", "month") for t in REPORT_TABLES},  # monthly reports: one row per station-month
    "adjacency": ("station_id", "neighbor_id"),  # one row per ordered pair
}
MAX_RESPONSE = "INTERVAL 24 HOUR"


# ------------------------------------------------------------------------------ value maps
def _station_mapper(con, t: str, vv: str) -> tuple[str, str, list[Check]]:
    """Match ``vv``'s distinct values to the register (see :mod:`evalkit.ingest.stations`):
    (parsed expression, join, checks: ambiguous first, then unknown)."""
    if station_map_table(con, _words_source(con, vv), vv) == 0:
        raise IngestError(f"the station register is empty: ingest stations before {t}")
    checks = [
        Check("ambiguous_station", "station_id", f"{vv} IS NOT NULL AND p_station_cands IS NOT NULL",
              f"concat('station ', {vv}, ' fits several stations of the register: ', p_station_cands, "
              f"'; give the code or the full name')"),
        Check("unknown_station", "station_id", f"{vv} IS NOT NULL AND p_station_id IS NULL",
              f"concat('station ', {vv}, ' is not in the station register (by code or name)')"),
    ]
    return "ms.m", f"LEFT JOIN _ek_map_station ms ON ms.v = {vv}", checks


# ------------------------------------------------------------------------------ plan per table
@dataclass
class Check:
    reason: str
    column: str
    cond: str
    detail: str


def _lbl(hm: HeaderMap, col: str) -> str:
    h = hm.original.get(col, col)
    return col if h == col else f"{col} ({h})"


def _plan(spec: Table, hm: HeaderMap, con, now: dt.datetime, window,
          lead: frozenset[str] = frozenset()) -> tuple[dict[str, str], list[str], list[Check]]:
    """Parsed expressions p_<col> (over v_<col>), extra joins, ordered checks.

    A column absent from the file but given a default (``--set`` / mapping ``defaults:``) is read
    as that constant; value mappings (``hm.values``) extend the built-in vocabularies.
    """
    present = set(hm.positions) | set(hm.defaults)
    ws, we, wlabel = window
    nowl = f"TIMESTAMP {S.q(now.strftime('%Y-%m-%d %H:%M:%S'))}"
    wsl = f"TIMESTAMP {S.q(ws.strftime('%Y-%m-%d %H:%M:%S'))}"
    wel = f"TIMESTAMP {S.q(we.strftime('%Y-%m-%d %H:%M:%S'))}"
    parsed: dict[str, str] = {}
    joins: list[str] = []
    checks: list[Check] = []
    t = spec.name
    raw_cols = {r[0] for r in con.execute("DESCRIBE _ek_v").fetchall()}

    def v(c):
        return f"v_{c}" if c in hm.positions else S.q(hm.defaults[c])

    def p(c):
        return f"p_{c}"

    # ---- rows that cannot be read as they are (XLSX formula cells without a saved value, stray quotes)
    if "_problem" in raw_cols:
        checks.append(Check("formula_without_value", "", "_problem IS NOT NULL", "_problem"))
    if "_quote" in raw_cols:  # CSV lines with a stray quote (read by the Python reader)
        checks.append(Check("unbalanced_quote", "", "_quote IS NOT NULL", "_quote"))
    # ---- a key holding a citizen ID number: the row is refused (its value is stored masked)
    for k in dict.fromkeys((*KEYS[t][:1], "station_id")):
        if k in hm.positions and spec.column(k).sql_type == "VARCHAR":
            checks.append(Check("id_number_in_key", k, id_number_sql(v(k)),
                                S.q(f"{_lbl(hm, k)} holds a citizen ID number; the row is refused "
                                    "(use the record's own number as the key)")))

    # ---- required values
    for c in spec.columns:
        if c.required and c.name in present:
            checks.append(Check("missing_required", c.name, f"{v(c.name)} IS NULL",
                                S.q(f"required value {_lbl(hm, c.name)} is empty")))

    # ---- parse each column present
    parse_checks: list[Check] = []
    for c in spec.columns:
        if c.name not in present:
            parsed[c.name] = f"CAST(NULL AS {c.sql_type})"
            continue
        vv = v(c.name)
        user = hm.values.get(c.name)
        bad = f"{vv} IS NOT NULL AND {p(c.name)} IS NULL"
        shown = f"concat({S.q(_lbl(hm, c.name) + ': ')}, {vv})"
        if c.name == "station_id" and t in STATION_REF_TABLES:
            parsed[c.name], join, station_checks = _station_mapper(con, t, vv)
            parsed["station_cands"] = "ms.cands"  # the candidates of an ambiguous reference
            joins.append(join)
            parse_checks.extend(station_checks)
        elif c.name == "neighbor_id":  # adjacency: the neighbour is matched to the register like station_id
            station_map_table(con, _words_source(con, vv), vv, "_ek_map_neighbor")
            joins.append(f"LEFT JOIN _ek_map_neighbor mn ON mn.v = {vv}")
            parsed[c.name] = "mn.m"
            parsed["neighbor_cands"] = "mn.cands"
            parse_checks.append(Check("ambiguous_station", c.name, f"{vv} IS NOT NULL AND p_neighbor_cands IS NOT NULL",
                                      f"concat('neighbour ', {vv}, ' fits several stations of the register: ', "
                                      f"p_neighbor_cands, '; give the code or the full name')"))
            parse_checks.append(Check("unknown_station", c.name, bad,
                                      f"concat('neighbour ', {vv}, ' is not in the station register (by code or name)')"))
        elif c.name == "reform":
            _make_map(con, "_ek_map_reform", vv, lambda x, u=user: _reform_map(x, u))
            joins.append(f"LEFT JOIN _ek_map_reform mr ON mr.v = {vv}")
            parsed[c.name] = "mr.m"
            parse_checks.append(Check("unknown_reform", c.name, bad,
                                      f"concat('reform ', {vv}, ' is not in the reform registry')"))
        elif c.name == "category":
            func = _category_map if t == "incidents" else _dispute_category_map
            _make_map(con, "_ek_map_category", vv, lambda x, f=func, u=user: f(x, u))
            joins.append(f"LEFT JOIN _ek_map_category mc ON mc.v = {vv}")
            parsed[c.name] = f"CASE WHEN {vv} IS NOT NULL THEN COALESCE(mc.m, 'other') END"
            parsed["_category_known"] = "mc.known"  # read by the stage's _u_category only
        elif c.name in ("area_type", "handled_by"):
            codes, allowed = ((S.AREA_TYPES, "城区/农村/城乡结合 (urban/rural/mixed)") if c.name == "area_type"
                              else (S.HANDLED_BY, "派出所/巡逻/分流 (station/patrol/diverted)"))
            parsed[c.name] = _word_join(con, joins, c.name, vv, V.word_lookup(codes, user))
            parse_checks.append(Check("bad_value", c.name, bad, f"concat({shown}, ' is not {allowed}')"))
        elif t in REPORT_TABLES and c.name == "month":  # 2023年3月 / 2023-03 / a day in the month
            parsed[c.name] = f"CAST(date_trunc('month', {V.date_sql(vv, True)}) AS DATE)"
            parse_checks.append(Check("bad_datetime", c.name, bad, f"concat({shown}, ' is not a month')"))
        elif (t, c.name) == ("reforms", "intensity"):  # the dose: a number or a percentage (60% → 0.6)
            parsed[c.name] = V.share_sql(vv)
            parse_checks.append(Check("bad_number", c.name, bad, f"concat({shown}, ' is not a number or a percentage')"))
            parse_checks.append(Check("bad_intensity", c.name, f"{p(c.name)} <= 0",
                                      f"concat({shown}, ' is not positive; leave it empty when the dose is unknown')"))
        elif c.sql_type == "DOUBLE":  # yuan, hours: decimals allowed, 万 (万元) × 10,000
            parsed[c.name] = V.decimal_sql(vv, hm.units.get(c.name))
            parse_checks.append(Check("bad_number", c.name, bad, f"concat({shown}, ' is not a number')"))
            parse_checks.append(Check("bad_number", c.name, f"{p(c.name)} < 0", f"concat({shown}, ' is negative')"))
        elif c.sql_type in ("TIMESTAMP", "DATE"):
            month_ok = t == "reforms"  # adoption and stop dates: the month is what counts (panel months)
            full = vv
            if c.name in lead and c.sql_type == "TIMESTAMP":
                # the plain cast first, on the value as read (it ignores trailing blanks); the
                # other forms on the fully trimmed value, only where the cast failed (a CASE: its
                # inside is neither hoisted out nor evaluated for the other rows)
                full = clean_sql(vv)
                parsed[c.name] = (f"COALESCE(TRY_CAST({vv} AS TIMESTAMP), "
                                  f"CASE WHEN {vv} IS NOT NULL THEN {V.timestamp_sql(full)} END)")
            else:
                parsed[c.name] = V.timestamp_sql(vv) if c.sql_type == "TIMESTAMP" else V.date_sql(vv, month_ok)
            if not month_ok:
                parse_checks.append(Check("date_without_day", c.name, f"{bad} AND {V.month_only_sql(full)}",
                                          f"concat({shown}, ' gives a month but no day; a day is required here')"))
            parse_checks.append(Check("bad_datetime", c.name, bad,
                                      f"concat({shown}, ' is not a date{'/time' if c.sql_type == 'TIMESTAMP' else ''}')"))
        elif c.sql_type == "INTEGER":
            parsed[c.name] = V.number_sql(vv, hm.units.get(c.name))
            parse_checks.append(Check("bad_number", c.name, bad, f"concat({shown}, ' is not an integer')"))
            if not (t == "stations" and c.name == "population"):
                parse_checks.append(Check("bad_number", c.name, f"{p(c.name)} < 0",
                                          f"concat({shown}, ' is negative')"))
        elif c.name == "resolved":
            state = _word_join(con, joins, c.name, vv, V.word_lookup(V.resolved_words(), user))
            parsed["_resolved_state"] = state
            parsed[c.name] = f"CASE {state} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE WHEN 'open' THEN FALSE END"
            parse_checks.append(Check("bad_boolean", c.name, f"{vv} IS NOT NULL AND p__resolved_state IS NULL",
                                      f"concat({shown}, ' is not an outcome (调解成功/调解不成功/正在调解, 是/否); "
                                      f"map it under values: resolved: in a mapping file')"))
        elif c.sql_type == "BOOLEAN":
            word = _word_join(con, joins, c.name, vv, V.word_lookup(V.bool_words(), user))
            parsed[c.name] = f"CASE {word} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
            parse_checks.append(Check("bad_boolean", c.name, bad, f"concat({shown}, ' is not 是/否')"))
        else:
            parsed[c.name] = vv
    if "response_duration" in hm.positions and "arrived_at" not in present:
        # arrival given as a duration after the call: arrived_at = received_at + duration
        dur = V.duration_sql("v_response_duration", hm.units.get("response_duration"))
        parsed["arrived_at"] = f"({parsed['received_at']}) + {dur}"
        present.add("arrived_at")
        parse_checks.append(Check("bad_number", "response_duration",
                                  f"v_response_duration IS NOT NULL AND {dur} IS NULL",
                                  f"concat({S.q(_lbl(hm, 'response_duration') + ': ')}, v_response_duration, "
                                  f"' is not a duration (minutes, or 小时/分钟 with the unit)')"))
    checks.extend(parse_checks)
    if t == "disputes" and "resolved" in present and "closed_on" in present:
        checks.append(Check("open_with_close_date", "closed_on",
                            f"p__resolved_state = 'open' AND {p('closed_on')} IS NOT NULL",
                            f"concat({S.q(_lbl(hm, 'resolved') + ' ')}, {v('resolved')}, "
                            f"' means still open, but ', {S.q(_lbl(hm, 'closed_on') + ' ')}, "
                            f"CAST({p('closed_on')} AS VARCHAR), ' is given')"))

    # ---- table rules
    def ts(c):
        return p(c) if spec.column(c).sql_type == "TIMESTAMP" else f"CAST({p(c)} AS TIMESTAMP)"

    date_cols = [c.name for c in spec.columns if c.sql_type in ("DATE", "TIMESTAMP") and c.name in present]
    for c in date_cols:
        if (t, c) == ("reforms", "ended_on"):  # a planned stop (an agreement's end date) may lie ahead
            continue
        checks.append(Check("future_date", c, f"{ts(c)} > {nowl}",
                            f"concat({S.q(_lbl(hm, c) + ' ')}, CAST({p(c)} AS VARCHAR), ' lies in the future')"))
    main_date = {"incidents": "received_at", "disputes": "opened_on", "reforms": "adopted_on",
                 **dict.fromkeys(REPORT_TABLES, "month")}.get(t)
    if main_date and main_date in present:
        checks.append(Check(
            "outside_window", main_date, f"({ts(main_date)} < {wsl} OR {ts(main_date)} >= {wel})",
            f"concat({S.q(_lbl(hm, main_date) + ' ')}, CAST({p(main_date)} AS VARCHAR), "
            f"{S.q(' is outside the ' + ('panel' if t == 'reforms' else 'study') + ' window ' + wlabel)})"))
    for small, large in COUNT_BOUNDS.get(t, ()):
        if small in present and large in present:
            checks.append(Check("count_exceeds", small, f"{p(small)} > {p(large)}",
                                f"concat({S.q(_lbl(hm, small) + ' ')}, CAST({p(small)} AS VARCHAR), "
                                f"{S.q(' exceeds ' + _lbl(hm, large) + ' ')}, CAST({p(large)} AS VARCHAR))"))
    if t == "stations" and "population" in present:  # an absent column is unknown (NULL), not zero
        checks.append(Check("no_population", "population", f"COALESCE({p('population')}, 0) <= 0",
                            f"concat('station has no population (', COALESCE({v('population')}, 'empty'), ')')"))
    if t == "incidents":
        for col, reason in (("arrived_at", "arrival_before_receipt"), ("dispatched_at", "dispatch_before_receipt"),
                            ("closed_at", "closed_before_receipt")):
            if col in present:
                checks.append(Check(reason, col, f"{p(col)} < {p('received_at')}",
                                    f"concat({S.q(_lbl(hm, col) + ' ')}, CAST({p(col)} AS VARCHAR), "
                                    f"' is before receipt ', CAST({p('received_at')} AS VARCHAR))"))
            if col == "arrived_at" and col in present:
                checks.append(Check("absurd_response_time", col,
                                    f"{p(col)} - {p('received_at')} > {MAX_RESPONSE}",
                                    f"concat('response time ', CAST({p(col)} - {p('received_at')} AS VARCHAR), "
                                    f"' exceeds 24 hours')"))
    if t == "reforms" and "ended_on" in present and "adopted_on" in present:
        # the reform is off from the month of ended_on: a stop in or before the adoption month leaves no
        # treated month (a swapped pair of dates, or the wrong row)
        checks.append(Check("ends_before_adoption", "ended_on",
                            f"date_trunc('month', {p('ended_on')}) <= date_trunc('month', {p('adopted_on')})",
                            f"concat({S.q(_lbl(hm, 'ended_on') + ' ')}, CAST({p('ended_on')} AS VARCHAR), "
                            f"' is not after the adoption month ', CAST({p('adopted_on')} AS VARCHAR))"))
    if t == "adjacency":
        checks.append(Check("self_pair", "neighbor_id", f"{p('station_id')} = {p('neighbor_id')}",
                            f"concat('station ', {p('station_id')}, ' is listed as its own neighbour')"))
    if t == "disputes" and "closed_on" in present:
        checks.append(Check("closed_before_opened", "closed_on", f"{p('closed_on')} < {p('opened_on')}",
                            f"concat('closed ', CAST({p('closed_on')} AS VARCHAR), ' before opened ', "
                            f"CAST({p('opened_on')} AS VARCHAR))"))
    return parsed, joins, checks
