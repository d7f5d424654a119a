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
`jobgate.send_now` extension (`send_now`): the lean `jobUpdates` path writes one event to ten
thousand sockets in one pass that way, instead of waking ten thousand tasks to each go through
Starlette's `send_text`, an ASGI message and uvicorn's `send`.

Its keepalive pings come from one timer per server (`keepalive.KeepaliveWheel`), not one per
connection: the same pings and timeouts, without 576 bytes per idle connection. Once a
connection is accepted, the scope's headers lose those that only served the handshake
(`Sec-WebSocket-Key` and the like, about 0.7 KiB).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

from jobgate.server.keepalive import KeepaliveWheel, wheel_of
from jobgate.server.primitives import OnDemandFlag, OnDemandQueue
from jobgate.server.send_now import SEND_NOW, PreparedText

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

# `LeanWebSocketProtocol._outlet`'s values once the handshake is accepted.
PLAIN = "plain"
COMPRESSED = "compressed"


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with on-demand queue and flag (see the module)."""

    # How `send_now` writes: not at all until the handshake is accepted, then one frame for
    # every connection without an extension, or a frame of the connection's own.
    _outlet: str | None = None
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
            self.scope["extensions"][SEND_NOW] = self  # type: ignore[assignment]

    def send_now(self, message: PreparedText) -> bool:
        """Write `message` now, if the connection is open and nothing waits to be written
        before it: `False` (and nothing written) otherwise, so the caller takes the ASGI path,
        which waits for a full write buffer to drain and reports a closed connection.

        Asked for every subscriber of every event, it reads as little of the protocol as it
        can (each attribute is a probe of its dict, often a cache miss at 10,000 subscribers):
        `_outlet` is set once the handshake is accepted (uvicorn's `handshake_complete`, with
        no `initial_response` ever after), and an empty write buffer also means the `writable`
        flag is set (uvicorn clears it only while the buffer is above its high-water mark).
        """
        outlet = self._outlet
        if outlet is None or self.close_sent or self.disconnected:
            return False
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        if outlet is PLAIN:
            transport.write(message.frame)
            return True
        # Compression keeps state per connection: its own frame.
        if self.conn.state is not State.OPEN:
            return False
        self.conn.send_text(message.data)
        transport.write(b"".join(self.conn.data_to_send()))
        return True

    def start_keepalive(self) -> None:
        # uvicorn calls this once, right after it has sent the accepted handshake's response;
        # nothing reads the response again. (Here rather than around `send`, which is on the
        # path of every message to every subscriber.)
        if self.ping_interval is not None and self.ping_interval > 0:
            self._wheel = wheel_of(self.config, self.ping_interval, self.ping_timeout)
            self._wheel.put(self, self.loop.time() + self.ping_interval)
        self.response = None  # type: ignore[assignment]
        # The extensions are settled with the handshake: without one, every connection gets
        # the same frame for the same message.
        self._outlet = COMPRESSED if self.conn.extensions else PLAIN
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
