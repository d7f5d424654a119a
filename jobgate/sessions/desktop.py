"""VNC sessions: the page (noVNC, served by the gateway itself) and its WebSocket, whose binary
messages the gateway carries to and from the job's VNC server as a plain byte stream (what
websockify does), over TCP or the bridge's Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources

from starlette.types import Receive, Scope, Send

from jobgate.sessions.address import Upstream
from jobgate.sessions.streams import open_stream

ASSETS = resources.files("jobgate") / "static" / "desktop"
CHUNK = 64 * 1024

log = logging.getLogger(__name__)


def page() -> bytes:
    return (ASSETS / "index.html").read_bytes()


async def relay(scope: Scope, receive: Receive, send: Send, upstream: Upstream) -> None:
    """Carry one desktop WebSocket to the job's VNC server, until either side closes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        reader, writer = await open_stream(upstream)
    except OSError as error:
        log.info("a VNC session's server at %s does not answer: %s", upstream, error)
        await send({"type": "websocket.close", "code": 1011})
        return
    # noVNC of old asked for the "binary" subprotocol; today's asks for none.
    offered = scope.get("subprotocols") or []
    subprotocol = "binary" if "binary" in offered else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    to_server = asyncio.create_task(_browser_to_server(receive, writer))
    to_browser = asyncio.create_task(_server_to_browser(reader, send))
    try:
        await asyncio.wait({to_server, to_browser}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_server, to_browser):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await task
        writer.close()


async def _browser_to_server(receive: Receive, writer: asyncio.StreamWriter) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None and message.get("text") is not None:
            data = message["text"].encode()
        if data:
            writer.write(data)
            await writer.drain()


async def _server_to_browser(reader: asyncio.StreamReader, send: Send) -> None:
    while chunk := await reader.read(CHUNK):
        await send({"type": "websocket.send", "bytes": chunk})
    await send({"type": "websocket.close", "code": 1000})  # the VNC server closed
