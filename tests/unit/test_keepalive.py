"""WebSocket keepalive on jobgate's protocol (one wheel per server, `jobgate.server.keepalive`):
an idle connection is pinged every interval and stays open while it answers; one that stops
answering is closed with 1011 after the timeout; a closed connection leaves nothing behind;
without a timeout, pings go on and nothing is closed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from jobgate.server.keepalive import wheel_of
from tests.gateway import serving_websockets

INTERVAL = 0.3
TIMEOUT = 0.3


async def idle_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts a WebSocket and waits for it to end."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def keeping_alive(
    timeout: float | None, interval: float = INTERVAL
) -> contextlib.AbstractAsyncContextManager[tuple[str, uvicorn.Config]]:
    """The idle app, pinged every `interval` and failed `timeout` after an unanswered ping."""
    return serving_websockets(idle_app, ws_ping_interval=interval, ws_ping_timeout=timeout)


@dataclass
class Heard:
    """What a raw client got from the server: when pings came, and the close frame if any."""

    pings: list[float] = field(default_factory=list)
    close: Close | None = None


async def listen(url: str, seconds: float, *, answer_pings: bool) -> Heard:
    """A client on websockets' sans-I/O protocol that reads for `seconds` (or until closed),
    answering pings (the protocol's automatic pongs) only if `answer_pings`."""
    protocol = ClientProtocol(parse_uri(url))
    uri = parse_uri(url)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    protocol.send_request(protocol.connect())
    writer.write(b"".join(protocol.data_to_send()))
    heard = Heard()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    accepted = False
    try:
        while heard.close is None and (remaining := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(reader.read(65536), remaining)
            except TimeoutError:
                break
            if not data:
                break
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101
                    accepted = True
                elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                    heard.pings.append(loop.time())
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    heard.close = Close.parse(event.data)
            outgoing = protocol.data_to_send()
            if answer_pings or not accepted or heard.close is not None:
                writer.write(b"".join(outgoing))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert accepted
    return heard


async def test_an_idle_connection_that_answers_is_pinged_every_interval_and_kept() -> None:
    async with keeping_alive(TIMEOUT) as (url, _):
        heard = await listen(url, 8 * INTERVAL, answer_pings=True)
    assert heard.close is None
    # A ping an interval after the last one was sent; a deadline may come a tick late.
    assert 5 <= len(heard.pings) <= 8
    gaps = [later - earlier for earlier, later in zip(heard.pings, heard.pings[1:], strict=False)]
    assert all(INTERVAL * 0.8 < gap < INTERVAL * 2 for gap in gaps), gaps


async def test_a_connection_that_stops_answering_is_closed_after_the_timeout() -> None:
    async with keeping_alive(TIMEOUT) as (url, _):
        heard = await listen(url, 10 * INTERVAL, answer_pings=False)
    assert heard.close is not None
    assert (heard.close.code, heard.close.reason) == (1011, "keepalive ping timeout")
    assert len(heard.pings) == 1


async def test_without_a_timeout_pings_go_on_and_nothing_is_closed() -> None:
    async with keeping_alive(None) as (url, _):
        heard = await listen(url, 6 * INTERVAL, answer_pings=False)
    assert heard.close is None
    assert len(heard.pings) >= 3


async def test_connections_that_end_leave_nothing_to_ping() -> None:
    # Long: a connection's place is given up when it ends, not found empty at its next ping.
    interval = 60
    async with keeping_alive(interval, interval) as (url, config):
        clients = asyncio.gather(*(listen(url, 0.5, answer_pings=True) for _ in range(50)))
        await asyncio.sleep(0.3)
        wheel = wheel_of(config, interval, interval)
        assert len(wheel) == 50
        await clients
        await asyncio.sleep(0.2)  # the server sees the sockets close
        assert len(wheel) == 0
