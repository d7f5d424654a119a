"""The `extensions.code` of GraphQL errors that no resolver raised, and how errors get one."""

from __future__ import annotations

from graphql import GraphQLError

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
# A document past one of the `[limits]` (extensions.limit names which).
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
# A caller past its allowance per minute (extensions.limit names it, extensions.retryAfter
# says in how many seconds to retry); over HTTP, status 429 with a Retry-After header.
RATE_LIMITED = "RATE_LIMITED"
# The codes of request errors: the request was refused before anything ran.
REQUEST_ERROR_CODES = frozenset(
    {PARSE_FAILED, VALIDATION_FAILED, BAD_USER_INPUT, LIMIT_EXCEEDED, RATE_LIMITED}
)


def code_of(error: GraphQLError) -> str | None:
    """The error's `extensions.code`, if it has one."""
    code = (error.extensions or {}).get("code")
    return None if code is None else str(code)


def tag(error: GraphQLError, code: str) -> None:
    """Give an error without a code this one, in place."""
    if code_of(error) is None:
        error.extensions = {**(error.extensions or {}), "code": code}
