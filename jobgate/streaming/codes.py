"""Codes for the errors a WebSocket operation is refused with before it runs.

Over HTTP, the `ErrorCodes` extension gives every error an `extensions.code`. Over WebSockets,
Strawberry sends an invalid document's or variables' errors in an `error` message that no
extension sees; the handlers pass those through `coded` on their way out.
"""

from __future__ import annotations

from typing import Any

from jobgate.schema.build import is_variable_error
from jobgate.schema.codes import BAD_USER_INPUT, VALIDATION_FAILED


def coded(formatted: Any) -> Any:
    """A formatted error (a JSON object) with an `extensions.code`; anything else unchanged."""
    if not isinstance(formatted, dict) or not isinstance(formatted.get("message"), str):
        return formatted
    extensions = formatted.get("extensions") or {}
    if "code" in extensions:
        return formatted
    # The `ErrorCodes` extension codes what it sees; this is for what Strawberry sends past it.
    code = BAD_USER_INPUT if is_variable_error(formatted["message"]) else VALIDATION_FAILED
    return {**formatted, "extensions": {**extensions, "code": code}}
