"""`SessionService`: opening interactive sessions of running jobs (UCloud's
`openInteractiveSession`), in bulk; left out with `[sessions] enabled = false`.

A session needs EDIT on a `RUNNING` job whose product supports its type (and, for WEB and VNC,
whose application serves it), and a rank the job has. Each becomes a stored record (`jobgate.storage.sessions`) and a capability URL the caller
alone sees; opening is recorded on the job as a status update ("Web session opened by alice").
Sessions are forgotten when their job ends (and with it, by retention, at the latest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobgate.access import User, permissions_on
from jobgate.domain.acl import Permission
from jobgate.domain.catalog import Application, ComputeSupport
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.errors import JobgateError, UserErrorCode, UserProblem
from jobgate.providers.background import TaskSet
from jobgate.services.jobs import MAX_BULK_ITEMS, JobService
from jobgate.sessions.capability import new_session, session_url
from jobgate.storage.sessions import SessionRecord

TITLES = {SessionType.WEB: "Web", SessionType.TERMINAL: "Terminal", SessionType.VNC: "VNC"}

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionRequest:
    job_id: str
    rank: int
    type: SessionType


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """What the caller gets: where to go (a path on the gateway, with the capability) and by
    when to go there first."""

    job_id: str
    rank: int
    type: SessionType
    url: str
    expires_at: int
    capability: str  # also in `url`; for a session served on a host of its own


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    sessions: list[OpenedSession]
    problems: list[UserProblem]


def supports(support: ComputeSupport, kind: SessionType) -> bool:
    match kind:
        case SessionType.WEB:
            return support.web
        case SessionType.TERMINAL:
            return support.terminal
        case SessionType.VNC:
            return support.vnc


def serves(app: Application, kind: SessionType) -> bool:
    """Whether the application itself serves `kind` (a terminal is the gateway's to give)."""
    return app.interactive.web if kind is SessionType.WEB else app.interactive.vnc


class SessionService:
    def __init__(self, jobs: JobService, clock: Callable[[], int]) -> None:
        self.jobs = jobs
        self.clock = clock
        self._tasks = TaskSet()
        jobs.on_final.append(self._job_ended)

    async def open(self, user: User, requests: Sequence[SessionRequest]) -> SessionOutcome:
        """Open each requested session that may be; a problem (with its index) for the rest."""
        if not 1 <= len(requests) <= MAX_BULK_ITEMS:
            problem = UserProblem(
                UserErrorCode.TOO_MANY_ITEMS, f"name between 1 and {MAX_BULK_ITEMS} sessions"
            )
            return SessionOutcome([], [problem])
        store = self.jobs.store
        found = {job.id: job for job in await store.get_jobs([r.job_id for r in requests])}
        now = self.clock()
        records: list[tuple[SessionRecord, str]] = []
        problems: list[UserProblem] = []
        for index, request in enumerate(requests):
            refusal = self._refusal(user, found.get(request.job_id), request)
            if refusal is not None:
                code, message, where = refusal
                problems.append(
                    UserProblem(
                        code,
                        message,
                        index,
                        field=("sessions", str(index), where),
                        job_id=request.job_id,
                    )
                )
                continue
            records.append(
                new_session(request.job_id, request.rank, request.type, user.username, now)
            )
        await store.add_sessions([record for record, _ in records])
        opened = [
            OpenedSession(
                record.job_id,
                record.rank,
                record.type,
                session_url(record, capability),
                record.open_by,
                capability,
            )
            for record, capability in records
        ]
        for record, _ in records:
            await self.jobs.apply_update(
                UpdateRequest(
                    record.job_id,
                    status=f"{TITLES[record.type]} session opened by {user.username}"
                    f" (replica {record.rank})",
                )
            )
        return SessionOutcome(opened, problems)

    def _refusal(
        self, user: User, job: Job | None, request: SessionRequest
    ) -> tuple[UserErrorCode, str, str] | None:
        """Why this session may not be opened (code, message, the request's field), if not."""
        permissions = [] if job is None else permissions_on(user, job)
        if job is None or Permission.READ not in permissions:
            return UserErrorCode.NOT_FOUND, f"no job {request.job_id}", "jobId"
        if Permission.EDIT not in permissions:
            return UserErrorCode.FORBIDDEN, "opening a session needs EDIT on the job", "jobId"
        if job.status.state is not JobState.RUNNING:
            return (
                UserErrorCode.INVALID_STATE,
                f"sessions are for running jobs; this one is {job.status.state}",
                "jobId",
            )
        if not 0 <= request.rank < job.specification.replicas:
            return (
                UserErrorCode.INVALID_PARAMETER,
                f"the job has replicas 0 to {job.specification.replicas - 1}",
                "rank",
            )
        product = self.jobs.catalog.product(job.specification.product)
        if product is None or not supports(product.support, request.type):
            return (
                UserErrorCode.NOT_SUPPORTED,
                f"the job's product does not offer {request.type.value} sessions",
                "type",
            )
        app = self.jobs.catalog.application(job.specification.application)
        if request.type is not SessionType.TERMINAL and (
            app is None or not serves(app, request.type)
        ):
            return (
                UserErrorCode.NOT_SUPPORTED,
                f"the job's application serves no {request.type.value} interface",
                "type",
            )
        return None

    def _job_ended(self, job_id: str) -> None:
        # Called as the final update is stored (synchronously): the store is asked after.
        self._tasks.spawn(self._forget(job_id))

    async def _forget(self, job_id: str) -> None:
        try:
            await self.jobs.store.forget_sessions([job_id])
        except JobgateError as error:  # retention removes them with the job at the latest
            log.warning("cannot forget the sessions of job %s yet: %s", job_id, error.message)

    async def stop(self) -> None:
        await self._tasks.cancel_all()
