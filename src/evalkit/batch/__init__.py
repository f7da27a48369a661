"""Batch evaluations: many params files (or a matrix) → parallel papermill runs → portfolio.

    evalkit batch params/ --workers 2               # a folder, globs or matrix files
    evalkit batch params/matrix_demo.yaml --dask    # the same on a Dask cluster

Python API: :func:`run_batch` (returns a :class:`BatchReport`), :func:`plan` (expansion),
:func:`batch_cli` (what ``evalkit batch`` calls). See ``docs/batch.md``.
"""

from __future__ import annotations

from rich.console import Console

from evalkit.batch.core import BatchReport, run_batch
from evalkit.batch.plan import BatchItem, PlanError, expand_matrix, plan, warehouse_fingerprint

__all__ = ["BatchItem", "BatchReport", "PlanError", "batch_cli", "expand_matrix", "plan", "run_batch",
           "warehouse_fingerprint"]


def batch_cli(paths: list[str], workers: int, outputs: str, dask: bool, scheduler: str | None,
              warehouse: str | None, pdf: bool, name: str | None) -> int:
    """``evalkit batch``: run, print where things are, return the exit code.

    0 = every evaluation succeeded (or was already complete), 1 = some failed,
    2 = a source could not be read (nothing ran), 128+signal = interrupted (re-run to resume).
    """
    console = Console(stderr=True)
    try:
        rep = run_batch(list(paths), outputs, name=name, workers=workers, dask=dask, scheduler=scheduler,
                        warehouse=warehouse, pdf=pdf, console=console)
    except PlanError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True, highlight=False)
        return 2
    for note in rep.notes:
        console.print(f"[dim]{note}[/]")
    if rep.interrupted:
        console.print(f"[yellow]interrupted[/] after {rep.seconds:.0f}s: {len(rep.ok)} evaluation(s) complete; "
                      f"re-run the same command to resume ({rep.directory})")
        return rep.exit_code
    console.print(f"[bold]batch {rep.name}[/]: {len(rep.ok)} ok ({len(rep.skipped)} already complete, skipped), "
                  f"{len(rep.failed)} failed in {rep.seconds:.1f}s → {rep.directory}")
    for eid in rep.failed:
        err = " ".join(x.strip() for x in (rep.records[eid].get("error") or "").strip().splitlines()[:2])
        console.print(f"  [red]✗ {eid}[/]: {err[:300]}  [dim]{rep.directory / 'logs' / (eid + '.log')}[/]")
    if rep.summary:
        console.print(f"summary  {rep.summary}")
    if rep.portfolio_pdf or rep.portfolio_html:
        console.print(f"brief    {rep.portfolio_pdf or rep.portfolio_html}")
    return rep.exit_code
