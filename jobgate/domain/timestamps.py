"""Instants as jobgate stores them (milliseconds since the epoch) and as RFC 3339 text.

The GraphQL `DateTime` scalar and the agent's decoding of the gateway's answers both use these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def serialize_datetime(value: int) -> str:
    instant = datetime.fromtimestamp(value / 1000, tz=UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}Z"


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
