"""`HeaderLimit`: a request whose head (path, query string, headers) is past
`limits.max_header_bytes` is refused before the app sees it: HTTP 431 with a coded error, and
a WebSocket handshake is refused (HTTP 403) before it is accepted.

uvicorn's h11 buffers at most that much of an incomplete head; a head that arrives whole in one
read is measured here.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from jobgate.schema.codes import LIMIT_EXCEEDED
from jobgate.server.graphql_http import error_body


def head_size(scope: Scope) -> int:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
    return size + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))


class HeaderLimit:
    """Refuses oversized request heads (see the module)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: the app's own is returned as is, so a long-lived WebSocket keeps no
        # frame of this middleware.
        if scope["type"] in ("http", "websocket") and head_size(scope) > self.max_bytes:
            return self._refuse(scope, send)
        return self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = error_body(
            f"the request head is larger than {self.max_bytes} bytes",
            LIMIT_EXCEEDED,
            limit="limits.max_header_bytes",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 431,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
