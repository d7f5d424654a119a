"""One error hierarchy for jobgate.

Expected, per-item failures are `UserProblem` values returned as data (GraphQL `UserError`).
Failures of a whole request are `JobgateError` exceptions; each carries the `code` that becomes
the GraphQL error's `extensions.code`. Vendor errors (PyMongo, aiosqlite, subprocess) are
translated into these at the adapter boundary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class UserErrorCode(enum.StrEnum):
    """Codes of expected failures, as in the contract's `UserErrorCode`."""

    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_PARAMETER = "INVALID_PARAMETER"
    UNKNOWN_APPLICATION = "UNKNOWN_APPLICATION"
    UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    INVALID_STATE = "INVALID_STATE"
    DUPLICATE_JOB = "DUPLICATE_JOB"
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    NO_UNIX_ACCOUNT = "NO_UNIX_ACCOUNT"


@dataclass(frozen=True, slots=True)
class UserProblem:
    """One expected failure: which item (`index`), where inside it (`field`), and why."""

    code: UserErrorCode
    message: str
    index: int | None = None
    field: tuple[str, ...] | None = None
    job_id: str | None = None


class JobgateError(Exception):
    """A failure of a whole request. `code` is the GraphQL `extensions.code`."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(JobgateError):
    """No token, or a token that matches no user or provider."""

    code = "UNAUTHENTICATED"


class Forbidden(JobgateError):
    """The caller is known but may not use this operation (a user calling a provider mutation)."""

    code = "FORBIDDEN"


class BadRequest(JobgateError):
    """The request as a whole is malformed: a bad argument that the schema cannot express."""

    code = "BAD_USER_INPUT"


class NotFound(JobgateError):
    """The caller may not read this job, or it does not exist: the two look the same."""

    code = "NOT_FOUND"


class NotSupported(JobgateError):
    """The job's product does not offer this ability."""

    code = "NOT_SUPPORTED"


class InvalidCursor(JobgateError):
    """A pagination or update cursor that this gateway did not issue for this query."""

    code = "INVALID_CURSOR"


class CursorExpired(JobgateError):
    """An update cursor older than what retention keeps: updates after it are gone. Resume
    from `latestUpdateCursor` (and read the jobs afresh)."""

    code = "CURSOR_EXPIRED"


class IdentityProviderUnavailable(JobgateError):
    """The site's identity provider cannot be reached to check a token; the request may be
    retried (signing in again would not help)."""

    code = "IDENTITY_PROVIDER_UNAVAILABLE"


class StoreUnavailable(JobgateError):
    """The database cannot be reached now; the request may be retried."""

    code = "STORE_UNAVAILABLE"


class ConfigError(JobgateError):
    """The configuration is invalid; the message names the key."""

    code = "CONFIG_ERROR"


class IdempotencyKeyReused(JobgateError):
    """An idempotency key was sent again with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class ProviderError(JobgateError):
    """A provider refused or could not carry out a command."""

    code = "PROVIDER_ERROR"


class ProviderNotReady(JobgateError):
    """A provider cannot take jobs yet (its back end is still being read after a start); the
    jobs wait in the hand-over outbox, or an agent's command is carried out again later."""

    code = "PROVIDER_NOT_READY"
