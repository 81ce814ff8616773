"""RFC 3339 times with nanosecond precision, as CometBFT writes them, held as integer Unix nanoseconds."""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime
from typing import NewType

UnixNanos = NewType("UnixNanos", int)
"""Nanoseconds since 1970-01-01T00:00:00Z; negative before (CometBFT's zero time is year 1)."""

NANOS_PER_SECOND = 1_000_000_000

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class TimestampFormatError(ValueError):
    """Text that is not an RFC 3339 timestamp."""


def parse_rfc3339(text: str) -> UnixNanos:
    """``2023-05-17T14:12:53.605374524Z`` (or with a ``+hh:mm`` offset) to Unix nanoseconds."""
    match = _RFC3339.match(text)
    if match is None:
        raise TimestampFormatError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise TimestampFormatError(f"not a valid date/time: {text!r}") from exc
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(9):
        offset = (int(match.group(10)) * 60 + int(match.group(11))) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return UnixNanos(seconds * NANOS_PER_SECOND + nanos)


def format_rfc3339(unix_nanos: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction dropped, ``Z`` suffix."""
    seconds, nanos = divmod(unix_nanos, NANOS_PER_SECOND)
    days, second_of_day = divmod(seconds, 86_400)
    date = datetime.fromordinal(datetime(1970, 1, 1).toordinal() + days)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    text = f"{date.year:04d}-{date.month:02d}-{date.day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def split_seconds(unix_nanos: int) -> tuple[int, int]:
    """(seconds, nanos) as in ``google.protobuf.Timestamp``: nanos always in [0, 1e9)."""
    return divmod(unix_nanos, NANOS_PER_SECOND)


def now_unix_nanos() -> UnixNanos:
    """The wall clock, as a light client's ``now``."""
    return UnixNanos(time.time_ns())
