"""`jobgate.send_now`: jobgate's WebSocket protocol writes a prepared message at once, as the
client reads it (with and without permessage-deflate), and declines when it must not write:
before the handshake is accepted, while writes wait (a client that does not read), once
closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from jobgate.server.send_now import SEND_NOW, Outlet, PreparedText
from tests.gateway import serving_websockets

# More than a client that does not read can have in flight (its queue of 2 messages and the
# kernel's buffers, some MiB).
FLOOD = 400


def flood_message(number: int) -> str:
    return f"{number:08d}" + "x" * (256 * 1024 - 8)


class Probe:
    """An ASGI app that accepts one WebSocket and answers each text command: `send X` sends X
    through `send_now` and answers (over ASGI) what it returned; `flood` sends numbered
    256 KiB messages through it until it declines one (at most `FLOOD`), then answers how
    many it took."""

    def __init__(self) -> None:
        self.before_accept: bool | None = None
        self.after_close: bool | None = None
        self.after_own_close: bool | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        outlet: Outlet = scope["extensions"][SEND_NOW]
        await receive()  # websocket.connect
        self.before_accept = outlet.send_now(PreparedText("too early"))
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.after_close = outlet.send_now(PreparedText("too late"))
                return
            command, _, text = message["text"].partition(" ")
            if command == "close":
                # The close frame is sent; the transport stays open for the client's reply.
                await send({"type": "websocket.close", "code": 1000})
                self.after_own_close = outlet.send_now(PreparedText("after close"))
            elif command == "flood":
                taken = 0
                while taken < FLOOD and outlet.send_now(PreparedText(flood_message(taken))):
                    taken += 1
                await send({"type": "websocket.send", "text": f"took {taken}"})
            else:
                sent = outlet.send_now(PreparedText(text))
                await send({"type": "websocket.send", "text": f"sent: {sent}"})


@contextlib.asynccontextmanager
async def probing(app: Probe, *, compression: bool) -> AsyncIterator[str]:
    """The probe behind uvicorn with jobgate's WebSocket protocol: its URL."""
    async with serving_websockets(app, ws_per_message_deflate=compression) as (url, _):
        yield url


@pytest.mark.parametrize("compression", [False, True], ids=["plain", "deflate"])
async def test_a_prepared_message_arrives_as_sent(compression: bool) -> None:
    app = Probe()
    async with (
        probing(app, compression=compression) as url,
        connect(url, compression="deflate" if compression else None) as ws,
    ):
        assert bool(ws.protocol.extensions) is compression
        for text in ('{"id":"1","type":"next"}', "ä" * 70_000, ""):
            await ws.send(f"send {text}")
            assert await ws.recv() == text
            assert await ws.recv() == "sent: True"
    await asyncio.sleep(0.1)
    assert app.before_accept is False
    assert app.after_close is False


async def test_a_client_that_does_not_read_gets_what_was_taken_and_no_more() -> None:
    app = Probe()
    async with (
        probing(app, compression=False) as url,
        connect(url, max_queue=2, max_size=None) as ws,
    ):
        await ws.send("flood")
        await asyncio.sleep(1)  # the client reads nothing meanwhile
        received = []
        while not str(message := await ws.recv()).startswith("took"):
            received.append(message)
        taken = int(str(message).split()[1])
    assert 0 < taken < FLOOD
    assert received == [flood_message(n) for n in range(taken)]


async def test_nothing_is_sent_after_the_apps_own_close() -> None:
    app = Probe()
    async with probing(app, compression=False) as url, connect(url) as ws:
        await ws.send("close")
        received = []
        with contextlib.suppress(ConnectionClosedOK):
            while True:
                received.append(await ws.recv())
    assert ws.close_code == 1000
    assert app.after_own_close is False
    assert received == []
