"""A gateway-side WebSocket (ASGI) carrying a byte stream in its binary messages, both ways:
a desktop's (noVNC's, to the job's VNC server) and an agent's relay (to a connection of a
session) alike."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Send

CHUNK = 64 * 1024


def message_bytes(message: Message) -> bytes | None:
    """An ASGI `websocket.receive` message's bytes (a text message's as UTF-8), if any."""
    data: bytes | None = message.get("bytes")
    if data is None and message.get("text") is not None:
        data = message["text"].encode()
    return data


async def websocket_to_stream(receive: Receive, writer: asyncio.StreamWriter) -> None:
    """Each message's bytes (a text message's as UTF-8) to `writer`, until the WebSocket
    ends."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if data := message_bytes(message):
            writer.write(data)
            await writer.drain()


async def stream_to_websocket(reader: asyncio.StreamReader, send: Send) -> None:
    """The stream's bytes as binary messages, until it ends (closing is the caller's)."""
    while chunk := await reader.read(CHUNK):
        await send({"type": "websocket.send", "bytes": chunk})
