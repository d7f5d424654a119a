"""Opening a byte stream to where a session's job side is (`Upstream`): a TCP port, a Unix
socket (however deep its path), or a command the opener runs on a pseudo-terminal of its own
(`Terminals`, over a socket pair); and carrying a connection both ways (`until_either_ends`).
The gateway's terminal, desktop and agent relays use them, and so does an agent relaying a
session of its jobs to the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Coroutine
from typing import Any

from websockets.exceptions import ConnectionClosed

from jobgate.sessions.address import Upstream, connectable_path
from jobgate.sessions.bridge import Terminals

# The shells an opener runs itself (`Upstream.command`): each ends when its stream closes.
_RUNNING: set[asyncio.Task[None]] = set()


async def open_stream(upstream: Upstream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to `upstream`; raises `OSError` where none can be made."""
    if upstream.command is not None:
        ours, theirs = socket.socketpair()
        terminals = Terminals(upstream.command, dict(upstream.environment))
        shell_side = await asyncio.open_connection(sock=theirs)
        task = asyncio.create_task(terminals.serve(*shell_side))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        return await asyncio.open_connection(sock=ours)
    if upstream.port is not None:
        return await asyncio.open_connection(upstream.host, upstream.port)
    assert upstream.unix_socket is not None  # an Upstream is one of the three
    folder, path = connectable_path(upstream.unix_socket)
    try:
        return await asyncio.open_unix_connection(path)
    finally:
        if folder is not None:
            os.close(folder)


async def until_either_ends(*directions: Coroutine[Any, Any, None]) -> None:
    """Carry a connection's directions together until one of them ends (or this is
    cancelled: the job ended); then the others are cancelled too. A side that goes away ends
    its direction: that is no error."""
    tasks = [asyncio.create_task(direction) for direction in directions]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(
                asyncio.CancelledError, ConnectionError, OSError, ConnectionClosed
            ):
                await task
