"""Typer-independent entry point for ``evalkit ingest TABLE FILE…``."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from evalkit.ingest.core import ingest
from evalkit.ingest.errors import IngestError
from evalkit.ingest.privacy import mask_py


def ingest_cli(table: str, files: list[str], warehouse: str | None, mapping: str | None,
               sheet: str | None, set_values: list[str] | None = None,
               suggest_mapping: str | None = None, *, replace: bool = False,
               accept_unmatched: bool = False) -> int:
    """Run an ingest and print its report (every printed line masked). Exit codes: 0 ok
    (quarantined rows are reported, not an error), 1 file-level error (nothing written), 2 every
    row was quarantined. With ``suggest_mapping`` only a mapping file is written (nothing loaded)."""
    console = Console()
    err = Console(stderr=True)
    try:
        if suggest_mapping:
            from evalkit.ingest.suggest import write_suggestion

            out = write_suggestion(table, files[0], suggest_mapping, sheet=sheet, mapping=mapping,
                                   defaults=set_values or None)
            console.print(f"mapping suggested from {mask_py(files[0])} written to {out} (nothing loaded); "
                          f"edit it, then: evalkit ingest {table} FILE --mapping {out}",
                          highlight=False, markup=False, soft_wrap=True)
            return 0
        report = ingest(table, list(files), warehouse=warehouse, mapping=mapping, sheet=sheet,
                        defaults=set_values or None, replace=replace, accept_unmatched=accept_unmatched)
    except IngestError as e:
        err.print(f"[bold red]ingest failed, nothing written:[/bold red] {escape(mask_py(e))}", markup=True,
                  highlight=False, soft_wrap=True)
        return 1
    console.print(mask_py(report.summary()), highlight=False, soft_wrap=True)
    if report.rows_quarantined:
        console.print(f"  rejected rows with reasons: SELECT * FROM quarantine WHERE table_name = '{table}'",
                      highlight=False, markup=False, soft_wrap=True)
    if report.rows_in > 0 and report.rows_accepted == 0:
        err.print("[red]every row was quarantined; see the quarantine table[/red]")
        return 2
    return 0
