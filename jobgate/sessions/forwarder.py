"""`Forwarders`: Unix sockets on the gateway that carry each connection to a job's server on a
compute node, after the job's secret (`jobgate.sessions.bridge`, `--on-node`).

The WEB proxy and the desktop relay speak to a socket here (`PrivateSockets`) as to any
upstream; each connection made to it is carried to the node's bridge, which lets it through
once the first line proves it comes from the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from jobgate.sessions.bridge import pipe
from jobgate.sessions.private_sockets import Key, PrivateSockets

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """A job's server on a node, as its bridge announced it, and the job's secret."""

    host: str
    port: int
    secret: bytes


class Forwarders:
    """One socket per (job, rank, kind) whose server is on a compute node."""

    def __init__(self) -> None:
        self._sockets = PrivateSockets("jobgate-sessions-")
        self._targets: dict[Key, Target] = {}

    async def socket_for(self, job_id: str, rank: int, kind: str, target: Target) -> Path:
        """The socket that reaches `target` (the same one while the target stays the same;
        a new one when the replica's bridge started again, elsewhere)."""
        key = (job_id, rank, kind)
        path = self._sockets.path(key)
        if path is not None and self._targets.get(key) == target:
            return path
        self._targets[key] = target
        return await self._sockets.open(key, lambda r, w: _forward(target, r, w))

    async def close(self, job_id: str) -> None:
        """The job ended: its sockets go (connections through them end with its servers)."""
        await self._sockets.close(job_id)
        for key in [key for key in self._targets if key[0] == job_id]:
            del self._targets[key]

    async def close_all(self) -> None:
        await self._sockets.close_all()
        self._targets.clear()


async def _forward(
    target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        node_reader, node_writer = await asyncio.open_connection(target.host, target.port)
    except OSError as error:
        log.info("a session's server at %s:%s does not answer: %s", target.host, target.port, error)
        writer.close()
        return
    node_writer.write(target.secret + b"\n")
    try:
        await asyncio.gather(pipe(reader, node_writer), pipe(node_reader, writer))
    finally:
        for closing in (node_writer, writer):
            closing.close()
            with contextlib.suppress(ConnectionError, OSError):
                await closing.wait_closed()
