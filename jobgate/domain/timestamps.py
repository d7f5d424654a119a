"""Instants as jobgate stores them (milliseconds since the epoch) and as RFC 3339 text.

The GraphQL `DateTime` scalar and the agent's decoding of the gateway's answers both use these.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def serialize_datetime(value: int) -> str:
    """`value` (milliseconds since the epoch) as RFC 3339 text in UTC, to the millisecond."""
    seconds, milliseconds = divmod(value, 1000)
    return f"{_second(seconds)}.{milliseconds:03d}Z"


@lru_cache(maxsize=8192)
def _second(seconds: int) -> str:
    # A page of jobs shows the same instants again and again (each of its jobs' creation and
    # updates, every time it is listed or watched): formatting one costs 3 us, a hit 0.1 us.
    return (EPOCH + timedelta(seconds=seconds)).isoformat()[: -len("+00:00")]


def parse_datetime(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an RFC 3339 string")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"'{value}' is not an RFC 3339 date-time") from error
    if instant.tzinfo is None:
        raise ValueError(f"'{value}' has no offset; write it like 2026-01-31T12:00:00Z")
    return int(instant.timestamp() * 1000)
