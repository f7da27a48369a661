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
