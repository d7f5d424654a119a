"""Subscription resolvers: watching jobs live."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from jobgate.cursors import decode_position
from jobgate.resolvers.errors import coded_stream
from jobgate.schema.payloads import JobLogEvent, JobUpdateEvent, ProviderCommand
from jobgate.schema.types import Info
from jobgate.services.jobs import now_ms
from jobgate.sessions.relay import RelayDelivery


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Updates applied to the given jobs, or without `jobIds` to every job the "
        "caller may read, in order. With `after`: every update after that cursor, then live. "
        "Without `after`: with `jobIds`, each job's whole history, then live; without `jobIds`, "
        "live only. With `jobIds`, the stream completes once all of them are final. Unreadable "
        "ids end it with NOT_FOUND; an expired cursor with CURSOR_EXPIRED; a subscriber too far "
        "behind with LAGGING (resume from the last cursor)."
    )
    @coded_stream
    async def job_updates(
        self,
        info: Info,
        job_ids: list[strawberry.ID] | None = None,
        after: str | None = None,
    ) -> AsyncIterator[JobUpdateEvent]:
        identity = info.context.caller()
        position = None if after is None else decode_position(after)
        ids = None if job_ids is None else [str(job_id) for job_id in job_ids]
        async for event in info.context.services.watcher.watch(identity, ids, position):
            yield JobUpdateEvent.of(event)

    @strawberry.subscription(
        description="Log lines of a job whose product supports logs: the kept tail (or after "
        "`after`), then live; completes when the job is final."
    )
    @coded_stream
    async def job_logs(
        self, info: Info, job_id: strawberry.ID, after: str | None = None
    ) -> AsyncIterator[JobLogEvent]:
        identity = info.context.caller()
        position = None if after is None else decode_position(after)
        async for line in info.context.services.job_logs.follow(identity, str(job_id), position):
            yield JobLogEvent.of(line)

    @strawberry.subscription(
        description="[providers] Commands for the calling provider: unacknowledged ones first, "
        "then new ones as they come."
    )
    @coded_stream
    async def provider_commands(
        self, info: Info, after: str | None = None
    ) -> AsyncIterator[ProviderCommand]:
        provider = info.context.provider()
        position = 0 if after is None else decode_position(after)
        async for command in info.context.services.commands.follow(provider, position):
            if isinstance(command, RelayDelivery):
                yield ProviderCommand.relaying(command, now_ms())
            else:
                yield ProviderCommand.of(command)
