"""`JobLogService`: the `jobLogs` stream of a job whose product supports logs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

from jobgate.access import Identity, ProviderIdentity, report_refusal
from jobgate.errors import BadRequest, NotFound, NotSupported, UserErrorCode, UserProblem
from jobgate.events.logs import MAX_LINE_BYTES, JobLogHub, LogLine, text_bytes
from jobgate.services.jobs import JobService

MAX_LINES = 1000
MAX_CHANNEL_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ReportedLine:
    """One line a provider reports: stdout and/or stderr text of one rank of a job."""

    job_id: str
    rank: int = 0
    stdout: str | None = None
    stderr: str | None = None
    channel: str | None = None


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

    async def report(
        self, provider: ProviderIdentity, lines: list[ReportedLine]
    ) -> tuple[int, list[UserProblem]]:
        """Take lines a provider (a remote agent) reports; how many, and the refused ones."""
        if not 1 <= len(lines) <= MAX_LINES:
            raise BadRequest(f"report between 1 and {MAX_LINES} lines at a time")
        jobs = {
            job.id: job
            for job in await self.jobs.store.get_jobs(list({line.job_id for line in lines}))
        }
        accepted = 0
        problems: list[UserProblem] = []
        for index, line in enumerate(lines):
            job = jobs.get(line.job_id)
            problem = None
            refusal = report_refusal(provider.provider_id, job)
            if refusal is not None:
                problem = UserProblem(*refusal, index)
            elif job is not None:
                product = self.jobs.catalog.product(job.specification.product)
                if product is None or not product.support.logs:
                    problem = UserProblem(
                        UserErrorCode.NOT_SUPPORTED,
                        "the job's product does not support logs",
                        index,
                    )
                else:
                    problem = _line_problem(line, job.specification.replicas, index)
            if problem is not None:
                problems.append(dataclasses.replace(problem, job_id=line.job_id))
                continue
            if line.stdout is not None:
                self.logs.append(line.job_id, line.rank, "stdout", line.stdout, line.channel)
            if line.stderr is not None:
                self.logs.append(line.job_id, line.rank, "stderr", line.stderr, line.channel)
            accepted += 1
        return accepted, problems

    def job_ended(self, job_id: str) -> None:
        """A job reached a final state: end its log streams (lines reported after it are kept)."""
        if self.logs.knows(job_id):
            self.logs.close(job_id)


def _line_problem(line: ReportedLine, replicas: int, index: int) -> UserProblem | None:
    """Why a reported line cannot be kept: a rank the job does not have, or text past the
    bounds the output files are read with."""
    invalid = UserErrorCode.INVALID_PARAMETER
    if not 0 <= line.rank < replicas:
        return UserProblem(invalid, f"the job has ranks 0 to {replicas - 1}", index, ("rank",))
    for name, text in (("stdout", line.stdout), ("stderr", line.stderr)):
        if text is not None and text_bytes(text) > MAX_LINE_BYTES:
            message = f"a line may have at most {MAX_LINE_BYTES} bytes; send longer ones in pieces"
            return UserProblem(invalid, message, index, (name,))
    if line.channel is not None and len(line.channel) > MAX_CHANNEL_LENGTH:
        message = f"a channel name may have at most {MAX_CHANNEL_LENGTH} characters"
        return UserProblem(invalid, message, index, ("channel",))
    return None
