"""Once jobgate's WebSocket protocol has accepted a connection, the scope's headers (and the
app's cached view of them) keep every header but those that only served the handshake."""

from __future__ import annotations

import json
from typing import Any

from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from jobgate.server.protocol import HANDSHAKE_ONLY
from tests.gateway import serving_websockets


class HeaderProbe:
    """Accepts a WebSocket after reading its headers through Starlette (which caches them),
    and answers any message with the header names it sees then."""

    def __init__(self) -> None:
        self.at_handshake: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        websocket = WebSocket(scope, receive, send)
        self.at_handshake = list(websocket.headers.keys())
        await websocket.accept(subprotocol="graphql-transport-ws")
        async for _ in websocket.iter_text():
            await websocket.send_text(json.dumps(list(websocket.headers.keys())))


async def test_an_accepted_connection_keeps_its_headers_but_the_handshakes() -> None:
    app = HeaderProbe()
    async with (
        serving_websockets(app, ws_per_message_deflate=True) as (url, _),
        connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers={"X-Probe": "1", "Authorization": "Bearer x"},
            origin="http://example.org",  # type: ignore[arg-type]
            compression="deflate",
        ) as ws,
    ):
        await ws.send("headers?")
        after = json.loads(str(await ws.recv()))
    assert set(app.at_handshake) >= {h.decode() for h in HANDSHAKE_ONLY}
    assert after == [name for name in app.at_handshake if name.encode() not in HANDSHAKE_ONLY]
    assert {"host", "origin", "user-agent", "x-probe", "authorization"} <= set(after)
