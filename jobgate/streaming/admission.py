"""What a WebSocket connection may hold, for both protocols' handlers: a place among its
caller's connections (`limits.max_websockets_per_caller`), and per subscription a place among
its caller's subscriptions, one request of its allowance and the operation's cost
(`limits.max_subscriptions_per_caller`, `requests_per_minute`, `cost_per_minute`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from graphql import GraphQLError
from starlette.websockets import WebSocket

from jobgate.schema.codes import LIMIT_EXCEEDED
from jobgate.schema.context import Context

log = logging.getLogger(__name__)

# RFC 6455's "Try Again Later": the server refuses for now, for a reason that passes.
TRY_AGAIN_LATER = 1013
WEBSOCKETS_LIMIT = "limits.max_websockets_per_caller"
TOO_MANY_CONNECTIONS = f"too many connections for this caller ({WEBSOCKETS_LIMIT})"


class ConnectionSeat:
    """The connection's place among its caller's connections, taken at `connection_init`."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._held: str | None = None

    async def take(self, params: Any) -> bool:
        """Take a place for the caller that `connection_init`'s `params` name (its token, or
        the upgrade request's); False if that caller has all its connections open."""
        if self._held is not None:
            return True
        services = self.context.services
        identity = self.context.identity
        header = _authorization(params)
        if header is not None:
            authentication = await services.authenticator.authenticate(header)
            # Checked once: `on_ws_connect` takes this result for the same header.
            self.context.checked_init = (header, authentication)
            identity = authentication.identity
        probe = Context(services, self.context.request, identity)
        key = probe.caller_key
        if not services.occupancy.open_websocket(key):
            return False
        self._held = key
        return True

    def release(self) -> None:
        if self._held is not None:
            self.context.services.occupancy.close_websocket(self._held)
            self._held = None


class ExpiryTimer:
    """Closes a connection when the token it was opened with expires (4403, on both
    protocols), so that no subscription outlives its token: the client signs in again and
    resumes from its last cursor."""

    CODE = 4403
    REASON = "Token expired: sign in again and resume"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self, websocket: WebSocket, expires_at: float | None) -> None:
        if expires_at is not None and self._task is None:
            self._task = asyncio.create_task(self._close_at(websocket, expires_at))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _close_at(self, websocket: WebSocket, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        log.info("a WebSocket's token expired; closing it (%d)", self.CODE)
        with contextlib.suppress(RuntimeError, OSError):  # closed meanwhile
            await websocket.close(code=self.CODE, reason=self.REASON)


def _authorization(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    value = next((v for k, v in params.items() if str(k).lower() == "authorization"), None)
    return None if value is None else str(value)


async def admit_subscription(
    context: Context, field: str, cost: int | None = None
) -> GraphQLError | None:
    """Take a subscription place and a request (and, given, the cost) from the caller's
    allowances; the refusal if there is none. A subscription admitted here must end with
    `end_subscription` (`field`, its root field, labels it in the metrics)."""
    occupancy = context.services.occupancy
    key = context.caller_key
    if not occupancy.start_subscription(key):
        return GraphQLError(
            f"this caller has {occupancy.max_subscriptions} subscriptions open "
            "(limits.max_subscriptions_per_caller)",
            extensions={"code": LIMIT_EXCEEDED, "limit": "limits.max_subscriptions_per_caller"},
        )
    refusal = await context.take_request()
    if refusal is None and cost:
        refusal = await context.charge_cost(cost)
    if refusal is not None:
        occupancy.end_subscription(key)
    else:
        context.services.metrics.subscriptions.labels(field).inc()
    return refusal


def end_subscription(context: Context, field: str) -> None:
    context.services.occupancy.end_subscription(context.caller_key)
    context.services.metrics.subscriptions.labels(field).dec()
