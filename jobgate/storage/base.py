"""The `JobStore` protocol that every store implements, and the query types it takes.

A store owns two things: the jobs, and one global, ordered log of their updates. Each stored
update gets the next position (`seq`) in that log; the position is the update's cursor.
Positions increase and become readable in order: once position n can be read, so can every
stored update before it, and no update is ever stored before it later. Readers of the log rely
on that to never skip a write still in flight. (A position may stay empty for good: MongoDB's
store leaves the position of an append it undid.)
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from jobgate.access import Visibility
from jobgate.domain.acl import Acl
from jobgate.domain.commands import NewCommand, ProviderCommand
from jobgate.domain.job import Job, JobSpecification, JobStatus, JobUpdate, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import ResourceOwner
from jobgate.errors import StoreUnavailable
from jobgate.storage.sessions import SessionStore
from jobgate.storage.tokens import AccessTokenStore


@dataclass(frozen=True, slots=True)
class JobFilter:
    """The contract's JobFilter; every field the store applies in the database."""

    states: frozenset[JobState] | None = None
    application: str | None = None
    created_by: str | None = None
    project: str | None = None
    provider: str | None = None
    product_id: str | None = None
    product_category: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    ids: tuple[str, ...] | None = None
    provider_generated_id: str | None = None
    query: str | None = None


class OrderField(enum.StrEnum):
    CREATED_AT = "CREATED_AT"
    NAME = "NAME"
    CREATED_BY = "CREATED_BY"
    STATE = "STATE"


@dataclass(frozen=True, slots=True)
class JobOrder:
    field: OrderField = OrderField.CREATED_AT
    descending: bool = True


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where a page ended: the sort value of its last job and that job's number."""

    value: int | str
    job_number: int


@dataclass(frozen=True, slots=True)
class JobQuery:
    visibility: Visibility
    filter: JobFilter = JobFilter()
    order: JobOrder = JobOrder()
    limit: int = 50
    after: PageKey | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    has_next: bool


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """Validated jobs to create together. With a key, a repeat returns the first jobs."""

    owner: ResourceOwner
    specifications: Sequence[JobSpecification]
    created_at: int
    idempotency_key: str | None = None
    request_hash: str = ""
    initial_status: str = "The job was submitted"
    acl: Acl = ()  # every job's: `jobgate.access.initial_acl`
    # By provider id: the Unix account its jobs run as, for providers with user accounts.
    unix_users: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreatedJobs:
    """The jobs of a submission; for new ones, their first (IN_QUEUE) update by job id, so
    the answer to the submit needs nothing more from the store."""

    jobs: list[Job]
    replayed: bool = False
    first_updates: dict[str, JobUpdate] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One update of the global log with the job it belongs to, as of that update."""

    update: JobUpdate
    job: Job


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A range of the update log, optionally narrowed to some jobs or to what a caller can read."""

    after: int
    up_to: int | None = None
    limit: int = 500
    job_ids: tuple[str, ...] | None = None
    visibility: Visibility | None = None


@dataclass(slots=True)
class RoundTrips:
    """Counts and times round trips (to the store, or the event bus) by kind: tests prove with
    the counts that a query is not N+1; the metrics export all three (`jobgate.metrics`)."""

    count: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds_by_kind: dict[str, float] = field(default_factory=dict)
    # Calls that failed for want of the server (unavailable, timed out).
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.count += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    @contextmanager
    def measure(self, kind: str, failure: type[Exception] = StoreUnavailable) -> Iterator[None]:
        """Count one round trip of `kind` and time it; a `failure` out of it counts as one
        (not what the caller's own code raises inside, such as a reused idempotency key)."""
        self.add(kind)
        started = time.perf_counter()
        try:
            yield
        except failure:
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.seconds_by_kind[kind] = self.seconds_by_kind.get(kind, 0.0) + elapsed


def sort_key(job: Job, order: OrderField) -> int | str:
    """The value a job is ordered by; stores persist it so the database can sort on it."""
    match order:
        case OrderField.CREATED_AT:
            return job.created_at
        case OrderField.NAME:
            return (job.specification.name or "").lower()
        case OrderField.CREATED_BY:
            return job.owner.created_by
        case OrderField.STATE:
            return job.status.state.lifecycle_rank


def owner_key(owner: ResourceOwner) -> str:
    """Whose idempotency keys these are: a user's personal workspace, or one project of theirs."""
    return f"{owner.created_by}\x00{owner.project or ''}"


def job_number(job_id: str) -> int | None:
    """Job ids are decimal numbers; anything else names no job."""
    if not job_id.isdecimal() or len(job_id) > 18:
        return None
    return int(job_id)


@dataclass(frozen=True, slots=True)
class ActiveUsage:
    """What one user has that is not final yet (the per-user quotas count it)."""

    jobs: int
    replicas: int


class JobStore(AccessTokenStore, SessionStore, Protocol):
    """Durable jobs and their ordered update log. Raises `StoreUnavailable` when unreachable."""

    round_trips: RoundTrips

    async def open(self) -> None:
        """Connect and create tables or indexes; idempotent."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """One cheap round trip; raises `StoreUnavailable` when the store does not answer
        (within `deadline`)."""

    def deadline(self) -> AbstractContextManager[None]:
        """Within it, the store calls of one request wait for the store this long in all (the
        store's own timeout), then raise `StoreUnavailable`. Tasks started inside inherit it."""

    def time_left(self) -> float | None:
        """Seconds left of the current request's deadline; None outside one (or no deadline)."""

    async def create_jobs(self, submission: NewSubmission) -> CreatedJobs:
        """Store all jobs with their IN_QUEUE update and their pending hand-over, or return the
        jobs of an earlier equal key.

        Raises `IdempotencyKeyReused` when the key was used for a different request.
        """

    async def earlier_submission(self, submission: NewSubmission) -> CreatedJobs | None:
        """The jobs created for an earlier submission with the same idempotency key and owner
        (`replayed`), or None when the key is new or absent.

        Raises `IdempotencyKeyReused` when the key was used for a different request.
        """

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs that exist among `job_ids`, in no particular order."""

    async def find_jobs(self, query: JobQuery) -> JobPage:
        """One page of visible, filtered, ordered jobs, after `query.after`."""

    async def count_jobs(self, visibility: Visibility, job_filter: JobFilter) -> int:
        """How many visible jobs match the filter."""

    async def count_by_provider_and_state(self) -> dict[tuple[str, str], int]:
        """How many jobs each provider has in each state (the metrics' gauge), in one call."""

    async def active_usage(self, username: str) -> ActiveUsage:
        """How many jobs that `username` created are not final yet, and their replicas."""

    async def updates_of(
        self, job_ids: Sequence[str], last: int | None = None
    ) -> dict[str, list[JobUpdate]]:
        """Each job's stored updates, oldest first; with `last`, only the newest `last`."""

    async def commit_update(
        self, job: Job, request: UpdateRequest, status_after: JobStatus, timestamp: int
    ) -> JobUpdate | None:
        """Store the new status and its update in one atomic write, if `job.version` is current.

        Returns None when another write changed the job first; the caller re-reads and retries.
        """

    async def update_acl(self, job: Job, acl: Acl) -> bool:
        """Replace the job's ACL with `acl` if it is still `job.acl`; False when another change
        came first (the caller re-reads and retries) or the job is gone."""

    async def latest_seq(self) -> int:
        """The newest readable position of the update log (0 when empty)."""

    async def read_log(self, query: LogQuery) -> list[LogEntry]:
        """Updates after `query.after` (up to `query.up_to`), ordered by position."""

    async def log_horizon(self) -> int:
        """The newest position retention has removed from the log (0: none). Every removal
        raises it first, so a reader that read a range and then sees the horizon below the
        range's start knows that nothing in it was removed (`jobgate.services.retention`)."""

    async def forget_updates(self, before: int, limit: int) -> int:
        """One batch of update-log retention: remove up to `limit` of the log's oldest entries,
        stopping at the first one stamped at or after `before` (ms). Jobs keep their status;
        what they carried in a removed entry moves to their next kept one. How many went."""

    async def forget_final_jobs(self, finished_before: int, limit: int) -> int:
        """One batch of job retention: remove up to `limit` jobs that became final before
        `finished_before` (ms), with their updates, sharing, commands and the idempotency keys
        that named them. How many went."""

    async def pending_handovers(self, provider: str | None = None, limit: int = 1000) -> list[Job]:
        """The outbox: jobs stored with the promise to hand them to their provider, not yet
        confirmed handed (oldest first; only `provider`'s with it). `create_jobs` writes each
        job's entry in the same atomic write as the job, so a crash cannot lose one."""

    async def complete_handovers(self, job_ids: Sequence[str]) -> None:
        """The provider has the jobs (or they ended before it got them): forget their entries."""

    async def add_commands(self, commands: Sequence[NewCommand]) -> list[ProviderCommand]:
        """Store commands for providers' agents, in order; each gets a new, larger `seq`."""

    async def pending_commands(
        self, provider: str, after: int = 0, limit: int = 1000
    ) -> list[ProviderCommand]:
        """A provider's unacknowledged commands after `after`, oldest first."""

    async def acknowledge_commands(self, provider: str, seqs: Sequence[int]) -> int:
        """Forget the provider's commands among `seqs`; how many there were."""
