"""`EventRenderer`: a `jobUpdates` event as the JSON payload of a `next` message.

Every subscriber with the same plan gets the same bytes for a live event, with one exception:
a document that selects a field marked `DEPENDS_ON_PERMISSIONS` gets the same bytes for every
caller with the same permissions on the event's job (its owner, a member of its project). So
all subscribers of a plan share one renderer, and it executes the selection set and encodes
the result once per live event (and permission set), however many subscribers it serves.
Which events reach whom is each watcher's own filter, not the renderer's. Replayed events
carry the job as it is now, which differs with the moment each subscriber replays: they are
rendered for the subscriber that asks.
"""

from __future__ import annotations

import asyncio
import json
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult, execute_subscription_event
from graphql.execution import Executor

from jobgate import access
from jobgate.access import Identity
from jobgate.schema.build import with_code
from jobgate.schema.context import Context
from jobgate.schema.payloads import JobUpdateEvent
from jobgate.services.watch import UpdateEvent
from jobgate.streaming.plan import WatchPlan, WatchPlanner

PlanKey = tuple[str, str | None, str]
# A live event's rendering: its log position and, when the document asks, the caller's
# permissions on its job (empty otherwise).
RenderingKey = tuple[int, tuple[str, ...]]


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
        self._executor: Executor[Context] = executor
        self._context = context
        self._per_permissions = plan.depends_on_permissions
        self._live: dict[RenderingKey, asyncio.Future[str]] = {}
        self.users = 0

    async def render(self, event: UpdateEvent, identity: Identity) -> str:
        """The `payload` of the `next` message for `event` to `identity`, as JSON text."""
        if not event.live or self.users == 1:
            return await self._rendering(event, identity)
        permissions = (
            tuple(access.permissions_on(identity, event.job)) if self._per_permissions else ()
        )
        key = (event.update.seq, permissions)
        shared = self._live.get(key)
        if shared is None:
            shared = self._live[key] = self._rendering(event, identity)
            if len(self._live) == 1:
                # The feed wakes every subscriber of an event in one pass, and each runs as soon
                # as the loop gets to it, before this: renderings are kept that long, not longer.
                # A subscriber that was busy meanwhile renders its own copy: the same bytes.
                asyncio.get_running_loop().call_soon(self._live.clear)
        # Shielded: a subscriber that leaves mid-render must not cancel the others' copy.
        return await asyncio.shield(shared)

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

    def release(self, plan: WatchPlan) -> None:
        renderer = self._renderers[plan.key]
        renderer.users -= 1
        if renderer.users == 0:
            del self._renderers[plan.key]


def _encode(result: ExecutionResult) -> str:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [with_code(error).formatted for error in result.errors]
    return json.dumps(payload, separators=(",", ":"))
