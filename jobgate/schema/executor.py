"""graphql-core's executor as Strawberry runs it, with two changes of jobgate's."""

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
      what they were (`jobgate/schema/rendered_jobs.py` says when that is).
    """

    _document_key: tuple[bytes, bytes] | None = None
    _horizon: asyncio.Future[int | None] | None = None

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
        renderings = self._renderings()
        selection = None if renderings is None else self._selection(field_details_list)
        if renderings is None or selection is None or not isinstance(result, Job):
            return super().collect_and_execute_subfields(
                return_type, field_details_list, path, result, position_context
            )

        async def rendered() -> dict[str, Any]:
            horizon = await self._log_horizon()
            key = None if horizon is None else (*selection, horizon, *self._job_key(result))
            kept = None if key is None else renderings.get(key)
            if kept is not None:
                return kept
            errors = self.collected_errors.errors
            errors_before = len(errors)
            completed = super(JobgateExecutor, self).collect_and_execute_subfields(
                return_type, field_details_list, path, result, position_context
            )
            value = await completed if isinstance(completed, Awaitable) else completed
            # Another job's error counts too: then nothing is kept, which is only slower.
            if key is not None and len(errors) == errors_before:
                renderings.put(key, value)
            return value

        return rendered()

    def _renderings(self) -> RenderedJobs | None:
        if self.operation.operation is not OperationType.QUERY:
            return None  # a mutation's jobs are new or changing; events have their renderer
        services = getattr(self.context_value, "services", None)
        return getattr(services, "rendered_jobs", None)

    def _selection(self, field_details_list: Any) -> RenderingKey | None:
        """The document, the variables and where in the document the job's field is; None
        for a document parsed without locations."""
        if self._document_key is None:
            loc = self.operation.loc
            if loc is None:
                return None
            variables = json.dumps(self.variable_values, sort_keys=True, default=repr)
            self._document_key = (_digest(loc.source.body), _digest(variables))
        starts = []
        for details in field_details_list:
            if details.node.loc is None:
                return None
            starts.append(details.node.loc.start)
        return (*self._document_key, tuple(starts))

    def _job_key(self, job: Job) -> RenderingKey:
        domain_job = job._job
        identity = self.context_value.identity
        permissions = () if identity is None else access.permissions_on(identity, domain_job)
        return (domain_job.id, domain_job.version, domain_job.acl, tuple(sorted(permissions)))

    def _log_horizon(self) -> asyncio.Future[int | None]:
        """The update log's horizon, read once for the operation; None when the store is
        away (the jobs are then rendered as they are, and not kept)."""
        if self._horizon is None:
            self._horizon = asyncio.ensure_future(self._read_horizon())
        return self._horizon

    async def _read_horizon(self) -> int | None:
        store: JobStore = self.context_value.services.store
        try:
            return await store.log_horizon()
        except StoreUnavailable:
            return None


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
