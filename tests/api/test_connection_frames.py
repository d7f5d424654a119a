"""What an idle subscriber's connection holds for its life includes the coroutine frames of
its tasks, a few hundred bytes each. Layers that only pass a WebSocket on (Starlette's own
call and error middleware, jobgate's lanes and view, a wrapper around Strawberry's handler or
its operations) return the next layer's coroutine instead of awaiting it, and keep none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.gateway import gateway_settings, running_gateway, subscribe

PASS_THROUGH = {
    "Starlette.__call__",
    "ServerErrorMiddleware.__call__",
    "HeaderLimit.__call__",
    "WebSocketLane.__call__",
    "JobgateGraphQL.__call__",
    "JobgateTransportWSHandler.handle",
    "JobgateTransportWSHandler.run_operation",
}


def frames(task: asyncio.Task[Any]) -> Iterator[str]:
    """The qualified names of the coroutines `task` is suspended in, outermost first (up to
    an async generator, whose frames asyncio does not expose)."""
    awaited: Any = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_code"):
        yield awaited.cr_code.co_qualname
        awaited = awaited.cr_await


async def test_an_idle_subscribers_tasks_keep_no_frame_of_a_layer_that_passes_it_on(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db")
    async with running_gateway(settings) as gateway:
        before = asyncio.all_tasks()
        async with subscribe(gateway, "subscription { jobUpdates { cursor } }"):
            await asyncio.sleep(0.5)
            held = [list(frames(task)) for task in asyncio.all_tasks() - before]
    connection = [chain for chain in held if chain[:1] == ["WebSocketsSansIOProtocol.run_asgi"]]
    operation = [chain for chain in held if chain[:1] == ["JobgateTransportWSHandler._watch"]]
    assert len(connection) == 1, held
    assert len(operation) == 1, held
    assert "BaseGraphQLTransportWSHandler.handle" in connection[0]
    assert not PASS_THROUGH & {name for chain in held for name in chain}, held
