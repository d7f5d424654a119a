"""Mutation resolvers: users submit and act on jobs; providers report updates."""

from __future__ import annotations

import strawberry

from jobgate.errors import BadRequest
from jobgate.resolvers.audit import audited
from jobgate.resolvers.errors import coded
from jobgate.schema.inputs import (
    AcknowledgeProviderCommandsInput,
    ExtendJobsInput,
    JobIdsInput,
    ReportJobLogsInput,
    ReportJobUpdatesInput,
    SubmitJobsInput,
)
from jobgate.schema.payloads import (
    AcknowledgeProviderCommandsPayload,
    JobsPayload,
    JobUpdateResult,
    ReportJobLogsPayload,
    ReportJobUpdatesPayload,
    SubmitJobsPayload,
    UserError,
)
from jobgate.schema.types import Info, Job
from jobgate.services.jobs import Outcome, SubmitRequest
from jobgate.services.logs import ReportedLine


def jobs_payload(outcome: Outcome) -> JobsPayload:
    return JobsPayload(
        jobs=[Job.of(job) for job in outcome.jobs],
        user_errors=[UserError.of(problem) for problem in outcome.problems],
    )


@strawberry.type
class Mutation:
    @strawberry.mutation
    @audited("submitJobs")
    @coded
    async def submit_jobs(self, info: Info, input: SubmitJobsInput) -> SubmitJobsPayload:
        outcome = await info.context.services.jobs.submit(
            info.context.user(),
            SubmitRequest(
                specifications=[spec.to_domain() for spec in input.jobs],
                project=input.project,
                idempotency_key=input.idempotency_key,
            ),
        )
        first = outcome.first_updates
        return SubmitJobsPayload(
            # New jobs answer with their first update, so a store that fails after they were
            # stored cannot turn their submit into an error: its answer is as of creation.
            jobs=[
                Job.of(job, [first[job.id]] if job.id in first else None) for job in outcome.jobs
            ],
            user_errors=[UserError.of(problem) for problem in outcome.problems],
        )

    @strawberry.mutation
    @audited("cancelJobs")
    @coded
    async def cancel_jobs(self, info: Info, input: JobIdsInput) -> JobsPayload:
        ids = [str(job_id) for job_id in input.ids]
        return jobs_payload(await info.context.services.jobs.cancel(info.context.user(), ids))

    @strawberry.mutation
    @audited("extendJobs")
    @coded
    async def extend_jobs(self, info: Info, input: ExtendJobsInput) -> JobsPayload:
        requests = [(str(r.job_id), r.requested_time.to_domain()) for r in input.requests]
        return jobs_payload(await info.context.services.jobs.extend(info.context.user(), requests))

    @strawberry.mutation
    @audited("suspendJobs")
    @coded
    async def suspend_jobs(self, info: Info, input: JobIdsInput) -> JobsPayload:
        ids = [str(job_id) for job_id in input.ids]
        return jobs_payload(await info.context.services.jobs.suspend(info.context.user(), ids))

    @strawberry.mutation
    @audited("resumeJobs")
    @coded
    async def resume_jobs(self, info: Info, input: JobIdsInput) -> JobsPayload:
        ids = [str(job_id) for job_id in input.ids]
        return jobs_payload(await info.context.services.jobs.resume(info.context.user(), ids))

    @strawberry.mutation(
        description="Results come in request order; updates to one job apply in request order."
    )
    @audited("reportJobUpdates")
    @coded
    async def report_job_updates(
        self, info: Info, input: ReportJobUpdatesInput
    ) -> ReportJobUpdatesPayload:
        results = await info.context.services.jobs.report_updates(
            info.context.provider(), [update.to_domain() for update in input.updates]
        )
        return ReportJobUpdatesPayload(results=[JobUpdateResult.of(r) for r in results])

    @strawberry.mutation(
        description="[live] [providers] Log lines of jobs on the caller's products, for jobLogs."
    )
    @audited("reportJobLogs")
    @coded
    async def report_job_logs(self, info: Info, input: ReportJobLogsInput) -> ReportJobLogsPayload:
        lines = [
            ReportedLine(str(line.job_id), line.rank, line.stdout, line.stderr, line.channel)
            for line in input.lines
        ]
        accepted, problems = await info.context.services.job_logs.report(
            info.context.provider(), lines
        )
        return ReportJobLogsPayload(
            accepted=accepted, user_errors=[UserError.of(problem) for problem in problems]
        )

    @strawberry.mutation(
        description="[providers] Mark delivered commands as done; unacknowledged ones are "
        "delivered again."
    )
    @audited("acknowledgeProviderCommands")
    @coded
    async def acknowledge_provider_commands(
        self, info: Info, input: AcknowledgeProviderCommandsInput
    ) -> AcknowledgeProviderCommandsPayload:
        if not all(str(command_id).isdecimal() for command_id in input.ids):
            raise BadRequest("ids are the `id`s of commands providerCommands delivered")
        seqs = [int(command_id) for command_id in input.ids]
        count = await info.context.services.commands.acknowledge(info.context.provider(), seqs)
        return AcknowledgeProviderCommandsPayload(acknowledged=count)
