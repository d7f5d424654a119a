"""`jobgate.send_now`: jobgate's WebSocket protocol writes a prepared message at once, as the
client reads it (with and without permessage-deflate), and declines when it must not write:
before the handshake is accepted, while the transport holds writes back, once closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from jobgate.server.protocol import LeanWebSocketProtocol
from jobgate.server.send_now import SEND_NOW, PreparedText, SendNow
from tests.gateway import serving
from tests.servers import free_port


class Probe:
    """An ASGI app that accepts one WebSocket and answers each text command: `send X` sends X
    through `send_now`; `held X` does so while the transport holds writes back (as it does
    above its high-water mark), and lets them go after. Each answers (over ASGI, once writes
    go again) what `send_now` returned."""

    def __init__(self) -> None:
        self.before_accept: bool | None = None
        self.after_close: bool | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        send_now: SendNow = scope["extensions"][SEND_NOW]
        protocol: LeanWebSocketProtocol = send_now.__self__  # type: ignore[attr-defined]
        await receive()  # websocket.connect
        self.before_accept = send_now(PreparedText("too early"))
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.after_close = send_now(PreparedText("too late"))
                return
            command, _, text = message["text"].partition(" ")
            if command == "held":
                protocol.pause_writing()
            sent = send_now(PreparedText(text))
            if command == "held":
                protocol.resume_writing()
            await send({"type": "websocket.send", "text": f"sent: {sent}"})


@contextlib.asynccontextmanager
async def probing(app: Probe, *, compression: bool) -> AsyncIterator[str]:
    """The probe behind uvicorn with jobgate's WebSocket protocol: its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=LeanWebSocketProtocol,
        ws_per_message_deflate=compression,
        lifespan="off",
        log_level="warning",
    )
    async with serving(config):
        yield f"ws://127.0.0.1:{port}/"


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


async def test_nothing_is_written_while_the_transport_holds_writes_back() -> None:
    app = Probe()
    async with probing(app, compression=False) as url, connect(url) as ws:
        await ws.send("held never")
        assert await ws.recv() == "sent: False"
        await ws.send("send now")
        assert await ws.recv() == "now"
        assert await ws.recv() == "sent: True"
