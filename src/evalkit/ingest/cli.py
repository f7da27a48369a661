"""Typer-independent entry point for ``evalkit ingest TABLE FILE…``."""

from __future__ import annotations

from rich.console import Console

from evalkit.ingest.core import ingest
from evalkit.ingest.errors import IngestError


def ingest_cli(table: str, files: list[str], warehouse: str | None, mapping: str | None,
               sheet: str | None, *, replace: bool = False, accept_unmatched: bool = False) -> int:
    """Run an ingest and print its report. Exit codes: 0 ok (quarantined rows are reported, not an
    error), 1 file-level error (nothing written), 2 every row was quarantined."""
    console = Console()
    err = Console(stderr=True)
    try:
        report = ingest(table, list(files), warehouse=warehouse, mapping=mapping, sheet=sheet,
                        replace=replace, accept_unmatched=accept_unmatched)
    except IngestError as e:
        err.print(f"[bold red]ingest failed, nothing written:[/bold red] {e}", markup=True, highlight=False)
        return 1
    console.print(report.summary(), highlight=False)
    if report.rows_quarantined:
        console.print(f"  rejected rows with reasons: SELECT * FROM quarantine WHERE table_name = '{table}'",
                      highlight=False, markup=False)
    if report.rows_in > 0 and report.rows_accepted == 0:
        err.print("[red]every row was quarantined; see the quarantine table[/red]")
        return 2
    return 0
