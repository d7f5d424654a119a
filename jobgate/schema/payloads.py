"""Payloads, connections and events: what mutations, `jobs` and subscriptions return."""

from __future__ import annotations

import strawberry

from jobgate.cursors import PageCursors, encode_position
from jobgate.domain import commands as domain_commands
from jobgate.errors import UserProblem
from jobgate.events.logs import LogLine
from jobgate.schema.enums import CommandKind, JobState, SessionType, UpdateOutcome, UserErrorCode
from jobgate.schema.scalars import DateTime
from jobgate.schema.types import Info, Job, JobUpdate, SimpleDuration
from jobgate.services.jobs import UpdateResult
from jobgate.services.watch import UpdateEvent
from jobgate.sessions.relay import RelayDelivery


@strawberry.type(
    description="An expected failure, returned as data. `index` points into the request's "
    "list; `field` is the path inside that item."
)
class UserError:
    index: int | None
    field: list[str] | None
    code: UserErrorCode
    message: str
    job_id: strawberry.ID | None = strawberry.field(
        description="For DUPLICATE_JOB: the job this one duplicates."
    )

    @classmethod
    def of(cls, problem: UserProblem) -> UserError:
        return cls(
            index=problem.index,
            field=None if problem.field is None else list(problem.field),
            code=problem.code,
            message=problem.message,
            job_id=None if problem.job_id is None else strawberry.ID(problem.job_id),
        )


@strawberry.type
class SubmitJobsPayload:
    jobs: list[Job]
    user_errors: list[UserError]


@strawberry.type(
    description="`jobs` holds the jobs the request was accepted for, in request order; the "
    "rest are in `userErrors`."
)
class JobsPayload:
    jobs: list[Job]
    user_errors: list[UserError]


@strawberry.type
class JobUpdateResult:
    index: int
    job_id: strawberry.ID
    outcome: UpdateOutcome
    update: JobUpdate | None = strawberry.field(description="The stored update, when APPLIED.")
    code: UserErrorCode | None
    message: str | None

    @classmethod
    def of(cls, result: UpdateResult) -> JobUpdateResult:
        return cls(
            index=result.index,
            job_id=strawberry.ID(result.job_id),
            outcome=result.outcome,
            update=None if result.update is None else JobUpdate.of(result.update),
            code=result.code,
            message=result.message,
        )


@strawberry.type
class ReportJobUpdatesPayload:
    results: list[JobUpdateResult]


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    _cursors: strawberry.Private[PageCursors]

    @strawberry.field
    def start_cursor(self) -> str | None:
        return self._cursors.at(0) if len(self._cursors) else None

    @strawberry.field
    def end_cursor(self) -> str | None:
        last = len(self._cursors) - 1
        return self._cursors.at(last) if last >= 0 else None


@strawberry.type
class JobEdge:
    """A page's job with its cursor, made only where asked for (`cursor` and `node` are both
    resolvers so that the schema keeps the contract's order: Strawberry puts plain fields
    first)."""

    _cursors: strawberry.Private[PageCursors]
    _index: strawberry.Private[int]
    _node: strawberry.Private[Job]

    @strawberry.field
    def cursor(self) -> str:
        return self._cursors.at(self._index)

    @strawberry.field
    def node(self) -> Job:
        return self._node


@strawberry.type
class JobUpdateEvent:
    cursor: str = strawberry.field(
        description="Equals `update.cursor`. Pass it back as `after` to resume without gaps or "
        "duplicates."
    )
    job_id: strawberry.ID
    update: JobUpdate
    state_after: JobState = strawberry.field(description="The job's state right after this update.")
    job: Job = strawberry.field(
        description="The job: as it was right after this update when delivered live, as it is "
        "now when replayed."
    )

    @classmethod
    def of(cls, event: UpdateEvent) -> JobUpdateEvent:
        return cls(
            cursor=event.cursor,
            job_id=strawberry.ID(event.update.job_id),
            update=JobUpdate.of(event.update),
            state_after=event.update.status_after.state,
            job=Job.of(event.job),
        )


@strawberry.type
class JobLogEvent:
    cursor: str
    job_id: strawberry.ID
    rank: int
    timestamp: DateTime
    stdout: str | None
    stderr: str | None
    channel: str | None

    @classmethod
    def of(cls, line: LogLine) -> JobLogEvent:
        return cls(
            cursor=encode_position(line.seq),
            job_id=strawberry.ID(line.job_id),
            rank=line.rank,
            timestamp=DateTime(line.timestamp),
            stdout=line.stdout,
            stderr=line.stderr,
            channel=line.channel,
        )


@strawberry.type
class ReportJobLogsPayload:
    accepted: int
    user_errors: list[UserError]


@strawberry.type
class AcknowledgeProviderCommandsPayload:
    acknowledged: int


@strawberry.type(
    description="One connection of an interactive session that the agent relays: it connects "
    "to the job's side of this kind and opens a WebSocket to /relay/<relayId> on the gateway, "
    "with its provider token, carrying the connection's bytes as binary messages."
)
class ProviderSessionRelay:
    relay_id: strawberry.ID
    rank: int
    type: SessionType


@strawberry.type(
    description="Work for a remote provider's agent, stored until acknowledged (OPEN_SESSION: "
    "never stored, never to be acknowledged)."
)
class ProviderCommand:
    id: strawberry.ID
    cursor: str
    created_at: DateTime
    kind: CommandKind
    requested_time: SimpleDuration | None = strawberry.field(
        description="For EXTEND: the time to add."
    )
    _job_id: strawberry.Private[str]
    session: ProviderSessionRelay | None = strawberry.field(
        default=None, description="For OPEN_SESSION: the session connection to relay."
    )

    @strawberry.field
    async def job(self, info: Info) -> Job:
        jobs = await info.context.services.store.get_jobs([self._job_id])
        return Job.of(jobs[0])

    @classmethod
    def relaying(cls, delivery: RelayDelivery, now: int) -> ProviderCommand:
        request = delivery.request
        return cls(
            id=strawberry.ID(f"relay-{request.relay_id}"),
            cursor=encode_position(delivery.position),
            created_at=DateTime(now),
            kind=CommandKind.OPEN_SESSION,
            requested_time=None,
            _job_id=request.job_id,
            session=ProviderSessionRelay(
                relay_id=strawberry.ID(request.relay_id), rank=request.rank, type=request.kind
            ),
        )

    @classmethod
    def of(cls, command: domain_commands.ProviderCommand) -> ProviderCommand:
        return cls(
            id=strawberry.ID(encode_position(command.seq)),
            cursor=encode_position(command.seq),
            created_at=DateTime(command.created_at),
            kind=command.kind,
            requested_time=SimpleDuration.of(command.requested_time),
            _job_id=command.job_id,
        )
