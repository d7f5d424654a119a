"""`LeanWebSocketProtocol`: uvicorn's WebSocket protocol with idle connections that cost less.

uvicorn gives each connection an `asyncio.Queue` for incoming messages and an `asyncio.Event`
for write flow control: five deques, 3.7 KiB per connection, held by ten thousand idle
subscribers for nothing. This protocol swaps them, right after uvicorn makes them, for
on-demand equivalents. uvicorn uses `put_nowait`, `get` and `empty` of the one and `set`,
`clear` and `wait` of the other (`tests/unit/test_server_primitives.py` checks that this is
still so for the pinned uvicorn). It also lets go of the handshake's request and response
(their headers, 3 to 5 KiB) once the handshake is done: uvicorn keeps them but never reads them
again.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from jobgate.server.primitives import OnDemandFlag, OnDemandQueue


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with on-demand queue and flag (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = OnDemandQueue()  # type: ignore[assignment]
        writable = OnDemandFlag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.request = None  # type: ignore[assignment]  # the ASGI scope has what the app needs of it

    def start_keepalive(self) -> None:
        # uvicorn calls this once, right after it has sent the accepted handshake's response;
        # nothing reads the response again. (Here rather than around `send`, which is on the
        # path of every message to every subscriber.)
        super().start_keepalive()
        self.response = None  # type: ignore[assignment]
