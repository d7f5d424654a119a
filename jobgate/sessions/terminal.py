"""TERMINAL sessions: the page (xterm.js, served by the gateway itself) and its WebSocket,
relayed to a shell that the bridge starts inside the job (`jobgate.sessions.bridge`).

The browser sends keys as binary messages and the terminal's size as `{"resize": [columns,
rows]}`; it gets the shell's output as binary messages, and `{"exit": code}` when the shell
ends. Towards the bridge the same travels in the bridge's frames, over its Unix socket.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from importlib import resources

from starlette.types import Receive, Scope, Send

from jobgate.sessions.address import Upstream
from jobgate.sessions.bridge import (
    DATA,
    EXIT,
    EXIT_PAYLOAD,
    FRAME,
    MAX_FRAME,
    RESIZE,
    RESIZE_PAYLOAD,
)
from jobgate.sessions.streams import open_stream, until_either_ends

ASSETS = resources.files("jobgate") / "static" / "terminal"
# Bounds of what a browser may say it is (xterm.js's own are larger than any screen).
MAX_COLUMNS, MAX_ROWS = 1000, 1000

log = logging.getLogger(__name__)


@functools.cache  # read once: the same for every session
def page() -> bytes:
    """The terminal's page (the same for every session: it finds its socket beside itself)."""
    return (ASSETS / "index.html").read_bytes()


async def relay(scope: Scope, receive: Receive, send: Send, upstream: Upstream) -> None:
    """Carry one terminal WebSocket to a new shell of the job's bridge, until either ends."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        reader, writer = await open_stream(upstream)
    except OSError as error:
        log.info("a terminal session's bridge at %s does not answer: %s", upstream, error)
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept"})
    try:
        await until_either_ends(_browser_to_shell(receive, writer), _shell_to_browser(reader, send))
    finally:
        writer.close()


async def _browser_to_shell(receive: Receive, writer: asyncio.StreamWriter) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            writer.write(FRAME.pack(DATA, len(data)) + data)
        else:
            size = _resize(message.get("text"))
            if size is not None:
                writer.write(FRAME.pack(RESIZE, RESIZE_PAYLOAD.size) + RESIZE_PAYLOAD.pack(*size))
        await writer.drain()


def _resize(text: str | None) -> tuple[int, int] | None:
    """The size a `{"resize": [columns, rows]}` message asks for; None for anything else."""
    try:
        columns, rows = json.loads(text or "")["resize"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(columns, int) and isinstance(rows, int)):
        return None
    if not (1 <= columns <= MAX_COLUMNS and 1 <= rows <= MAX_ROWS):
        return None
    return columns, rows


async def _shell_to_browser(reader: asyncio.StreamReader, send: Send) -> None:
    code = 1000
    try:
        while True:
            kind, size = FRAME.unpack(await reader.readexactly(FRAME.size))
            if size > MAX_FRAME:  # the socket lies in the job's folder: bounded like any input
                code = 1011
                break
            payload = await reader.readexactly(size)
            if kind == DATA:
                await send({"type": "websocket.send", "bytes": payload})
            elif kind == EXIT and size == EXIT_PAYLOAD.size:
                (status,) = EXIT_PAYLOAD.unpack(payload)
                await send({"type": "websocket.send", "text": json.dumps({"exit": status})})
                break
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        code = 1011  # the bridge went away without a word: the job's end closes with 1001
    await send({"type": "websocket.close", "code": code})
