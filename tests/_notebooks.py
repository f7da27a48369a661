"""Tiny notebooks for the kernel tests (test_kernel_start, test_kernel_reuse)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def tiny_notebook(path: Path, *cells: str) -> Path:
    """A notebook with papermill's ``parameters`` cell (``results_path = None``) and then ``cells``."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("results_path = None", metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(c) for c in cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


#: results.json keys that hold run times (they differ from run to run)
TIMING = {"seconds", "timings", "timing"}


def without_timings(x):
    """``x`` (parsed results.json) without its run-time keys, for comparing two runs' numbers."""
    if isinstance(x, dict):
        return {k: without_timings(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [without_timings(v) for v in x]
    return x
