"""The study window of an ingest: explicit bounds, the warehouse's meta, or 2000-01-01..now."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from evalkit.ingest.errors import IngestError


def _bound(text: str, end: bool) -> dt.datetime:
    s = str(text).strip()
    try:
        if len(s) == 4 and s.isdigit():
            d = dt.datetime(int(s), 1, 1)
            return d.replace(year=d.year + 1) if end else d
        if len(s) in (6, 7) and s[4] in "-/":
            y, m = int(s[:4]), int(s[5:])
            d = dt.datetime(y, m, 1)
            if end:
                d = dt.datetime(y + (m == 12), m % 12 + 1, 1)
            return d
        d = pd.Timestamp(s).to_pydatetime()
    except (ValueError, TypeError):
        raise IngestError(f"bad study window bound {text!r} (use YYYY-MM or YYYY-MM-DD)") from None
    if end and d.hour == d.minute == d.second == 0:
        d = d + dt.timedelta(days=1)  # a date-only end bound is inclusive
    return d


def resolve_window(con, study_window, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, str]:
    """(start, end-exclusive, label). Explicit window, else meta study_start/study_end, else 2000-01-01..now."""
    if study_window is not None:
        start, end = study_window
        src = "given"
    else:
        from evalkit.warehouse import get_meta

        start = get_meta(con, "study_start")
        end = get_meta(con, "study_end")
        src = "meta"
        if not start or not end:
            start, end, src = "2000-01-01", None, "default"
    s = _bound(start, end=False)
    e = _bound(end, end=True) if end else now
    if e <= s:
        raise IngestError(f"study window is empty: {start} .. {end}")
    return s, e, f"{s:%Y-%m-%d}..{(e - dt.timedelta(seconds=1)):%Y-%m-%d} ({src})"
