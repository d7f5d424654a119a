"""The `jobgate.send_now` ASGI extension: write a message to a WebSocket at once.

ASGI lets a server add its own extensions to a connection's scope; apps that do not know one
ignore it. jobgate's WebSocket protocol (`protocol.py`) offers this one: an `Outlet` whose
`send_now` takes a `PreparedText` and writes it now, outside the app's tasks, or declines
(`False`) when the message must take the ASGI path (a closed connection, writes waiting). The
lean `jobUpdates` path uses it to write one event to many sockets in one pass.
"""

from __future__ import annotations

from typing import Protocol

from websockets.frames import Frame, Opcode

# The ASGI scope extension under which a connection offers its `Outlet`.
SEND_NOW = "jobgate.send_now"


class PreparedText:
    """A text message to send to many connections: encoded once, and framed once for every
    connection without a compression extension (a server's frames are not masked, so those
    connections all get the same bytes)."""

    __slots__ = ("data", "frame")

    def __init__(self, text: str) -> None:
        self.data = text.encode()
        # Made at once (microseconds, once per message): read for every subscriber.
        self.frame = Frame(Opcode.TEXT, self.data).serialize(mask=False, extensions=[])


class Outlet(Protocol):
    def send_now(self, message: PreparedText) -> bool:
        """Write `message` now, or decline (`False`, nothing written)."""
        ...
