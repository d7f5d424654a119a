"""`WebProxy`: HTTP and WebSocket traffic from a browser to a job's own web server.

What a WEB session carries (README: "Interactive sessions", when served): every request under
the session's path goes to the job's server as it came, with three exceptions, so that the app
sees the browser and never the gateway's secrets:

- the gateway's credentials are removed: `Authorization`, and the gateway's own cookies (named
  `jobgate…`) from `Cookie`; a `Set-Cookie` from the app for such a name is dropped, so a job
  cannot plant one;
- hop-by-hop headers (RFC 9110, section 7.6.1) stay on their own hop;
- `X-Forwarded-For`, `-Proto`, `-Host` and `-Prefix` tell the app where the browser is and
  under which path it is served.

Bodies stream both ways, in the chunks they come in: a 100 MB download passes through without
being held. The job's server is reached over TCP or a Unix socket (`Upstream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from jobgate.sessions.address import Upstream, connectable_path

log = logging.getLogger(__name__)

GATEWAY_COOKIE_PREFIX = "jobgate"
# RFC 9110 7.6.1, and the proxy's own headers of the request.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded to the job: the gateway's credentials, and what the proxy sets itself.
# (A body's Content-Length goes on with it: streamed at its length, not re-framed as chunked,
# which servers that read bodies by their length, as Python's http.server, could not read.)
WITHHELD = frozenset({"authorization", "host"}) | HOP_BY_HOP
# The WebSocket handshake's own headers: the proxy makes its own handshake upstream.
HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
# A message from a job's server larger than this ends the WebSocket (1009): a desktop's frame
# is a few MiB at most.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT = 10.0

UNREACHABLE_PAGE = (
    b"<!doctype html><title>Not answering</title>"
    b"<p>The job's web server does not answer (yet). Reload in a moment.</p>"
)


@dataclass(frozen=True, slots=True)
class PathMap:
    """A web session's paths as the browser sees them (under `mount`: the session's folder on
    the gateway, or `/` on a session's own host) and as the app serves them (under `app`: `/`
    for an app served from its root, its prefix for one that knows it)."""

    mount: str
    app: str

    def to_app(self, path: bytes) -> bytes:
        mount, app = self.mount.encode(), self.app.encode()
        if app != b"/" and path.startswith(app):
            return path  # one of the app's own absolute paths, as it wrote it in its pages
        if path.startswith(mount):
            return app + path[len(mount) :]
        return path

    def to_browser(self, location: bytes) -> bytes:
        """A redirect to one of the app's own paths, where the browser finds it (a
        scheme-relative `//host/...` is another host's, and left alone)."""
        app = self.app.encode()
        if location.startswith(app) and not location.startswith(b"//"):
            return self.mount.encode() + location[len(app) :]
        return location


class WebProxy:
    """Forwards ASGI `http` and `websocket` scopes to an `Upstream`; one per gateway (it keeps
    a connection pool per upstream; `close` ends them all)."""

    def __init__(self, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        # Each pool, and the folder it reaches a long socket path through (see below).
        self._clients: dict[Upstream, tuple[httpx.AsyncClient, int | None]] = {}

    async def close(self) -> None:
        await self.forget(list(self._clients))

    async def forget(self, upstreams: Iterable[Upstream]) -> None:
        """Close the pools of these upstreams (their job ended)."""
        for upstream in upstreams:
            pooled = self._clients.pop(upstream, None)
            if pooled is not None:
                client, folder = pooled
                try:
                    await client.aclose()
                finally:
                    if folder is not None:
                        os.close(folder)

    def _client(self, upstream: Upstream) -> httpx.AsyncClient:
        pooled = self._clients.get(upstream)
        if pooled is None:
            folder, uds = None, None
            if upstream.unix_socket is not None:
                folder, uds = connectable_path(upstream.unix_socket)
            transport = httpx.AsyncHTTPTransport(uds=uds)
            client = httpx.AsyncClient(
                transport=transport,
                base_url=f"http://{upstream.authority}",
                timeout=httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT),
                follow_redirects=False,
            )
            pooled = self._clients[upstream] = (client, folder)
        return pooled[0]

    # --- HTTP -----------------------------------------------------------------------------------

    async def http(
        self, scope: Scope, receive: Receive, send: Send, upstream: Upstream, paths: PathMap
    ) -> None:
        """Forward one HTTP request, its path as the app serves it (`paths`)."""
        try:
            client = self._client(upstream)
        except OSError as error:  # its socket's folder is gone
            log.info("a web session's server at %s is not there: %s", upstream, error)
            await send_page(send, 502, UNREACHABLE_PAGE)
            return
        request = client.build_request(
            scope["method"],
            _target(scope, paths),
            headers=[*_request_headers(scope["headers"]), *_forwarded(scope, paths.mount)],
            # A request without a body goes on without one: a stream would go as chunked, an
            # empty chunk that a server reading no body of a GET takes for its next request.
            content=_body(receive) if _has_body(scope["headers"]) else None,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as error:
            log.info("a web session's server at %s does not answer: %s", upstream, error)
            await send_page(send, 502, UNREACHABLE_PAGE)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _response_headers(response.headers.raw, paths),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.TransportError as error:
            # The response has begun: all that is left is to end the connection early.
            log.info("a web session's server at %s broke off a response: %s", upstream, error)
            raise
        finally:
            await response.aclose()

    # --- WebSocket --------------------------------------------------------------------------------

    async def websocket(
        self, scope: Scope, receive: Receive, send: Send, upstream: Upstream, paths: PathMap
    ) -> None:
        """Connect to the job's server first (so its subprotocol can be agreed), then carry
        messages both ways until either side closes."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = [Subprotocol(p) for p in scope.get("subprotocols") or []]
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in (
                *_request_headers(scope["headers"]),
                *_forwarded(scope, paths.mount),
            )
            if name.decode("latin-1").lower() not in HANDSHAKE
        ]
        try:
            target = _target(scope, paths)
            job_socket = await _connect(upstream, target, offered, headers)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            log.info("a web session's server at %s refused a WebSocket: %s", upstream, error)
            await send({"type": "websocket.close", "code": 1011})
            return
        async with job_socket:
            await send({"type": "websocket.accept", "subprotocol": job_socket.subprotocol})
            to_job = asyncio.create_task(_browser_to_job(receive, job_socket))
            to_browser = asyncio.create_task(_job_to_browser(job_socket, send))
            try:
                done, pending = await asyncio.wait(
                    {to_job, to_browser}, return_when=asyncio.FIRST_COMPLETED
                )
            except asyncio.CancelledError:
                # Cut off (the job ended): neither direction may carry on, or pass on the
                # job side's close, which is the caller's to send.
                for task in (to_job, to_browser):
                    task.cancel()
                raise
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
            for task in done:
                with contextlib.suppress(ConnectionClosed):
                    task.result()


async def _connect(
    upstream: Upstream, target: str, offered: list[Subprotocol], headers: list[tuple[str, str]]
) -> ClientConnection:
    # What `unix_connect` does: a Unix socket, with the URI for the handshake only.
    folder, path = None, None
    if upstream.unix_socket is not None:
        folder, path = connectable_path(upstream.unix_socket)
    through: dict[str, Any] = {} if path is None else {"unix": True, "path": path}
    try:
        return await connect(
            f"ws://{upstream.authority}{target}",
            subprotocols=offered or None,
            additional_headers=headers,
            max_size=MAX_MESSAGE_BYTES,
            open_timeout=CONNECT_TIMEOUT,
            # The browser keeps its own connection alive: the job's side needs no pings of ours.
            ping_interval=None,
            compression=None,
            **through,
        )
    finally:
        if folder is not None:
            os.close(folder)  # connected (or not): the path is not needed again


async def _browser_to_job(receive: Receive, job_socket: ClientConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await job_socket.close(message.get("code", 1000))
            return
        if message.get("bytes") is not None:
            await job_socket.send(message["bytes"])
        elif message.get("text") is not None:
            await job_socket.send(message["text"])


async def _job_to_browser(job_socket: ClientConnection, send: Send) -> None:
    try:
        async for data in job_socket:
            if isinstance(data, bytes):
                await send({"type": "websocket.send", "bytes": data})
            else:
                await send({"type": "websocket.send", "text": data})
    except ConnectionClosed:
        pass
    code = job_socket.close_code or 1000
    # 1005/1006 are never sent in a close frame: the job's side went away.
    await send({"type": "websocket.close", "code": 1000 if code in (1005, 1006) else code})


# --- headers ----------------------------------------------------------------------------------


def _target(scope: Scope, paths: PathMap) -> str:
    """The request's path (as the app serves it) and query, as the browser sent them."""
    path: bytes = paths.to_app(scope.get("raw_path") or scope["path"].encode())
    query: bytes = scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _request_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered.decode("latin-1") in WITHHELD or lowered.startswith(b"x-forwarded-"):
            continue
        if lowered == b"cookie":
            value = _without_gateway_cookies(value)
            if not value:
                continue
        kept.append((name, value))
    return kept


def _without_gateway_cookies(header: bytes) -> bytes:
    pairs = [pair.strip() for pair in header.split(b";")]
    return b"; ".join(
        pair
        for pair in pairs
        if pair and not pair.lower().startswith(GATEWAY_COOKIE_PREFIX.encode())
    )


def _forwarded(scope: Scope, prefix: str) -> list[tuple[bytes, bytes]]:
    client = scope.get("client")
    host = next((value for name, value in scope["headers"] if name.lower() == b"host"), b"")
    scheme: str = scope.get("scheme", "http")
    proto = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    forwarded = [
        (b"x-forwarded-proto", proto.encode()),
        (b"x-forwarded-host", host),
        (b"x-forwarded-prefix", prefix.encode()),
    ]
    if client:
        forwarded.append((b"x-forwarded-for", str(client[0]).encode()))
    return forwarded


def _response_headers(
    headers: Iterable[tuple[bytes, bytes]], paths: PathMap
) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered.decode("latin-1") in HOP_BY_HOP:
            continue
        if lowered == b"set-cookie" and _sets_gateway_cookie(value):
            continue
        if lowered == b"location":
            value = paths.to_browser(value)
        kept.append((name, value))
    return kept


def _sets_gateway_cookie(header: bytes) -> bool:
    try:
        cookie: SimpleCookie = SimpleCookie(header.decode("latin-1"))
    except CookieError:
        return True  # what cannot be read cannot be vouched for
    return any(name.lower().startswith(GATEWAY_COOKIE_PREFIX) for name in cookie)


def _has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the browser's request has a body (RFC 9112, 6.3: it says so in its headers)."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value != b"0"):
            return True
    return False


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def send_page(send: Send, status: int, body: bytes) -> None:
    """A short HTML page of the gateway's own (never cached)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
