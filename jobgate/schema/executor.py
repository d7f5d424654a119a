"""graphql-core's executor as Strawberry runs it, with three changes of jobgate's."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable
from typing import Any

from graphql import GraphQLObjectType, OperationType
from graphql.execution import Executor
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from jobgate import access
from jobgate.errors import StoreUnavailable
from jobgate.schema.planned import ObjectPlan, Planner, keep, run
from jobgate.schema.rendered_jobs import RenderedJobs, RenderingKey
from jobgate.schema.types import Job
from jobgate.storage.base import JobStore


class JobgateExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor (one per operation), with

    - a subfield memo of its own for each subscription event: graphql-core 3.3.2 copies the
      executor for every event and the copies share one memo keyed by the identity of
      per-event lists, so nothing in it is reused and it grows by ~1.3 KiB per event for as
      long as a subscription lives (on Strawberry's path and the lean one alike);
    - a query's `Job` subtrees taken from `RenderedJobs` while the job and the selection are
      what they were (`jobgate/schema/rendered_jobs.py` says when that is);
    - a query's object subtrees completed by plans (`jobgate/schema/planned.py`), which give
      graphql-core's answer at a fraction of its cost per field, and hand back to graphql-core
      whatever they cannot complete exactly as it would.
    """

    # Whether queries' subtrees are planned; graphql-core completes them all where not.
    plans_queries = True

    _planner: Planner | bool | None = False  # False: not asked yet
    _kept: KeptJobs | bool | None = False

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        # A `Job` reached through graphql-core (the root's `job`, a mutation's payload): kept
        # here. Those a plan reaches, the plan keeps (`keeps`, `key`, `get`, `put`).
        kept_jobs = self._kept_jobs()
        selection = None if kept_jobs is None else kept_jobs.selection(field_details_list)
        if kept_jobs is None or selection is None or not isinstance(result, Job):
            return self._complete_subfields(
                return_type, field_details_list, path, result, position_context
            )

        async def rendered() -> dict[str, Any]:
            await kept_jobs.horizon()
            key = kept_jobs.key(selection, result)
            kept = None if key is None else kept_jobs.get(key)
            if kept is not None:
                return kept
            errors_before = kept_jobs.errors_seen()
            completed = self._complete_subfields(
                return_type, field_details_list, path, result, position_context
            )
            value = await completed if isinstance(completed, Awaitable) else completed
            if key is not None:
                keep([(key, value)], kept_jobs, errors_before)
            return value

        return rendered()

    def _complete_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """The subtree by its plan where it has one; by graphql-core where the plan declines
        (then graphql-core reports what made it decline)."""

        def by_graphql_core() -> AwaitableOrValue[dict[str, Any]]:
            return super(JobgateExecutor, self).collect_and_execute_subfields(
                return_type, field_details_list, path, result, position_context
            )

        planner = self._plans()
        plan = None if planner is None else planner.plan(return_type, field_details_list)
        if plan is None:
            return by_graphql_core()

        async def awaited(completed: Awaitable[dict[str, Any]]) -> dict[str, Any]:
            try:
                return await completed
            except Exception:
                again = by_graphql_core()
                return await again if isinstance(again, Awaitable) else again

        keeper = self._kept_jobs() if plan.keeps else None
        if keeper is not None and not keeper.horizon().done():
            # Kept jobs' keys hold the update log's horizon: read (once) before the plan runs.

            async def after_horizon(keeper: KeptJobs) -> dict[str, Any]:
                await keeper.horizon()
                return await awaited(_ran(plan, result, path, keeper))

            return after_horizon(keeper)
        try:
            completed = run(plan, result, path, keeper)
        except Exception:
            return by_graphql_core()
        if not isinstance(completed, Awaitable):
            return completed
        return awaited(completed)

    def _plans(self) -> Planner | None:
        """The operation's planner; None for mutations and subscriptions, and where a
        middleware wraps resolvers (a plan calls them directly)."""
        if self._planner is False:
            if (
                not self.plans_queries
                or self.operation.operation is not OperationType.QUERY
                or (self.middleware_manager is not None and self.middleware_manager.middlewares)
            ):
                self._planner = None
            else:
                self._planner = Planner(self, self._kept_jobs())
        return self._planner if isinstance(self._planner, Planner) else None

    def _kept_jobs(self) -> KeptJobs | None:
        """The operation's kept `Job`s; None but for queries with `RenderedJobs`."""
        if self._kept is False:
            renderings = self._renderings()
            self._kept = None if renderings is None else KeptJobs(self, renderings)
        return self._kept if isinstance(self._kept, KeptJobs) else None

    def _renderings(self) -> RenderedJobs | None:
        if self.operation.operation is not OperationType.QUERY:
            return None  # a mutation's jobs are new or changing; events have their renderer
        services = getattr(self.context_value, "services", None)
        return getattr(services, "rendered_jobs", None)


class KeptJobs:
    """One query's `Job` subtrees in `RenderedJobs`: the keys (`rendered_jobs.py` says what
    they hold), and the `Keeper` of the operation's plans."""

    def __init__(self, executor: JobgateExecutor, renderings: RenderedJobs) -> None:
        self._executor = executor
        self._renderings = renderings
        self._document_key: tuple[bytes, bytes] | None = None
        self._horizon: asyncio.Future[int | None] | None = None

    def keeps(self, object_type: GraphQLObjectType) -> bool:
        return object_type.name == "Job"

    def selection(self, field_details_list: Any) -> RenderingKey | None:
        """The document, the variables and where in the document the job's field is; None
        for a document parsed without locations."""
        if self._document_key is None:
            loc = self._executor.operation.loc
            if loc is None:
                return None
            variables = json.dumps(self._executor.variable_values, sort_keys=True, default=repr)
            self._document_key = (_digest(loc.source.body), _digest(variables))
        starts = []
        for details in field_details_list:
            if details.node.loc is None:
                return None
            starts.append(details.node.loc.start)
        return (*self._document_key, tuple(starts))

    def key(self, selection: RenderingKey, value: Any) -> RenderingKey | None:
        """The job's key in `selection`, once the log's horizon is read; None before, while
        the store is away (then nothing is kept), and for anything but a `Job`."""
        horizon = self._horizon
        if not isinstance(value, Job) or horizon is None or not horizon.done():
            return None
        read = horizon.result()  # _read_horizon answers None rather than raise
        if read is None:
            return None
        job = value._job
        identity = self._executor.context_value.identity
        # In UCloud's order (`permissions_on`): one tuple for one set of permissions.
        permissions = () if identity is None else access.permissions_on(identity, job)
        return (*selection, read, job.id, job.version, job.acl, tuple(permissions))

    def get(self, key: RenderingKey) -> dict[str, Any] | None:
        return self._renderings.get(key)

    def put(self, key: RenderingKey, completed: dict[str, Any]) -> None:
        self._renderings.put(key, completed)

    def errors_seen(self) -> int:
        return len(self._executor.collected_errors.errors)

    def horizon(self) -> asyncio.Future[int | None]:
        """The update log's horizon, read once for the operation; None when the store is
        away (the jobs are then rendered as they are, and not kept)."""
        if self._horizon is None:
            self._horizon = asyncio.ensure_future(self._read_horizon())
        return self._horizon

    async def _read_horizon(self) -> int | None:
        store: JobStore = self._executor.context_value.services.store
        try:
            return await store.log_horizon()
        except StoreUnavailable:
            return None


async def _ran(plan: ObjectPlan, source: Any, path: Path, keeper: KeptJobs) -> dict[str, Any]:
    """`run`'s completion, awaited where it has to be."""
    completed = run(plan, source, path, keeper)
    return await completed if isinstance(completed, Awaitable) else completed


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class GraphqlCoreExecutor(JobgateExecutor):
    """jobgate's executor with every query completed by graphql-core alone (no plans, no kept
    jobs): what plans are measured and tested against."""

    plans_queries = False

    def _renderings(self) -> RenderedJobs | None:
        return None
