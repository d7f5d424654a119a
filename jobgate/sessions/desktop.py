"""VNC sessions: the page (noVNC, served by the gateway itself) and its WebSocket, whose binary
messages the gateway carries to and from the job's VNC server as a plain byte stream (what
websockify does), over TCP or the bridge's Unix socket."""

from __future__ import annotations

import contextlib
import functools
import logging
from importlib import resources

from starlette.types import Receive, Scope, Send

from jobgate.sessions.address import Upstream
from jobgate.sessions.streams import open_stream, until_either_ends
from jobgate.sessions.websocket_bytes import stream_to_websocket, websocket_to_stream

ASSETS = resources.files("jobgate") / "static" / "desktop"

log = logging.getLogger(__name__)


@functools.cache  # read once: the same for every session
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
    try:
        await until_either_ends(
            websocket_to_stream(receive, writer), stream_to_websocket(reader, send)
        )
    finally:
        writer.close()
    with contextlib.suppress(RuntimeError, OSError):  # the browser may have gone first
        await send({"type": "websocket.close", "code": 1000})
