"""Opaque cursors for `jobs`: tied to the filter and order they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from jobgate.errors import InvalidCursor
from jobgate.storage.base import JobFilter, JobOrder, PageKey


def fingerprint(job_filter: JobFilter, order: JobOrder) -> str:
    return hashlib.sha256(repr((job_filter, order)).encode()).hexdigest()[:16]


def encode_cursor(key: PageKey, job_filter: JobFilter, order: JobOrder) -> str:
    payload = {"f": fingerprint(job_filter, order), "v": key.value, "n": key.job_number}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, job_filter: JobFilter, order: JobOrder) -> PageKey:
    """The page key inside `cursor`; `InvalidCursor` if it is not one of ours for this query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        value, number, issued_for = payload["v"], payload["n"], payload["f"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise InvalidCursor("this cursor was not issued by this gateway") from error
    if issued_for != fingerprint(job_filter, order):
        raise InvalidCursor("this cursor belongs to another filter or order")
    if not isinstance(value, int | str) or not isinstance(number, int):
        raise InvalidCursor("this cursor was not issued by this gateway")
    return PageKey(value, number)


def decode_position(cursor: str) -> int:
    """An event cursor (of an update or a log line): a position given out by this gateway."""
    if not cursor.isdecimal() or len(cursor) > 18:
        raise InvalidCursor("a cursor is the `cursor` of an event this gateway sent")
    return int(cursor)
