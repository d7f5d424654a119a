"""The on-demand queue and flag behave as asyncio's, and uvicorn needs no more of them."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.protocols.websockets import websockets_sansio_impl

from jobgate.server.primitives import OnDemandFlag, OnDemandQueue


async def test_the_queue_hands_out_items_first_in_first_out() -> None:
    queue: OnDemandQueue[int] = OnDemandQueue()
    assert queue.empty()
    for item in (1, 2, 3):
        queue.put_nowait(item)
    assert queue.qsize() == 3
    assert [await queue.get() for _ in range(3)] == [1, 2, 3]
    assert queue.empty()


async def test_waiting_getters_are_served_in_the_order_they_came() -> None:
    queue: OnDemandQueue[str] = OnDemandQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await first == "a"
    assert await second == "b"


async def test_a_cancelled_getter_passes_its_item_on() -> None:
    queue: OnDemandQueue[str] = OnDemandQueue()
    cancelled = asyncio.create_task(queue.get())
    other = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes `cancelled`, which is cancelled before it runs
    cancelled.cancel()
    assert await asyncio.wait_for(other, 1) == "only"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert queue.empty()


async def test_the_flag_lets_waiters_through_only_while_set() -> None:
    flag = OnDemandFlag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert await flag.wait()  # set: at once
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0.01)
    assert not late.done()
    late.cancel()
    flag.set()  # a cancelled waiter is skipped, not an error
    with pytest.raises(asyncio.CancelledError):
        await late


def test_uvicorn_uses_only_what_the_protocol_swaps_in() -> None:
    """`LeanWebSocketProtocol` replaces uvicorn's queue and event; it must offer all they use."""
    source = inspect.getsource(websockets_sansio_impl)
    assert set(re.findall(r"self\.queue\.(\w+)", source)) <= {"put_nowait", "get", "empty"}
    assert set(re.findall(r"self\.writable\.(\w+)", source)) <= {"set", "clear", "wait"}
    assert set(re.findall(r"self\.(?:request|response)\b", source)) == {
        "self.request",
        "self.response",
    }
    # The handshake's request is stored and never read; the response only until accepted,
    # after which uvicorn starts the keep-alive (where the protocol lets go of it), once.
    assert len(re.findall(r"self\.request\b", source)) == 1
    assert re.findall(r"self\.start_keepalive\(\)", source) == ["self.start_keepalive()"]
    accepting = source[source.index('if message["type"] == "websocket.accept":') :]
    accepting = accepting[: accepting.index("self.start_keepalive()")]
    assert "self.conn.send_response(self.response)" in accepting
    after = source[source.index("self.start_keepalive()") :]
    assert "self.response" not in after[: after.index("def ")]


def test_uvicorn_keeps_alive_only_through_the_methods_the_protocol_replaces() -> None:
    """`LeanWebSocketProtocol` pings from the server's wheel: it replaces uvicorn's
    `start_keepalive`, `stop_keepalive` and `handle_pong`, and so uvicorn's timers must be
    armed, and its pings sent, nowhere else (else a connection would be pinged twice)."""
    source = inspect.getsource(websockets_sansio_impl.WebSocketsSansIOProtocol)
    replaced = {"start_keepalive", "stop_keepalive", "handle_pong"}
    timing = {"schedule_ping", "send_keepalive_ping", "keepalive_timeout"}
    methods = re.split(r"\n    (?:async )?def ", source)[1:]
    keeping_alive = r"self\.(?:schedule_ping|send_keepalive_ping|keepalive_timeout|p[io]ng_timer)\b"
    arming = {method.split("(")[0] for method in methods if re.search(keeping_alive, method)}
    assert arming <= replaced | timing | {"__init__"}  # which declares the timers, unarmed
    assert re.findall(r"self\.(?:start|stop)_keepalive\(\)", source) == [
        "self.stop_keepalive()",
        "self.stop_keepalive()",
        "self.start_keepalive()",
    ]
