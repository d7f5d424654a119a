"""GraphQL over HTTP as the spec (and its `graphql-http` audit) asks.

- A client that accepts `application/graphql-response+json` gets it; others get
  `application/json`.
- A request error (the document does not parse or validate, or its variables do not fit) has
  no `data` entry, and with `application/graphql-response+json` its status is 400.
- A body that is not a GraphQL request (not JSON, not an object, nested absurdly deep) is a
  400 with a coded GraphQL error, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive
from strawberry.types import ExecutionResult

from jobgate.schema.codes import LIMIT_EXCEEDED, RATE_LIMITED, REQUEST_ERROR_CODES, code_of

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
BAD_REQUEST = "BAD_REQUEST"


def response_media_type(request: Request) -> str:
    """The media type the client asked for: graphql-response+json if it accepts it."""
    accept = request.headers.get("accept", "")
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in wanted else JSON


def is_request_error(result: ExecutionResult) -> bool:
    """Refused before execution: no data, and every error a parse, validation or variable one."""
    return (
        result.data is None
        and bool(result.errors)
        and all(
            error.path is None and code_of(error) in REQUEST_ERROR_CODES
            for error in result.errors or []
        )
    )


def error_body(message: str, code: str = BAD_REQUEST, **extensions: str | int) -> bytes:
    payload = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def error_response(request: Request, status_code: int, message: str) -> Response:
    return Response(
        error_body(message), status_code=status_code, media_type=response_media_type(request)
    )


def refused(
    request: Request, status_code: int, error: GraphQLError, retry_after: int | None
) -> Response:
    """A request refused before it ran (429, 503), with a Retry-After header when given."""
    body = json.dumps({"errors": [error.formatted]}, separators=(",", ":")).encode()
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Response(
        body, status_code=status_code, media_type=response_media_type(request), headers=headers
    )


def retry_after_of(result: ExecutionResult) -> int | None:
    """If a caller's allowance refused the operation: in how many seconds to retry."""
    for error in result.errors or []:
        if code_of(error) == RATE_LIMITED:
            return int((error.extensions or {}).get("retryAfter", 1))
    return None


class BodyTooLarge(Exception):
    """A request body past `limits.max_body_bytes`."""


def bounded_receive(receive: Receive, max_bytes: int) -> Receive:
    """`receive` that raises `BodyTooLarge` once the body passes `max_bytes`: a body is never
    held whole beyond the bound, whatever its Content-Length says (or does not)."""
    seen = 0

    async def receive_bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge
        return message

    return receive_bounded


def body_too_large(request: Request, max_bytes: int) -> Response:
    message = f"the request body is larger than {max_bytes} bytes"
    return Response(
        error_body(message, LIMIT_EXCEEDED, limit="limits.max_body_bytes"),
        status_code=413,
        media_type=response_media_type(request),
    )


def declared_too_large(request: Request, max_bytes: int) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdecimal() and int(declared) > max_bytes


def decode_request_body(data: str | bytes) -> Any:
    """The JSON of a request body, or `ValueError` with what is wrong with it."""
    try:
        decoded = json.loads(data)
    except RecursionError:
        raise ValueError("the request body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, and numbers past Python's digit limit
        raise ValueError("the request body is not valid JSON") from None
    return decoded
