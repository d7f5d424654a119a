"""`EventRenderer`: a `jobUpdates` event as the JSON payload of a `next` message.

Every subscriber with the same plan gets the same bytes for a live event, with one exception:
a document that selects a field marked `DEPENDS_ON_PERMISSIONS` gets the same bytes for every
caller with the same permissions on the event's job (its owner, a member of its project). So
all subscribers of a plan share one renderer, and it executes the selection set and encodes
the result once per live event (and permission set), however many subscribers it serves.
Which events reach whom is each watcher's own filter, not the renderer's. Replayed events
carry the job as it is now, which differs with the moment each subscriber replays: they are
rendered for the subscriber that asks.

`prepared_now` gives a live event's whole `next` message, ready to write, to the express path
(which runs in the feed's pass and cannot wait): subscribers with the same operation id (most
clients number their first operation "1") share its bytes too. Where every caller gets the
same bytes, the renderer is the feed's `Channel` of its parked subscribers (`channel`), with
their operation ids (their messages' prefixes) for variants.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult, execute_subscription_event
from graphql.execution import Executor

from jobgate import access
from jobgate.access import Identity
from jobgate.domain.job import Job
from jobgate.schema.build import with_code
from jobgate.schema.context import Context
from jobgate.schema.payloads import JobUpdateEvent
from jobgate.server.send_now import PreparedText
from jobgate.services.watch import UpdateEvent
from jobgate.storage.base import LogEntry
from jobgate.streaming.plan import WatchPlan, WatchPlanner

PlanKey = tuple[str, str | None, str]
# A live event's rendering: its log position and, when the document asks, the caller's
# permissions on its job (the position alone otherwise: nothing to allocate per subscriber).
RenderingKey = int | tuple[int, tuple[str, ...]]


class EventRenderer:
    """Renders a plan's events; shared by every subscriber of the plan."""

    def __init__(self, planner: WatchPlanner, plan: WatchPlan, context: Context) -> None:
        executor = planner.executor_class.build(
            planner.graphql_schema,
            plan.document,
            None,
            context,
            plan.variables,
            plan.operation_name,
        )
        assert not isinstance(executor, list), "the planner only admits coercible variables"
        # The plan's key, whose first part is the document's text: one copy for every
        # subscriber of the plan (`LeanWatch` gives it to its operation).
        self.key: PlanKey = plan.key
        self._executor: Executor[Context] = executor
        self._context = context
        self._per_permissions = plan.depends_on_permissions
        self._live: dict[RenderingKey, asyncio.Future[str]] = {}
        # Whole messages of live renderings, by rendering and message prefix (operation id).
        self._messages: dict[RenderingKey, dict[str, PreparedText]] = {}
        # The last message `prepared_now` gave, for which entry and prefix: the next
        # subscriber of the same event and operation id (all of them, as most clients number
        # their first operation "1") gets it without a key or a dictionary.
        self._last: tuple[LogEntry, str, PreparedText] | None = None
        self.users = 0
        self.channel: RenderedMessages | None = (
            None if self._per_permissions else RenderedMessages(self, context.caller())
        )

    async def render(self, event: UpdateEvent, identity: Identity) -> str:
        """The `payload` of the `next` message for `event` to `identity`, as JSON text."""
        if not event.live or self.users == 1:
            return await self._rendering(event, identity)
        key = self._key(event.update.seq, identity, event.job)
        shared = self._live.get(key)
        if shared is None:
            shared = self._share(key, self._rendering(event, identity))
        # Shielded: a subscriber that leaves mid-render must not cancel the others' copy.
        return await asyncio.shield(shared)

    def prepared_now(self, entry: LogEntry, identity: Identity, prefix: str) -> PreparedText | None:
        """The `next` message (`prefix`, the payload, `}`) for the live event of `entry` to
        `identity`, if its rendering is ready now; `None` if it must wait (the caller then
        takes `render`). Asked once per subscriber of an event: it allocates nothing for a
        message made already."""
        last = self._last
        if last is not None and last[0] is entry and last[1] is prefix:
            return last[2]
        key = self._key(entry.update.seq, identity, entry.job)
        messages = self._messages.get(key)
        if messages is not None:
            message = messages.get(prefix)
            if message is not None:
                if not self._per_permissions:
                    self._last = (entry, prefix, message)
                return message
        shared = self._live.get(key)
        if shared is None:
            event = UpdateEvent(entry.update, entry.job, live=True)
            shared = self._share(key, self._rendering(event, identity))
        if not shared.done() or shared.cancelled() or shared.exception() is not None:
            return None
        if messages is None:
            messages = self._messages[key] = {}
        message = messages[prefix] = PreparedText(prefix + shared.result() + "}")
        if not self._per_permissions:
            self._last = (entry, prefix, message)
        return message

    def _key(self, seq: int, identity: Identity, job: Job) -> RenderingKey:
        if not self._per_permissions:
            return seq
        return seq, tuple(access.permissions_on(identity, job))

    def _share(self, key: RenderingKey, rendering: asyncio.Future[str]) -> asyncio.Future[str]:
        self._live[key] = rendering
        if len(self._live) == 1:
            # The feed wakes every subscriber of an event in one pass, and each runs as soon
            # as the loop gets to it: renderings are kept that long, not longer. Two hops, as
            # the pass may start a rendering (`prepared_now`) before it wakes the subscribers
            # that then wait for it. A subscriber that was busy meanwhile renders its own copy:
            # the same bytes.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._forget)
        return rendering

    def _forget(self) -> None:
        self._live.clear()
        self._messages.clear()
        self._last = None

    def _rendering(self, event: UpdateEvent, identity: Identity) -> asyncio.Future[str]:
        """The payload, done already when no selected field had to wait for the store."""
        per_event = self._executor.build_per_event_executor(JobUpdateEvent.of(event))
        if self._per_permissions and identity != self._context.identity:
            # Resolvers see this caller (whose permissions are the rendering's key).
            own = self._context
            per_event.context_value = Context(own.services, own.request, identity)
        result = execute_subscription_event(per_event)
        if isawaitable(result):
            return asyncio.ensure_future(self._encode_later(result))
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result(_encode(result))
        return done

    async def _encode_later(self, result: Any) -> str:
        return _encode(await result)


class RenderedMessages:
    """A renderer's live `next` messages as the feed's `Channel` for its parked subscribers:
    one per event and message prefix (the variant). Only a renderer whose messages are the
    same for every caller has one, so whose permissions it renders with does not matter."""

    __slots__ = ("_identity", "_renderer")

    def __init__(self, renderer: EventRenderer, identity: Identity) -> None:
        self._renderer = renderer
        self._identity = identity

    def message(self, entry: LogEntry, variant: Hashable) -> PreparedText | None:
        assert isinstance(variant, str), "a variant is a message prefix"
        return self._renderer.prepared_now(entry, self._identity, variant)


class RendererPool:
    """One renderer per plan while any subscriber uses it; shared by every connection."""

    def __init__(self, planner: WatchPlanner) -> None:
        self.planner = planner
        self._renderers: dict[PlanKey, EventRenderer] = {}

    def acquire(self, plan: WatchPlan, context: Context, identity: Identity) -> EventRenderer:
        renderer = self._renderers.get(plan.key)
        if renderer is None:
            # Its own context, not the first subscriber's connection's (its DataLoader, its
            # connection parameters).
            own = Context(context.services, context.request, identity)
            renderer = self._renderers[plan.key] = EventRenderer(self.planner, plan, own)
        renderer.users += 1
        return renderer

    def release(self, renderer: EventRenderer) -> None:
        renderer.users -= 1
        if renderer.users == 0:
            del self._renderers[renderer.key]


def _encode(result: ExecutionResult) -> str:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [with_code(error).formatted for error in result.errors]
    return json.dumps(payload, separators=(",", ":"))
