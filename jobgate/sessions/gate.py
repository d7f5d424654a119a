"""`SessionGate`: the gateway's `/interactive/<job>/<rank>/<kind>/…`, where sessions are used.

A session's URL carries its capability once (`?jobgate-session=<id>.<secret>`): the gate checks
it against the stored session (its job, replica and kind, and that it is used in time), sets it
as a cookie scoped to the session's folder (HttpOnly, SameSite=Lax; Secure over HTTPS), and
redirects to the same address without it, so the secret leaves the address bar and the browser's
history. Every later request (WebSocket upgrades too) proves itself with that cookie, for as long
as the session is stored and its job runs; the proxy never forwards it (`jobgate.sessions.proxy`).
No other credential is asked for or accepted: the URL is the capability.

What a session reaches: a WEB session, the job's web app (`jobgate.sessions.proxy`); a
TERMINAL or VNC session, the gateway's own page (xterm.js, noVNC) at the session's folder and
its WebSocket at `socket` in it (`jobgate.sessions.terminal`, `jobgate.sessions.desktop`).
Where the job's side is, the job's provider adapter says (a `Locator`).

A session dies with its job: the gate looks at the jobs it serves every `RECHECK_SECONDS` and
ends their connections (HTTP responses and WebSockets alike) and connection pools once a job is
no longer running, whichever gateway replica saw it end. A replica's sessions of a kind hold at
most `MAX_CONNECTIONS` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobgate.domain.job import Job
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.errors import JobgateError
from jobgate.providers.background import TaskSet
from jobgate.sessions import desktop, terminal
from jobgate.sessions.address import SESSION_PATH, Locator, Upstream, session_path
from jobgate.sessions.capability import PARAMETER, proves, session_of_host, split
from jobgate.sessions.proxy import PathMap, WebProxy, send_page
from jobgate.storage.base import JobStore
from jobgate.storage.sessions import SessionRecord

COOKIE = "jobgate_session"
# How long a checked session is taken as good without asking the store again.
RECHECK_SECONDS = 2.0

REFUSED_PAGE = (
    b"<!doctype html><title>Session not available</title><p>This session link is not valid: it "
    b"expired before it was first used, or its job has ended. Open a new session.</p>"
)
NOT_THERE_PAGE = b"<!doctype html><title>Not found</title><p>There is no such session address.</p>"
# Requests and WebSockets one replica's sessions of a kind may have at once: a terminal is a
# process (a shell) inside the job, so a session's holder may not start thousands of them.
MAX_CONNECTIONS = {SessionType.WEB: 256, SessionType.TERMINAL: 8, SessionType.VNC: 8}
BUSY_PAGE = b"<!doctype html><title>Busy</title><p>This session has too many connections.</p>"
# Where the terminal's and desktop's pages find their scripts (public files, on every host).
ASSETS_PATH = "/session-assets/"
# A terminal's or desktop's WebSocket, beside its page (the pages' scripts open it there).
PAGE_SOCKET = "socket"
ENDED_PAGE = b"<!doctype html><title>Session ended</title><p>The job has ended.</p>"
UNAVAILABLE_PAGE = b"<!doctype html><p>The gateway cannot check sessions now.</p>"
OTHER_ORIGIN_PAGE = b"<!doctype html><p>Another page may not use this session.</p>"

log = logging.getLogger(__name__)


class ProviderLocator:
    """Asks the job's provider adapter where its replica serves (an adapter that can say has
    an `upstream` method, as `Locator`); None for one that cannot."""

    def __init__(self, adapter_of: Callable[[str], object | None]) -> None:
        self.adapter_of = adapter_of

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        adapter = self.adapter_of(job.specification.product.provider)
        if not isinstance(adapter, Locator):
            return None
        return await adapter.upstream(job, rank, kind)


class SessionGate:
    """ASGI app for `/interactive/…` (see the module)."""

    def __init__(
        self,
        store: JobStore,
        locator: Locator,
        proxy: WebProxy,
        clock: Callable[[], int],
        max_connections: Mapping[SessionType, int] = MAX_CONNECTIONS,
    ) -> None:
        self.store = store
        self.locator = locator
        self.proxy = proxy
        self.clock = clock
        self.max_connections = max_connections
        # (job, rank, kind) -> requests and WebSockets served now.
        self._open: Counter[tuple[str, int, SessionType]] = Counter()
        # (capability, job, rank, kind) -> (the job as checked, until when the check holds).
        # Per job, its capabilities recently proved (with the rank and kind each was used at):
        # the job as then, and until when it is trusted without asking the store again.
        self._checked: dict[str, dict[tuple[str, int, SessionType], tuple[Job, float]]] = {}
        # What is served for each job: requests and WebSockets under way, upstreams pooled.
        self._live: dict[str, set[asyncio.Task[None]]] = {}
        self._upstreams: dict[str, set[Upstream]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._ending = TaskSet()
        # Session id -> where it leads, for sessions on hosts of their own.
        self._hosts: dict[str, _Address] = {}

    async def stop(self) -> None:
        """End every session's connection and pool (the gateway is shutting down)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self._ending.cancel_all()
        for job_id in list(self._live):
            await self._end(job_id)
        await self.proxy.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A session at its folder on the gateway, `/interactive/<job>/<rank>/<kind>/`."""
        if scope["type"] not in ("http", "websocket"):
            return
        match = SESSION_PATH.match(scope["path"])
        if match is None:
            await self.refuse(scope, send, 404, NOT_THERE_PAGE)
            return
        kind = SessionType(match[3].upper())
        await self._serve(scope, receive, send, _Address(match[1], int(match[2]), kind, match[0]))

    async def serve_host(self, scope: Scope, receive: Receive, send: Send, session_id: str) -> None:
        """A session on a host of its own (`<session id>.<sessions.host>`), served from `/`."""
        if scope["type"] not in ("http", "websocket"):
            return
        address = self._hosts.get(session_id)
        if address is None:  # a session's job, replica and kind never change: asked once
            try:
                record = await self.store.session(session_id)
            except JobgateError:
                await self.refuse(scope, send, 503, UNAVAILABLE_PAGE)
                return
            if record is None:
                await self.refuse(scope, send, 403, REFUSED_PAGE)
                return
            address = _Address(record.job_id, record.rank, record.type, "/", session_id)
            self._hosts[session_id] = address
            if len(self._hosts) > 10_000:  # bounded: the oldest go first
                del self._hosts[next(iter(self._hosts))]
        await self._serve(scope, receive, send, address)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, at: _Address) -> None:
        job_id, rank, kind = at.job_id, at.rank, at.kind
        try:
            offered = _query_capability(scope)
            if offered is not None and scope["type"] == "http":
                job = await self._check(offered, at, first_use=True)
                if job is None:
                    await self.refuse(scope, send, 403, REFUSED_PAGE)
                else:
                    await _enter(scope, send, offered, at.mount)
                return
            job = await self._check(_cookie(scope), at, first_use=False)
        except JobgateError:
            await self.refuse(scope, send, 503, UNAVAILABLE_PAGE)
            return
        if job is None:
            await self.refuse(scope, send, 403, REFUSED_PAGE)
            return
        if not _from_the_session(scope):
            # A page of another origin (another session's, on its own host) may make the
            # browser send this session's cookie; the session is not its to use.
            await self.refuse(scope, send, 403, OTHER_ORIGIN_PAGE)
            return
        if kind is not SessionType.WEB:
            await self._page_and_socket(job_id, scope, receive, send, job, rank, kind, at.mount)
            return
        upstream = await self.locator.upstream(job, rank, kind)
        if upstream is None:
            await self.refuse(scope, send, 502, b"<p>The job's server is not listening yet.</p>")
            return
        self._upstreams.setdefault(job_id, set()).add(upstream)
        app = "/" if upstream.strip_prefix else session_path(job_id, rank, kind)
        paths = PathMap(at.mount, app)
        if scope["type"] == "http":
            work = functools.partial(self.proxy.http, scope, receive, upstream=upstream)
        else:
            work = functools.partial(self.proxy.websocket, scope, receive, upstream=upstream)
        work = functools.partial(work, paths=paths)
        await self._while_running((job_id, rank, kind), scope, send, work)

    async def _page_and_socket(
        self,
        job_id: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        job: Job,
        rank: int,
        kind: SessionType,
        prefix: str,
    ) -> None:
        """A terminal or a desktop: the gateway's own page at the session's folder, and its
        WebSocket at `socket` in it, relayed to the job."""
        rest = scope["path"][len(prefix) :]
        if scope["type"] == "http" and rest == "":
            await send_page(
                send, 200, terminal.page() if kind is SessionType.TERMINAL else desktop.page()
            )
            return
        if scope["type"] != "websocket" or rest != PAGE_SOCKET:
            await self.refuse(scope, send, 404, NOT_THERE_PAGE)
            return
        upstream = await self.locator.upstream(job, rank, kind)
        if upstream is None:
            await self.refuse(scope, send, 502, b"")
            return
        relay = terminal.relay if kind is SessionType.TERMINAL else desktop.relay
        work = functools.partial(relay, scope, receive, upstream=upstream)
        await self._while_running((job_id, rank, kind), scope, send, work)

    async def _while_running(
        self,
        slot: tuple[str, int, SessionType],
        scope: Scope,
        send: Send,
        work: Callable[..., Coroutine[Any, Any, None]],
    ) -> None:
        """Serve one request or WebSocket (`work(send=...)`) of a replica's session of a kind
        (`slot`) until it is done or its job ends (`_sweep`, `job_ended`), if that replica's
        sessions of that kind are not at `max_connections` already."""
        job_id = slot[0]
        if self._open[slot] >= self.max_connections[slot[2]]:
            if scope["type"] == "websocket":
                # Accepted to be closed with a reason a browser can read: "try again later"
                # (a refusal before accepting reaches it as a bare 403).
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 1013})
            else:
                await send_page(send, 503, BUSY_PAGE)
            return
        self._open[slot] += 1
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept")
            await send(message)

        task = asyncio.create_task(work(send=sending))
        live = self._live.setdefault(job_id, set())
        live.add(task)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this request itself is cancelled (the browser left, or shutdown)
            await _ended(scope, send, started)  # `_end` cut it: the job ended
        finally:
            live.discard(task)
            if not live and self._live.get(job_id) is live:
                del self._live[job_id]
            self._open[slot] -= 1
            if not self._open[slot]:
                del self._open[slot]

    async def _sweep(self) -> None:
        """Every `RECHECK_SECONDS`: end what is served for jobs that no longer run."""
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            watched = set(self._live) | set(self._upstreams)
            if not watched:
                continue
            try:
                running = {
                    job.id
                    for job in await self.store.get_jobs(sorted(watched))
                    if job.status.state is JobState.RUNNING
                }
            except JobgateError as error:  # the next round asks again
                log.warning("cannot check the jobs of open sessions: %s", error.message)
                continue
            for job_id in watched - running:
                await self._end(job_id)

    def job_ended(self, job_id: str) -> None:
        """Called as a job's final update is stored here (`JobService.on_final`) and as the
        feed reads it (stored by any replica): its sessions end now, not at the next sweep
        (which ends them should both be missed)."""
        self._checked.pop(job_id, None)
        if job_id in self._live or job_id in self._upstreams:
            self._ending.spawn(self._end(job_id))

    async def _end(self, job_id: str) -> None:
        for task in self._live.pop(job_id, set()):
            task.cancel()
        await self.proxy.forget(self._upstreams.pop(job_id, set()))

    async def _check(self, capability: str | None, at: _Address, *, first_use: bool) -> Job | None:
        """The session's running job, if `capability` is a stored session of exactly this
        address (and, on its first use, in time); None otherwise."""
        parts = None if capability is None else split(capability)
        if capability is None or parts is None:
            return None
        session_id, secret = parts
        if at.session_id is not None and session_id != at.session_id:
            return None  # on a session's own host, that session's capability only
        # Keyed (within its job) by all that was proved: the whole capability and where it
        # was used.
        key = (capability, at.rank, at.kind)
        checked = self._checked.get(at.job_id, {}).get(key)
        if checked is not None and checked[1] > time.monotonic() and not first_use:
            return checked[0]
        record = await self.store.session(session_id)
        if record is None or not proves(record, secret) or not _for(record, at):
            return None
        if first_use and self.clock() > record.open_by:
            return None
        jobs = await self.store.get_jobs([at.job_id])
        if not jobs or jobs[0].status.state is not JobState.RUNNING:
            self._checked.pop(at.job_id, None)
            return None
        of_job = self._checked.setdefault(at.job_id, {})
        of_job[key] = (jobs[0], time.monotonic() + RECHECK_SECONDS)
        # Bounded: the oldest go first (jobs, and each job's capabilities).
        if len(of_job) > 100:
            del of_job[next(iter(of_job))]
        if len(self._checked) > 10_000:
            del self._checked[next(iter(self._checked))]
        return jobs[0]

    @staticmethod
    async def refuse(scope: Scope, send: Send, status: int, page: bytes) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send_page(send, status, page)


class SessionHosts:
    """ASGI middleware for sessions on hosts of their own (`[sessions] host`): a request to
    `<session id>.<domain>` goes to the gate, served from `/` (the sessions' own pages' assets,
    `/session-assets/...`, excepted); every other host is the gateway's."""

    def __init__(self, app: ASGIApp, gate: SessionGate, domain: str) -> None:
        self.app = app
        self.gate = gate
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = _header(scope, b"host") if scope["type"] in ("http", "websocket") else None
        if host is None or not host.lower().rsplit(":", 1)[0].endswith("." + self.domain):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(ASSETS_PATH):
            await self.app(scope, receive, send)
            return
        session_id = session_of_host(host, self.domain)
        if session_id is None:
            await self.gate.refuse(scope, send, 404, NOT_THERE_PAGE)
            return
        await self.gate.serve_host(scope, receive, send, session_id)


async def _ended(scope: Scope, send: Send, started: bool) -> None:
    """Tell the browser its session's job ended, as far as the connection still allows."""
    with contextlib.suppress(RuntimeError, OSError):
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1001, "reason": "the job ended"})
        elif not started:
            await send_page(send, 410, ENDED_PAGE)
        # A response under way is cut short: the connection closes without its end.


@dataclass(frozen=True, slots=True)
class _Address:
    """Where a session was reached: its job, replica and kind; the path it is served under
    (`mount`); and on a host of its own, its id (from the host's name)."""

    job_id: str
    rank: int
    kind: SessionType
    mount: str
    session_id: str | None = None


def _for(record: SessionRecord, at: _Address) -> bool:
    return record.job_id == at.job_id and record.rank == at.rank and record.type is at.kind


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def _from_the_session(scope: Scope) -> bool:
    """Whether a request proved by the session's cookie comes from the session's own pages (or
    is a top-level visit): browsers say where a request comes from (`Origin` on WebSockets,
    `Sec-Fetch-Site` on the rest); a client that says nothing is no browser another page
    drives."""
    if scope["type"] == "websocket":
        origin = _header(scope, b"origin")
        if origin is None:
            return True
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        return origin == f"{scheme}://{_header(scope, b'host')}"
    site = _header(scope, b"sec-fetch-site")
    if site is None or site in ("same-origin", "none"):
        return True
    # Following a link to the session from elsewhere (or its own redirect after the first
    # use): a navigation, which no other page can read; only to look, never to change.
    navigating = _header(scope, b"sec-fetch-mode") == "navigate"
    return navigating and scope["method"] in ("GET", "HEAD")


def _query_capability(scope: Scope) -> str | None:
    raw: bytes = scope.get("query_string") or b""
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name == PARAMETER:
            return value
    return None


def _cookie(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name.lower() == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:  # a malformed header is no credential
                return None
            morsel = cookie.get(COOKIE)
            if morsel is not None:
                found: str = morsel.value
                return found
    return None


async def _enter(scope: Scope, send: Send, capability: str, prefix: str) -> None:
    """Set the session's cookie and send the browser on without the capability in the URL."""
    raw: bytes = scope.get("query_string") or b""
    query = raw.decode("latin-1")
    kept = [(n, v) for n, v in parse_qsl(query, keep_blank_values=True) if n != PARAMETER]
    location = scope["path"] + (f"?{urlencode(kept)}" if kept else "")
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    cookie = f"{COOKIE}={capability}; Path={prefix}; HttpOnly; SameSite=Lax{secure}"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"cache-control", b"no-store"),
                (b"referrer-policy", b"no-referrer"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
