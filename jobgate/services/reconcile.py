"""`Reconciler`: UCloud's verify. Every so often each provider is asked about its active jobs.

A job its back end no longer knows (lost with a node, purged by an operator, never submitted) would
otherwise stay RUNNING forever; it becomes FAILURE with a status saying why. The update expects
the state the job had when it was checked, so a job that moved on meanwhile is left alone.
"""

from __future__ import annotations

import asyncio
import logging

from jobgate.errors import JobgateError
from jobgate.providers.background import TaskSet, no_longer_known
from jobgate.providers.base import ProviderAdapter
from jobgate.services.jobs import JobService

log = logging.getLogger(__name__)


class Reconciler:
    """Runs `verify` on every online provider each `interval` seconds."""

    def __init__(self, jobs: JobService, *, interval: float, grace: float) -> None:
        self.jobs = jobs
        self.interval = interval
        self.grace_ms = int(grace * 1000)
        self._tasks = TaskSet()

    def start(self) -> None:
        self._tasks.spawn(self._loop())

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for adapter in self.jobs.providers.all:
                try:
                    await self.reconcile(adapter)
                except JobgateError as error:
                    log.warning("cannot verify the jobs of provider %s: %s", adapter.id, error)
                except Exception:
                    log.exception("verifying the jobs of provider %s failed", adapter.id)

    async def reconcile(self, adapter: ProviderAdapter) -> int:
        """Verify one provider's active jobs; how many became FAILURE."""
        if not adapter.online:
            return 0  # nobody to ask; its jobs wait for its agent
        now = self.jobs.clock()
        active = await self.jobs.active_jobs_of(adapter.id)
        # Only what the provider has definitely been given: a job still in the outbox is on its
        # way there, and the provider not knowing it yet is no loss. Read after the jobs, so a
        # job created meanwhile is either in the outbox still or handed over already.
        undelivered = {job.id for job in await self.jobs.store.pending_handovers(adapter.id)}
        active = [
            job
            for job in active
            if now - job.created_at >= self.grace_ms and job.id not in undelivered
        ]
        if not active:
            return 0
        failed = 0
        for job in await adapter.verify(active):
            log.warning("provider %s no longer knows job %s", adapter.id, job.id)
            result = await self.jobs.apply_update(no_longer_known(adapter.id, job))
            failed += result.update is not None
        return failed
