"""The result of one ingest call."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class IngestReport:
    table: str
    files: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    refused_personal_columns: list[str] = field(default_factory=list)
    masked_values: int = 0
    skipped_files: list[str] = field(default_factory=list)
    # value → count of category values that were not in the registry (stored as "other")
    unknown_values: dict[str, int] = field(default_factory=dict)
    per_file: list[dict] = field(default_factory=list)
    # columns the files did not have (stored NULL = unknown), and "did you mean" for unmatched headers
    missing_columns: list[str] = field(default_factory=list)
    suggestions: dict[str, str] = field(default_factory=dict)
    # accepted rows with a category, and of them stored as 'other' (unknown values and explicit 其他);
    # ingest_log.rows_other holds the same count per file
    category_rows: int = 0
    other_rows: int = 0
    seconds: float = 0.0
    # rows naming a station not in the register (all quarantined; above 1 % only with --accept-unmatched)
    unmatched_rows: int = 0
    load_ids: list[int] = field(default_factory=list)
    # earlier loads removed by --replace: {"file", "load_id", "rows", "quarantined"}
    replaced: list[dict] = field(default_factory=list)

    def check(self) -> None:
        """The reconciliation invariant: every row read is either accepted or quarantined."""
        if self.rows_in != self.rows_accepted + self.rows_quarantined:
            raise AssertionError(
                f"ingest of {self.table}: rows_in={self.rows_in} != accepted {self.rows_accepted} "
                f"+ quarantined {self.rows_quarantined}"
            )
        if sum(self.quarantined_by_reason.values()) != self.rows_quarantined:
            raise AssertionError(f"ingest of {self.table}: quarantine reasons do not add up")

    def add_reasons(self, reasons: dict[str, int]) -> None:
        for k, v in reasons.items():
            self.quarantined_by_reason[k] = self.quarantined_by_reason.get(k, 0) + int(v)

    @property
    def other_share(self) -> float | None:
        """Share of accepted rows whose category was stored as ``other`` (None without categories)."""
        return self.other_rows / self.category_rows if self.category_rows else None

    def note_headers(self, hm) -> None:
        """Collect what a file's header mapping found (missing columns, suggestions)."""
        for c in hm.missing:
            if c not in self.missing_columns:
                self.missing_columns.append(c)
        self.suggestions.update(hm.suggestions)

    def to_frame(self) -> pd.DataFrame:
        """One row per file (ingested or skipped) with its counts."""
        cols = ["table", "file", "status", "rows_in", "rows_accepted", "rows_quarantined", "masked_values"]
        return pd.DataFrame(self.per_file, columns=cols)

    def summary(self) -> str:
        """Readable multi-line text (rich markup)."""
        lines = [
            f"[bold]ingest {self.table}[/bold]: {len(self.files)} file(s), "
            f"{self.rows_in:,} rows in → [green]{self.rows_accepted:,} accepted[/green], "
            f"[red]{self.rows_quarantined:,} quarantined[/red] ({self.seconds:.1f} s)"
        ]
        for reason, n in sorted(self.quarantined_by_reason.items(), key=lambda kv: -kv[1]):
            lines.append(f"  quarantined {reason}: {n:,}")
        for r in self.replaced:
            lines.append(f"  replaced earlier load {r['load_id']} of {r['file']}: removed {r['rows']:,} rows and "
                         f"{r['quarantined']:,} quarantined")
        if self.skipped_files:
            lines.append(f"  skipped (already ingested, same sha256): {', '.join(self.skipped_files)}")
        if self.unknown_columns:
            lines.append(f"  unknown columns (not stored): {', '.join(self.unknown_columns)}")
        for h, s in self.suggestions.items():
            lines.append(f"  did you mean: {h} → {s}? (map it with --mapping)")
        if self.missing_columns:
            lines.append(f"  columns not in the file (stored as unknown; give them with --set COLUMN=VALUE): "
                         f"{', '.join(self.missing_columns)}")
        if self.refused_personal_columns:
            lines.append(
                "  [yellow]personal-data columns refused (never stored): "
                f"{', '.join(self.refused_personal_columns)}[/yellow]"
            )
        if self.masked_values:
            lines.append(f"  masked ID/phone numbers in text: {self.masked_values:,}")
        if self.other_share is not None:
            lines.append(f"  category mapped to 'other': {self.other_rows:,} of {self.category_rows:,} rows "
                         f"({self.other_share:.1%})")
        if self.unknown_values:
            vals = ", ".join(f"{k} ({v})" for k, v in sorted(self.unknown_values.items(), key=lambda kv: -kv[1]))
            lines.append(f"  unknown categories stored as 'other': {vals}")
        return "\n".join(lines)

    def __str__(self) -> str:  # plain text without markup
        import re

        return re.sub(r"\[/?[a-z ]+\]", "", self.summary())
