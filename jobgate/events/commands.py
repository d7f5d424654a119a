"""`CommandSignal`: wakes the agents' command streams in this process when commands may be new.

A command stored here rings it directly; one stored by another replica reaches this process as a
bus doorbell, which the update feed passes on. Streams also re-read on a timer, so a lost signal
only delays a command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict


class CommandSignal:
    """One event per provider; `notify` sets it, streams clear it before they read."""

    def __init__(self) -> None:
        self._events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def notify(self, provider: str | None = None) -> None:
        """Wake the streams of `provider`, or of every provider."""
        events = self._events.values() if provider is None else [self._events[provider]]
        for event in events:
            event.set()

    def clear(self, provider: str) -> None:
        self._events[provider].clear()

    async def wait(self, provider: str, at_most: float) -> None:
        """Until notified or `at_most` seconds passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._events[provider].wait()
