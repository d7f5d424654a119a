"""What in-process adapters share: their background tasks, and reports that must not be lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from jobgate.domain.job import UpdateRequest
from jobgate.errors import JobgateError
from jobgate.providers.base import ProviderContext

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 10.0


class TaskSet:
    """Background tasks an adapter owns; `cancel_all` ends them when the adapter stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def report_until_stored(
    context: ProviderContext, provider_id: str, updates: Sequence[UpdateRequest]
) -> None:
    """Report updates, retrying with backoff while the gateway (or its store) is unavailable,
    so no outcome is lost. Updates carry expectations, so a repeat changes nothing."""
    delay = 0.2
    while True:
        try:
            await context.report(updates)
            return
        except JobgateError as error:
            log.warning("provider %s could not report updates: %s", provider_id, error.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
