"""Option parsing of ``evalkit estimate`` (no typer, no statistics): each helper raises ``ValueError``
with the one-line message the command prints (exit 2)."""

from __future__ import annotations


def event_window(text: str | None, option: str) -> tuple[int | None, int | None] | None:
    """'-12,24' → (-12, 24); an empty end is open: ',24' → (None, 24)."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(int(p) if p.strip() else None for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"--{option} expects LO,HI event times (an end may be empty), got {text!r}") from None


#: rows of the printed table (the JSON holds every row): dose adds its dose-response curve and ACR^o
SUMMARY_KINDS = {"default": ("overall", "coef", "event", "group", "calendar"),
                 "dose": ("overall", "aggregate", "dose", "dose_slope"),
                 "spillover": ("overall", "event", "spillover")}


def treatment_option(method: str, column: str | None) -> dict[str, str]:
    """``--treatment COLUMN`` as the method's option: ``dose=`` (dose), ``treatment=`` (switching)."""
    key = {"dose": "dose", "switching": "treatment"}.get(method)
    if key is None and column is not None:
        raise ValueError(f"--treatment does not apply to method {method}; methods: dose, switching")
    if key is not None and column is None:
        raise ValueError(f"method {method} needs --treatment COLUMN (the station-period "
                         f"{'dose' if key == 'dose' else 'treatment'} column)")
    return {key: column} if key else {}


def knots_option(text: str | None) -> int | list[float] | None:
    """'2' → 2 interior quantile knots; '0.3,0.6' → knots at those doses."""
    if text is None:
        return None
    try:
        return int(text) if "," not in text and "." not in text else [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--knots expects a count or comma-separated doses, got {text!r}") from None
