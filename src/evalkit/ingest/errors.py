"""Ingest errors and the stable quarantine reason codes."""

from __future__ import annotations


class IngestError(Exception):
    """A file-level problem that stops an ingest (nothing of the call is written).

    The message names the file and, where known, the row (1-based line in the file, header =
    row 1) and the column.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        parts = []
        if file is not None:
            parts.append(str(file))
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file = file
        self.row = row
        self.column = column
        self.reason = message


# Stable quarantine reason codes (``quarantine.reason``) → short English description.
REASONS: dict[str, str] = {
    "missing_required": "a required value is empty",
    "bad_datetime": "a date/time value could not be parsed",
    "bad_number": "a number could not be parsed, is not an integer or is negative",
    "bad_boolean": "a yes/no value is not one of 是/否/1/0/true/false",
    "bad_value": "a value is not one of the allowed codes (area type, handling unit)",
    "unknown_station": "the station id/name is not in the station register",
    "ambiguous_station": "the station name fits several stations of the register (candidates in the detail)",
    "unknown_reform": "the reform name is not in the reform registry",
    "no_population": "a station has no or zero population",
    "dispatch_before_receipt": "dispatch time is before the call was received",
    "arrival_before_receipt": "arrival time is before the call was received",
    "closed_before_receipt": "closing time is before the call was received",
    "closed_before_opened": "a dispute was closed before it was opened",
    "absurd_response_time": "arrival more than 24 hours after the call",
    "future_date": "a date lies in the future",
    "outside_window": "a date lies outside the study/panel window",
    "date_without_day": "a date gives a month but no day where a day is required",
    "formula_without_value": "an XLSX formula cell has no saved value (save the file in Excel/WPS)",
    "unbalanced_quote": "a CSV line holds an odd number of double quotes (a stray quote); the line is not read",
    "id_number_in_key": "a key column holds a citizen ID number; the row is refused",
    "open_with_close_date": "a dispute still open (正在调解) carries a closing date",
    "count_exceeds": "a monthly report's part exceeds its total (满意人数 > 调查人数, 查实数 > 投诉数)",
    "ends_before_adoption": "a reform's stop date (ended_on) is not after its adoption month",
    "bad_intensity": "a reform's intensity (dose) is zero or negative",
    "self_pair": "an adjacency row pairs a station with itself",
    "duplicate_id": "the key was already seen in this ingest or is already in the warehouse",
}
