"""`LeanWatch`: one `jobUpdates` subscription on the lean path, from its first event to its
`complete`.

Its operation's first task replays what the store has, sends what the feed queued meanwhile,
parks the stream in the feed and ends: an idle subscriber holds no task and no coroutine,
only this object and its stream. The feed hands it each live entry (`take`), sent at once
from the feed's own pass when the rendering is ready and the socket takes it; where the
renderer's messages are the same for every caller, the feed writes its renderer's message
(with this watch's operation id) to its connection itself, without asking it. An entry it
declines resumes it (`resume`): a task then sends what is queued the slow way (waiting for
the rendering, for the socket), and parks it again. The operation's `task` is that task while
one runs and `None` while it is parked, so a handler ends a parked one itself (`cancel`).

The messages are the ones Strawberry would send: `next` per event, `next` with coded errors
when the stream fails, `complete` at the end, nothing after the client's own `complete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol, cast

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from jobgate.access import Identity
from jobgate.cursors import decode_position
from jobgate.resolvers.errors import translated
from jobgate.schema.context import Context
from jobgate.server.send_now import SEND_NOW, Outlet
from jobgate.services.watch import UpdateEvent, UpdateStream
from jobgate.storage.base import LogEntry
from jobgate.streaming.admission import end_subscription
from jobgate.streaming.plan import ROOT_FIELD, WatchPlan
from jobgate.streaming.render import EventRenderer, RendererPool

FIELD_PATH = "Subscription.job_updates"


class LeanWatches(Protocol):
    """Where the lean path's shared state lives (the view, `JobgateGraphQL`): the renderers
    (and their planner) shared across connections, and the watches running, by operation."""

    watch_renderers: RendererPool
    lean_watches: dict[Operation[Context, None], LeanWatch]


class LeanWatch:
    """One subscriber's lean `jobUpdates` stream (see the module's docstring). `take` is read
    for every subscriber of every live event: what it needs is in slots of its own."""

    __slots__ = (
        "_ended",
        "_shared",
        "context",
        "identity",
        "operation",
        "outlet",
        "prefix",
        "renderer",
        "stream",
    )
    # Set as the stream opens (`_open`), before anything can ask for them.
    identity: Identity
    renderer: EventRenderer

    def __init__(
        self,
        shared: LeanWatches,
        context: Context,
        operation: Operation[Context, None],
    ) -> None:
        self._shared = shared
        self.context = context
        self.operation = operation
        # Interned: subscribers with the same operation id share it (and so one message).
        self.prefix = sys.intern('{"id":' + json.dumps(operation.id) + ',"type":"next","payload":')
        self.outlet: Outlet | None = None
        self.stream: UpdateStream | None = None
        self._ended = False

    async def run(self, plan: WatchPlan) -> None:
        """The operation's first task: open the stream `plan` asks for, replay, go live, park."""
        self._shared.lean_watches[self.operation] = self
        await self._serve(plan)

    def take(self, entry: LogEntry) -> bool:
        """The feed's pass hands a live entry: sent now if it can be without waiting."""
        outlet = self.outlet
        if outlet is None:
            return False  # a server without jobgate's protocol: the task's way
        message = self.renderer.prepared_now(entry, self.identity, self.prefix)
        return message is not None and outlet.send_now(message)

    def resume(self) -> None:
        """The feed queued an entry this watch declined (or the stream lags): a task sends
        what is queued, then parks the stream again."""
        task = asyncio.create_task(self._serve())
        self.operation.task = task

    def cancel(self) -> None:
        """End the watch without a `complete` (the client's `complete`, the connection's end),
        here and now: a task cancelled before it ever ran would not end it."""
        task = self.operation.task
        if task is not None:
            task.cancel()
        self._end()

    async def _serve(self, opening: WatchPlan | None = None) -> None:
        """Send what the stream has (opening it first, with its replay, if `opening`), then
        park it, or end the operation."""
        websocket = self.context.request
        assert isinstance(websocket, WebSocket)
        parked = False
        try:
            try:
                if opening is not None:
                    stream = await self._open(websocket, opening)
                    await self._send(websocket, stream.replay())
                else:
                    stream = cast(UpdateStream, self.stream)
                while not stream.finished:
                    await self._send(websocket, stream.available())
                    # Nothing can come between `available` running dry and this: no await.
                    if not stream.finished and stream.park(
                        self, self.renderer.channel, self.outlet, self.prefix
                    ):
                        parked = True
                        self.operation.task = None
                        return
            except WebSocketDisconnect:
                return  # the connection is gone: its handler is shutting down
            except Exception as error:
                # The stream ends as Strawberry ends it: a `next` with the coded error, then
                # `complete`.
                failure = translated(error, FIELD_PATH)
                with contextlib.suppress(WebSocketDisconnect):
                    await websocket.send_text(
                        self.prefix
                        + json.dumps({"data": None, "errors": [failure.formatted]})
                        + "}"
                    )
            with contextlib.suppress(WebSocketDisconnected):
                await self.operation.send_operation_message(
                    {"id": self.operation.id, "type": "complete"}
                )
        finally:
            if not parked:
                self._end()

    async def _open(self, websocket: WebSocket, plan: WatchPlan) -> UpdateStream:
        context = self.context
        identity = self.identity = context.caller()
        after = None if plan.after is None else decode_position(plan.after)
        stream = await context.services.watcher.open(identity, plan.job_ids, after)
        # Together, with nothing to wait for between: `_end` gives both back.
        self.stream = stream
        self.renderer = self._shared.watch_renderers.acquire(plan, context, identity)
        # The operation keeps its document's text for its life: the renderer's copy, one for
        # every subscriber of the plan, rather than the one its subscribe message brought.
        self.operation.query = self.renderer.key[0]
        self.outlet = websocket.scope.get("extensions", {}).get(SEND_NOW)
        return stream

    async def _send(self, websocket: WebSocket, events: AsyncGenerator[UpdateEvent, None]) -> None:
        renderer, identity = self.renderer, self.identity
        async with aclosing(events) as stream:
            async for event in stream:
                payload = await renderer.render(event, identity)
                await websocket.send_text(self.prefix + payload + "}")

    def _end(self) -> None:
        """Once, however the watch ends: what it holds of the feed, the renderers and the
        caller's allowance of subscriptions is given back."""
        if self._ended:
            return
        self._ended = True
        self._shared.lean_watches.pop(self.operation, None)
        if self.stream is not None:
            self.stream.close()
            self._shared.watch_renderers.release(self.renderer)
        end_subscription(self.context, ROOT_FIELD)
