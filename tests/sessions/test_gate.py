"""`SessionGate` on each store, with a job's web server and a browser-like client on loopback:
the capability URL becomes a cookie for its own session's folder; nothing else gets in."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.events.bus import JobEventBus
from jobgate.events.feed import UpdateFeed
from jobgate.services.jobs import now_ms
from jobgate.sessions import gate as gate_module
from jobgate.sessions.address import AddressFiles
from jobgate.sessions.capability import new_session
from jobgate.sessions.gate import MAX_CONNECTIONS, RECHECK_SECONDS, SessionGate
from jobgate.sessions.proxy import WebProxy
from jobgate.storage.base import JobStore
from tests.factories import submission
from tests.servers import free_port
from tests.sessions.test_web_proxy import serving


async def where(request: Request) -> Response:
    return JSONResponse({"path": request.url.path, "cookie": request.headers.get("cookie")})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


async def elsewhere(_request: Request) -> Response:
    return RedirectResponse("/lab?from=go", status_code=302)


JOB_SERVER = Starlette(
    routes=[
        Route("/go", elsewhere),
        Route("/{path:path}", where),
        WebSocketRoute("/{path:path}", echo),
    ]
)


@dataclasses.dataclass
class Setup:
    store: JobStore
    job: Job
    gateway: str  # host:port
    gate: SessionGate

    async def open(self, rank: int = 0, *, at: int | None = None) -> str:
        """A stored WEB session of replica `rank` opened at `at`: its URL (a path)."""
        record, capability = new_session(
            self.job.id, rank, SessionType.WEB, "alice", now_ms() if at is None else at
        )
        await self.store.add_sessions([record])
        return f"/interactive/{self.job.id}/{rank}/web/lab?x=1&jobgate-session={capability}"


@pytest.fixture
def max_connections() -> dict[SessionType, int]:
    return dict(MAX_CONNECTIONS)


@pytest.fixture
async def setup(
    store: JobStore, tmp_path: Path, max_connections: dict[SessionType, int]
) -> AsyncIterator[Setup]:
    (job,) = (await store.create_jobs(submission(at=now_ms()))).jobs
    request = UpdateRequest(job.id, state=JobState.RUNNING)
    running = dataclasses.replace(job.status, state=JobState.RUNNING)
    assert await store.commit_update(job, request, running, now_ms()) is not None
    (job,) = await store.get_jobs([job.id])
    # The job says where it listens, as an interactive app does once it is up.
    job_port = free_port()
    folder = tmp_path / "jobs" / job.id / "interactive"
    folder.mkdir(parents=True)
    # Replica 0 is an app told its prefix (served whole paths), replica 1 one served from its
    # root (the default).
    (folder / "web-0.json").write_text(json.dumps({"port": job_port, "keep_prefix": True}))
    (folder / "web-1.json").write_text(json.dumps({"port": job_port}))
    proxy = WebProxy()
    locator = AddressFiles(lambda j: tmp_path / "jobs" / j.id)
    gate = SessionGate(store, locator, proxy, now_ms, max_connections)
    gateway_port = free_port()
    async with serving(JOB_SERVER, port=job_port), serving(gate, port=gateway_port):
        yield Setup(store, job, f"127.0.0.1:{gateway_port}", gate)
    await proxy.close()


def browser(setup: Setup) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{setup.gateway}", follow_redirects=True)


async def test_the_url_becomes_a_cookie_and_the_app_is_served(setup: Setup) -> None:
    async with browser(setup) as client:
        first = await client.get(await setup.open())
        # Sent on without the capability in its address; the app never sees the cookie.
        assert first.status_code == 200
        assert str(first.url).endswith(f"/interactive/{setup.job.id}/0/web/lab?x=1")
        assert first.json() == {"path": f"/interactive/{setup.job.id}/0/web/lab", "cookie": None}
        (redirect,) = first.history
        assert redirect.status_code == 303
        cookie = redirect.headers["set-cookie"]
        assert f"Path=/interactive/{setup.job.id}/0/web/" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        again = await client.get(f"/interactive/{setup.job.id}/0/web/other")
        assert again.json()["path"].endswith("/web/other")
        capability = client.cookies["jobgate_session"]

    # Its WebSocket, with the cookie as a browser sends it.
    url = f"ws://{setup.gateway}/interactive/{setup.job.id}/0/web/socket"
    headers = {"Cookie": f"jobgate_session={capability}"}
    async with connect(url, additional_headers=headers) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
    with pytest.raises(InvalidStatus):
        async with connect(url):
            pass


async def test_an_app_served_from_its_root_is_sent_paths_without_the_prefix(
    setup: Setup,
) -> None:
    folder = f"/interactive/{setup.job.id}/1/web/"
    async with browser(setup) as client:
        first = await client.get(await setup.open(rank=1))
        assert first.json() == {"path": "/lab", "cookie": None}
        # Its redirect to its own path is one under the session's folder.
        moved = await client.get(folder + "go", follow_redirects=False)
        assert moved.headers["location"] == folder + "lab?from=go"
        capability = client.cookies["jobgate_session"]
    headers = {"Cookie": f"jobgate_session={capability}"}
    async with connect(f"ws://{setup.gateway}{folder}socket", additional_headers=headers) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"


async def test_nothing_else_gets_in(setup: Setup) -> None:
    url = await setup.open()
    capability = url.split("jobgate-session=")[1]
    session_id, secret = capability.split(".")
    forged = f"{session_id}.{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
    async with browser(setup) as client:
        assert (await client.get(f"/interactive/{setup.job.id}/0/web/")).status_code == 403
        assert (await client.get(url.replace(capability, forged))).status_code == 403
        # A session of replica 0 is not one of replica 1, nor a terminal.
        assert (await client.get(url.replace("/0/web/", "/1/web/"))).status_code == 403
        assert (await client.get(url.replace("/web/", "/terminal/"))).status_code == 403
        assert (await client.get("/interactive/x/0/web/")).status_code == 404
    # A URL not used in time is dead.
    late = await setup.open(at=now_ms() - 10 * 60 * 1000)
    async with browser(setup) as client:
        assert (await client.get(late)).status_code == 403


async def ends_when_the_job_ends_elsewhere(setup: Setup, store: JobStore, within: float) -> None:
    """A session's WebSocket is open when another replica stores the job's end (straight
    into the store, nothing told here): it is closed with 1001 within `within` seconds, and
    the session's URL then answers 403."""
    async with browser(setup) as client:
        assert (await client.get(await setup.open())).status_code == 200
        capability = client.cookies["jobgate_session"]
        url = f"ws://{setup.gateway}/interactive/{setup.job.id}/0/web/socket"
        headers = {"Cookie": f"jobgate_session={capability}"}
        async with connect(url, additional_headers=headers) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            request = UpdateRequest(setup.job.id, state=JobState.SUCCESS)
            ended = dataclasses.replace(setup.job.status, state=JobState.SUCCESS)
            assert await store.commit_update(setup.job, request, ended, now_ms()) is not None
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(within):
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        assert (await client.get(f"/interactive/{setup.job.id}/0/web/")).status_code == 403


async def test_the_session_dies_with_its_job(setup: Setup, store: JobStore) -> None:
    """Even where the job's server outlives the job (here it runs on): the job's end, stored
    by whichever replica, ends its sessions' connections at the gate's next look."""
    await ends_when_the_job_ends_elsewhere(setup, store, within=2 * RECHECK_SECONDS + 1)


@pytest.fixture
def sweep_seconds(monkeypatch: pytest.MonkeyPatch) -> float:
    """The gate's sweep made too slow to matter in a test (asked before `setup` starts it)."""
    monkeypatch.setattr(gate_module, "RECHECK_SECONDS", 600.0)
    return 600.0


async def test_a_job_ended_on_another_replica_ends_its_sessions_as_the_feed_reads_it(
    sweep_seconds: float, setup: Setup, store: JobStore
) -> None:
    """Another replica stores the job's end and rings nothing here: this replica's feed reads
    it at its next poll and the gate ends the job's connections then, not at its sweep."""
    bus = JobEventBus("memory://")  # this replica's own: nothing rings it
    await bus.connect()
    feed = UpdateFeed(store, bus, poll_interval=0.2)
    feed.final_listeners.append(setup.gate.job_ended)
    await feed.start()
    try:
        await ends_when_the_job_ends_elsewhere(setup, store, within=2.0)
    finally:
        await feed.stop()
        await bus.disconnect()


@pytest.mark.parametrize("max_connections", [{**MAX_CONNECTIONS, SessionType.WEB: 2}])
async def test_a_session_holds_a_bounded_number_of_connections(setup: Setup) -> None:
    async with browser(setup) as client:
        assert (await client.get(await setup.open())).status_code == 200
        capability = client.cookies["jobgate_session"]
    url = f"ws://{setup.gateway}/interactive/{setup.job.id}/0/web/socket"
    headers = {"Cookie": f"jobgate_session={capability}"}
    async with connect(url, additional_headers=headers), connect(url, additional_headers=headers):
        # A third at once is refused ("try again later"), and nothing of it reaches the job.
        with pytest.raises(ConnectionClosed) as refused:
            async with connect(url, additional_headers=headers) as third:
                await third.recv()
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 1013
    # Once the others are closed, there is room again.
    async with connect(url, additional_headers=headers) as again:
        await again.send("ping")
        assert await again.recv() == "ping"


async def test_only_the_sessions_own_pages_and_visits_use_its_cookie(setup: Setup) -> None:
    folder = f"/interactive/{setup.job.id}/0/web/"
    async with browser(setup) as client:
        assert (await client.get(await setup.open())).status_code == 200
        capability = client.cookies["jobgate_session"]

        async def status(method: str, site: str | None, mode: str = "cors") -> int:
            headers = {"Sec-Fetch-Mode": mode}
            if site is not None:
                headers["Sec-Fetch-Site"] = site
            return (await client.request(method, folder + "x", headers=headers)).status_code

        assert await status("GET", "same-origin") == 200  # the app's own requests
        assert await status("GET", "none") == 200  # typed into the address bar
        assert await status("GET", None) == 200  # no browser: nothing drives it
        assert await status("GET", "cross-site", "navigate") == 200  # a link followed
        assert await status("GET", "same-site") == 403  # another session's page's fetch
        assert await status("GET", "cross-site") == 403
        assert await status("POST", "cross-site", "navigate") == 403  # a form posted from afar
    url = f"ws://{setup.gateway}{folder}socket"
    cookie = {"Cookie": f"jobgate_session={capability}"}
    own = {**cookie, "Origin": f"http://{setup.gateway}"}
    async with connect(url, additional_headers=own) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers={**cookie, "Origin": "http://evil.example"}):
            pass
