"""`HandoverDrain`: jobs the outbox still holds reach their providers.

`JobStore.create_jobs` stores each job with an outbox entry, and `JobService.submit` hands the
jobs over at once. What that first hand-over could not finish (the gateway was killed, the store or
a provider's back end went away) stays in the outbox; this drain hands it over at start and then
every `retry_seconds`, so an accepted job always reaches its provider.
"""

from __future__ import annotations

import asyncio
import logging

from jobgate.errors import JobgateError
from jobgate.providers.background import TaskSet
from jobgate.services.jobs import JobService

log = logging.getLogger(__name__)


class HandoverDrain:
    def __init__(self, jobs: JobService, *, retry_seconds: float) -> None:
        self.jobs = jobs
        self.retry_seconds = retry_seconds
        self._tasks = TaskSet()

    def start(self) -> None:
        self._tasks.spawn(self._loop())

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def _loop(self) -> None:
        created_before: int | None = None  # at start: everything a previous run left
        while True:
            try:
                settled = await self.jobs.drain_handovers(created_before)
                if settled:
                    log.info("handed %s job(s) from the outbox to their providers", settled)
            except JobgateError as error:
                log.warning("cannot drain the hand-over outbox yet: %s", error.message)
            except Exception:
                log.exception("draining the hand-over outbox failed")
            await asyncio.sleep(self.retry_seconds)
            # Later rounds leave jobs younger than a round alone: their first hand-over may
            # still be on its way in this process.
            created_before = self.jobs.clock() - int(self.retry_seconds * 1000)
