"""The per-request GraphQL context: the services, the caller and the batch loaders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from jobgate.access import Identity, ProviderIdentity, User
from jobgate.auth import NO_CREDENTIALS_HINT, Authentication, Authenticator
from jobgate.domain.catalog import Catalog
from jobgate.domain.job import JobUpdate
from jobgate.errors import Forbidden, IdentityProviderUnavailable, Unauthenticated
from jobgate.events.feed import UpdateFeed
from jobgate.events.logs import JobLogHub
from jobgate.metrics import Metrics
from jobgate.schema.codes import RATE_LIMITED
from jobgate.schema.rendered_jobs import RenderedJobs
from jobgate.services.commands import CommandService
from jobgate.services.jobs import JobService, ProviderRegistry
from jobgate.services.logs import JobLogService
from jobgate.services.occupancy import Occupancy
from jobgate.services.rates import RateLimits, RateRefusal, caller_key
from jobgate.services.sessions import SessionService
from jobgate.services.sharing import SharingService
from jobgate.services.tokens import AccessTokens
from jobgate.services.watch import JobWatcher
from jobgate.storage.base import JobStore

UpdatesKey = tuple[str, int | None]

# Field metadata: the field's value depends on who asks, and only through the caller's
# permissions on the job (`auth.permissions_on`). Fields without it answer the same for every
# caller who may see the object. Subscribers share renderings of an event on that basis
# (`jobgate/streaming/render.py`); a test holds every resolver that reads the caller to the
# mark. A field that depends on the caller in another way needs a new rule there first.
PERMISSIONS_KEY = "jobgate.depends_on_permissions"
DEPENDS_ON_PERMISSIONS = {PERMISSIONS_KEY: True}


@dataclass(frozen=True, slots=True)
class Services:
    """Everything resolvers may call; built once by the app."""

    store: JobStore
    jobs: JobService
    watcher: JobWatcher
    feed: UpdateFeed
    logs: JobLogHub
    job_logs: JobLogService
    authenticator: Authenticator
    catalog: Catalog
    providers: ProviderRegistry
    commands: CommandService
    rates: RateLimits
    occupancy: Occupancy
    sharing: SharingService
    access_tokens: AccessTokens
    metrics: Metrics
    sessions: SessionService | None = None  # None with `[sessions] enabled = false`
    session_host: str | None = None  # `[sessions] host`: each session on a host of its own
    # Queries' completed `Job` subtrees, reused while the job is unchanged (None: never).
    rendered_jobs: RenderedJobs | None = None


@dataclass
class Context:
    services: Services
    request: Request | WebSocket
    identity: Identity | None = None
    # Why the credentials sent were refused, if they were; when they end, if they do.
    rejection: str | None = None
    expires_at: float | None = None
    access_token_id: str | None = None
    credentials_unchecked: bool = False  # the identity provider could not be reached
    # `connection_init`'s Authorization and what it named, once checked (`ConnectionSeat`).
    checked_init: tuple[str, Authentication] | None = None
    connection_params: dict[str, Any] | None = None
    updates: DataLoader[UpdatesKey, list[JobUpdate]] = field(init=False)

    def __post_init__(self) -> None:
        # No cache: a WebSocket connection keeps its context, and updates change over time.
        self.updates = DataLoader(self._load_updates, cache=False)

    async def _load_updates(self, keys: Sequence[UpdatesKey]) -> list[list[JobUpdate]]:
        """All requested jobs' updates in one store round trip per distinct `last`."""
        by_last: dict[int | None, list[str]] = defaultdict(list)
        for job_id, last in keys:
            by_last[last].append(job_id)
        found: dict[UpdatesKey, list[JobUpdate]] = {}
        for last, job_ids in by_last.items():
            loaded = await self.services.store.updates_of(job_ids, last)
            for job_id in job_ids:
                found[(job_id, last)] = loaded.get(job_id, [])
        return [found[key] for key in keys]

    @property
    def caller_key(self) -> str:
        """Whose allowances this request draws from (`services.rates.caller_key`)."""
        client = self.request.client
        return caller_key(self.identity, None if client is None else client.host)

    async def take_request(self) -> GraphQLError | None:
        """Count a request (or subscription) against the caller's allowance."""
        refusal = await self.services.rates.take_request(self.caller_key)
        return None if refusal is None else rate_limited(refusal)

    async def charge_cost(self, cost: int) -> GraphQLError | None:
        """Spend an operation's cost from the caller's allowance (`schema.limits.CostLimit`)."""
        refusal = await self.services.rates.take_cost(self.caller_key, cost)
        return None if refusal is None else rate_limited(refusal)

    def caller(self) -> Identity:
        """The authenticated caller, user or provider."""
        if self.identity is None:
            if self.credentials_unchecked and self.rejection:
                raise IdentityProviderUnavailable(self.rejection)
            raise Unauthenticated(self.rejection or NO_CREDENTIALS_HINT)
        return self.identity

    def authenticated(self, authentication: Authentication) -> None:
        """Take the caller (or the refusal) that credentials name."""
        self.identity = authentication.identity
        self.rejection = authentication.rejection
        self.expires_at = authentication.expires_at
        self.access_token_id = authentication.access_token_id
        self.credentials_unchecked = authentication.unavailable

    def user(self) -> User:
        identity = self.caller()
        if not isinstance(identity, User):
            raise Forbidden("this operation is for users, not providers")
        return identity

    def provider(self) -> ProviderIdentity:
        identity = self.caller()
        if not isinstance(identity, ProviderIdentity):
            raise Forbidden("this operation is for providers only")
        return identity


def rate_limited(refusal: RateRefusal) -> GraphQLError:
    return GraphQLError(
        refusal.message,
        extensions={
            "code": RATE_LIMITED,
            "limit": refusal.limit,
            "retryAfter": refusal.retry_after,
        },
    )
