"""The embedded DuckDB warehouse: where it lives, how to open it, bookkeeping helpers.

The schema (canonical tables from :mod:`evalkit.schema` plus the ``meta``, ``quarantine`` and
``ingest_log`` bookkeeping tables) is created on first connect, so every caller sees the same
layout. The path defaults to ``data/warehouse.duckdb`` and can be overridden with the
``EVALKIT_WAREHOUSE`` environment variable or an explicit argument.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from evalkit.schema import META_DDL, META_MIGRATIONS, TABLES

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
ENV_VAR = "EVALKIT_WAREHOUSE"


def warehouse_path(path: str | Path | None = None) -> Path:
    """Resolve the warehouse file: explicit ``path``, else ``$EVALKIT_WAREHOUSE``, else the default."""
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_WAREHOUSE


def find_existing(path: str | Path | None = None) -> Path:
    """The warehouse file to *read*: like :func:`warehouse_path`, but a relative path that does not
    exist from the working directory is also looked up in its parent folders (a notebook opened in
    JupyterLab runs in ``notebooks/``, while ``data/warehouse.duckdb`` sits at the project root)."""
    p = warehouse_path(path)
    if p.is_absolute() or p.exists():
        return p
    for parent in Path.cwd().resolve().parents:
        if (parent / p).exists():
            return parent / p
    return p


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the canonical tables and bookkeeping tables if they are missing."""
    for t in TABLES.values():
        con.execute(t.ddl())
    for ddl in META_DDL:
        con.execute(ddl)
    for ddl in META_MIGRATIONS:
        con.execute(ddl)


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and on first use create) the warehouse.

    ``path=":memory:"`` opens a throwaway in-memory warehouse (handy in tests). A read-only
    connection never writes; it requires the file to exist already.
    """
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:")
        create_schema(con)
        return con
    p = warehouse_path(path)
    if read_only:
        if not p.exists():
            raise FileNotFoundError(f"warehouse {p} does not exist; ingest data first (evalkit ingest …)")
        return duckdb.connect(str(p), read_only=True)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(p))
    create_schema(con)
    return con


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value) -> None:
    """Store ``value`` under ``key`` in ``meta`` (non-strings are stored as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, text])


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default=None):
    """Value stored under ``key`` as a string (dicts/lists come back decoded), or ``default``."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        row = rows[0] if rows else None
    except duckdb.CatalogException:
        return default
    if row is None or row[0] is None:
        return default
    text = row[0]
    if text[:1] in ("{", "["):  # containers were stored as JSON by set_meta
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the canonical tables and the quarantine (``{table: n}``)."""
    out: dict[str, int] = {}
    for name in [*TABLES, "quarantine", "ingest_log"]:
        try:
            out[name] = int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
        except duckdb.CatalogException:
            out[name] = 0
    return out
