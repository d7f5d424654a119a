"""The ASGI app: one `create_app(settings)` and one lifespan that opens and closes every part."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from importlib import resources
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types import ExecutionResult

from jobgate.access import ProviderIdentity
from jobgate.auth import Authentication, Authenticator
from jobgate.errors import IdentityProviderUnavailable, Unauthenticated
from jobgate.events.bus import JobEventBus
from jobgate.events.commands import CommandSignal
from jobgate.events.feed import UpdateFeed
from jobgate.events.logs import JobLogHub
from jobgate.logs_setup import RequestIds
from jobgate.metrics import Metrics
from jobgate.providers.remote import RemoteProvider
from jobgate.schema.build import build_schema
from jobgate.schema.codes import LIMIT_EXCEEDED
from jobgate.schema.context import Context, Services
from jobgate.schema.rendered_jobs import RenderedJobs
from jobgate.server import graphql_http
from jobgate.server.head_limit import HeaderLimit
from jobgate.server.health import Readiness, health_endpoints
from jobgate.server.metrics_endpoint import metrics_endpoint
from jobgate.server.operators import OperatorAccess
from jobgate.server.websocket_lane import LeanStarlette, WebSocketLane
from jobgate.services.commands import CommandService
from jobgate.services.handover import HandoverDrain
from jobgate.services.jobs import JobService, ProviderRegistry, Quotas, now_ms
from jobgate.services.logs import JobLogService
from jobgate.services.occupancy import Occupancy
from jobgate.services.rates import RateLimits
from jobgate.services.reconcile import Reconciler
from jobgate.services.retention import Retention
from jobgate.services.sessions import SessionService
from jobgate.services.sharing import SharingService
from jobgate.services.tokens import AccessTokens
from jobgate.services.watch import JobWatcher
from jobgate.sessions.gate import ProviderLocator, SessionGate, SessionHosts
from jobgate.sessions.proxy import WebProxy
from jobgate.sessions.relay import RelayHub
from jobgate.sessions.relay_crossing import ReplicaCrossing
from jobgate.settings import LimitSettings, Settings
from jobgate.storage.base import JobStore
from jobgate.streaming.handler import JobgateTransportWSHandler
from jobgate.streaming.lean import LeanWatch
from jobgate.streaming.legacy import JobgateGraphQLWSHandler
from jobgate.streaming.plan import WatchPlanner
from jobgate.streaming.render import RendererPool
from jobgate.wiring import (
    CommandQueue,
    build_authenticator,
    build_catalog,
    build_providers,
    build_store,
    build_unix_accounts,
)

log = logging.getLogger(__name__)


GRAPHIQL = resources.files("jobgate") / "static" / "graphiql"
TERMINAL = resources.files("jobgate") / "static" / "terminal"  # the terminal session's page
DESKTOP = resources.files("jobgate") / "static" / "desktop"  # the VNC session's page, noVNC


class JobgateGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with jobgate's context, WebSocket authentication, a lean path for
    `jobUpdates` subscriptions and a GraphiQL page whose assets the gateway serves itself."""

    graphql_transport_ws_handler_class = JobgateTransportWSHandler
    graphql_ws_handler_class = JobgateGraphQLWSHandler

    def __init__(
        self,
        services: Services,
        *,
        graphiql: bool,
        allowed_origins: Sequence[str] = (),
        caches: bool = True,
        plans: bool = True,
        metrics: bool = True,
        lean_subscriptions: bool = True,
        limits: LimitSettings | None = None,
        sessions: bool = False,
    ) -> None:
        limits = limits or LimitSettings()
        self.max_body_bytes = limits.max_body_bytes
        self.max_concurrent_requests = limits.max_concurrent_requests
        self.in_flight = 0  # HTTP GraphQL requests being served
        schema = build_schema(
            caches=caches, plans=plans, limits=limits, metrics=metrics, sessions=sessions
        )
        super().__init__(
            schema,
            connection_init_wait_timeout=timedelta(seconds=limits.init_timeout_seconds),
            graphql_ide="graphiql" if graphiql else None,
            keep_alive=True,
            keep_alive_interval=15,
            allowed_origins=allowed_origins,
        )
        self.services = services
        planner = WatchPlanner(schema, enabled=lean_subscriptions)
        if lean_subscriptions and not planner.enabled:
            log.warning(
                "jobUpdates takes Strawberry's path: the lean path does not apply %s",
                ", ".join(planner.unknown_extensions),
            )
        self.watch_renderers = RendererPool(planner)
        # The lean path's subscriptions running (`LeanWatches`), by operation.
        self.lean_watches: dict[Operation[Context, None], LeanWatch] = {}
        self._graphiql_page = (GRAPHIQL / "index.html").read_text(encoding="utf-8")

    async def render_graphql_ide(self, request: Request) -> Response:
        oidc = self.services.authenticator.oidc
        sign_in = None if oidc is None else await oidc.browser_sign_in()
        if sign_in is None:
            return HTMLResponse(self._graphiql_page)
        # GraphiQL's sign-in (jobgate-signin.js) reads the issuer's endpoints from the page.
        config = json.dumps(sign_in).replace("<", "\\u003c")
        tag = f'<script id="jobgate-sign-in" type="application/json">{config}</script>'
        return HTMLResponse(self._graphiql_page.replace("<!-- sign-in -->", tag, 1))

    # --- GraphQL over HTTP (see jobgate.server.graphql_http) ----------------------------------

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        if scope["type"] != "http":
            # Strawberry's own, returned rather than awaited: a subscriber's connection keeps
            # no frame of this method for its life.
            return super().__call__(scope, receive, send)
        return self._admit_http(scope, receive, send)

    async def _admit_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive=receive)
        refusals = self.services.metrics.refusals
        if graphql_http.declared_too_large(request, self.max_body_bytes):
            refusals.labels("limits.max_body_bytes").inc()
            await graphql_http.body_too_large(request, self.max_body_bytes)(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent_requests:
            busy = GraphQLError(
                f"the gateway serves {self.max_concurrent_requests} requests at once; "
                "retry shortly",
                extensions={"code": LIMIT_EXCEEDED, "limit": "limits.max_concurrent_requests"},
            )
            refusals.labels("limits.max_concurrent_requests").inc()
            await graphql_http.refused(request, 503, busy, 1)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._serve_http(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive=graphql_http.bounded_receive(receive, self.max_body_bytes))
        authentication = await self.services.authenticator.authenticate(
            request.headers.get("authorization")
        )
        # get_context takes the caller from here: a request is identified once.
        request.state.caller = authentication
        if request.method == "POST" or request.query_params.get("query"):
            probe = Context(self.services, request, authentication.identity)
            refusal = await probe.take_request()
            if refusal is not None:
                extensions = refusal.extensions or {}
                self.services.metrics.refusals.labels(str(extensions["limit"])).inc()
                retry_after = int(extensions["retryAfter"])
                await graphql_http.refused(request, 429, refusal, retry_after)(scope, receive, send)
                return
        try:
            # However many store calls the operation makes, it waits for the store this long
            # in all: a store that is away answers STORE_UNAVAILABLE within it.
            with self.services.store.deadline():
                response = await self.run(request)
        except graphql_http.BodyTooLarge:
            self.services.metrics.refusals.labels("limits.max_body_bytes").inc()
            response = graphql_http.body_too_large(request, self.max_body_bytes)
        except HTTPException as error:
            # Strawberry answers these in plain text; a client gets a coded GraphQL error.
            log.info("refused (%s): %s", error.status_code, error.reason)
            response = graphql_http.error_response(request, error.status_code, error.reason)
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = graphql_http.decode_request_body(data)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return decoded

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, Request):
            sub_response.media_type = graphql_http.response_media_type(request)
            request.state.sub_response = sub_response
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if graphql_http.is_request_error(result):
            processed.pop("data", None)  # a request error has no data entry
            sub_response: Response = request.state.sub_response
            retry_after = graphql_http.retry_after_of(result)
            if retry_after is not None:
                # Past the caller's cost allowance: refused before it ran, whatever the type.
                sub_response.status_code = 429
                sub_response.headers["retry-after"] = str(retry_after)
            elif sub_response.media_type == graphql_http.GRAPHQL_RESPONSE:
                sub_response.status_code = 400
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type is not None:
            response.headers["content-type"] = sub_response.media_type
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        authentication: Authentication | None = getattr(request.state, "caller", None)
        if authentication is None:  # a WebSocket: on_ws_connect may identify it again
            header = request.headers.get("authorization")
            authentication = await self.services.authenticator.authenticate(header)
        context = Context(self.services, request)
        context.authenticated(authentication)
        return context

    async def on_ws_connect(self, context: Context) -> None:
        """Take the token from `connection_init`'s payload, where browsers must put it."""
        params = context.connection_params or {}
        header = next(
            (value for key, value in params.items() if key.lower() == "authorization"), None
        )
        if header is None:
            return  # no token here: the upgrade request's header (if any) stands
        checked = context.checked_init
        if checked is not None and checked[0] == str(header):
            authentication = checked[1]  # the connection's seat checked it already
        else:
            authentication = await self.services.authenticator.authenticate(str(header))
        if authentication.identity is None:
            code = (
                IdentityProviderUnavailable.code
                if authentication.unavailable
                else Unauthenticated.code
            )
            raise ConnectionRejectionError(
                {"message": authentication.rejection, "extensions": {"code": code}}
            )
        context.authenticated(authentication)


def create_app(settings: Settings, *, caches: bool = True, plans: bool = True) -> Starlette:
    """The gateway for `settings`; parts open on startup and close on shutdown. `caches=False`
    parses and validates every document afresh and keeps no job's answer, `plans=False`
    leaves every query's completion to graphql-core (both for benchmarks and comparisons).

    An ASGI 3 app that a server must be told is one (uvicorn's `interface="asgi3"`, as
    `server.config.uvicorn_config` says): see `server.websocket_lane.LeanStarlette`."""
    store = build_store(settings)
    catalog = build_catalog(settings)
    authenticator = build_authenticator(settings)
    bus = JobEventBus(settings.bus.url)
    metrics = Metrics(store.round_trips, bus.round_trips)
    feed = UpdateFeed(
        store,
        bus,
        poll_interval=settings.feed.poll_interval_seconds,
        max_queued=settings.feed.max_queued_events,
        metrics=metrics,
    )
    logs = JobLogHub(
        tail_lines=settings.logs.tail_lines,
        max_jobs=settings.logs.max_jobs,
        tail_bytes=settings.logs.tail_bytes,
        total_bytes=settings.logs.total_bytes,
    )
    signal = CommandSignal()
    feed.ring_listeners.append(signal.notify)
    relays = (
        RelayHub(_provider_of(authenticator), _crossing(settings, bus))
        if settings.sessions.enabled
        else None
    )
    providers = ProviderRegistry(
        build_providers(settings, CommandQueue(store, signal, bus.ring, now_ms, relays))
    )
    limits = settings.limits
    jobs = JobService(
        store,
        catalog,
        providers,
        bus,
        feed,
        max_ids=limits.max_ids,
        quotas=Quotas(limits.max_active_jobs_per_user, limits.max_active_replicas_per_user),
        unix_accounts=build_unix_accounts(settings),
        metrics=metrics,
    )
    reconciler = Reconciler(
        jobs,
        interval=settings.reconcile.interval_seconds,
        grace=settings.reconcile.grace_seconds,
    )
    drain = HandoverDrain(jobs, retry_seconds=settings.handover.retry_seconds)
    retention = Retention(store, settings.retention, now_ms, metrics)
    job_logs = JobLogService(jobs, logs)
    jobs.on_final.append(job_logs.job_ended)
    access_tokens = AccessTokens(store, authenticator.projects)
    authenticator.access_tokens = access_tokens
    sessions = SessionService(jobs, now_ms) if settings.sessions.enabled else None
    gate = (
        None
        if sessions is None
        else SessionGate(store, ProviderLocator(providers.get), WebProxy(), now_ms)
    )
    if gate is not None:
        # A job's end ends its sessions at once where it is stored, and as the feed reads it on
        # every other replica.
        enders = [gate.job_ended]
        enders += [a.job_ended for a in providers.all if isinstance(a, RemoteProvider)]
        jobs.on_final.extend(enders)
        feed.final_listeners.extend(enders)
    # Each session on a host of its own, or (without one) at its folder on the gateway.
    session_host = settings.sessions.host if gate is not None else None
    services = Services(
        store=store,
        jobs=jobs,
        watcher=JobWatcher(store, feed, max_ids=settings.limits.max_ids),
        feed=feed,
        logs=logs,
        job_logs=job_logs,
        authenticator=authenticator,
        catalog=catalog,
        providers=providers,
        commands=CommandService(
            store, providers, signal, poll_interval=settings.feed.poll_interval_seconds
        ),
        rates=RateLimits(settings.limits, settings.bus.url),
        occupancy=Occupancy(
            max_websockets=settings.limits.max_websockets_per_caller,
            max_subscriptions=settings.limits.max_subscriptions_per_caller,
        ),
        sharing=SharingService(store, authenticator.projects),
        access_tokens=access_tokens,
        metrics=metrics,
        sessions=sessions,
        session_host=session_host,
        rendered_jobs=(
            RenderedJobs(settings.server.kept_job_values)
            if caches and settings.server.kept_job_values
            else None
        ),
    )
    origins = settings.server.allowed_origins
    graphql = JobgateGraphQL(
        services,
        graphiql=settings.server.graphiql,
        allowed_origins=origins,
        caches=caches,
        plans=plans,
        lean_subscriptions=settings.server.lean_subscriptions,
        limits=settings.limits,
        metrics=settings.operations.metrics,
        sessions=sessions is not None,
    )

    readiness = Readiness({"store": _in_deadline(store), "bus": bus.ping})
    operators = OperatorAccess.of(
        settings.operations.allow_from,
        None if settings.operations.token is None else settings.operations.token.get_secret_value(),
    )
    livez, readyz = health_endpoints(readiness, operators)
    scrape = metrics_endpoint(metrics, store, providers, operators)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        if authenticator.oidc is not None:
            await authenticator.oidc.open()
        await bus.connect()
        await feed.start()
        if relays is not None:
            await relays.start()
        for adapter in providers.all:
            await adapter.start(jobs.provider_context(adapter.id, settings.server.data_dir, logs))
        drain.start()
        reconciler.start()
        retention.start()
        readiness.started = True
        log.info("jobgate is ready")
        try:
            yield
        finally:
            readiness.draining = True
            if sessions is not None and gate is not None:
                await sessions.stop()
                await gate.stop()
            await retention.stop()
            await reconciler.stop()
            await drain.stop()
            for adapter in providers.all:
                await adapter.stop()
            await feed.stop()
            if relays is not None:
                await relays.stop()
            await services.rates.close()
            await bus.disconnect()
            if authenticator.oidc is not None:
                await authenticator.oidc.close()
            await store.close()

    async def home(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    app = LeanStarlette(
        routes=[
            Route("/", home),
            Route("/livez", livez),
            Route("/healthz", livez),  # the name of earlier versions
            Route("/readyz", readyz),
            *([Route("/metrics", scrape)] if settings.operations.metrics else []),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Mount("/graphiql-assets", StaticFiles(directory=str(GRAPHIQL))),
            # Sessions' own paths: what is under /interactive/ is the jobs' (see the gate).
            *([] if gate is None or session_host is not None else [Mount("/interactive", gate)]),
            # Where agents dial back to relay sessions of their jobs (see jobgate.sessions.relay).
            *([] if relays is None else [Mount("/relay", relays)]),
            *(
                []
                if gate is None
                else [
                    Mount("/session-assets/terminal", StaticFiles(directory=str(TERMINAL))),
                    Mount("/session-assets/desktop", StaticFiles(directory=str(DESKTOP))),
                ]
            ),
        ],
        middleware=[
            # It keeps no frame of its own on a connection (see the module).
            Middleware(HeaderLimit, max_bytes=settings.limits.max_header_bytes),
            # Sessions on hosts of their own never reach the gateway's routes (see the gate).
            *(
                [Middleware(SessionHosts, gate=gate, domain=session_host)]
                if gate is not None and session_host is not None
                else []
            ),
            # Next, so a subscriber's connection keeps no frames of the rest (see the module).
            Middleware(WebSocketLane, path="/graphql", endpoint=graphql),
            Middleware(RequestIds),
            *(
                [
                    Middleware(
                        CORSMiddleware,
                        allow_origins=origins,
                        allow_methods=["GET", "POST"],
                        allow_headers=["authorization", "content-type"],
                    )
                ]
                if origins
                else []
            ),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.graphql = graphql
    app.state.readiness = readiness
    return app


def _provider_of(authenticator: Authenticator) -> Callable[[str | None], Awaitable[str | None]]:
    """The provider an Authorization header proves its caller is (None for anyone else)."""

    async def provider_of(header: str | None) -> str | None:
        identity = (await authenticator.authenticate(header)).identity
        return identity.provider_id if isinstance(identity, ProviderIdentity) else None

    return provider_of


def _crossing(settings: Settings, bus: JobEventBus) -> ReplicaCrossing | None:
    """How this replica's relays reach agents connected to others, where it is told its
    address (`[sessions] replica_url`)."""
    url = settings.sessions.replica_url
    return None if url is None else ReplicaCrossing(bus, url)


def _in_deadline(store: JobStore) -> Callable[[], Awaitable[None]]:
    """The store's ping, bounded as a request's calls are (`JobStore.deadline`)."""

    async def ping() -> None:
        with store.deadline():
            await store.ping()

    return ping
