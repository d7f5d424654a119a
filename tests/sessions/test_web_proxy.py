"""`WebProxy` between real servers on loopback: a browser's requests reach a job's web server as
they came, minus the gateway's credentials; bodies stream; WebSockets carry both ways."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jobgate.sessions.address import Upstream
from jobgate.sessions.proxy import PathMap, WebProxy
from tests.gateway import serving as serving_config
from tests.servers import free_port

PREFIX = "/app/"
CHUNK = b"x" * 65_536
BIG_CHUNKS = 320  # 20 MiB


async def page(_request: Request) -> Response:
    return HTMLResponse("<h1>hello from the job</h1>")


async def headers(request: Request) -> Response:
    return JSONResponse(dict(request.headers.items()))


async def big(_request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(BIG_CHUNKS):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def upload(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


async def cookies(_request: Request) -> Response:
    response = Response("cookies")
    response.set_cookie("jobgate_session", "planted")
    response.set_cookie("theme", "dark")
    return response


async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="echo.v1" if "echo.v1" in offered else None)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await websocket.close(4001)
            return
        if message.get("bytes") is not None:
            await websocket.send_bytes(message["bytes"])
        else:
            await websocket.send_text(message["text"])


JOB_APP = Starlette(
    routes=[
        Route("/app/", page),
        Route("/app/headers", headers, methods=["GET", "POST"]),
        Route("/app/big", big),
        Route("/app/upload", upload, methods=["POST"]),
        Route("/app/cookies", cookies),
        WebSocketRoute("/app/echo", echo),
    ]
)


def proxying(proxy: WebProxy, upstream: Upstream) -> ASGIApp:
    """The gateway's side, reduced to the proxy: everything goes to `upstream`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await proxy.http(scope, receive, send, upstream, PathMap(PREFIX, PREFIX))
        elif scope["type"] == "websocket":
            await proxy.websocket(scope, receive, send, upstream, PathMap(PREFIX, PREFIX))

    return app


def serving(
    app: ASGIApp, *, port: int | None = None, uds: Path | None = None
) -> contextlib.AbstractAsyncContextManager[None]:
    """`app` on a loopback port or a Unix socket, for the length of an `async with`."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port or 0,
        uds=None if uds is None else str(uds),
        log_level="warning",
        lifespan="off",
        # The client address as the socket has it (uvicorn would trust loopback's headers).
        proxy_headers=False,
    )
    return serving_config(config)


@pytest.fixture(params=["tcp", "unix"])
async def gateway_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A proxy in front of the job's server, reached over TCP or a Unix socket."""
    if request.param == "tcp":
        job_port = free_port()
        upstream = Upstream(port=job_port)
        job = serving(JOB_APP, port=job_port)
    else:
        socket = tmp_path / "web.sock"
        upstream = Upstream(unix_socket=socket)
        job = serving(JOB_APP, uds=socket)
    proxy = WebProxy()
    gateway_port = free_port()
    async with job, serving(proxying(proxy, upstream), port=gateway_port):
        yield f"127.0.0.1:{gateway_port}"
    await proxy.close()


async def test_a_page_comes_through_and_the_gateways_credentials_do_not(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as browser:
        assert (await browser.get("/app/")).text == "<h1>hello from the job</h1>"
        seen = (
            await browser.get(
                "/app/headers?x=1",
                headers={
                    "Authorization": "Bearer gateway-secret",
                    "Cookie": "jobgate_session=s3cret; theme=dark; JobGate_other=z",
                    "X-Forwarded-For": "6.6.6.6",
                    "Accept-Language": "da",
                },
            )
        ).json()
    assert "authorization" not in seen
    assert seen["cookie"] == "theme=dark"
    assert seen["accept-language"] == "da"
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the browser's, not what it claimed
    assert seen["x-forwarded-prefix"] == PREFIX
    assert seen["x-forwarded-host"] == gateway_url


async def test_a_request_without_a_body_reaches_the_app_without_one(gateway_url: str) -> None:
    """Found by the sessions benchmark: a GET went on as `Transfer-Encoding: chunked` with an
    empty chunk, which a server that reads no body of a GET (Python's http.server) took for
    the next request line ("0"): 400, and its connection closed under the next request."""
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as browser:
        seen = (await browser.get("/app/headers")).json()
        posted = (await browser.post("/app/headers", content=b"abc")).json()
    assert "transfer-encoding" not in seen
    assert "content-length" not in seen
    assert posted["content-length"] == "3"  # a body goes on as it came


async def test_a_job_cannot_set_the_gateways_cookies(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as browser:
        response = await browser.get("/app/cookies")
    assert [c.split("=")[0] for c in response.headers.get_list("set-cookie")] == ["theme"]


async def test_large_bodies_stream_both_ways(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}", timeout=60) as browser:
        size = 0
        async with browser.stream("GET", "/app/big") as response:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
        assert size == len(CHUNK) * BIG_CHUNKS

        async def body() -> AsyncIterator[bytes]:
            for _ in range(BIG_CHUNKS):
                yield CHUNK

        uploaded = (await browser.post("/app/upload", content=body())).json()
    expected = hashlib.sha256(CHUNK * BIG_CHUNKS).hexdigest()
    assert uploaded == {"size": len(CHUNK) * BIG_CHUNKS, "sha256": expected}


async def test_a_websocket_carries_text_and_bytes_and_its_close_code(gateway_url: str) -> None:
    async with connect(f"ws://{gateway_url}/app/echo", subprotocols=["echo.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "echo.v1"
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01" * 100_000)
        assert await ws.recv() == b"\x00\x01" * 100_000
        await ws.send("bye")
        with contextlib.suppress(Exception):
            await ws.recv()
        assert ws.close_code == 4001


async def test_a_server_that_does_not_answer_gets_a_clear_page(tmp_path: Path) -> None:
    proxy = WebProxy()
    gateway_port = free_port()
    async with serving(proxying(proxy, Upstream(port=free_port())), port=gateway_port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}") as browser:
            response = await browser.get("/app/")
        assert response.status_code == 502
        assert "does not answer" in response.text
        with pytest.raises(InvalidStatus):
            async with connect(f"ws://127.0.0.1:{gateway_port}/app/echo"):
                pass
    await proxy.close()


APP = "/interactive/5/0/web/"


@pytest.mark.parametrize(
    ("mount", "app", "browser", "to_app"),
    [
        # At its folder on the gateway, an app served from its root: the folder comes off.
        (APP, "/", APP + "lab?x=1", "/lab?x=1"),
        # ...one that knows its prefix: as it is.
        (APP, APP, APP + "lab", APP + "lab"),
        # On a host of its own, an app served from its root: as it is.
        ("/", "/", "/lab", "/lab"),
        # ...one that knows its prefix: the prefix goes on, unless the path has it (the app
        # wrote its own absolute paths into its pages).
        ("/", APP, "/lab", APP + "lab"),
        ("/", APP, APP + "static/app.js", APP + "static/app.js"),
    ],
)
def test_a_path_reaches_the_app_as_it_serves_it_and_its_redirects_come_back(
    mount: str, app: str, browser: str, to_app: str
) -> None:
    paths = PathMap(mount, app)
    assert paths.to_app(browser.encode()) == to_app.encode()
    redirect = app.encode() + b"next"
    assert paths.to_browser(redirect) == mount.encode() + b"next"
    assert paths.to_browser(b"//elsewhere.example/x") == b"//elsewhere.example/x"
