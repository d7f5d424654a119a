"""`EventRenderer`: a `jobUpdates` event as the JSON payload of a `next` message.

Every subscriber with the same plan would get the same bytes for a live event (the same
caller, too, when the document selects a field marked `READS_CALLER`), so those subscribers
share one renderer, and it executes the selection set and encodes the result once per live
event, however many subscribers it serves. Replayed events carry the
job as it is now, which differs with the moment each subscriber replays: they are rendered
for the subscriber that asks.
"""

from __future__ import annotations

import asyncio
import json
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult, execute_subscription_event
from graphql.execution import Executor

from jobgate.auth import Identity
from jobgate.schema.build import with_code
from jobgate.schema.context import Context
from jobgate.schema.payloads import JobUpdateEvent
from jobgate.services.watch import UpdateEvent
from jobgate.streaming.plan import WatchPlan, WatchPlanner

RendererKey = tuple[tuple[str, str | None, str], Identity | None]


class EventRenderer:
    """Renders events for one plan and one caller; shared by every subscriber with both."""

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
        self._live: dict[int, asyncio.Future[str]] = {}
        self.users = 0

    async def render(self, event: UpdateEvent) -> str:
        """The `payload` of the `next` message for `event`, as JSON text."""
        if not event.live or self.users == 1:
            return await self._rendering(event)
        seq = event.update.seq
        shared = self._live.get(seq)
        if shared is None:
            shared = self._live[seq] = self._rendering(event)
            if len(self._live) == 1:
                # The feed wakes every subscriber of an event in one pass, and each runs as soon
                # as the loop gets to it, before this: renderings are kept that long, not longer
                # (a renderer per caller, each keeping payloads, would add up). A subscriber
                # that was busy meanwhile renders its own copy: the same bytes, more work.
                asyncio.get_running_loop().call_soon(self._live.clear)
        # Shielded: a subscriber that leaves mid-render must not cancel the others' copy.
        return await asyncio.shield(shared)

    def _rendering(self, event: UpdateEvent) -> asyncio.Future[str]:
        """The payload, done already when no selected field had to wait for the store."""
        per_event = self._executor.build_per_event_executor(JobUpdateEvent.of(event))
        result = execute_subscription_event(per_event)
        if isawaitable(result):
            return asyncio.ensure_future(self._encode_later(result))
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result(_encode(result))
        return done

    async def _encode_later(self, result: Any) -> str:
        return _encode(await result)


class RendererPool:
    """One renderer per (plan, caller) while any subscriber uses it."""

    def __init__(self, planner: WatchPlanner) -> None:
        self.planner = planner
        self._renderers: dict[RendererKey, EventRenderer] = {}

    def acquire(self, plan: WatchPlan, context: Context, identity: Identity) -> EventRenderer:
        key = _key(plan, identity)
        renderer = self._renderers.get(key)
        if renderer is None:
            # Its own context, not the first subscriber's connection's (its DataLoader, its
            # connection parameters). With `reads_caller`, all users are this caller.
            own = Context(context.services, context.request, identity)
            renderer = self._renderers[key] = EventRenderer(self.planner, plan, own)
        renderer.users += 1
        return renderer

    def release(self, plan: WatchPlan, identity: Identity) -> None:
        key = _key(plan, identity)
        renderer = self._renderers[key]
        renderer.users -= 1
        if renderer.users == 0:
            del self._renderers[key]

    def __len__(self) -> int:
        return len(self._renderers)


def _key(plan: WatchPlan, identity: Identity) -> RendererKey:
    """Callers share a renderer unless the document selects a field that depends on the caller:
    which events reach whom is the watcher's business, not the renderer's."""
    return (plan.key, identity if plan.reads_caller else None)


def _encode(result: ExecutionResult) -> str:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [with_code(error).formatted for error in result.errors]
    return json.dumps(payload, separators=(",", ":"))
