"""`JobgateTransportWSHandler`: Strawberry's graphql-transport-ws handler with a lean path for
`jobUpdates`.

Strawberry serves each subscription through a chain of async generators (its extension
runner, graphql-core's response stream, the resolver) and executes and encodes every event
for every subscriber on its own. That costs about 20 KiB and 300 µs per subscriber per event,
too much for ten thousand watchers of one job. Here a qualifying `jobUpdates` operation is a
`LeanWatch` (`lean.py`): its events go out as JSON text that subscribers asking the same thing
share (`EventRenderer`), and while idle it waits parked in the feed, without a task. Operations
that do not qualify take Strawberry's path unchanged, except that the `error` message refusing
an invalid one carries codes too (`codes.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from typing import Any, cast

from starlette.websockets import WebSocket
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
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
from jobgate.streaming.lean import LeanWatch, LeanWatches
from jobgate.streaming.plan import ROOT_FIELD, WatchPlan

PROTOCOL = "graphql-transport-ws"


class JobgateTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    _seat: ConnectionSeat | None = None
    _expiry: ExpiryTimer | None = None

    # Counted from Strawberry's own hooks, not around its `handle`: a coroutine of this class
    # awaiting it would be one frame more for each connection's life.
    def on_request_accepted(self) -> None:
        self.context.services.metrics.websockets.labels(PROTOCOL).inc()
        super().on_request_accepted()

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            self.context.services.metrics.websockets.labels(PROTOCOL).dec()
            if self._seat is not None:
                self._seat.release()
            if self._expiry is not None:
                self._expiry.stop()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if not self.connection_init_received:
            self._seat = ConnectionSeat(self.context)
            if not await self._seat.take(message.get("payload")):
                self.context.services.metrics.refusals.labels(WEBSOCKETS_LIMIT).inc()
                await self.websocket.close(code=TRY_AGAIN_LATER, reason=TOO_MANY_CONNECTIONS)
                return
        await super().handle_connection_init(message)
        if self.connection_init_received:
            # Cancelled by now; Strawberry would keep the task object for the connection's life.
            self.connection_init_timeout_task = None
            if self.connection_acknowledged and self._expiry is None:
                self._expiry = ExpiryTimer()
                self._expiry.start(cast(WebSocket, self.context.request), self.context.expires_at)

    async def handle_message(self, message: Message) -> None:
        await super().handle_message(message)
        # Strawberry's reading loop holds the last message until the next one comes: for an
        # idle subscriber, its `subscribe` (0.5 KiB) for as long as it watches. The operation
        # has taken what it needs of it by now.
        cast(dict[str, object], message).clear()

    async def send_message(self, message: Message) -> None:
        if message["type"] == "error":
            message = {**message, "payload": [coded(error) for error in message["payload"]]}
        await super().send_message(message)

    def run_operation(self, operation: Operation[Context, None]) -> Coroutine[Any, Any, None]:
        # Not a coroutine: the operation's task runs the one returned, so a watcher's task
        # keeps one frame fewer for as long as it watches.
        planner = cast(LeanWatches, self.view).watch_renderers.planner
        plan = planner.plan(operation.query, operation.variables, operation.operation_name)
        if plan is None:
            field = planner.subscription_field(operation.query, operation.operation_name)
            return self._run_by_strawberry(operation, field)
        return self._watch(operation, plan)

    async def _admitted(
        self, operation: Operation[Context, None], field: str, cost: int | None
    ) -> bool:
        """Whether the operation may start (else its client was told why)."""
        refusal = await admit_subscription(self.context, field, cost)
        if refusal is None:
            return True
        with contextlib.suppress(WebSocketDisconnected):
            await operation.send_initial_errors([refusal])
        return False

    async def _run_by_strawberry(self, operation: Operation[Context, None], field: str) -> None:
        # The schema's CostLimit spends the operation's cost on this path.
        if not await self._admitted(operation, field, None):
            return
        try:
            await super().run_operation(operation)
        finally:
            end_subscription(self.context, field)

    async def _watch(self, operation: Operation[Context, None], plan: WatchPlan) -> None:
        if not await self._admitted(operation, ROOT_FIELD, plan.cost):
            return
        shared = cast(LeanWatches, self.view)
        await LeanWatch(shared, self.context, operation).run(plan)

    async def cleanup_operation(self, operation_id: str) -> None:
        # A lean watch waits parked in the feed without a task to cancel: it is ended here.
        operation = self.operations.get(operation_id)
        lean = (
            None if operation is None else cast(LeanWatches, self.view).lean_watches.get(operation)
        )
        if lean is None:
            await super().cleanup_operation(operation_id)
            return
        del self.operations[operation_id]
        lean.cancel()
