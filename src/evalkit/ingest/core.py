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

import duckdb

from evalkit import coverage
from evalkit.ingest import sampled as sampling
from evalkit.ingest import sql as S
from evalkit.ingest.errors import REASONS, IngestError
from evalkit.ingest.filehash import BackgroundFileScan
from evalkit.ingest.headers import HeaderMap, load_mapping, map_headers
from evalkit.ingest.late_dups import lines_table, mark_candidates, raw_text
from evalkit.ingest.loads import (
    _has_live_load,
    _log_file,
    check_station_references,
    find_loads,
    next_load_id,
    remove_load,
)
from evalkit.ingest.plan import KEYS, Check, _plan
from evalkit.ingest.privacy import mask_rows
from evalkit.ingest.report import IngestReport
from evalkit.ingest.sampled import missed_sql, settle_missed
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
)
from evalkit.ingest.sql import ident
from evalkit.ingest.stage import direct_stage, rowids_kept, serial_stage
from evalkit.ingest.window import resolve_window
from evalkit.ingest.words import (
    WORDS,
    _lead_cols,
    _text_keys,
    _word_values,
    drop_maps,
    drop_temps,
    drop_temps_quietly,
)
from evalkit.schema import TABLES, Table
from evalkit.warehouse import transaction

FREE_TEXT = {"stations": ("name", "county", "city", "province")}
UNMATCHED_MAX = 0.01  # share of a file's rows that may name an unknown station before the ingest stops


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
                 load_id: int, accept_unmatched: bool = False, scan: BackgroundFileScan | None = None) -> dict:
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
        cand, sampled, late = _word_values(con, spec, hm, lead, keys if direct else (), src if direct else None,
                                           late_ok=scan is not None and scan.keeps_lines)
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
    # their raw text back from _ek_v by row number, or (direct view) from the stage's _raw, or (a large
    # plain CSV, late_dups) from their lines.
    # a direct view's stage has neither VARCHAR column of every row: station candidates go in _raw, _u_station in _ek_bad
    # (rows a sampled map missed are parsed again and updated in place: candidates in a column then)
    kept_v, u_station, fold = [], "", direct and "station_cands" in parsed and not sampled
    if any(c.reason == "unknown_station" and c.column == "station_id" for c in checks):
        ref = "v_station_id" if "v_station_id" in raw_cols else S.q(hm.defaults["station_id"])
        u_station = (f"CASE WHEN {ref} IS NOT NULL AND p_station_id IS NULL AND p_station_cands IS NULL "
                     f"THEN {ref} END AS _u_station")
        kept_v += [] if direct else [u_station]
    if "v_category" in raw_cols:
        kept_v.append(f"CASE WHEN p_category = 'other' AND NOT p__category_known THEN {clean_sql('v_category')} "
                      f"END AS _u_category")
    keycols = ", ".join(f"p_{k}" for k in keys)
    stage_cols = ["_row", *kept_v, *(f"p_{n}" for n in parsed
                                     if n != "_category_known" and not (fold and n == "station_cands")),
                  *([f"hash({keycols}) AS _h"] if late else [])]  # the key hash, for late_dups
    out = None  # with sampled words: the condition marking a row whose word value a map misses
    off = None  # the stage's file row numbers: column _row, or rowid - off (the parallel pass, see stage.py)
    if direct:
        if any(parsed[k] != f"v_{k}" for k in keys):
            raise AssertionError(f"{t}: key {keys} is not stored as read; cannot find duplicates from the raw text")
        # candidates for the duplicate check (cand: hashes of keys written twice in the file or
        # already in the table): only these rows and the rejected ones keep their raw text (_raw),
        # so the file is never stored whole
        # (late: no raw text in the stage; the few rows that need it read it back from their lines)
        raw_list = None if late else "[" + ", ".join([*v_only, *(["p_station_cands"] if fold else [])]) + "]"
        out = missed_sql(joins) if sampled else None
        off = direct_stage(con, src, hm, lead, parsed, joins, chk_case, stage_cols, raw_list, keycols, cand, out)
        if late:
            scan.hurry()  # its line ends are needed below (late_dups): the rest of the file is read beside this
    else:
        # parse (inner select) and find each row's first failing check (outer) in one pass
        parse_sql = f"SELECT {row_expr} AS _row, {star}, {p_cols} FROM _ek_v {' '.join(joins)}"
        con.execute(f"CREATE TEMP TABLE _ek_stage AS SELECT {', '.join(stage_cols)}, {chk_case} AS _chk "
                    f"FROM ({parse_sql}) p")
    def srow(a: str = "") -> str:
        return f"{a}_row" if off is None else f"({a}rowid - {off})"

    if direct and out is not None:  # the rows with a word value the sample missed: parsed again
        def replan() -> None:
            drop_maps(con)
            again = _plan(spec, hm, con, now, window, lead)
            if (again[0], again[1], [c.cond for c in again[2]]) != (parsed, joins, [c.cond for c in checks]):
                raise AssertionError(f"{src.name}: the plan changed when its value maps were completed")

        settle_missed(
            con, joins, v_only, srow, WORDS, replan,
            lambda target, missed: serial_stage(con, target, parsed, joins, chk_case, stage_cols, raw_list, keycols,
                                                cand, missed),
            [c.split(" AS ")[-1] for c in stage_cols if c != "_row"] + ["_chk", "_cand"],
            (lambda rows: lines_table(con, src, scan, rows, "_ek_missed", v_only, hm.positions, lead, as_list=False))
            if late else None)
    if late:  # the duplicate candidates of a file whose key scan was saved: from the stage's keys
        mark_candidates(con, t, keys, bool(con.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchall()[0][0]))

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
                f"AND s._chk IS NULL" + (" AND s._cand" if direct else ""))  # (a filter on the scan: few rows probe)
    t_pred = " AND ".join(f"s.p_{k} = tgt.{k}" for k in keys)
    con.execute(f"UPDATE _ek_stage s SET _chk = {dup_idx} FROM {t} tgt WHERE {t_pred} AND s._chk IS NULL"
                + (" AND s._cand" if direct else ""))
    rowids_kept(con, src, off)  # srow below: rowid - off

    # the few rejected rows with their raw text; then the raw text can go
    if direct:
        raw, fix, excl = "s._raw", "", "_raw, _cand"
        if late:  # a stage without raw text: the rejected rows' read back from their lines
            raw_text(con, src, scan, srow, v_only, hm.positions, lead, keys)
            raw, fix, excl = "f._raw", f" LEFT JOIN _ek_rawfix f ON f._row = {srow('s.')}", "_cand"
        vsel = ", ".join(f"{clean_sql(f'{raw}[{i}]')} AS {ident(c)}" for i, c in enumerate(v_only, start=1))
        if fold:
            vsel += f", _raw[{len(v_only) + 1}] AS p_station_cands"
        con.execute(f"CREATE TEMP TABLE _ek_bad AS SELECT *, {u_station or 'NULL AS _u_station'} FROM (SELECT "
                    f"{'' if off is None else srow('s.') + ' AS _row, '}s.* EXCLUDE ({excl}), {vsel or 'NULL AS _none'}, "
                    f"{raw} IS NULL AS _lost FROM _ek_stage s{fix} WHERE s._chk IS NOT NULL)")
        if con.execute("SELECT count(*) FROM _ek_bad WHERE _lost").fetchall()[0][0]:
            raise AssertionError(f"{src.name}: a rejected row has no raw text (duplicate candidates missed, or its line not read back)")
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
    # ---- quarantined rows: their detail and raw text are masked (costly regexes, on one thread for
    # a few thousand rows) on a second connection while this one inserts the accepted rows (the
    # insert leaves part of a core idle); the rows go there and back in memory, as Arrow
    raw_json = "json_object(" + ", ".join(
        f"{S.q(hm.original[c])}, v_{c}" for c in hm.positions) + ")"
    detail_case = "CASE _chk " + " ".join(
        f"WHEN {i} THEN {c.detail}" for i, c in enumerate(checks, start=1)
    ) + f" WHEN {dup_idx} THEN concat('duplicate key ', " + ", '/', ".join(f"COALESCE(p_{k}, '')" for k in keys) + \
        ", ' (already ingested or repeated in this file)') END"
    list_lit = "[" + ", ".join(S.q(r) for r in reasons) + "]"
    col_lit = "[" + ", ".join(S.q(c) for c in colnames) + "]"
    nowl = f"TIMESTAMP {S.q(now.strftime('%Y-%m-%d %H:%M:%S'))}"
    unmasked = con.sql(f"SELECT _row, _chk, CAST({detail_case} AS VARCHAR) AS _detail, "
                           f"CAST({raw_json} AS VARCHAR) AS _raw FROM _ek_bad").to_arrow_table()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-mask") as pool:
        masking = pool.submit(mask_rows, con.cursor(), unmasked)
        acc = con.execute(f"INSERT INTO {t} ({', '.join(out_cols)}, load_id) SELECT {sel}, {int(load_id)} "
                          f"FROM _ek_stage WHERE _chk IS NULL").fetchall()[0][0]
        S.frame_to_temp_table(con, "_ek_q", masking.result(), "*")
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
    hashing: list[BackgroundFileScan] = []  # the files' background scans (closed at the end)
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
                # the file's SHA-256 and line ends, read by a low-priority thread (filehash); the hash is
                # needed before the load only to compare the file with the live loads (then finished here)
                # line ends are noted only where lines may be read back (a large CSV, see late_dups)
                scan = BackgroundFileScan(f, lines=f.suffix.lower() in (".csv", ".txt")
                                          and f.stat().st_size >= sampling.SAMPLE_MIN_BYTES)
                hashing.append(scan)
                sha = "" if not replace and not _has_live_load(con, table) else scan.result()
                if replace:
                    olds = find_loads(con, f, table, sha)
                    if not olds:
                        raise IngestError(f"--replace: no earlier load of this file in {table} (matched by path, "
                                          f"content and file name); drop --replace, or forget the old file first "
                                          f"(evalkit warehouse forget OLD_FILE)", file=str(f))
                    for lid, _t, old_file in olds:
                        d, q = remove_load(con, lid, "replaced", now, old_file)
                        report.replaced.append({"file": old_file, "load_id": lid, "rows": d, "quarantined": q})
                elif sha:
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
                res = _ingest_file(con, spec, src, hm, window, now, report, load_id, accept_unmatched, scan)
                report.rows_in += res["rows_in"]
                report.rows_accepted += res["rows_accepted"]
                report.rows_quarantined += res["rows_quarantined"]
                report.masked_values += res["masked"]
                report.unmatched_rows += res["unmatched"]
                report.load_ids.append(load_id)
                report.per_file.append({"table": table, "file": str(f), "status": "ingested",
                                        "rows_in": res["rows_in"], "rows_accepted": res["rows_accepted"],
                                        "rows_quarantined": res["rows_quarantined"], "masked_values": res["masked"]})
                _log_file(con, table, str(f), sha or scan.result(), res, now, load_id)
                scan.close()  # its line ends go now, not at the end of a call of many files
                hashing.remove(scan)
            report.check()
            if table == "stations" and report.replaced:
                check_station_references(con, "replacing the station register")
            coverage.refresh(con, [table])
    finally:
        drop_temps_quietly(con)
        for job in hashing:
            job.close()
        tmp.cleanup()
        con.execute(f"SET memory_limit = {S.q(old_limit)}")
        if own:
            con.close()
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["ingest", "IngestReport", "IngestError", "REASONS", "resolve_window"]
