"""`JobService`: submit, act on, update and read jobs. The only code that changes a job.

Users submit and act; providers report updates. Every change goes through UCloud's rules in
`jobgate.domain.rules`, is stored by the `JobStore` in one atomic write, and then rings the bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import json
import logging
import sys
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobgate.access import (
    Identity,
    ProviderIdentity,
    User,
    initial_acl,
    permissions_on,
    report_refusal,
)
from jobgate.cursors import PageCursors, decode_page_cursor
from jobgate.domain.acl import Permission
from jobgate.domain.catalog import Catalog, Product
from jobgate.domain.job import Job, JobSpecification, JobUpdate, UpdateRequest
from jobgate.domain.paths import file_values
from jobgate.domain.rules import Applied, Rejected, Skipped, apply_update
from jobgate.domain.states import ACTIVE_STATES, JobState
from jobgate.domain.validation import shown, validate_specifications
from jobgate.domain.values import MAX_DURATION, ResourceOwner, SimpleDuration
from jobgate.errors import (
    BadRequest,
    IdempotencyKeyReused,
    JobgateError,
    ProviderNotReady,
    StoreUnavailable,
    UserErrorCode,
    UserProblem,
)
from jobgate.events.bus import JobEventBus
from jobgate.events.feed import UpdateFeed
from jobgate.events.logs import JobLogHub
from jobgate.metrics import Metrics
from jobgate.providers.base import ProviderAdapter, ProviderContext
from jobgate.providers.workspace import OutsideWorkspace
from jobgate.services.bounds import DEFAULT_MAX_IDS, require_few_ids
from jobgate.storage.base import (
    JobFilter,
    JobOrder,
    JobQuery,
    JobStore,
    NewSubmission,
    PageKey,
    sort_key,
)
from jobgate.storage.codec import spec_to_doc
from jobgate.unix import UnixAccountRule

log = logging.getLogger(__name__)

MAX_BULK_ITEMS = 1000
# UUIDs are 36 characters; Stripe's keys at most 255.
IDEMPOTENCY_KEY_MAX_LENGTH = 255
MAX_PAGE_SIZE = 1000
DUPLICATE_WINDOW = 10
HANDOVER_BATCH = 500
# How often a write that lost a race re-reads the job and tries again.
MAX_WRITE_ATTEMPTS = 20


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    specifications: Sequence[JobSpecification]
    project: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Jobs a request was accepted for (request order), and the problems of the rest; for jobs
    it created, their first update (so the answer needs nothing more from the store)."""

    jobs: list[Job]
    problems: list[UserProblem]
    first_updates: dict[str, JobUpdate] = dataclasses.field(default_factory=dict)


class UpdateOutcome(enum.StrEnum):
    APPLIED = "APPLIED"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class UpdateResult:
    index: int
    job_id: str
    outcome: UpdateOutcome
    update: JobUpdate | None = None
    code: UserErrorCode | None = None
    message: str | None = None
    provider: str | None = None  # the job's, when it was found (for the metrics)


@dataclass(frozen=True, slots=True)
class JobListing:
    jobs: list[Job]
    cursors: PageCursors
    has_next: bool
    has_previous: bool


class ProviderRegistry:
    """The provider adapters by id."""

    def __init__(self, adapters: Sequence[ProviderAdapter]) -> None:
        self._adapters = {adapter.id: adapter for adapter in adapters}

    def get(self, provider_id: str) -> ProviderAdapter | None:
        return self._adapters.get(provider_id)

    @property
    def all(self) -> list[ProviderAdapter]:
        return list(self._adapters.values())


@dataclass(frozen=True, slots=True)
class Quotas:
    """What one user may have that is not final yet (`[limits]` max_active_*_per_user)."""

    active_jobs: int
    active_replicas: int


UNBOUNDED = Quotas(active_jobs=sys.maxsize, active_replicas=sys.maxsize)


class JobService:
    """Validates, authorizes and applies UCloud's rules; the only writer of jobs."""

    def __init__(
        self,
        store: JobStore,
        catalog: Catalog,
        providers: ProviderRegistry,
        bus: JobEventBus,
        feed: UpdateFeed | None = None,
        clock: Callable[[], int] = now_ms,
        max_ids: int = DEFAULT_MAX_IDS,
        quotas: Quotas = UNBOUNDED,
        unix_accounts: Mapping[str, UnixAccountRule] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.max_ids = max_ids
        self.quotas = quotas
        # By provider id: the providers that run jobs as their users' own Unix accounts.
        self.unix_accounts = dict(unix_accounts or {})
        self.store = store
        self.catalog = catalog
        self.providers = providers
        self.bus = bus
        self.feed = feed
        self.clock = clock
        self._job_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # Called with the id of each job an applied update made final (ends its log streams).
        self.on_final: list[Callable[[str], None]] = []

    # --- reading ------------------------------------------------------------------------------

    async def get_job(self, identity: Identity, job_id: str) -> Job | None:
        """The job, if `identity` may read it."""
        jobs = await self.store.get_jobs([job_id])
        if not jobs or not identity.visibility.allows(jobs[0]):
            return None
        return jobs[0]

    async def list_jobs(
        self,
        identity: Identity,
        job_filter: JobFilter,
        order: JobOrder,
        first: int,
        after: str | None,
    ) -> JobListing:
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise BadRequest(f"first must be between 1 and {MAX_PAGE_SIZE}")
        require_few_ids(job_filter.ids, self.max_ids, "filter.ids")
        key: PageKey | None = None
        if after is not None:
            key = decode_page_cursor(after, job_filter, order)
        page = await self.store.find_jobs(
            JobQuery(identity.visibility, job_filter, order, first, key)
        )
        keys = [PageKey(sort_key(job, order.field), int(job.id)) for job in page.jobs]
        cursors = PageCursors(keys, job_filter, order)
        return JobListing(page.jobs, cursors, page.has_next, key is not None)

    async def count_jobs(self, identity: Identity, job_filter: JobFilter) -> int:
        return await self.store.count_jobs(identity.visibility, job_filter)

    # --- submitting ---------------------------------------------------------------------------

    async def submit(self, user: User, request: SubmitRequest) -> Outcome:
        """Validate every item; create all of them or none; hand them to their providers."""
        count = len(request.specifications)
        if not 1 <= count <= MAX_BULK_ITEMS:
            problem = UserProblem(
                UserErrorCode.TOO_MANY_ITEMS,
                f"submit between 1 and {MAX_BULK_ITEMS} jobs at a time",
                field=("jobs",),
            )
            return Outcome([], [problem])
        key = request.idempotency_key
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
            problem = UserProblem(
                UserErrorCode.INVALID_PARAMETER,
                f"an idempotency key has 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters",
                field=("idempotencyKey",),
            )
            return Outcome([], [problem])
        if request.project is not None and request.project not in user.projects:
            problem = UserProblem(
                UserErrorCode.FORBIDDEN,
                f"you are not a member of project '{shown(request.project)}'",
                field=("project",),
            )
            return Outcome([], [problem])

        specs, problems = validate_specifications(request.specifications, self.catalog)
        owner = ResourceOwner(user.username, request.project)
        if not problems:
            problems = self._capacity_problems(specs)
        unix_users: dict[str, str] = {}
        if not problems:
            unix_users, problems = await asyncio.to_thread(self._unix_accounts, user, specs)
        if not problems:
            problems = await asyncio.to_thread(self._workspace_problems, owner, specs)
        if problems:
            return Outcome([], problems)
        submission = NewSubmission(
            owner=owner,
            specifications=specs,
            created_at=self.clock(),
            idempotency_key=request.idempotency_key,
            request_hash=_request_hash(specs, request.project),
            acl=initial_acl(owner),
            unix_users=unix_users,
        )
        try:
            # A retry with the key answers with the first jobs, whatever their state: it comes
            # before duplicate detection, which would otherwise find those very jobs.
            earlier = await self.store.earlier_submission(submission)
            if earlier is not None:
                return Outcome(earlier.jobs, [])
            problems = await self._quota_problems(user, specs)
            if not problems:
                problems = await self._duplicate_problems(user, specs)
            if problems:
                return Outcome([], problems)
            created = await self.store.create_jobs(submission)
        except IdempotencyKeyReused as error:
            problem = UserProblem(
                UserErrorCode.IDEMPOTENCY_KEY_REUSED, error.message, field=("idempotencyKey",)
            )
            return Outcome([], [problem])
        self._ring()
        if not created.replayed:
            for job in created.jobs:  # each job's first update, IN_QUEUE, stored with it
                self.metrics.updates.labels(job.provider, "applied").inc()
            try:
                await self.hand_over(created.jobs)
            except StoreUnavailable as error:
                # Stored with their outbox entries: accepted. The drain hands them over later.
                log.warning("jobs stored; their hand-over waits for the store: %s", error.message)
        return Outcome(created.jobs, [], created.first_updates)

    def _capacity_problems(self, specs: Sequence[JobSpecification]) -> list[UserProblem]:
        """Jobs with more replicas than their provider can ever run at once."""
        problems: list[UserProblem] = []
        for index, spec in enumerate(specs):
            adapter = self.providers.get(spec.product.provider)
            most = None if adapter is None else adapter.max_replicas
            if most is not None and spec.replicas > most:
                problems.append(
                    UserProblem(
                        UserErrorCode.INVALID_PARAMETER,
                        f"provider '{spec.product.provider}' runs at most {most} replicas at once",
                        index=index,
                        field=("replicas",),
                    )
                )
        return problems

    def _unix_accounts(
        self, user: User, specs: Sequence[JobSpecification]
    ) -> tuple[dict[str, str], list[UserProblem]]:
        """The Unix account the user's jobs run as, by provider, for the providers that run
        jobs as their users' accounts; a problem for each job whose provider has none for them
        (nothing is created then, so nothing reaches the provider). In a thread: looking an
        account up may ask the site's directory (LDAP, SSSD)."""
        wanted = {spec.product.provider for spec in specs} & self.unix_accounts.keys()
        refused: dict[str, str] = {}
        accounts: dict[str, str] = {}
        for provider in wanted:
            rule = self.unix_accounts[provider]
            problem = rule.problem(provider, user.username, user.unix_user)
            name = rule.account_of(user.username, user.unix_user)
            if problem is not None:
                refused[provider] = problem
            elif name is not None:  # no problem: the user has one
                accounts[provider] = name
        problems = [
            UserProblem(
                UserErrorCode.NO_UNIX_ACCOUNT,
                refused[spec.product.provider],
                index=index,
                field=("product",),
            )
            for index, spec in enumerate(specs)
            if spec.product.provider in refused
        ]
        return accounts, problems

    async def _quota_problems(
        self, user: User, specs: Sequence[JobSpecification]
    ) -> list[UserProblem]:
        """Whether these jobs keep the user within the per-user quotas (`Quotas`). Submits
        running at the same moment may each pass alone and together go past by their size."""
        usage = await self.store.active_usage(user.username)
        jobs, replicas = len(specs), sum(spec.replicas for spec in specs)
        for have, adding, most, what, setting in (
            (usage.jobs, jobs, self.quotas.active_jobs, "jobs", "max_active_jobs_per_user"),
            (
                usage.replicas,
                replicas,
                self.quotas.active_replicas,
                "replicas",
                "max_active_replicas_per_user",
            ),
        ):
            if have + adding > most:
                message = (
                    f"you have {have} {what} not yet finished and at most {most} are allowed "
                    f"(limits.{setting}); these would add {adding}"
                )
                return [UserProblem(UserErrorCode.QUOTA_EXCEEDED, message, field=("jobs",))]
        return []

    def _workspace_problems(
        self, owner: ResourceOwner, specs: Sequence[JobSpecification]
    ) -> list[UserProblem]:
        """Paths that lead out of the owner's workspace (symlinks followed), where this host
        sees the provider's files. In a thread: on a network file system each is round trips."""
        problems: list[UserProblem] = []
        for index, spec in enumerate(specs):
            adapter = self.providers.get(spec.product.provider)
            workspaces = None if adapter is None else adapter.workspaces
            if workspaces is None:
                continue
            for field, value in file_values(spec):
                try:
                    workspaces.resolve(owner, value.path)
                except OutsideWorkspace as error:
                    problems.append(
                        UserProblem(
                            UserErrorCode.INVALID_PARAMETER, error.message, index=index, field=field
                        )
                    )
        return problems

    async def _duplicate_problems(
        self, user: User, specs: Sequence[JobSpecification]
    ) -> list[UserProblem]:
        if all(spec.allow_duplicate_job for spec in specs):
            return []
        recent = await self.store.find_jobs(
            JobQuery(
                user.visibility,
                JobFilter(created_by=user.username, states=ACTIVE_STATES),
                limit=DUPLICATE_WINDOW,
            )
        )
        problems: list[UserProblem] = []
        for index, spec in enumerate(specs):
            if spec.allow_duplicate_job:
                continue
            for job in recent.jobs:
                if _same_work(job.specification, spec):
                    problems.append(
                        UserProblem(
                            UserErrorCode.DUPLICATE_JOB,
                            f"job {job.id} is the same and has not finished; set "
                            "allowDuplicateJob to submit it anyway",
                            index=index,
                            job_id=job.id,
                        )
                    )
                    break
        return problems

    async def hand_over(self, jobs: Sequence[Job]) -> None:
        """Give stored jobs to their providers and forget their outbox entries.

        A job that ended meanwhile (a cancel or the reconciler got in first) is never launched;
        a provider's refusal makes its jobs FAILURE. A store or back end that is away leaves the
        entries, and the drain (`drain_handovers`) tries again: adapters take a job they already
        have as a no-op, so a job reaches its provider once whatever crashes when.
        """
        current = {job.id: job for job in await self.store.get_jobs([job.id for job in jobs])}
        pending = [
            current[job.id]
            for job in jobs
            if job.id in current and not current[job.id].status.state.is_final
        ]
        settled = {job.id for job in jobs} - {job.id for job in pending}
        for provider_id, group, error in await self._per_provider(
            pending, "submit", lambda adapter, group: adapter.submit(group)
        ):
            if isinstance(error, StoreUnavailable | ProviderNotReady):
                log.warning("provider %s cannot take jobs yet: %s", provider_id, error.message)
            else:
                await self._refuse(provider_id, group, error)
                settled |= {job.id for job in group}
            pending = [job for job in pending if job not in group]
        settled |= {job.id for job in pending}
        await self.store.complete_handovers(sorted(settled))

    async def _refuse(self, provider_id: str, jobs: Sequence[Job], error: Exception) -> None:
        reason = error.message if isinstance(error, JobgateError) else "internal error"
        if not isinstance(error, JobgateError):
            log.error("provider %s failed to accept jobs", provider_id, exc_info=error)
        for job in jobs:
            await self.apply_update(
                UpdateRequest(
                    job.id,
                    state=JobState.FAILURE,
                    status=f"Provider '{provider_id}' did not accept the job: {reason}",
                    expected_state=JobState.IN_QUEUE,
                )
            )

    async def drain_handovers(self, created_before: int | None = None) -> int:
        """Hand over what the outbox still holds (all of it, or jobs created before a time, so
        a first hand-over still on its way is not raced); how many entries it settled."""
        settled = 0
        # Only this gateway's providers: another replica may run an in-process provider that
        # this one does not have.
        for adapter in self.providers.all:
            while True:
                batch = [
                    job
                    for job in await self.store.pending_handovers(adapter.id, HANDOVER_BATCH)
                    if created_before is None or job.created_at < created_before
                ]
                if not batch:
                    break
                await self.hand_over(batch)
                left = await self.store.pending_handovers(adapter.id, HANDOVER_BATCH)
                done = len({job.id for job in batch} - {job.id for job in left})
                settled += done
                if done == 0:
                    break  # the rest waits for its provider or store to come back
        return settled

    # --- acting -------------------------------------------------------------------------------

    async def cancel(self, user: User, job_ids: Sequence[str]) -> Outcome:
        accepted, problems = await self._load_for_action(user, job_ids, _cancellable)
        await self._act(accepted, problems, "cancel", lambda a, jobs: a.cancel(jobs))
        return Outcome(accepted, problems)

    async def suspend(self, user: User, job_ids: Sequence[str]) -> Outcome:
        accepted, problems = await self._load_for_action(user, job_ids, self._suspendable)
        await self._act(accepted, problems, "suspend", lambda a, jobs: a.suspend(jobs))
        return Outcome(accepted, problems)

    async def resume(self, user: User, job_ids: Sequence[str]) -> Outcome:
        accepted, problems = await self._load_for_action(user, job_ids, self._resumable)
        await self._act(accepted, problems, "resume", lambda a, jobs: a.resume(jobs))
        return Outcome(accepted, problems)

    async def extend(self, user: User, requests: Sequence[tuple[str, SimpleDuration]]) -> Outcome:
        """Add time to jobs. Extensions of one job in one request add up, in one call."""
        duration_problems: list[UserProblem] = []
        for index, (_job_id, duration) in enumerate(requests):
            for part, message in duration.problems("requestedTime"):
                duration_problems.append(
                    UserProblem(
                        UserErrorCode.INVALID_PARAMETER,
                        message,
                        index=index,
                        field=("requests", str(index), "requestedTime", *part),
                    )
                )
        bad_indexes = {problem.index for problem in duration_problems}
        durations: dict[str, SimpleDuration] = {}
        for index, (job_id, duration) in enumerate(requests):
            if index not in bad_indexes:
                durations[job_id] = durations.get(job_id, SimpleDuration()) + duration
        ids = [job_id for job_id, _ in requests]

        def extendable(job: Job) -> UserProblem | None:
            problem = self._extendable(job)
            total = (job.status.time_allocation or SimpleDuration()) + durations[job.id]
            if problem is None and total.total_seconds > MAX_DURATION.total_seconds:
                problem = UserProblem(
                    UserErrorCode.INVALID_PARAMETER,
                    f"the time allocation may be at most {MAX_DURATION.hours} hours in all",
                )
            return problem

        accepted, problems = await self._load_for_action(user, ids, extendable, skip=bad_indexes)
        await self._act(
            accepted,
            problems,
            "extend",
            lambda a, jobs: a.extend([(job, durations[job.id]) for job in jobs]),
        )
        all_problems = sorted(
            [*duration_problems, *problems], key=lambda p: -1 if p.index is None else p.index
        )
        return Outcome(accepted, all_problems)

    async def _load_for_action(
        self,
        user: User,
        job_ids: Sequence[str],
        check: Callable[[Job], UserProblem | None],
        skip: set[int | None] | None = None,
    ) -> tuple[list[Job], list[UserProblem]]:
        if not 1 <= len(job_ids) <= MAX_BULK_ITEMS:
            problem = UserProblem(
                UserErrorCode.TOO_MANY_ITEMS, f"name between 1 and {MAX_BULK_ITEMS} jobs"
            )
            return [], [problem]
        found = {job.id: job for job in await self.store.get_jobs(job_ids)}
        accepted: list[Job] = []
        problems: list[UserProblem] = []
        named: set[str] = set()
        for index, job_id in enumerate(job_ids):
            if skip and index in skip:
                continue
            if job_id in named:
                continue  # a job named again is the same request: one answer, one call
            named.add(job_id)
            job = found.get(job_id)
            permissions = [] if job is None else permissions_on(user, job)
            if job is None or Permission.READ not in permissions:
                problems.append(
                    UserProblem(UserErrorCode.NOT_FOUND, f"no job {job_id}", index, job_id=job_id)
                )
                continue
            if Permission.EDIT not in permissions:
                problems.append(
                    UserProblem(
                        UserErrorCode.FORBIDDEN, "you may not change this job", index, job_id=job_id
                    )
                )
                continue
            refusal = check(job)
            if refusal is not None:
                problems.append(dataclasses.replace(refusal, index=index, job_id=job_id))
                continue
            accepted.append(job)
        return accepted, problems

    async def _per_provider(
        self,
        jobs: Sequence[Job],
        name: str,
        command: Callable[[ProviderAdapter, list[Job]], Awaitable[None]],
    ) -> list[tuple[str, list[Job], Exception]]:
        """One call per provider (`name`: which command, for the metrics); returns each
        provider that failed, its jobs and the error."""
        by_provider: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_provider[job.provider].append(job)
        failures: list[tuple[str, list[Job], Exception]] = []
        for provider_id, group in by_provider.items():
            adapter = self.providers.get(provider_id)
            try:
                if adapter is None:
                    raise JobgateError(f"provider '{provider_id}' is not running")
                await command(adapter, group)
            except Exception as error:
                failures.append((provider_id, group, error))
                outcome = error.code if isinstance(error, JobgateError) else "INTERNAL_SERVER_ERROR"
            else:
                outcome = "ok"
            if adapter is not None:
                self.metrics.provider_calls.labels(provider_id, name, outcome).inc()
        return failures

    async def _act(
        self,
        jobs: list[Job],
        problems: list[UserProblem],
        name: str,
        command: Callable[[ProviderAdapter, list[Job]], Awaitable[None]],
    ) -> None:
        """Send a user's action; jobs of a provider that refuses move from `jobs` to `problems`."""
        for provider_id, group, error in await self._per_provider(jobs, name, command):
            if not isinstance(error, JobgateError):
                raise error
            for job in group:
                jobs.remove(job)
                problems.append(
                    UserProblem(
                        UserErrorCode.PRECONDITION_FAILED,
                        f"provider '{provider_id}': {error.message}",
                        job_id=job.id,
                    )
                )

    def _support(self, job: Job) -> Product | None:
        return self.catalog.product(job.specification.product)

    def _extendable(self, job: Job) -> UserProblem | None:
        product = self._support(job)
        if product is None or not product.support.time_extension:
            return _not_supported("its product does not support time extension")
        return _final_problem(job)

    def _suspendable(self, job: Job) -> UserProblem | None:
        product = self._support(job)
        if product is None or not product.support.suspension:
            return _not_supported("its product does not support suspension")
        if job.status.state is not JobState.RUNNING:
            return _invalid_state(f"only a RUNNING job can be suspended; it is {job.status.state}")
        return None

    def _resumable(self, job: Job) -> UserProblem | None:
        product = self._support(job)
        if product is None or not product.support.suspension:
            return _not_supported("its product does not support suspension")
        if job.status.state is not JobState.SUSPENDED:
            return _invalid_state(f"only a SUSPENDED job can be resumed; it is {job.status.state}")
        return None

    # --- updating -----------------------------------------------------------------------------

    async def report_updates(
        self, provider: ProviderIdentity, requests: Sequence[UpdateRequest]
    ) -> list[UpdateResult]:
        """Apply a provider's updates in request order; each succeeds or fails on its own."""
        if not 1 <= len(requests) <= MAX_BULK_ITEMS:
            raise BadRequest(f"report between 1 and {MAX_BULK_ITEMS} updates at a time")
        return [
            await self.apply_update(request, index=index, provider_id=provider.provider_id)
            for index, request in enumerate(requests)
        ]

    async def apply_update(
        self, request: UpdateRequest, *, index: int = 0, provider_id: str | None = None
    ) -> UpdateResult:
        """Apply one update under UCloud's rules. With `provider_id`, only that provider's jobs."""
        lock = self._job_locks.setdefault(request.job_id, asyncio.Lock())
        try:
            # A write ahead of this one that waits for the store must not make this request
            # wait past its own deadline.
            async with asyncio.timeout(self.store.time_left()):
                await lock.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"job {request.job_id} is busy; try again") from None
        try:
            result = await self._apply_locked(request, index, provider_id)
        finally:
            lock.release()
        # The job's provider; a report about a job that does not exist, the reporter's.
        provider = result.provider or provider_id or "-"
        self.metrics.updates.labels(provider, result.outcome.value.lower()).inc()
        return result

    async def _apply_locked(
        self, request: UpdateRequest, index: int, provider_id: str | None
    ) -> UpdateResult:
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            jobs = await self.store.get_jobs([request.job_id])
            if not jobs:
                return _rejected(index, request, UserErrorCode.NOT_FOUND, "no such job")
            result = await self._decide(jobs[0], request, index, provider_id)
            if result is not None:
                return dataclasses.replace(result, provider=jobs[0].provider)
        raise StoreUnavailable(f"job {request.job_id} changed too often to apply the update")

    async def _decide(
        self, job: Job, request: UpdateRequest, index: int, provider_id: str | None
    ) -> UpdateResult | None:
        """The update applied to `job`, skipped or rejected; None when another write got to
        the job first (read it again and retry)."""
        refusal = None if provider_id is None else report_refusal(provider_id, job)
        if refusal is not None:
            return _rejected(index, request, *refusal)
        now = self.clock()
        decision = apply_update(job.status, request, now)
        match decision:
            case Rejected(code=code, message=message):
                return _rejected(index, request, code, message)
            case Skipped(reason=reason):
                return UpdateResult(
                    index,
                    request.job_id,
                    UpdateOutcome.SKIPPED,
                    code=UserErrorCode.PRECONDITION_FAILED,
                    message=reason,
                )
            case Applied(status=status):
                stored = await self.store.commit_update(job, request, status, now)
                if stored is not None:
                    self._ring()
                    if status.state.is_final and not job.status.state.is_final:
                        for callback in self.on_final:
                            callback(job.id)
                    return UpdateResult(index, request.job_id, UpdateOutcome.APPLIED, update=stored)
        return None

    async def active_jobs_of(self, provider_id: str) -> list[Job]:
        """Every job of a provider that is not final, for re-attaching after a restart."""
        jobs: list[Job] = []
        key: PageKey | None = None
        order = JobOrder(descending=False)
        while True:
            page = await self.store.find_jobs(
                JobQuery(
                    ProviderIdentity(provider_id).visibility,
                    JobFilter(states=ACTIVE_STATES),
                    order,
                    limit=MAX_PAGE_SIZE,
                    after=key,
                )
            )
            jobs.extend(page.jobs)
            if not page.has_next:
                return jobs
            last = page.jobs[-1]
            key = PageKey(sort_key(last, order.field), int(last.id))

    def provider_context(
        self, provider_id: str, data_dir: Path, logs: JobLogHub
    ) -> ProviderContext:
        """What an in-process adapter of `provider_id` is given: its reports go through
        `apply_update` as that provider's, and a refused one is logged, never dropped silently."""

        async def report(updates: Sequence[UpdateRequest]) -> None:
            for update in updates:
                result = await self.apply_update(update, provider_id=provider_id)
                if result.outcome is UpdateOutcome.REJECTED:
                    log.warning(
                        "provider %s: an update of job %s was rejected: %s %s",
                        provider_id,
                        result.job_id,
                        result.code,
                        result.message,
                    )

        async def active_jobs() -> list[Job]:
            return await self.active_jobs_of(provider_id)

        def observe_command(command: str, outcome: str, seconds: float) -> None:
            self.metrics.slurm_commands.labels(provider_id, command, outcome).observe(seconds)

        return ProviderContext(
            report=report,
            active_jobs=active_jobs,
            catalog=self.catalog,
            data_dir=data_dir,
            logs=logs,
            observe_command=observe_command,
        )

    def _ring(self) -> None:
        """Tell this process's feed and, through the bus, every replica that the log grew."""
        if self.feed is not None:
            self.feed.poke()
        self.bus.ring()


def _rejected(
    index: int, request: UpdateRequest, code: UserErrorCode, message: str
) -> UpdateResult:
    return UpdateResult(index, request.job_id, UpdateOutcome.REJECTED, code=code, message=message)


def _same_work(a: JobSpecification, b: JobSpecification) -> bool:
    return dataclasses.replace(a, allow_duplicate_job=False) == dataclasses.replace(
        b, allow_duplicate_job=False
    )


def _request_hash(specs: Sequence[JobSpecification], project: str | None) -> str:
    payload = json.dumps(
        {"project": project, "jobs": [spec_to_doc(spec) for spec in specs]}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _not_supported(message: str) -> UserProblem:
    return UserProblem(UserErrorCode.NOT_SUPPORTED, message)


def _invalid_state(message: str) -> UserProblem:
    return UserProblem(UserErrorCode.INVALID_STATE, message)


def _final_problem(job: Job) -> UserProblem | None:
    if job.status.state.is_final:
        return _invalid_state(f"the job has already ended ({job.status.state})")
    return None


def _cancellable(job: Job) -> UserProblem | None:
    return _final_problem(job)
