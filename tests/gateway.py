"""A real gateway for API tests: uvicorn on a loopback port, and GraphQL clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from jobgate.app import create_app
from jobgate.schema.context import Services
from jobgate.server.config import uvicorn_config
from jobgate.server.protocol import LeanWebSocketProtocol
from jobgate.settings import Settings
from tests.servers import free_port

# One TLS context for every HTTP client the tests make. Without it httpx builds a context and
# loads the CA bundle for each client, about 36 ms of CPU on the event loop, and the tests
# make a client per request: a burst of requests stalled the test's loop for most of a second,
# and that stall counted in the latencies the tests measure of the gateway.
TLS = ssl.create_default_context()


def http_client(timeout: float = 30) -> httpx.AsyncClient:
    """An HTTP client for a request or a few (see `TLS`)."""
    return httpx.AsyncClient(timeout=timeout, verify=TLS)


ALICE, BOB, CAROL = "alice-secret", "bob-secret", "carol-secret"
DAVE, GRACE = "dave-secret", "grace-secret"
PROVIDER, OTHER_PROVIDER = "provider-secret", "other-provider-secret"
BATCH_PROVIDER = "batch-provider-secret"

Json = dict[str, Any]


def gateway_settings(data_dir: Path, storage_url: str, **overrides: Any) -> Settings:
    """The test setup: three users, two local providers and the demo-like catalog."""
    support = {"logs": True, "timeExtension": True, "suspension": False}
    data: Json = {
        "storage": {"url": storage_url, "server_selection_timeout_ms": 1500},
        "server": {"data_dir": str(data_dir)},
        "feed": {"poll_interval_seconds": 0.5},
        # proj-a: alice its PI, dave its admin, carol a member in the group "analysts",
        # grace a member in no group; bob is in proj-b alone.
        "users": [
            {"username": "alice", "token": ALICE, "projects": ["proj-a"]},
            {"username": "bob", "token": BOB, "projects": ["proj-b"]},
            {"username": "carol", "token": CAROL, "projects": ["proj-a"]},
            {"username": "dave", "token": DAVE},
            {"username": "grace", "token": GRACE, "projects": ["proj-a"]},
        ],
        "projects": [
            {
                "id": "proj-a",
                "title": "Project A",
                "pis": ["alice"],
                "admins": ["dave"],
                "groups": {"analysts": ["carol"]},
            }
        ],
        "providers": [
            {
                "id": "local",
                "kind": "local",
                "token": PROVIDER,
                "cancel_grace_seconds": 2,
                "products": [
                    {"name": "cpu-small", "category": "cpu", "cpu": 1, "support": support},
                    {"name": "cpu-basic", "category": "cpu", "cpu": 1},
                ],
            },
            {
                # Runs one job at a time: the rest stay IN_QUEUE, a quiet backlog for tests.
                "id": "batch",
                "kind": "local",
                "token": BATCH_PROVIDER,
                "max_concurrent_jobs": 1,
                "products": [{"name": "cpu-batch", "category": "cpu"}],
            },
            {
                "id": "other",
                "kind": "local",
                "token": OTHER_PROVIDER,
                "products": [{"name": "cpu-other", "category": "cpu", "support": support}],
            },
        ],
        "applications": [
            {
                "name": "echo",
                "version": "1",
                "command": ["echo", "{message}"],
                "parameters": [{"name": "message", "type": "text"}],
            },
            {
                "name": "sleep",
                "version": "1",
                "command": ["sleep", "{seconds}"],
                "parameters": [{"name": "seconds", "type": "integer", "default": 30}],
            },
            {"name": "fail", "version": "1", "command": ["sh", "-c", "exit 3"]},
            {"name": "whoami", "version": "1", "command": ["id", "-un"]},
            {
                "name": "chatty",
                "version": "1",
                "command": ["sh", "-c", "echo one; echo two >&2; sleep {pause}; echo three"],
                "parameters": [{"name": "pause", "type": "integer", "default": 1}],
            },
            {
                "name": "count",
                "version": "1",
                "command": ["seq", "1", "{to}"],
                "parameters": [{"name": "to", "type": "integer"}],
            },
            {
                "name": "missing",
                "version": "1",
                "command": ["/nonexistent/jobgate-test-binary"],
            },
            {
                "name": "shout",
                "version": "2",
                "command": ["printf", "%s|%s", "{word}", "--times={times}"],
                "parameters": [
                    {"name": "word", "type": "text"},
                    {"name": "times", "type": "integer", "optional": True},
                    {"name": "mode", "type": "enumeration", "options": ["a", "b"], "default": "a"},
                    {"name": "loud", "type": "boolean", "optional": True},
                ],
            },
        ],
    }
    data.update(overrides)
    return Settings(**data)


class Gateway:
    """A running gateway; `services` reach inside for what a test must measure."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def client(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.url, token)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    port = free_port()
    app = create_app(settings)
    # The same uvicorn setup as `jobgate serve`, so tests run its WebSocket protocol too.
    listen = settings.server.model_copy(update={"host": "127.0.0.1", "port": port})
    async with serving(uvicorn_config(app, listen, settings.limits, log_level="warning")):
        yield Gateway(app, port)


@contextlib.asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[None]:
    """A uvicorn server in this event loop, listening once entered, stopped on leaving."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serving_websockets(app: Any, **options: Any) -> AsyncIterator[tuple[str, uvicorn.Config]]:
    """`app` behind uvicorn with jobgate's WebSocket protocol on a loopback port (`options` are
    uvicorn's), listening once entered: its WebSocket URL and the config it is served with."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=LeanWebSocketProtocol,
        lifespan="off",
        log_level="warning",
        **options,
    )
    async with serving(config):
        yield f"ws://127.0.0.1:{port}/", config


class GraphQLError(Exception):
    def __init__(self, errors: list[Json]) -> None:
        super().__init__(json.dumps(errors))
        self.errors = errors

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


class GraphQLClient:
    """GraphQL over HTTP POST, the way a script would call it."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token

    async def raw(self, query: str, variables: Json | None = None) -> Json:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        async with http_client() as http:
            response = await http.post(
                self.url, json={"query": query, "variables": variables or {}}, headers=headers
            )
        body: Json = response.json()
        return body

    async def execute(self, query: str, variables: Json | None = None) -> Json:
        """The `data` of a response that must have no errors."""
        body = await self.raw(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        data: Json = body["data"]
        return data


class Subscription:
    """One GraphQL subscription over a WebSocket, in either protocol."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.completed = False

    async def next(self, timeout: float = 20.0) -> Json:
        """The next event's `data`; raises GraphQLError on an error, StopAsyncIteration at the end."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = message["type"]
            if kind in ("next", "data"):
                payload = message["payload"]
                if payload.get("errors"):
                    raise GraphQLError(payload["errors"])
                data: Json = payload["data"]
                return data
            if kind == "error":
                errors = message["payload"]
                raise GraphQLError(errors if isinstance(errors, list) else [errors])
            if kind == "complete":
                self.completed = True
                raise StopAsyncIteration
            # ka / ping / pong: keep-alives

    async def take(self, count: int, timeout: float = 20.0) -> list[Json]:
        return [await self.next(timeout) for _ in range(count)]

    async def rest(self, timeout: float = 20.0) -> list[Json]:
        """Every event until the server completes the stream."""
        events = []
        with contextlib.suppress(StopAsyncIteration):
            while True:
                events.append(await self.next(timeout))
        return events


class WebSocketTarget(Protocol):
    """Anything serving GraphQL over a WebSocket: a gateway in this process or another."""

    @property
    def ws_url(self) -> str: ...


@contextlib.asynccontextmanager
async def subscribe(
    gateway: WebSocketTarget,
    query: str,
    variables: Json | None = None,
    *,
    token: str | None = ALICE,
    protocol: str = "graphql-transport-ws",
    init_payload: Json | None = None,
) -> AsyncIterator[Subscription]:
    """Connect, authenticate in `connection_init` and start one subscription."""
    payload = init_payload
    if payload is None:
        payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with connect(
        gateway.ws_url,
        subprotocols=[protocol],  # type: ignore[list-item]
        open_timeout=5,
        # Frames a test leaves unread must not stall the closing handshake behind them.
        max_queue=None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ack["type"] != "connection_ack":
            raise GraphQLError([ack.get("payload") or {"message": ack["type"]}])
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": start,
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        yield Subscription(ws, protocol)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` of a gateway's state in this process (a count, a registry) that has
    no event to wait on, until it holds; `TimeoutError` after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
