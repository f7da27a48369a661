"""Opening the warehouse for writing: the file attached with smaller row groups (warehouse.ROW_GROUP_ROWS),
one DuckDB instance a file per process, spills beside the file, and the file left whole after close."""

from __future__ import annotations

import duckdb
import pytest

from evalkit.warehouse import ROW_GROUP_ROWS, WarehouseError, connect, open_db


def _row_groups(con, table: str) -> list[int]:
    return [r[0] for r in con.execute(
        f"SELECT max(start + count) - min(start) FROM pragma_storage_info('{table}') WHERE column_id = 0 "
        f"GROUP BY row_group_id ORDER BY row_group_id").fetchall()]


def test_writable_connection_appends_smaller_row_groups_in_order(tmp_path):
    wh = tmp_path / "county.duckdb"
    con = connect(wh)
    assert con.execute("SELECT current_database()").fetchall()[0][0] == "county"  # as duckdb.connect names it
    assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == str(wh.resolve()) + ".tmp"
    # a stage of DuckDB's default row groups less a few rejected rows in each: the filtered, order-keeping
    # insert is written in row groups of at most ROW_GROUP_ROWS, in the stage's order
    con.execute("CREATE TEMP TABLE stage AS SELECT range AS i, range % 997 = 0 AS rejected FROM range(400000)")
    con.execute("CREATE TABLE kept (i BIGINT)")
    con.execute("INSERT INTO kept SELECT i FROM stage WHERE NOT rejected")
    sizes = _row_groups(con, "kept")
    assert max(sizes) <= ROW_GROUP_ROWS < 122_880 and sum(sizes) == 400000 - 402
    want = duckdb.sql("SELECT range AS i FROM range(400000) WHERE range % 997 <> 0").fetchall()
    assert con.execute("SELECT i FROM kept ORDER BY rowid").fetchall() == want
    con.close()
    assert not (tmp_path / "county.duckdb.wal").exists()  # checkpointed when the last connection closed
    plain = duckdb.connect(str(wh), read_only=True)  # the file stays a plain DuckDB database
    assert plain.execute("SELECT count(*) FROM kept").fetchall()[0][0] == 400000 - 402
    plain.close()


def test_connections_to_one_file_share_its_instance(tmp_path):
    wh = tmp_path / "wh.duckdb"
    a, b = connect(wh), connect(wh)
    a.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert b.execute("SELECT x FROM t").fetchall() == [(1,)]  # committed by a, seen by b
    a.close()  # b goes on: the connections are peers, not one another's cursors
    assert b.execute("SELECT x FROM t").fetchall() == [(1,)]
    c = connect(wh)
    b.close()
    c.execute("INSERT INTO t VALUES (2)")
    assert c.execute("SELECT count(*) FROM t").fetchall() == [(2,)]
    c.close()
    # all closed: the file is free again, read-only and to a plain DuckDB included
    with open_db(wh, read_only=True) as ro:
        assert ro.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    plain = duckdb.connect(str(wh))
    plain.close()


def test_threads_open_one_file_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    wh = tmp_path / "wh.duckdb"
    connect(wh).close()  # (the schema first: creating it from 8 threads at once conflicts inside DuckDB)
    with ThreadPoolExecutor(8) as pool:
        cons = list(pool.map(lambda _: connect(wh), range(8)))
    for i, con in enumerate(cons):
        con.execute(f"CREATE TABLE t{i} AS SELECT {i} AS x")
    assert cons[0].execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 't%'").fetchall() == [(8,)]
    for con in cons:
        con.close()


def test_read_only_while_writable_is_one_line_error(tmp_path):
    wh = tmp_path / "wh.duckdb"
    con = connect(wh)
    with pytest.raises(WarehouseError, match="already open in this program by another DuckDB connection"):
        open_db(wh, read_only=True)
    con.close()


@pytest.mark.parametrize("stem", ["memory", "2024 县局", "temp", "县局", 'a"b', "it's", "information_schema", "pg_catalog", "a.b"])
def test_file_names_duckdb_cannot_take_as_a_name(tmp_path, stem):
    wh = tmp_path / f"{stem}.duckdb"
    con = connect(wh)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                       ).fetchall()[0][0] == str(wh.resolve())
    con.close()
    with open_db(wh, read_only=True) as ro:
        assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
