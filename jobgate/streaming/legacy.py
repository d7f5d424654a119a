"""`JobgateGraphQLWSHandler`: Strawberry's handler for the legacy graphql-ws protocol, held to
what graphql-transport-ws guarantees.

- Its `error` messages carry an `extensions.code` like every other error jobgate sends.
- One `connection_init` per connection: a second one closes it (4429, "Too many initialisation
  requests"), so it can neither switch the identity under a running subscription nor start
  another keep-alive task.
- A connection that has not been acknowledged within the view's `connection_init_wait_timeout`
  (`limits.init_timeout_seconds`) is closed (4408), so idle unauthenticated sockets do not stay.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
)

from jobgate.schema.context import Context
from jobgate.streaming.admission import (
    TOO_MANY_CONNECTIONS,
    TRY_AGAIN_LATER,
    WEBSOCKETS_LIMIT,
    ConnectionSeat,
    ExpiryTimer,
    admit_subscription,
    end_subscription,
)
from jobgate.streaming.codes import coded
from jobgate.streaming.lean import LeanWatches

PROTOCOL = "graphql-ws"


class JobgateGraphQLWSHandler(BaseGraphQLWSHandler[Context, None]):
    _init_received = False

    _seat: ConnectionSeat | None = None
    _expiry: ExpiryTimer | None = None

    async def handle(self) -> None:
        timeout = self.view.connection_init_wait_timeout.total_seconds()
        watchdog = asyncio.create_task(self._close_unless_initialised(timeout))
        connections = self.context.services.metrics.websockets.labels(PROTOCOL)
        connections.inc()
        try:
            await super().handle()
        finally:
            connections.dec()
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            if self._seat is not None:
                self._seat.release()
            if self._expiry is not None:
                self._expiry.stop()

    async def _close_unless_initialised(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._init_received = True
        self._seat = ConnectionSeat(self.context)
        if not await self._seat.take(message.get("payload")):
            self.context.services.metrics.refusals.labels(WEBSOCKETS_LIMIT).inc()
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=TOO_MANY_CONNECTIONS)
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self._expiry = ExpiryTimer()
            self._expiry.start(cast(WebSocket, self.context.request), self.context.expires_at)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        planner = cast(LeanWatches, self.view).watch_renderers.planner
        field = planner.subscription_field(query, operation_name)
        # The schema's CostLimit spends the operation's cost.
        refusal = await admit_subscription(self.context, field)
        if refusal is not None:
            self.tasks.pop(operation_id, None)
            await self.send_message(
                {"type": "error", "id": operation_id, "payload": refusal.formatted}
            )
            return
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        finally:
            end_subscription(self.context, field)

    async def send_message(self, message: OperationMessage) -> None:
        if message["type"] == "error" and "payload" in message:
            message = {**message, "payload": coded(message["payload"])}
        await super().send_message(message)
