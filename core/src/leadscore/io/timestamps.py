"""Turns the timestamps found in lead files into timezone-aware UTC datetimes.

Decay ages are computed by subtracting instants, so every timestamp leaving this module is in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from leadscore.errors import InputError

TIMESTAMP_FIX = "write ISO 8601 such as 2026-11-20T10:00:00Z"


def parse_timestamp(value: str | datetime | date, where: str, field: str) -> datetime:
    """``value`` as an aware UTC datetime.

    Accepts ISO 8601 text with ``Z`` or a UTC offset (converted to UTC), a date alone
    (``2026-11-20`` is midnight UTC) or a ``datetime``/``date`` object. A value without an
    offset is taken to be UTC already: CRM exports almost always write UTC, and guessing the
    machine's local zone would make the same file score differently on different machines.

    Raises InputError naming ``where`` and ``field`` for anything else.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _not_a_timestamp(value, where, field) from None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        # Numbers are refused on purpose: epoch seconds and milliseconds look alike.
        raise _not_a_timestamp(value, where, field)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # An offset that pushes year 1 or year 9999 out of range.
        raise _not_a_timestamp(value, where, field) from None


def format_timestamp(value: datetime) -> str:
    """``value`` in UTC as ``2026-11-20T10:00:00Z`` (seconds precision; naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    # Built by hand: strftime('%Y') does not zero-pad years before 1000 on every platform.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    )


def _not_a_timestamp(value: object, where: str, field: str) -> InputError:
    return InputError(where, f"{field}: {value!r} is not a timestamp", TIMESTAMP_FIX)


__all__ = ["TIMESTAMP_FIX", "format_timestamp", "parse_timestamp"]
