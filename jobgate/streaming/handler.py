"""`JobgateTransportWSHandler`: Strawberry's graphql-transport-ws handler with a lean path for
`jobUpdates`.

Strawberry serves each subscription through a chain of async generators (its extension
runner, graphql-core's response stream, the resolver) and executes and encodes every event
for every subscriber on its own. That costs about 20 KiB and 300 µs per subscriber per event,
too much for ten thousand watchers of one job. Here a qualifying `jobUpdates` operation runs
in the task Strawberry made for it as one loop over `JobWatcher.watch`, sending each event as
JSON text that subscribers asking the same thing share (`EventRenderer`). The messages are
the ones Strawberry would send: `next` per event, `next` with coded errors when the stream
fails, `complete` at the end. Where the server offers `jobgate.send_now` (jobgate's WebSocket
protocol), a live event whose rendering is ready goes out from the feed's own pass while the
loop waits, without waking its task (`JobWatcher.watch`'s `express`). Operations that do not
qualify take Strawberry's path unchanged, except that the `error` message refusing an invalid
one carries codes too (`codes.py`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Coroutine
from typing import Any, Protocol, cast

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)

from jobgate.access import Identity
from jobgate.cursors import decode_position
from jobgate.resolvers.errors import translated
from jobgate.schema.context import Context
from jobgate.server.send_now import SEND_NOW, Outlet
from jobgate.storage.base import LogEntry
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
from jobgate.streaming.plan import ROOT_FIELD, WatchPlan
from jobgate.streaming.render import EventRenderer, RendererPool


class LiveSender:
    """One subscription's express sink: while its task waits for the next event, the feed
    hands events here, sent at once if the rendering is ready and the socket takes them (else
    they go the task's way). One object with what it needs: the feed reads it for every
    subscriber of every event."""

    __slots__ = ("identity", "outlet", "prefix", "renderer")

    def __init__(
        self, renderer: EventRenderer, identity: Identity, prefix: str, outlet: Outlet
    ) -> None:
        self.renderer = renderer
        self.identity = identity
        self.prefix = prefix
        self.outlet = outlet

    def take(self, entry: LogEntry) -> bool:
        message = self.renderer.prepared_now(entry, self.identity, self.prefix)
        return message is not None and self.outlet.send_now(message)


class ServesWatches(Protocol):
    """The view the handler is made by (`JobgateGraphQL`): it holds the renderers (and their
    planner) that the lean path shares across connections."""

    watch_renderers: RendererPool


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
        renderers = cast(ServesWatches, self.view).watch_renderers
        plan = renderers.planner.plan(
            operation.query, operation.variables, operation.operation_name
        )
        if plan is None:
            field = renderers.planner.subscription_field(operation.query, operation.operation_name)
            return self._run_by_strawberry(operation, field)
        return self._watch(operation, plan, renderers)

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

    async def _watch(
        self, operation: Operation[Context, None], plan: WatchPlan, renderers: RendererPool
    ) -> None:
        if not await self._admitted(operation, ROOT_FIELD, plan.cost):
            return
        try:
            context = self.context
            websocket = context.request
            assert isinstance(websocket, WebSocket)
            # Interned: subscribers with the same operation id share it (and so one message).
            prefix = sys.intern('{"id":' + json.dumps(operation.id) + ',"type":"next","payload":')
            try:
                identity = context.caller()
                after = None if plan.after is None else decode_position(plan.after)
                renderer = renderers.acquire(plan, context, identity)
                outlet: Outlet | None = websocket.scope.get("extensions", {}).get(SEND_NOW)
                express = None if outlet is None else LiveSender(renderer, identity, prefix, outlet)
                events = context.services.watcher.watch(identity, plan.job_ids, after, express)
                try:
                    async for event in events:
                        payload = await renderer.render(event, identity)
                        await websocket.send_text(prefix + payload + "}")
                finally:
                    await events.aclose()
                    renderers.release(plan)
            except WebSocketDisconnect:
                return  # the connection is gone: the handler is shutting down
            except Exception as error:
                # The stream ends as Strawberry ends it: a `next` with the coded error, then
                # complete.
                failure = translated(error, "Subscription.job_updates")
                with contextlib.suppress(WebSocketDisconnect):
                    await websocket.send_text(
                        prefix + json.dumps({"data": None, "errors": [failure.formatted]}) + "}"
                    )
            with contextlib.suppress(WebSocketDisconnected):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
        finally:
            end_subscription(self.context, ROOT_FIELD)
