"""`SessionGate`: the gateway's `/interactive/<job>/<rank>/<kind>/…`, where sessions are used.

A session's URL carries its capability once (`?jobgate-session=<id>.<secret>`): the gate checks
it against the stored session (its job, replica and kind, and that it is used in time), sets it
as a cookie scoped to the session's folder (HttpOnly, SameSite=Lax; Secure over HTTPS), and
redirects to the same address without it, so the secret leaves the address bar and the browser's
history. Every later request (WebSocket upgrades too) proves itself with that cookie, for as long
as the session is stored and its job runs; the proxy never forwards it (`jobgate.sessions.proxy`).
No other credential is asked for or accepted: the URL is the capability.

Not mounted in the app yet (issue 12).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode

from starlette.types import Receive, Scope, Send

from jobgate.domain.job import Job
from jobgate.domain.states import JobState
from jobgate.errors import JobgateError
from jobgate.sessions.capability import PARAMETER, SESSION_PATH, proves, split
from jobgate.sessions.proxy import Upstream, WebProxy, send_page
from jobgate.storage.base import JobStore
from jobgate.storage.sessions import SessionRecord, SessionType

COOKIE = "jobgate_session"
# How long a checked session is taken as good without asking the store again.
RECHECK_SECONDS = 2.0

REFUSED_PAGE = (
    b"<!doctype html><title>Session not available</title><p>This session link is not valid: it "
    b"expired before it was first used, or its job has ended. Open a new session.</p>"
)
NOT_THERE_PAGE = b"<!doctype html><title>Not found</title><p>There is no such session address.</p>"


class Locator(Protocol):
    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        """Where this replica's server of `kind` listens now; None while it does not (yet)."""


@dataclass(frozen=True, slots=True)
class AddressFiles:
    """Jobs tell where they listen as Open OnDemand's batch-connect apps do: by writing
    `<job folder>/interactive/<kind>-<rank>.json` once listening, either `{"port": 8888}`
    (on `"host"`, default 127.0.0.1) or `{"socket": "web.sock"}` (a Unix socket, relative to
    the job folder). `folder_of` gives a job's folder on this host (None: not here)."""

    folder_of: Callable[[Job], Path | None]

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        folder = self.folder_of(job)
        if folder is None:
            return None
        try:
            address = json.loads(
                (folder / "interactive" / f"{kind.value.lower()}-{rank}.json").read_text()
            )
        except (OSError, ValueError):
            return None
        if not isinstance(address, dict):
            return None
        socket, port = address.get("socket"), address.get("port")
        if isinstance(socket, str):
            path = (folder / socket).resolve()
            # The job's own folder only: an address file cannot point the gateway elsewhere.
            return Upstream(unix_socket=path) if folder.resolve() in path.parents else None
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            host = address.get("host", "127.0.0.1")
            return Upstream(host=host, port=port) if isinstance(host, str) else None
        return None


class SessionGate:
    """ASGI app for `/interactive/…` (see the module)."""

    def __init__(
        self,
        store: JobStore,
        locator: Locator,
        proxy: WebProxy,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.locator = locator
        self.proxy = proxy
        self.clock = clock
        # (capability, job, rank, kind) -> (the job as checked, until when the check holds).
        self._checked: dict[tuple[str, str, int, SessionType], tuple[Job, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        match = SESSION_PATH.match(scope["path"])
        if match is None:
            await self._refuse(scope, send, 404, NOT_THERE_PAGE)
            return
        job_id, rank, kind = match[1], int(match[2]), SessionType(match[3].upper())
        prefix = match[0]
        try:
            offered = _query_capability(scope)
            if offered is not None and scope["type"] == "http":
                job = await self._check(offered, job_id, rank, kind, first_use=True)
                if job is None:
                    await self._refuse(scope, send, 403, REFUSED_PAGE)
                else:
                    await _enter(scope, send, offered, prefix)
                return
            job = await self._check(_cookie(scope), job_id, rank, kind, first_use=False)
        except JobgateError:
            await self._refuse(scope, send, 503, b"<p>The gateway cannot check sessions now.</p>")
            return
        if job is None:
            await self._refuse(scope, send, 403, REFUSED_PAGE)
            return
        if kind is not SessionType.WEB:
            # Terminals and desktops have pages of their own (not built yet).
            await self._refuse(scope, send, 404, NOT_THERE_PAGE)
            return
        upstream = await self.locator.upstream(job, rank, kind)
        if upstream is None:
            await self._refuse(scope, send, 502, b"<p>The job's server is not listening yet.</p>")
        elif scope["type"] == "http":
            await self.proxy.http(scope, receive, send, upstream, prefix)
        else:
            await self.proxy.websocket(scope, receive, send, upstream, prefix)

    async def _check(
        self, capability: str | None, job_id: str, rank: int, kind: SessionType, *, first_use: bool
    ) -> Job | None:
        """The session's running job, if `capability` is a stored session of exactly this
        address (and, on its first use, in time); None otherwise."""
        parts = None if capability is None else split(capability)
        if capability is None or parts is None:
            return None
        session_id, secret = parts
        # Keyed by all that was proved: the whole capability and the address it was used at.
        key = (capability, job_id, rank, kind)
        checked = self._checked.get(key)
        if checked is not None and checked[1] > time.monotonic() and not first_use:
            return checked[0]
        record = await self.store.session(session_id)
        if record is None or not proves(record, secret) or not _for(record, job_id, rank, kind):
            return None
        if first_use and self.clock() > record.open_by:
            return None
        jobs = await self.store.get_jobs([job_id])
        if not jobs or jobs[0].status.state is not JobState.RUNNING:
            self._checked.pop(key, None)
            return None
        self._checked[key] = (jobs[0], time.monotonic() + RECHECK_SECONDS)
        if len(self._checked) > 10_000:  # bounded: the oldest checks go first
            del self._checked[next(iter(self._checked))]
        return jobs[0]

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, page: bytes) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send_page(send, status, page)


def _for(record: SessionRecord, job_id: str, rank: int, kind: SessionType) -> bool:
    return record.job_id == job_id and record.rank == rank and record.type is kind


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
