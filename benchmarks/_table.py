"""Printing a benchmark's table: Markdown when ``tabulate`` is installed, plain text otherwise."""

from __future__ import annotations

import pandas as pd


def print_table(df: pd.DataFrame, floatfmt: str = ".3f") -> None:
    """Print ``df`` as a Markdown table (for docs) or, without ``tabulate``, as plain text."""
    try:
        import tabulate  # noqa: F401
    except ImportError:
        print(df.to_string(index=False, float_format=lambda x: format(x, floatfmt)))
        return
    print(df.to_markdown(index=False, floatfmt=floatfmt))
