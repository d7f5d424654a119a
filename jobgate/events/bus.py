"""`JobEventBus`: a doorbell over broadcaster.

The store is the source of truth; the bus only says "the update log grew". A lost message delays
an event until the feed's next poll; it never loses one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast
from broadcaster._base import Unsubscribed

log = logging.getLogger(__name__)

CHANNEL = "jobgate.updates"


class JobEventBus:
    """Publishes and receives update-log positions on one channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._broadcast = Broadcast(url)

    async def connect(self) -> None:
        await self._broadcast.connect()

    async def disconnect(self) -> None:
        await self._broadcast.disconnect()

    async def ring(self) -> None:
        """Announce that the update log grew. Never raises: the feed also polls the store."""
        try:
            await self._broadcast.publish(channel=CHANNEL, message="grew")
        except Exception:  # a broken bus must not fail the write that already committed
            log.exception("could not ring the event bus")

    @asynccontextmanager
    async def doorbells(self) -> AsyncIterator[AsyncIterator[None]]:
        """A stream that yields once per ring, while the context is open."""
        async with self._broadcast.subscribe(channel=CHANNEL) as subscriber:

            async def rings() -> AsyncIterator[None]:
                with contextlib.suppress(Unsubscribed):
                    while True:
                        await subscriber.get()
                        yield None

            yield rings()
