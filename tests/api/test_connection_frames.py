"""What an idle subscriber's connection holds for its life includes its tasks and their
coroutine frames, a few hundred bytes each. Its `jobUpdates` operation waits parked in the
feed, without a task; layers that only pass a WebSocket on (Starlette's own call and error
middleware, jobgate's lanes and view, a wrapper around Strawberry's handler or its operations)
return the next layer's coroutine instead of awaiting it, and keep none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websockets

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


def served(task: asyncio.Task[Any]) -> bool:
    """Whether `task` is the gateway's (not the test client's, in the same loop)."""
    client = Path(websockets.__file__).parent
    return not Path(task.get_coro().cr_code.co_filename).is_relative_to(client)  # type: ignore[union-attr]


async def test_an_idle_subscriber_holds_one_task_with_no_frame_of_a_layer_that_passes_it_on(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db")
    async with running_gateway(settings) as gateway:
        before = asyncio.all_tasks()
        async with subscribe(gateway, "subscription { jobUpdates { cursor } }"):
            await asyncio.sleep(0.5)
            held = [list(frames(task)) for task in asyncio.all_tasks() - before if served(task)]
    # The connection's task alone: the operation's ended once its watch was parked.
    assert len(held) == 1, held
    (connection,) = held
    assert connection[0] == "WebSocketsSansIOProtocol.run_asgi"
    assert "BaseGraphQLTransportWSHandler.handle" in connection
    assert not PASS_THROUGH & set(connection), held
