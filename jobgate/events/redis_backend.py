"""`ResilientRedisBackend`: broadcaster's backend interface over `redis.asyncio`, made to survive
Redis going away.

broadcaster 0.3.1's own `redis://` backend is not sound here: with redis-py 8 it delivered no
messages in a test, its listener dies for good when Redis restarts (upstream issues #142 and
#144), and subscribers then wait forever without an error. This backend keeps broadcaster's
interface and fixes that part:

- `next_published` never raises for a lost connection: it logs once, reconnects with
  exponential backoff, subscribes again, and then hands out one "reconnected" event per channel,
  so that listeners (the update feed) read the store for whatever they missed meanwhile;
- `publish` raises `BusUnavailable` while Redis is away; the event bus logs that once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from broadcaster import Event
from broadcaster._backends.base import BroadcastBackend
from redis import asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RECONNECTED = "reconnected"
_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


class BusUnavailable(Exception):
    """The bus cannot take a message now."""


class ResilientRedisBackend(BroadcastBackend):
    def __init__(self, url: str, *, backoff_start: float = 0.1, backoff_max: float = 5.0) -> None:
        self.url = url
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self._client: redis.Redis | None = None
        self._pubsub: Any = None
        self._channels: set[str] = set()
        self._subscribed = asyncio.Event()
        self._pending: list[Event] = []
        self.reconnects = 0

    async def connect(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, health_check_interval=5
        )

    async def disconnect(self) -> None:
        await self._close_pubsub()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        """One round trip to Redis; raises `BusUnavailable` when it does not answer."""
        assert self._client is not None, "connect() first"
        try:
            await self._client.ping()
        except _LOST as error:
            raise BusUnavailable(f"Redis is unavailable: {error}") from error

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        if self._pubsub is not None:
            try:
                await self._pubsub.subscribe(channel)
            except _LOST:
                await self._close_pubsub()  # next_published reconnects and subscribes
        self._subscribed.set()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except _LOST:
                await self._close_pubsub()

    async def publish(self, channel: str, message: Any) -> None:
        assert self._client is not None, "connect() first"
        try:
            await self._client.publish(channel, message)
        except _LOST as error:
            raise BusUnavailable(f"Redis is unavailable: {error}") from error

    async def next_published(self) -> Event:
        while True:
            if self._pending:
                return self._pending.pop(0)
            await self._subscribed.wait()
            if self._pubsub is None:
                await self._reconnect()
                continue
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except _LOST as error:
                log.warning("lost the connection to Redis (%s); reconnecting", error)
                await self._close_pubsub()
                continue
            if message is not None and message["type"] == "message":
                return Event(channel=message["channel"], message=message["data"])

    async def _reconnect(self) -> None:
        """Subscribe again, waiting longer after each failure; then announce the gap."""
        assert self._client is not None, "connect() first"
        delay = self.backoff_start
        while True:
            pubsub: Any = self._client.pubsub()  # redis-py leaves PubSub.aclose untyped
            try:
                if self._channels:
                    await pubsub.subscribe(*self._channels)
                break
            except _LOST as error:
                await pubsub.aclose()
                log.warning("Redis is unavailable (%s); next try in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        self._pubsub = pubsub
        if self.reconnects:
            log.warning("reconnected to Redis; subscribers catch up from the store")
        self.reconnects += 1
        # Messages published while no connection was up are gone: ring every channel once.
        self._pending.extend(Event(channel=c, message=RECONNECTED) for c in self._channels)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_LOST):
                await pubsub.aclose()
