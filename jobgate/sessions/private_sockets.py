"""`PrivateSockets`: Unix sockets of the gateway's own, one per (job, replica, kind), that the
WEB proxy and the terminal and desktop relays connect to as to any job's side, while what
serves them reaches the job another way (a forwarder to a compute node, an agent's relay). They
live in a folder only the gateway's account can enter (`tempfile.mkdtemp`: also a short path,
as a socket's address must be)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

Key = tuple[str, int, str]  # job, replica, kind
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class PrivateSockets:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._folder: Path | None = None
        self._servers: dict[Key, tuple[asyncio.Server, Path]] = {}

    def path(self, key: Key) -> Path | None:
        """The socket open for `key`, if one is."""
        served = self._servers.get(key)
        return None if served is None else served[1]

    async def open(self, key: Key, handler: Handler) -> Path:
        """A socket for `key` (0600), each connection to it served by `handler`."""
        await self.close_key(key)
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=self.prefix))
        job_id, rank, kind = key
        path = self._folder / f"{job_id}-{rank}-{kind}.sock"
        server = await asyncio.start_unix_server(handler, path)
        path.chmod(0o600)
        self._servers[key] = (server, path)
        return path

    async def close_key(self, key: Key) -> None:
        served = self._servers.pop(key, None)
        if served is not None:
            served[0].close()
            served[1].unlink(missing_ok=True)

    async def close(self, job_id: str) -> None:
        """The job ended: its sockets go (connections through them end with its side)."""
        for key in [key for key in self._servers if key[0] == job_id]:
            await self.close_key(key)

    async def close_all(self) -> None:
        for key in list(self._servers):
            await self.close_key(key)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
