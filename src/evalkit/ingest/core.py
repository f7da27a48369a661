"""The ingest engine: map headers → load raw text → validate in SQL → insert accepted rows and
quarantine the rest, all in one transaction.

Validation is vectorised in DuckDB: every row gets the index of the *first* failing check
(``_chk``), so each rejected row is quarantined exactly once with one stable reason code and
``rows_in == rows_accepted + rows_quarantined`` holds by construction (and is asserted).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb

from evalkit import coverage
from evalkit.ingest import sql as S
from evalkit.ingest import values as V
from evalkit.ingest.errors import REASONS, IngestError
from evalkit.ingest.headers import HeaderMap, load_mapping, map_headers
from evalkit.ingest.loads import (
    _has_live_load,
    _log_file,
    check_station_references,
    find_loads,
    next_load_id,
    remove_load,
)
from evalkit.ingest.privacy import id_number_sql, masked_changed_sql
from evalkit.ingest.report import IngestReport
from evalkit.ingest.sources import (
    clean_sql,
    csv_read_error,
    direct_view,
    drop_raw,
    expand_paths,
    load_raw,
    make_tmpdir,
    open_source,
    raw_lookup,
    sha256_file,
)
from evalkit.ingest.sql import ident
from evalkit.ingest.stage import direct_stage, rowids_kept
from evalkit.ingest.stations import station_map_table
from evalkit.ingest.window import resolve_window
from evalkit.ingest.words import (
    STATION_REF_TABLES,
    _category_map,
    _dispute_category_map,
    _lead_cols,
    _make_map,
    _reform_map,
    _text_keys,
    _word_join,
    _word_values,
    _words_source,
    drop_temps,
    drop_temps_quietly,
)
from evalkit.schema import COUNT_BOUNDS, REPORT_TABLES, TABLES, Table
from evalkit.warehouse import transaction

FREE_TEXT = {"stations": ("name", "county", "city", "province")}
KEYS = {
    "stations": ("station_id",),
    "reforms": ("station_id", "reform"),
    "incidents": ("incident_id",),
    "disputes": ("dispute_id",),
    **{t: ("station_id", "month") for t in REPORT_TABLES},  # monthly reports: one row per station-month
    "adjacency": ("station_id", "neighbor_id"),  # one row per ordered pair
}
MAX_RESPONSE = "INTERVAL 24 HOUR"
UNMATCHED_MAX = 0.01  # share of a file's rows that may name an unknown station before the ingest stops


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


# ------------------------------------------------------------------------------ one file
def _unmatched_gate(con, src, checks: list[Check], rows_in: int, accept_unmatched: bool, tbl: str) -> int:
    """Rows naming a station not in the register (``tbl._u_station``; all rejected): above ``UNMATCHED_MAX``
    of the file's rows the ingest stops (the register or the mapping is wrong) unless accepted."""
    if not any(c.reason == "unknown_station" for c in checks) or not rows_in:
        return 0
    # every row naming an unknown station counts, whichever check rejected it first
    unknown = "_u_station IS NOT NULL"  # the stage keeps the reference text of these rows only
    n = con.execute(f"SELECT count(*) FROM {tbl} WHERE {unknown}").fetchall()[0][0]
    if n > UNMATCHED_MAX * rows_in and not accept_unmatched:
        top = con.execute(f"SELECT _u_station, count(*) FROM {tbl} WHERE {unknown} "
                          f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5").fetchall()
        names = ", ".join(f"{S.mask_py(v)} ({c:,})" for v, c in top)
        raise IngestError(f"{n:,} of {rows_in:,} rows ({n / rows_in:.1%}, more than {UNMATCHED_MAX:.0%}) name a "
                          f"station not in the register, most often: {names}; add them to the station register "
                          f"or correct the unit names in the export, or pass --accept-unmatched to quarantine "
                          f"them", file=src.name)
    return int(n)


def _ingest_file(con, spec: Table, src, hm: HeaderMap, window, now: dt.datetime, report: IngestReport,
                 load_id: int, accept_unmatched: bool = False) -> dict:
    """One file: raw text → ``_ek_stage`` (row number, parsed values, first failing check ``_chk``;
    one pass) → duplicates → accepted rows into ``table`` and the rejected ones (joined back to their
    raw text, a small table ``_ek_bad``) into ``quarantine``."""
    t = spec.name
    drop_temps(con)
    keys = KEYS[t]
    lead = _lead_cols(spec, hm, keys)
    # a CSV DuckDB reads, with text keys: the raw rows are a view over the file (read twice: the word
    # values and key hashes, then the stage), never stored; else a raw table (or view over one)
    direct = _text_keys(spec, hm, keys) and direct_view(src)
    row_expr = load_raw(con, src, hm.positions, "_ek_v", lead, direct=direct)
    direct = direct and row_expr == "_ek_v._row" and bool(con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = '_ek_v'").fetchall()[0][0])
    try:
        cand = _word_values(con, spec, hm, lead, keys if direct else ())
    except duckdb.InvalidInputException as e:
        if not direct:
            raise
        raise csv_read_error(e, src) from None
    parsed, joins, checks = _plan(spec, hm, con, now, window, lead)
    dup_idx = len(checks) + 1
    reasons = [c.reason for c in checks] + ["duplicate_id"]
    colnames = [c.column for c in checks] + [",".join(keys)]
    chk_case = "CASE " + " ".join(f"WHEN {c.cond} THEN {i}" for i, c in enumerate(checks, start=1)) + " END"
    p_cols = ", ".join(f"{expr} AS p_{name}" for name, expr in parsed.items())
    raw_cols = [r[0] for r in con.execute("DESCRIBE _ek_v").fetchall()]
    rowcol = next((c for c in ("_row", "_rid") if c in raw_cols), None)  # none: Parquet (its rowid)
    star = f"_ek_v.* EXCLUDE ({rowcol})" if rowcol else "_ek_v.*"
    v_only = [c for c in raw_cols if c != rowcol]
    # the stage keeps the parsed values; of the raw text only what the reports below read, and only
    # on the rows they read: a station reference not in the register (_u_station) and a category
    # value not in the vocabulary (_u_category, stored as 'other'; trimmed). The quarantined rows get
    # their raw text back from _ek_v by row number, or (direct view) from the stage's _raw.
    # a direct view's stage has neither VARCHAR column of every row: station candidates go in _raw, _u_station in _ek_bad
    kept_v, u_station, fold = [], "", direct and "station_cands" in parsed
    if any(c.reason == "unknown_station" and c.column == "station_id" for c in checks):
        ref = "v_station_id" if "v_station_id" in raw_cols else S.q(hm.defaults["station_id"])
        u_station = (f"CASE WHEN {ref} IS NOT NULL AND p_station_id IS NULL AND p_station_cands IS NULL "
                     f"THEN {ref} END AS _u_station")
        kept_v += [] if direct else [u_station]
    if "v_category" in raw_cols:
        kept_v.append(f"CASE WHEN p_category = 'other' AND NOT p__category_known THEN {clean_sql('v_category')} "
                      f"END AS _u_category")
    stage_cols = ["_row", *kept_v, *(f"p_{n}" for n in parsed
                                     if n != "_category_known" and not (fold and n == "station_cands"))]
    keycols = ", ".join(f"p_{k}" for k in keys)
    off = None  # the stage's file row numbers: column _row, or rowid - off (the parallel pass, see stage.py)
    if direct:
        if any(parsed[k] != f"v_{k}" for k in keys):
            raise AssertionError(f"{t}: key {keys} is not stored as read; cannot find duplicates from the raw text")
        # candidates for the duplicate check (cand: hashes of keys written twice in the file or
        # already in the table): only these rows and the rejected ones keep their raw text (_raw),
        # so the file is never stored whole
        raw_list = "[" + ", ".join([*v_only, *(["p_station_cands"] if fold else [])]) + "]"
        off = direct_stage(con, src, hm, lead, parsed, joins, chk_case, stage_cols, raw_list, keycols, cand)
    else:
        # parse (inner select) and find each row's first failing check (outer) in one pass
        parse_sql = f"SELECT {row_expr} AS _row, {star}, {p_cols} FROM _ek_v {' '.join(joins)}"
        con.execute(f"CREATE TEMP TABLE _ek_stage AS SELECT {', '.join(stage_cols)}, {chk_case} AS _chk "
                    f"FROM ({parse_sql}) p")
    def srow(a: str = "") -> str:
        return f"{a}_row" if off is None else f"({a}rowid - {off})"

    # duplicates (only among rows that passed every other check): within this file keep the first
    # occurrence; against the warehouse (which includes earlier files of this call) reject all.
    s_pred = " AND ".join(f"s.p_{k} = d.p_{k}" for k in keys)
    if direct:  # only the candidate rows can be duplicates
        con.execute(f"CREATE TEMP TABLE _ek_dup AS SELECT {keycols}, min({srow()}) AS keep_row FROM _ek_stage "
                    f"WHERE _chk IS NULL AND _cand GROUP BY ALL HAVING count(*) > 1")
    else:
        # two steps: the hashes of the keys seen twice (a GROUP BY on one integer per row, which stays
        # in memory at 10 M rows where a GROUP BY on the key text spilled), then the exact keys among
        # the few rows with such a hash (a hash collision between different keys only widens step 2)
        con.execute(f"CREATE TEMP TABLE _ek_dup AS SELECT {keycols}, min(_row) AS keep_row FROM _ek_stage "
                    f"WHERE _chk IS NULL AND hash({keycols}) IN (SELECT hash({keycols}) AS h FROM _ek_stage "
                    f"WHERE _chk IS NULL GROUP BY h HAVING count(*) > 1) GROUP BY ALL HAVING count(*) > 1")
    con.execute(f"UPDATE _ek_stage s SET _chk = {dup_idx} FROM _ek_dup d WHERE {s_pred} AND {srow('s.')} <> d.keep_row "
                f"AND s._chk IS NULL")
    t_pred = " AND ".join(f"s.p_{k} = tgt.{k}" for k in keys)
    con.execute(f"UPDATE _ek_stage s SET _chk = {dup_idx} FROM {t} tgt WHERE {t_pred} AND s._chk IS NULL"
                + (" AND s._cand" if direct else ""))
    rowids_kept(con, src, off)  # srow below: rowid - off

    # the few rejected rows with their raw text; then the raw text can go
    if direct:
        vsel = ", ".join(f"{clean_sql(f'_raw[{i}]')} AS {ident(c)}" for i, c in enumerate(v_only, start=1))
        if fold:
            vsel += f", _raw[{len(v_only) + 1}] AS p_station_cands"
        con.execute(f"CREATE TEMP TABLE _ek_bad AS SELECT *, {u_station or 'NULL AS _u_station'} FROM (SELECT "
                    f"{'' if off is None else srow('s.') + ' AS _row, '}s.* EXCLUDE (_raw, _cand), {vsel or 'NULL AS _none'}, _raw IS NULL AS _lost FROM _ek_stage s "
                    f"WHERE s._chk IS NOT NULL)")
        if con.execute("SELECT count(*) FROM _ek_bad WHERE _lost").fetchall()[0][0]:
            raise AssertionError(f"{src.name}: a rejected row has no raw text (duplicate candidates missed)")
    else:
        tbl, rexpr, vsel = raw_lookup(row_expr, "_ek_v", v_only)
        con.execute(f"CREATE TEMP TABLE _ek_bad AS SELECT s.*, {vsel or 'NULL AS _none'} FROM _ek_stage s "
                    f"JOIN {tbl} ON {rexpr} = s._row WHERE s._chk IS NOT NULL")
    drop_raw(con, "_ek_v")

    rows_in = con.execute("SELECT count(*) FROM _ek_stage").fetchall()[0][0]
    unmatched = _unmatched_gate(con, src, checks, rows_in, accept_unmatched, "_ek_bad" if direct else "_ek_stage")
    # ---- accepted rows
    free = FREE_TEXT.get(t, ())
    out_cols = [c.name for c in spec.columns]
    sel = ", ".join(S.mask_sql(f"p_{c}") if c in free else f"p_{c}" for c in out_cols)
    masked = 0
    if free:
        present_free = [c for c in free if c in hm.positions]
        if present_free:
            cond = " + ".join(f"CAST(COALESCE({S.needs_mask_sql('p_' + c)}, FALSE) AS INTEGER)" for c in present_free)
            masked += con.execute(f"SELECT COALESCE(sum({cond}), 0) FROM _ek_stage WHERE _chk IS NULL").fetchall()[0][0]
    acc = con.execute(f"INSERT INTO {t} ({', '.join(out_cols)}, load_id) SELECT {sel}, {int(load_id)} "
                      f"FROM _ek_stage WHERE _chk IS NULL").fetchall()[0][0]

    # ---- quarantined rows
    raw_json = "json_object(" + ", ".join(
        f"{S.q(hm.original[c])}, v_{c}" for c in hm.positions) + ")"
    detail_case = "CASE _chk " + " ".join(
        f"WHEN {i} THEN {c.detail}" for i, c in enumerate(checks, start=1)
    ) + f" WHEN {dup_idx} THEN concat('duplicate key ', " + ", '/', ".join(f"COALESCE(p_{k}, '')" for k in keys) + \
        ", ' (already ingested or repeated in this file)') END"
    list_lit = "[" + ", ".join(S.q(r) for r in reasons) + "]"
    col_lit = "[" + ", ".join(S.q(c) for c in colnames) + "]"
    nowl = f"TIMESTAMP {S.q(now.strftime('%Y-%m-%d %H:%M:%S'))}"
    # masked once: the raw text's mask (costly regexes) gives the stored text and the masked count
    con.execute(f"CREATE TEMP TABLE _ek_q AS SELECT _row, _chk, {S.mask_sql(detail_case)} AS _detail, _raw_m, "
                f"{masked_changed_sql('_raw_m', raw_json)} AS _masked FROM (SELECT *, {S.mask_sql(raw_json)} "
                f"AS _raw_m FROM _ek_bad)")
    qua = con.execute(f"""
INSERT INTO quarantine (table_name, source_file, source_row, column_name, reason, detail, raw, ingested_at,
                        load_id)
SELECT {S.q(t)}, {S.q(src.name)}, _row, {col_lit}[_chk], {list_lit}[_chk], _detail, _raw_m, {nowl}, {int(load_id)}
FROM _ek_q ORDER BY _row""").fetchall()[0][0]
    if qua:
        for reason, n, n_masked in con.execute(
                f"SELECT {list_lit}[_chk], count(*), count(*) FILTER (WHERE _masked) FROM _ek_q GROUP BY 1").fetchall():
            report.add_reasons({reason: n})
            masked += n_masked
    rows_other = 0  # accepted rows stored as category 'other' (unknown values and explicit 其他)
    if t in ("incidents", "disputes") and "category" in hm.positions:
        n_cat, rows_other = con.execute("SELECT count(p_category), count(*) FILTER (WHERE p_category = 'other') "
                                        "FROM _ek_stage WHERE _chk IS NULL").fetchall()[0]
        report.category_rows += int(n_cat)
        report.other_rows += int(rows_other)
        for val, n in con.execute(
            "SELECT _u_category, count(*) FROM _ek_stage WHERE _u_category IS NOT NULL AND _chk IS NULL GROUP BY 1"
        ).fetchall():
            key = S.mask_py(val)
            report.unknown_values[key] = report.unknown_values.get(key, 0) + int(n)
    drop_temps(con)
    if rows_in != acc + qua:
        raise AssertionError(f"{src.name}: rows_in {rows_in} != accepted {acc} + quarantined {qua}")
    return {"rows_in": int(rows_in), "rows_accepted": int(acc), "rows_quarantined": int(qua), "masked": int(masked),
            "rows_other": int(rows_other), "unmatched": unmatched}


# ------------------------------------------------------------------------------ public
def ingest(table: str, paths, *, warehouse=None, con=None, mapping=None, sheet=None,
           study_window: tuple[str, str] | None = None, replace: bool = False,
           accept_unmatched: bool = False, defaults=None,
           allow_demo: bool = False) -> IngestReport:
    """Load raw exports into ``table`` of the warehouse; see :mod:`evalkit.ingest`.

    Each file is one load (``ingest_log.load_id``). ``replace``: first remove the earlier live
    loads of each file (matched by path, content or unique file name; their rows and quarantine
    go), then load it — how a corrected file or a fixed mapping is re-ingested. Without it a file
    whose content was already loaded is skipped. ``accept_unmatched``: quarantine rows naming an
    unknown station even when they are more than 1 % of a file (otherwise the call fails).
    ``mapping``: a mapping file/dict (headers, values, defaults; see :mod:`evalkit.ingest.mapping`);
    ``defaults``: ``{column: value}`` or ``['column=value', …]`` for columns the files lack (``--set``).
    ``allow_demo``: load into the demo world's warehouse (only :func:`ingest_world` does: real
    exports and the synthetic world never share a warehouse).
    """
    t0 = time.perf_counter()
    if table not in TABLES:
        raise IngestError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    spec = TABLES[table]
    user_map = load_mapping(mapping, table, defaults)
    files = expand_paths(paths, table, spec.zh)
    own = con is None
    if own:
        from evalkit.warehouse import connect

        con = connect(warehouse)
    report = IngestReport(table=table, files=[str(f) for f in files])
    now = dt.datetime.now().replace(microsecond=0)
    tmp = make_tmpdir()
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-sha256")
    # bound DuckDB's memory during the ingest (temp tables spill to disk beyond it); restored after
    old_limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = {S.q(os.environ.get('EVALKIT_INGEST_MEMORY', '3GB'))}")
    try:
        with transaction(con):
            from evalkit.warehouse import is_demo

            if not allow_demo and is_demo(con):
                raise IngestError("this warehouse holds the synthetic demo world; load real exports into another "
                                  "one (default data/warehouse.duckdb, or --warehouse PATH)")
            window = resolve_window(con, study_window, now)
            for f in files:
                sha_job = None
                if not replace and not _has_live_load(con, table):
                    # nothing to compare the file with: its SHA-256 (only logged) is computed in a
                    # thread while DuckDB loads it (hashlib releases the GIL), not before
                    sha = ""
                    sha_job = hasher.submit(sha256_file, f)
                else:
                    sha = sha256_file(f)
                if replace:
                    olds = find_loads(con, f, table, sha)
                    if not olds:
                        raise IngestError(f"--replace: no earlier load of this file in {table} (matched by path, "
                                          f"content and file name); drop --replace, or forget the old file first "
                                          f"(evalkit warehouse forget OLD_FILE)", file=str(f))
                    for lid, _t, old_file in olds:
                        d, q = remove_load(con, lid, "replaced", now, old_file)
                        report.replaced.append({"file": old_file, "load_id": lid, "rows": d, "quarantined": q})
                elif sha_job is None:
                    hit = con.execute("SELECT source_file FROM ingest_log WHERE table_name = ? AND sha256 = ? "
                                      "AND live LIMIT 1", [table, sha]).fetchall()
                    if hit:
                        report.skipped_files.append(str(f))
                        report.per_file.append({"table": table, "file": str(f),
                                                "status": "skipped (already ingested)", "rows_in": 0,
                                                "rows_accepted": 0, "rows_quarantined": 0, "masked_values": 0})
                        continue
                src = open_source(f, tmp.name, table_zh=spec.zh, table=table, sheet=sheet, user=user_map)
                hm = map_headers(src.headers, spec, user_map, src.name, header_row=src.header_row)
                report.note_headers(hm)
                for h in hm.unknown:
                    if h not in report.unknown_columns:
                        report.unknown_columns.append(h)
                for h in hm.personal:
                    if h not in report.refused_personal_columns:
                        report.refused_personal_columns.append(h)
                load_id = next_load_id(con)
                res = _ingest_file(con, spec, src, hm, window, now, report, load_id, accept_unmatched)
                report.rows_in += res["rows_in"]
                report.rows_accepted += res["rows_accepted"]
                report.rows_quarantined += res["rows_quarantined"]
                report.masked_values += res["masked"]
                report.unmatched_rows += res["unmatched"]
                report.load_ids.append(load_id)
                report.per_file.append({"table": table, "file": str(f), "status": "ingested",
                                        "rows_in": res["rows_in"], "rows_accepted": res["rows_accepted"],
                                        "rows_quarantined": res["rows_quarantined"], "masked_values": res["masked"]})
                _log_file(con, table, str(f), sha_job.result() if sha_job else sha, res, now, load_id)
            report.check()
            if table == "stations" and report.replaced:
                check_station_references(con, "replacing the station register")
            coverage.refresh(con, [table])
    finally:
        drop_temps_quietly(con)
        hasher.shutdown(cancel_futures=True)
        tmp.cleanup()
        con.execute(f"SET memory_limit = {S.q(old_limit)}")
        if own:
            con.close()
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["ingest", "IngestReport", "IngestError", "REASONS", "resolve_window"]
