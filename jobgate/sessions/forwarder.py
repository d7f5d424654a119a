"""`Forwarders`: Unix sockets on the gateway that carry each connection to a job's server on a
compute node, after the job's secret (`jobgate.sessions.bridge`, `--on-node`).

The WEB proxy and the desktop relay speak to a socket here as to any upstream; each connection
made to it is carried to the node's bridge, which lets it through once the first line proves
it comes from the gateway. The sockets live in a folder only the gateway's account can enter
(made with `tempfile.mkdtemp`: a short path, as a socket's address must be).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobgate.sessions.bridge import pipe

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """A job's server on a node, as its bridge announced it, and the job's secret."""

    host: str
    port: int
    secret: bytes


class Forwarders:
    """One Unix socket per (job, rank, kind) whose server is on a compute node."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._servers: dict[tuple[str, int, str], tuple[Target, asyncio.Server, Path]] = {}

    async def socket_for(self, job_id: str, rank: int, kind: str, target: Target) -> Path:
        """The socket that reaches `target` (the same one while the target stays the same)."""
        key = (job_id, rank, kind)
        existing = self._servers.get(key)
        if existing is not None and existing[0] == target:
            return existing[2]
        if existing is not None:  # the replica's bridge started again, elsewhere
            await self._close(key)
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="jobgate-sessions-"))
        path = self._folder / f"{job_id}-{rank}-{kind}.sock"
        server = await asyncio.start_unix_server(
            lambda reader, writer: _forward(target, reader, writer), path
        )
        path.chmod(0o600)
        self._servers[key] = (target, server, path)
        return path

    async def close(self, job_id: str) -> None:
        """The job ended: its sockets go (connections through them end with its servers)."""
        for key in [key for key in self._servers if key[0] == job_id]:
            await self._close(key)

    async def close_all(self) -> None:
        for key in list(self._servers):
            await self._close(key)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    async def _close(self, key: tuple[str, int, str]) -> None:
        _, server, path = self._servers.pop(key)
        server.close()
        path.unlink(missing_ok=True)


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
