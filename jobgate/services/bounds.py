"""Bounds on what one request names, beyond what the document's own limits see (its variables)."""

from __future__ import annotations

from collections.abc import Sequence

from jobgate.errors import BadRequest

# `limits.max_ids`: ids one listing or one subscription names.
DEFAULT_MAX_IDS = 1000


def require_few_ids(ids: Sequence[str] | None, max_ids: int, field: str) -> None:
    """Refuse a list of ids past `limits.max_ids` (`BAD_USER_INPUT`, naming the limit)."""
    if ids is not None and len(ids) > max_ids:
        raise BadRequest(f"{field} may name at most {max_ids} jobs (limits.max_ids)")
