"""Ingest raw police exports into the warehouse.

``ingest(table, paths, …)`` reads CSV (UTF-8, UTF-8 with BOM, GB18030/GBK — detected from a
byte sample), XLSX (a chosen sheet) and Parquet files, directories and globs; maps Chinese
and user-defined header aliases to the canonical columns of :mod:`evalkit.schema`; refuses
personal-data columns; parses values and validates rows with SQL in DuckDB; inserts accepted
rows and stores every rejected row in ``quarantine`` with a stable reason code (see
:data:`REASONS`) — all in one transaction. Files already ingested (same sha256) are skipped.

Row numbers (``quarantine.source_row``): CSV and XLSX count the header as row 1 (first data
row = 2); Parquet rows count from 1.
"""

from evalkit.ingest.cli import ingest_cli
from evalkit.ingest.core import ingest
from evalkit.ingest.errors import REASONS, IngestError
from evalkit.ingest.report import IngestReport
from evalkit.ingest.world import ingest_world

__all__ = ["ingest", "ingest_world", "ingest_cli", "IngestReport", "IngestError", "REASONS"]
