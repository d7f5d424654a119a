"""The fan-out benchmark's Python floor: a bare broadcaster on the event loop jobgate runs on.

It speaks just enough graphql-transport-ws to take subscriptions (`connection_ack`, then
nothing) through the WebSocket library uvicorn uses (websockets' sans-I/O protocol), and on
`GET /publish` writes one precomputed frame to every subscriber's transport in one loop. What
it costs is what a Python server pays for its sockets; nothing here is GraphQL.

    python -m bench.fanout.floor --port 8000 --message message.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import cast

import uvloop
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

ACK = Frame(Opcode.TEXT, b'{"type":"connection_ack"}').serialize(mask=False, extensions=[])
PUBLISHED = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


class Subscriber(asyncio.Protocol):
    def __init__(self, subscribed: set[asyncio.Transport], frame: bytes) -> None:
        self.subscribed = subscribed
        self.frame = frame
        self.connection = ServerProtocol(subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        self.subscribed.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.connection.receive_data(data)
        for event in self.connection.events_received():
            if isinstance(event, Request):
                if event.path.startswith("/publish"):
                    self.transport.write(PUBLISHED)
                    self.transport.close()
                    for subscriber in self.subscribed:
                        subscriber.write(self.frame)
                    return
                self.connection.send_response(self.connection.accept(event))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                kind = json.loads(bytes(event.data))["type"]
                if kind == "connection_init":
                    self.transport.write(ACK)
                elif kind == "subscribe":
                    self.subscribed.add(self.transport)
        for output in self.connection.data_to_send():
            self.transport.write(output)


async def serve(port: int, message: bytes) -> None:
    frame = Frame(Opcode.TEXT, message).serialize(mask=False, extensions=[])
    subscribed: set[asyncio.Transport] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Subscriber(subscribed, frame), "127.0.0.1", port, backlog=4096
    )
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--message", type=Path, required=True, help="the message to broadcast")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.message.read_bytes()))


if __name__ == "__main__":
    main()
