"""The gateway's services on a real store, without HTTP: fast tests of their error paths."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobgate.access import User
from jobgate.domain.catalog import (
    Application,
    ApplicationParameter,
    Catalog,
    ParameterType,
    Product,
)
from jobgate.domain.job import Job, JobSpecification, UpdateRequest
from jobgate.events.bus import JobEventBus
from jobgate.events.feed import UpdateFeed
from jobgate.events.logs import JobLogHub
from jobgate.services.jobs import JobService, ProviderRegistry, SubmitRequest
from jobgate.services.watch import JobWatcher
from jobgate.storage.base import JobStore
from tests import factories
from tests.services.recording import RecordingProvider

ALICE = User.member_of("alice", {"proj-a"})
BOB = User.member_of("bob", {"proj-b"})

ECHO = Application(
    name="echo",
    version="1",
    command=("echo", "{message}"),
    parameters=(ApplicationParameter(name="message", type=ParameterType.TEXT),),
)


def spec(
    message: str = "hi", *, provider: str = "test", duplicate: bool = True
) -> JobSpecification:
    """An echo job on the recording provider's product."""
    echo = factories.spec(provider=provider, product="cpu-test", message=message)
    return dataclasses.replace(echo, allow_duplicate_job=duplicate)


@dataclass
class Harness:
    store: JobStore
    jobs: JobService
    feed: UpdateFeed
    watcher: JobWatcher
    provider: RecordingProvider

    async def submit(self, *specs: JobSpecification, user: User = ALICE, **kw: str) -> list[Job]:
        outcome = await self.jobs.submit(user, SubmitRequest(list(specs) or [spec()], **kw))
        assert outcome.problems == [], outcome.problems
        return outcome.jobs

    async def report(self, *updates: UpdateRequest) -> None:
        await self.provider.report(*updates)

    async def job(self, job_id: str) -> Job:
        (found,) = await self.store.get_jobs([job_id])
        return found


@contextlib.asynccontextmanager
async def harness(
    store: JobStore,
    data_dir: Path,
    providers: Sequence[RecordingProvider] = (),
    products_without_adapter: Sequence[Product] = (),
    applications: Sequence[Application] = (ECHO,),
) -> AsyncIterator[Harness]:
    """JobService, UpdateFeed and JobWatcher over `store`, with recording providers (and
    products in the catalog whose provider runs no adapter, as for a provider that is down)."""
    adapters = list(providers) or [RecordingProvider()]
    products = [product for a in adapters for product in a.products]
    catalog = Catalog(applications, [*products, *products_without_adapter])
    bus = JobEventBus("memory://")
    feed = UpdateFeed(store, bus, poll_interval=0.2, max_queued=100)
    jobs = JobService(store, catalog, ProviderRegistry(adapters), bus, feed)
    logs = JobLogHub(tail_lines=100, max_jobs=10)
    await bus.connect()
    await feed.start()
    for adapter in adapters:
        await adapter.start(jobs.provider_context(adapter.id, data_dir, logs))
    try:
        yield Harness(store, jobs, feed, JobWatcher(store, feed), adapters[0])
    finally:
        for adapter in adapters:
            await adapter.stop()
        await feed.stop()
        await bus.disconnect()
