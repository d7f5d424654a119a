"""`LeanWebSocketProtocol`: uvicorn's WebSocket protocol with idle connections that cost less.

uvicorn gives each connection an `asyncio.Queue` for incoming messages and an `asyncio.Event`
for write flow control: five deques, 3.7 KiB per connection, held by ten thousand idle
subscribers for nothing. This protocol swaps them, right after uvicorn makes them, for
on-demand equivalents. uvicorn uses `put_nowait`, `get` and `empty` of the one and `set`,
`clear` and `wait` of the other (`tests/unit/test_server_primitives.py` checks that this is
still so for the pinned uvicorn). It also lets go of the handshake's request and response
(their headers, 3 to 5 KiB) once the handshake is done: uvicorn keeps them but never reads them
again, and empties the request's headers, which websockets' parser holds on to.

It also sends a `PreparedText` at once, outside the ASGI app's tasks, through the scope's
`jobgate.send_now` extension (`ConnectionOutlet`): the lean `jobUpdates` path writes one event
to ten thousand sockets in one pass that way, instead of waking ten thousand tasks to each go
through Starlette's `send_text`, an ASGI message and uvicorn's `send`.

Its keepalive pings come from one timer per server (`keepalive.KeepaliveWheel`), not one per
connection: the same pings and timeouts, without 576 bytes per idle connection. Once a
connection is accepted, the scope's headers lose those that only served the handshake
(`Sec-WebSocket-Key` and the like, about 0.7 KiB).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

from jobgate.server.keepalive import KeepaliveWheel, wheel_of
from jobgate.server.primitives import OnDemandFlag, OnDemandQueue
from jobgate.server.send_now import SEND_NOW, PreparedText

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

# Request headers that only serve the opening handshake (RFC 6455 4.1), which uvicorn and
# websockets have done with once the connection is accepted.
HANDSHAKE_ONLY = frozenset(
    {
        b"connection",
        b"upgrade",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
    }
)


class ConnectionOutlet:
    """One connection's `jobgate.send_now`: asked for every subscriber of every event, it
    holds what it reads in slots of its own (the transport, whether the connection is open
    to it, whether it is compressed), not in the protocol's attribute dict.

    `open` is set once the handshake is accepted and cleared as the app closes the
    connection: the one way uvicorn sends a close frame and keeps the transport open (until
    the client's reply). Every other way it closes, the transport is closing at once, which
    `send_now` asks of it (`tests/unit/test_lean_path.py` holds uvicorn to that)."""

    __slots__ = ("compressed", "conn", "open", "transport")

    def __init__(self, protocol: LeanWebSocketProtocol) -> None:
        # Both made with the connection and kept for its life.
        self.conn = protocol.conn
        self.transport = protocol.transport
        self.open = False
        self.compressed = False

    def send_now(self, message: PreparedText) -> bool:
        """Write `message` now, if the connection is open and nothing waits to be written
        before it: `False` (and nothing written) otherwise, so the caller takes the ASGI path,
        which waits for a full write buffer to drain and reports a closed connection. (An
        empty write buffer also means uvicorn's `writable` flag is set: it clears it only
        while the buffer is above its high-water mark.)"""
        if not self.open:
            return False
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        if not self.compressed:
            transport.write(message.frame)
            return True
        # Compression keeps state per connection: its own frame.
        conn = self.conn
        if conn.state is not State.OPEN:
            return False
        conn.send_text(message.data)
        transport.write(b"".join(conn.data_to_send()))
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with on-demand queue and flag (see the module)."""

    _outlet: ConnectionOutlet | None = None
    _wheel: KeepaliveWheel | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = OnDemandQueue()  # type: ignore[assignment]
        writable = OnDemandFlag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.request = None  # type: ignore[assignment]  # the ASGI scope has what the app needs of it
        # websockets' parser keeps the request it parsed for the connection's life (a local of
        # its generator): its headers, 2.6 KiB, are in the scope already.
        event.headers.clear()
        if self.response.status_code == 101:
            outlet = self._outlet = ConnectionOutlet(self)
            self.scope["extensions"][SEND_NOW] = outlet  # type: ignore[assignment]

    def send(self, message: ASGISendEvent) -> Coroutine[Any, Any, None]:
        # uvicorn's `send`, returned rather than awaited (no frame of this one's on the way).
        if message["type"] == "websocket.close" and self._outlet is not None:
            # Nothing is written after the close frame (uvicorn's `close_sent`).
            self._outlet.open = False
        return super().send(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._outlet is not None:
            self._outlet.open = False
        super().connection_lost(exc)

    def start_keepalive(self) -> None:
        # uvicorn calls this once, right after it has sent the accepted handshake's response;
        # nothing reads the response again. (Here rather than around `send`, which is on the
        # path of every message to every subscriber.)
        if self.ping_interval is not None and self.ping_interval > 0:
            self._wheel = wheel_of(self.config, self.ping_interval, self.ping_timeout)
            self._wheel.put(self, self.loop.time() + self.ping_interval)
        self.response = None  # type: ignore[assignment]
        # The handshake is accepted (`handshake_complete`, no `initial_response` ever after)
        # and its extensions settled: without one, every connection gets the same frame for
        # the same message.
        outlet = self._outlet
        if outlet is not None and not self.close_sent:
            outlet.compressed = bool(self.conn.extensions)
            outlet.open = True
        # The handshake's own headers mean nothing once it is done; the app's views of the
        # scope's headers (Starlette caches one) share this list, so it is trimmed in place.
        headers = self.scope["headers"]
        if isinstance(headers, list):  # as uvicorn makes it
            headers[:] = [header for header in headers if header[0] not in HANDSHAKE_ONLY]
        # Every attribute is set by now (39). uvicorn's `__init__` grew the instance's dict in
        # steps to a table for 85 (1,584 bytes); a copy is sized for what it holds (832).
        self.__dict__ = dict(self.__dict__)

    def stop_keepalive(self) -> None:
        if self._wheel is not None:
            self._wheel.remove(self)
        self.pending_ping_payload = None

    def keepalive_due(self, now: float, payload: bytes) -> float | None:
        """The wheel's turn: no pong to the last ping (uvicorn's timeout), or the next ping."""
        assert self.ping_interval is not None
        if self.close_sent or self.transport.is_closing():
            return None
        if self.pending_ping_payload is not None and self.ping_timeout is not None:
            self.keepalive_timeout()
            return None
        self.pending_ping_payload = payload
        self.ping_sent_at = now
        self.conn.send_ping(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is None:
            return now + self.ping_interval
        return now + self.ping_timeout

    def handle_pong(self, event: Frame) -> None:
        # As uvicorn's: only the pong of the ping in flight counts; the next ping is due an
        # interval after that one was sent.
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self._wheel is not None and self.ping_timeout is not None:
            assert self.ping_interval is not None
            self._wheel.put(self, self.ping_sent_at + self.ping_interval)
