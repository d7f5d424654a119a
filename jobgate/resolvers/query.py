"""Query resolvers: jobs, the catalog and providers."""

from __future__ import annotations

import asyncio
import contextlib

import strawberry

from jobgate.access import ProviderIdentity
from jobgate.cursors import encode_position
from jobgate.providers.base import ProviderAdapter
from jobgate.resolvers.errors import coded
from jobgate.schema.inputs import JobFilter, JobOrder
from jobgate.schema.payloads import JobEdge, PageInfo
from jobgate.schema.types import Application, Info, Job, Product, Provider
from jobgate.services.jobs import JobListing
from jobgate.storage.base import JobFilter as StoreJobFilter
from jobgate.storage.base import JobOrder as StoreJobOrder

# How long `latestUpdateCursor` lets the update feed catch up with the store, at most.
FEED_CATCH_UP_SECONDS = 2.0


@strawberry.type
class JobConnection:
    """A page of jobs. Its edges (a job and its cursor) are made only if asked for: most
    pages are read as `nodes`."""

    _jobs: strawberry.Private[list[Job]]
    _listing: strawberry.Private[JobListing]
    _filter: strawberry.Private[StoreJobFilter]

    # Resolvers all, in the contract's order (Strawberry puts plain fields first).
    @strawberry.field
    def edges(self) -> list[JobEdge]:
        cursors = self._listing.cursors
        return [
            JobEdge(_cursors=cursors, _index=index, _node=job)
            for index, job in enumerate(self._jobs)
        ]

    @strawberry.field
    def page_info(self) -> PageInfo:
        listing = self._listing
        return PageInfo(
            has_next_page=listing.has_next,
            has_previous_page=listing.has_previous,
            _cursors=listing.cursors,
        )

    @strawberry.field
    def nodes(self) -> list[Job]:
        return self._jobs

    @strawberry.field
    @coded
    async def total_count(self, info: Info) -> int:
        # Counted only when asked for: a count is a second query.
        return await info.context.services.jobs.count_jobs(info.context.caller(), self._filter)


@strawberry.type
class Query:
    @strawberry.field(
        description="A job the caller may read (a provider reads every job on its products); "
        "null otherwise."
    )
    @coded
    async def job(self, info: Info, id: strawberry.ID) -> Job | None:
        job = await info.context.services.jobs.get_job(info.context.caller(), str(id))
        return None if job is None else Job.of(job)

    @strawberry.field(
        description="Jobs the caller may read, newest first unless ordered otherwise. `first` is "
        "1..1000 (default 50). Cursors are tied to the filter and order they came from; another "
        "combination gets INVALID_CURSOR."
    )
    @coded
    async def jobs(
        self,
        info: Info,
        filter: JobFilter | None = None,
        order_by: JobOrder | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> JobConnection:
        job_filter = filter.to_domain() if filter is not None else StoreJobFilter()
        order = order_by.to_domain() if order_by is not None else StoreJobOrder()
        listing = await info.context.services.jobs.list_jobs(
            info.context.caller(), job_filter, order, 50 if first is None else first, after
        )
        return JobConnection(
            _jobs=[Job.of(job) for job in listing.jobs], _listing=listing, _filter=job_filter
        )

    @strawberry.field(
        description="The cursor of the newest stored update: list, then subscribe to jobUpdates "
        "with it as `after`, and miss nothing."
    )
    @coded
    async def latest_update_cursor(self, info: Info) -> str:
        info.context.caller()
        services = info.context.services
        feed = services.feed
        await feed.ready()
        # The feed's position, not the store's newest: every update up to it is readable, so a
        # subscription after it misses nothing that was still being written. But first let the
        # feed read up to the store's newest (it may trail by a poll), so that a subscription
        # after it does not repeat updates a listing just before has shown.
        newest = await services.store.latest_seq()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FEED_CATCH_UP_SECONDS):
                await feed.catch_up_to(newest)
        return encode_position(feed.position)

    @strawberry.field
    @coded
    async def applications(self, info: Info) -> list[Application]:
        info.context.caller()
        return [Application.of(app) for app in info.context.services.catalog.applications]

    @strawberry.field
    @coded
    async def products(self, info: Info, provider: str | None = None) -> list[Product]:
        info.context.caller()
        return [
            Product.of(product)
            for product in info.context.services.catalog.products
            if provider is None or product.provider == provider
        ]

    @strawberry.field
    @coded
    async def providers(self, info: Info) -> list[Provider]:
        info.context.caller()
        return [_provider(adapter) for adapter in info.context.services.providers.all]

    @strawberry.field(
        description="For a provider's token: the provider it acts for (agents ask this first). "
        "Null for users."
    )
    @coded
    async def my_provider(self, info: Info) -> Provider | None:
        identity = info.context.caller()
        if not isinstance(identity, ProviderIdentity):
            return None
        adapter = info.context.services.providers.get(identity.provider_id)
        return None if adapter is None else _provider(adapter)


def _provider(adapter: ProviderAdapter) -> Provider:
    return Provider(
        id=strawberry.ID(adapter.id),
        kind=adapter.kind,
        online=adapter.online,
        products=[Product.of(product) for product in adapter.products],
    )
