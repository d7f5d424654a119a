"""`WebSocketLane`: WebSockets to the GraphQL endpoint go straight to the GraphQL app.

Starlette's exception middleware, router and route each keep a coroutine frame and a closure
for as long as a connection lasts, about 2 KiB per idle subscriber, and do nothing for this
WebSocket: Strawberry answers its own errors and checks origins itself, and Starlette's CORS
middleware passes WebSockets through. Everything else takes Starlette's path.

`LeanStarlette` does the same above the middleware: Starlette's own `__call__` and its
`ServerErrorMiddleware` (which answers HTTP only and passes anything else on) keep no frame
on a WebSocket either.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class LeanStarlette(Starlette):
    """Starlette, whose WebSockets skip the frames of its `__call__` and error middleware.

    Its `__call__` is not a coroutine function: servers that guess the ASGI version from that
    (uvicorn) must be told it is ASGI 3."""

    # Starlette declares a coroutine; an ASGI app returns any awaitable.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        if scope["type"] != "websocket":
            return super().__call__(scope, receive, send)
        # What Starlette's `__call__` does, returning the next app's coroutine instead of
        # awaiting it.
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        stack = self.middleware_stack
        if isinstance(stack, ServerErrorMiddleware):
            return stack.app(scope, receive, send)
        return stack(scope, receive, send)


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
