"""Every cursor jobgate hands out, encoded and decoded here and nowhere else.

Two kinds:
- **Positions** (`jobUpdates`, `jobLogs`, `providerCommands`): a place in an ordered log, sent
  as its decimal number. They mean the same in every process and replica.
- **Page cursors** (`jobs`): opaque, holding where a page ended and a fingerprint of the filter
  and order they were issued for. The fingerprint is a canonical encoding (sorted JSON of the
  filter's values, sets sorted) so every gateway process computes the same one: never
  `repr()` or `hash()`, which vary with `PYTHONHASHSEED` and set iteration order.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from jobgate.errors import InvalidCursor
from jobgate.storage.base import JobFilter, JobOrder, PageKey

# Positions are decimal numbers of at most 18 digits: they fit a signed 64-bit integer.
_MAX_POSITION_DIGITS = 18


def encode_position(position: int) -> str:
    """The cursor of a log position (an update, a log line, a provider command)."""
    return str(position)


def decode_position(cursor: str) -> int:
    """An event cursor (of an update or a log line): a position given out by this gateway."""
    if not cursor.isdecimal() or len(cursor) > _MAX_POSITION_DIGITS:
        raise InvalidCursor("a cursor is the `cursor` of an event this gateway sent")
    return int(cursor)


def _canonical(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(_canonical(item) for item in value)
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    return value


def fingerprint(job_filter: JobFilter, order: JobOrder) -> str:
    """The same text for the same filter and order, in every process."""
    document = {
        "filter": {
            field.name: _canonical(getattr(job_filter, field.name))
            for field in dataclasses.fields(job_filter)
        },
        "order": {"field": str(order.field), "descending": order.descending},
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def encode_page_cursor(key: PageKey, job_filter: JobFilter, order: JobOrder) -> str:
    """The `jobs` cursor after `key`, for this filter and order."""
    return PageCursors([key], job_filter, order).at(0)


class PageCursors:
    """The `jobs` cursors after each job of a page, for its filter and order: each made when
    first asked, since a page's query often asks for none of them (`nodes`), or for the last
    (`pageInfo.endCursor`) only."""

    __slots__ = ("_filter", "_issued_for", "_keys", "_order")

    def __init__(self, keys: Sequence[PageKey], job_filter: JobFilter, order: JobOrder) -> None:
        self._keys = keys
        self._filter = job_filter
        self._order = order
        self._issued_for: str | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def at(self, index: int) -> str:
        """The cursor after the page's job at `index`."""
        issued_for = self._issued_for
        if issued_for is None:
            # Once a page: a hash of the whole filter.
            issued_for = self._issued_for = fingerprint(self._filter, self._order)
        key = self._keys[index]
        payload = json.dumps({"f": issued_for, "v": key.value, "n": key.job_number})
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_page_cursor(cursor: str, job_filter: JobFilter, order: JobOrder) -> PageKey:
    """The page key inside `cursor`; `InvalidCursor` if it is not one of ours for this query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        value, number, issued_for = payload["v"], payload["n"], payload["f"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise InvalidCursor("this cursor was not issued by this gateway") from error
    if issued_for != fingerprint(job_filter, order):
        raise InvalidCursor("this cursor belongs to another filter or order")
    if not isinstance(value, int | str) or not isinstance(number, int) or isinstance(number, bool):
        raise InvalidCursor("this cursor was not issued by this gateway")
    return PageKey(value, number)
