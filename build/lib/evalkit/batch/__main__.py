"""``python -m evalkit.batch PATHS… [--workers N] [--dask] …`` (same as ``evalkit batch``)."""

from __future__ import annotations

import argparse
import sys

from evalkit.batch import batch_cli


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evalkit.batch", description=__doc__)
    ap.add_argument("paths", nargs="+", help="params files, folders, globs or matrix files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--outputs", default="outputs")
    ap.add_argument("--dask", action="store_true")
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--warehouse", default=None)
    ap.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--name", default=None)
    a = ap.parse_args(argv)
    return batch_cli(a.paths, a.workers, a.outputs, a.dask, a.scheduler, a.warehouse, a.pdf, a.name)


if __name__ == "__main__":
    sys.exit(main())
