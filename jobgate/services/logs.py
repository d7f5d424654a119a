"""`JobLogService`: the `jobLogs` stream of a job whose product supports logs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from jobgate.auth import Identity
from jobgate.errors import NotFound, NotSupported
from jobgate.events.logs import JobLogHub, LogLine
from jobgate.services.jobs import JobService


class JobLogService:
    def __init__(self, jobs: JobService, logs: JobLogHub) -> None:
        self.jobs = jobs
        self.logs = logs

    async def follow(
        self, identity: Identity, job_id: str, after: int | None
    ) -> AsyncIterator[LogLine]:
        """The kept tail (or the lines after `after`), then new lines; ends when the job ends."""
        job = await self.jobs.get_job(identity, job_id)
        if job is None:
            raise NotFound(f"no such job: {job_id}")
        product = self.jobs.catalog.product(job.specification.product)
        if product is None or not product.support.logs:
            raise NotSupported("the job's product does not support logs")
        if job.status.state.is_final and not self.logs.knows(job.id):
            # Ended before this gateway started: the provider may still have the output.
            adapter = self.jobs.providers.get(job.provider)
            if adapter is not None:
                await adapter.backfill_logs(job)
            if not self.logs.knows(job.id):
                return
        async for line in self.logs.follow(job.id, after or 0):
            yield line
