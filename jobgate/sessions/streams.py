"""Opening a byte stream to where a session's job side is (`Upstream`): a TCP port, a Unix
socket (however deep its path), or a command the opener runs on a pseudo-terminal of its own
(`Terminals`, over a socket pair). The gateway's terminal and desktop relays use it, and so
does an agent relaying a session of its jobs to the gateway."""

from __future__ import annotations

import asyncio
import os
import socket

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
