"""`JobEventBus`: a doorbell over broadcaster.

The store is the source of truth; the bus only says "the update log grew". A lost message delays
an event until the feed's next poll; it never loses one. `memory://` uses broadcaster's own
backend; `redis://` uses `ResilientRedisBackend`, which survives Redis going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from broadcaster import Broadcast
from broadcaster._base import Unsubscribed

from jobgate.events.redis_backend import ResilientRedisBackend
from jobgate.storage.base import RoundTrips

log = logging.getLogger(__name__)

CHANNEL = "jobgate.updates"
# A ring that takes longer than this is given up; the store is polled anyway.
PUBLISH_TIMEOUT = 2.0


class JobEventBus:
    """Publishes and receives "the log grew" on one channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: ResilientRedisBackend | None = None
        if url.startswith(("redis://", "rediss://")):
            self._redis = ResilientRedisBackend(url)
            self._broadcast = Broadcast(backend=self._redis)
        else:
            self._broadcast = Broadcast(url)
        # Publishes and pings, timed, with their failures (the metrics' `jobgate_bus_*`).
        self.round_trips = RoundTrips()
        self._ringer: asyncio.Task[None] | None = None
        self._ring_again = False
        self._failing = False

    async def connect(self) -> None:
        await self._broadcast.connect()

    async def ping(self) -> None:
        """Raises `BusUnavailable` when the bus (Redis) does not answer; in one process the
        bus is memory, always there."""
        if self._redis is not None:
            with self.round_trips.measure("ping", Exception):
                await self._redis.ping()

    async def disconnect(self) -> None:
        if self._ringer is not None:
            self._ringer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ringer
        await self._broadcast.disconnect()

    def ring(self) -> None:
        """Announce that the update log grew. Returns at once and never fails.

        Rings coalesce: while one is on its way, later ones become a single ring after it, so a
        burst of writes costs at most two messages and never waits for a slow or absent bus.
        """
        if self._ringer is not None and not self._ringer.done():
            self._ring_again = True
            return
        self._ringer = asyncio.get_running_loop().create_task(self._send_rings())

    async def _send_rings(self) -> None:
        while True:
            self._ring_again = False
            try:
                with self.round_trips.measure("publish", Exception):
                    async with asyncio.timeout(PUBLISH_TIMEOUT):
                        await self._broadcast.publish(channel=CHANNEL, message="grew")
            except Exception as error:  # a broken bus must not fail writes that committed
                if not self._failing:
                    log.warning(
                        "cannot ring the event bus (%s); watchers elsewhere are served by "
                        "polling the store until it is back",
                        error or type(error).__name__,
                    )
                self._failing = True
            else:
                if self._failing:
                    log.warning("the event bus works again")
                self._failing = False
            if not self._ring_again:
                return

    async def say(self, channel: str, message: str) -> None:
        """Publish `message` on `channel` to every replica (this one included); raises what
        the bus raises (a timeout after `PUBLISH_TIMEOUT`)."""
        with self.round_trips.measure("publish", Exception):
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self._broadcast.publish(channel=channel, message=message)

    @contextlib.asynccontextmanager
    async def hearing(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """The messages said on `channel` from now on, while the context is open."""
        async with self._broadcast.subscribe(channel=channel) as subscriber:

            async def messages() -> AsyncIterator[str]:
                with contextlib.suppress(Unsubscribed):
                    while True:
                        event = await subscriber.get()
                        yield str(event.message)

            yield messages()

    @contextlib.asynccontextmanager
    async def doorbells(self) -> AsyncIterator[AsyncIterator[None]]:
        """A stream that yields once per ring, while the context is open."""
        async with self._broadcast.subscribe(channel=CHANNEL) as subscriber:

            async def rings() -> AsyncIterator[None]:
                with contextlib.suppress(Unsubscribed):
                    while True:
                        await subscriber.get()
                        yield None

            yield rings()
