"""`WebSocketLane`: WebSockets to the GraphQL endpoint go straight to the GraphQL app.

Starlette's exception middleware, router and route each keep a coroutine frame and a closure
for as long as a connection lasts, about 2 KiB per idle subscriber, and do nothing for this
WebSocket: Strawberry answers its own errors and checks origins itself, and Starlette's CORS
middleware passes WebSockets through. Everything else takes Starlette's path.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send


class WebSocketLane:
    """Pure ASGI middleware: `websocket` scopes for `path` go to `endpoint`, the rest on."""

    def __init__(self, app: ASGIApp, *, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: the next app's is returned as is, so a long-lived WebSocket keeps
        # no frame of this middleware.
        if scope["type"] == "websocket" and scope["path"] == self.path:
            return self.endpoint(scope, receive, send)
        return self.app(scope, receive, send)
