"""`Retention`: removes finished work older than the site keeps, in the background.

Two windows (`[retention]`): final jobs N days after they last changed, with everything of
theirs; update-log entries M days after they were written. Each is removed in batches, one
write each (`JobStore.forget_final_jobs`, `JobStore.forget_updates`), with a turn for other
writers between batches: a submit or an update waits for one batch at most, never for a run.

Every gateway process runs it; runs that overlap remove each batch once (the second finds it
gone). Readers learn what is gone from the store's horizon: a resume from before it gets
`CURSOR_EXPIRED` (`jobgate.services.watch`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jobgate.errors import JobgateError
from jobgate.metrics import Metrics
from jobgate.providers.background import TaskSet
from jobgate.settings import RetentionSettings
from jobgate.storage.base import JobStore

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# Between batches: long enough for waiting writers to take their turn.
PAUSE_SECONDS = 0.01
# The first run comes this soon after start, so a restart does not postpone it a whole interval.
FIRST_RUN_DELAY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Removed:
    """What one compaction run removed."""

    jobs: int = 0
    updates: int = 0


class Retention:
    """Compaction on a timer; `run_once` for one run now."""

    def __init__(
        self,
        store: JobStore,
        settings: RetentionSettings,
        clock: Callable[[], int],
        metrics: Metrics | None = None,
        first_run_delay: float = FIRST_RUN_DELAY_SECONDS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.first_run_delay = first_run_delay
        self._tasks = TaskSet()

    @property
    def enabled(self) -> bool:
        return (
            self.settings.final_jobs_days is not None or self.settings.update_log_days is not None
        )

    def start(self) -> None:
        if self.enabled:
            self._tasks.spawn(self._loop())

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def _loop(self) -> None:
        delay = min(self.first_run_delay, self.settings.interval_seconds)
        while True:
            await asyncio.sleep(delay)
            delay = self.settings.interval_seconds
            try:
                removed = await self.run_once()
            except JobgateError as error:
                log.warning("retention could not run: %s", error.message)
                continue
            except Exception:
                log.exception("retention failed")
                continue
            if removed.jobs or removed.updates:
                log.info(
                    "retention removed %d final jobs and %d update-log entries",
                    removed.jobs,
                    removed.updates,
                )

    async def run_once(self) -> Removed:
        """Remove everything past its window now, batch by batch."""
        started = time.perf_counter()
        now = self.clock()
        jobs = updates = 0
        if self.settings.final_jobs_days is not None:
            cutoff = now - int(self.settings.final_jobs_days * DAY_MS)
            jobs = await self._in_batches(
                lambda: self.store.forget_final_jobs(cutoff, self.settings.batch_size), "jobs"
            )
        if self.settings.update_log_days is not None:
            cutoff = now - int(self.settings.update_log_days * DAY_MS)
            updates = await self._in_batches(
                lambda: self.store.forget_updates(cutoff, self.settings.batch_size), "updates"
            )
        self.metrics.retention_seconds.observe(time.perf_counter() - started)
        return Removed(jobs, updates)

    async def _in_batches(self, batch: Callable[[], Awaitable[int]], what: str) -> int:
        total = 0
        while removed := await batch():
            total += removed
            self.metrics.retention_removed.labels(what).inc(removed)
            await asyncio.sleep(PAUSE_SECONDS)
        return total
