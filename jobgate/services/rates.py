"""`RateLimits`: how many requests, and how much cost, each caller may spend per minute.

A caller is a user, a provider, or (without a token) a client address (`caller_key`). Counts
are sliding-window counters from the `limits` library: in Redis when the bus is `redis://`,
so every replica draws from the same allowance, and in this process otherwise. While Redis
cannot answer, each replica counts on its own (and says so once) rather than refusing
everyone or letting everyone through; it tries Redis again after `REDIS_RETRY_SECONDS`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis import asyncio as redis

from jobgate.access import Identity, ProviderIdentity, User
from jobgate.settings import LimitSettings

log = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 5.0
KEY_PREFIX = "jobgate-rates"


def caller_key(identity: Identity | None, address: str | None) -> str:
    """Whose allowance a request draws from."""
    if isinstance(identity, User):
        return f"user:{identity.username}"
    if isinstance(identity, ProviderIdentity):
        return f"provider:{identity.provider_id}"
    return f"address:{address or 'unknown'}"


@dataclass(frozen=True, slots=True)
class RateRefusal:
    """A caller is over `limit` (its settings key) until `retry_after` seconds from now."""

    limit: str
    retry_after: int

    @property
    def message(self) -> str:
        what = "requests" if self.limit == "limits.requests_per_minute" else "query cost"
        return f"too many {what} this minute; retry in {self.retry_after} s"


class RateLimits:
    """Per-caller allowances of requests and cost (see the module)."""

    def __init__(self, limits: LimitSettings, bus_url: str = "memory://") -> None:
        self._requests: RateLimitItem = RateLimitItemPerMinute(limits.requests_per_minute)
        self._cost: RateLimitItem = RateLimitItemPerMinute(limits.cost_per_minute)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        # Ours, so that `close` can let go of its connections.
        self._pool: redis.ConnectionPool | None = None
        if bus_url.startswith(("redis://", "rediss://")):
            self._pool = redis.ConnectionPool.from_url(
                bus_url, socket_connect_timeout=1, socket_timeout=1
            )
            storage = RedisStorage(
                f"async+{bus_url}",
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # documented; typed narrowly
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)
        self._shared_away_until = 0.0

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def take_request(self, caller: str) -> RateRefusal | None:
        """Count one request (or subscription); a refusal if the caller is over its allowance."""
        return await self._take(self._requests, "limits.requests_per_minute", caller, 1)

    async def take_cost(self, caller: str, cost: int) -> RateRefusal | None:
        """Spend `cost` of the caller's allowance; a refusal (nothing spent) if it is over."""
        if cost <= 0:
            return None
        return await self._take(self._cost, "limits.cost_per_minute", caller, cost)

    async def _take(
        self, item: RateLimitItem, limit: str, caller: str, cost: int
    ) -> RateRefusal | None:
        limiter = self._limiter()
        try:
            if await limiter.hit(item, caller, cost=cost):
                return None
            stats = await limiter.get_window_stats(item, caller)
        except StorageError as error:
            self._shared_unavailable(error)
            limiter = self._local
            if await limiter.hit(item, caller, cost=cost):
                return None
            stats = await limiter.get_window_stats(item, caller)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateRefusal(limit, min(retry_after, item.get_expiry()))

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._shared is None or time.monotonic() < self._shared_away_until:
            return self._local
        return self._shared

    def _shared_unavailable(self, error: StorageError) -> None:
        if self._shared_away_until == 0.0 or time.monotonic() >= self._shared_away_until:
            log.warning(
                "rate limits: Redis does not answer (%s); counting in this process for now",
                error.storage_error,
            )
        self._shared_away_until = time.monotonic() + REDIS_RETRY_SECONDS
