"""WEB, TERMINAL and VNC sessions of local jobs, end to end: `jobgate serve` with sessions
enabled, jobs serving a page and a WebSocket echo, a desktop, or just running, and Chromium
opening the sessions' URLs as a user would.

Both ways a local job's web app is reached: in the sandbox without network (through the bridge
on a Unix socket in its folder) and on the host's network (its port on the host's loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Request, Route, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.api.documents import CANCEL, job_spec, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.gateway import ALICE, BOB, GraphQLClient
from tests.processes import ServeProcess, write_config

JOB_SERVER = (Path(__file__).with_name("job_server.py")).read_text(encoding="utf-8")

DESKTOP = (
    "Xvnc :1 -rfbport $JOBGATE_PORT -localhost -nolisten tcp -SecurityTypes None "
    "-geometry 800x600 & until [ -e /tmp/.X11-unix/X1 ]; do sleep 0.1; done; "
    'DISPLAY=:1 exec xmessage -center -geometry 400x200 "Hello from job $JOBGATE_JOB_ID"'
)

SESSIONS = f"""
[sessions]
enabled = true

[[providers.products]]
name = "web-sandboxed"
category = "cpu"
support = {{ logs = true, web = true }}

[[providers.products]]
name = "web-host-network"
category = "cpu"
network = true
support = {{ logs = true, web = true }}

[[providers.products]]
name = "shell"
category = "cpu"
support = {{ logs = true, terminal = true }}

[[providers.products]]
name = "desktop"
category = "cpu"
support = {{ vnc = true }}

# A real desktop: TigerVNC's X server (with its VNC server on the job's port, for loopback
# only, no password: only the bridge reaches it) and a window saying whose it is.
[[applications]]
name = "desktop"
version = "1"
command = ["sh", "-c", {json.dumps(DESKTOP)}]
interactive = {{ vnc = true }}

[[applications]]
name = "web-echo"
version = "1"
command = ["python3", "-c", {json.dumps(JOB_SERVER)}, "{{port}}"]
interactive = {{ web = true }}
"""

OPEN = """
mutation($input: OpenInteractiveSessionsInput!) {
  openInteractiveSessions(input: $input) {
    sessions { jobId rank type url expiresAt }
    userErrors { code field message }
  }
}
"""
STATUS = "query($id: ID!) { job(id: $id) { updates { status } } }"

# The page's WebSocket to the job's echo, through the session: its first answer, and a
# promise of how it closes (kept on `window` for the test to await later).
ECHO = """
async () => {
  const socket = new WebSocket(location.href.replace(/^http/, "ws") + "ws");
  window.echoClosed = new Promise((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve);
    socket.addEventListener("error", reject);
  });
  const answer = new Promise((resolve) => socket.addEventListener("message", (e) => resolve(e.data)));
  socket.send("hello from the browser");
  return await answer;
}
"""


def end_jobs_left_in(data: Path) -> None:
    """Jobs outlive their gateway (by design); those a failed test left running end here, so
    that no job server of a test serves on after it."""
    marker = str(data).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("web-sessions")
    # The first product of the shared test config is local's; the sessions' ones are added.
    config = write_config(
        folder / "jobgate.toml", data_dir=folder / "data", storage="", extra=SESSIONS
    )
    process = ServeProcess(config)
    process.start()
    yield process
    process.stop()
    end_jobs_left_in(folder / "data")


@contextlib.asynccontextmanager
async def chromium(*args: str) -> AsyncIterator[Browser]:
    """Debian's Chromium as the session tests run it (with more `args`), screenshots kept."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def open_session(client: GraphQLClient, job_id: str, kind: str = "WEB") -> dict[str, Any]:
    data = await client.execute(
        OPEN, {"input": {"sessions": [{"jobId": job_id, "rank": 0, "type": kind}]}}
    )
    payload: dict[str, Any] = data["openInteractiveSessions"]
    return payload


async def until_served(page: Page, url: str) -> None:
    """Open the URL; reload while the job's server does not listen yet (502), as a user would."""
    response = await page.goto(url)
    for _ in range(100):
        if response is not None and response.status != 502:
            break
        await asyncio.sleep(0.1)
        response = await page.reload()
    assert response is not None
    assert response.status == 200, await page.content()


@pytest.mark.parametrize("product", ["web-sandboxed", "web-host-network"])
async def test_a_web_session_serves_the_jobs_page_and_websocket_until_the_job_ends(
    gateway: ServeProcess, browser: Browser, product: str
) -> None:
    alice, bob = gateway.client(ALICE), gateway.client(BOB)
    spec = {
        "application": {"name": "web-echo", "version": "1"},
        "product": {"id": product, "category": "cpu", "provider": "local"},
        "parameters": [],
    }
    (job_id,) = await submit(alice, spec)
    await wait_for_state(alice, job_id, "RUNNING")

    # Another user cannot open it: the job is not theirs to see.
    refused = await open_session(bob, job_id)
    assert refused["sessions"] == []
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("NOT_FOUND", ["sessions", "0", "jobId"])
    ]

    payload = await open_session(alice, job_id)
    assert payload["userErrors"] == []
    (session,) = payload["sessions"]
    assert (session["jobId"], session["rank"], session["type"]) == (job_id, 0, "WEB")
    url = session["url"]
    folder = f"http://127.0.0.1:{gateway.port}/interactive/{job_id}/0/web/"
    assert url.startswith(folder + "?jobgate-session=")
    # Opening is on the job's record.
    updates = (await alice.execute(STATUS, {"id": job_id}))["job"]["updates"]
    assert "Web session opened by alice (replica 0)" in [u["status"] for u in updates]

    context = await browser.new_context(viewport={"width": 900, "height": 500})
    page = await context.new_page()
    await until_served(page, url)
    # The capability left the address bar; the app saw its own root, and no credential.
    assert page.url == folder
    assert await page.text_content("#served") == f"Served by job {job_id}, replica 0"
    assert await page.text_content("#path") == "/"
    assert await page.text_content("#cookie") == "none"
    assert await page.text_content("#authorization") == "none"
    assert await page.evaluate(ECHO) == "echo: hello from the browser"
    await page.screenshot(path=str(ARTIFACTS / f"web-session-{product}.png"))

    # Another browser (bob's, say) without the URL gets nothing at the session's address.
    stranger = await browser.new_context()
    response = await (await stranger.new_page()).goto(folder)
    assert response is not None
    assert response.status == 403

    await alice.execute(CANCEL, {"ids": [job_id]})
    await wait_for_state(alice, job_id, "SUCCESS")
    # The open WebSocket is closed (here the job's server went first, so the close is its
    # own; the gate's, for a server that outlives its job, is tested in test_gate), and the
    # page is no longer served.
    closed = await asyncio.wait_for(page.evaluate("window.echoClosed"), timeout=10)
    assert closed in (1000, 1001)
    response = await page.reload()
    assert response is not None
    assert response.status == 403
    await context.close()
    await stranger.close()
    # The URL's secret is nowhere in the gateway's log (its access log shows the session's id).
    secret = url.rsplit(".", 1)[1]
    assert secret not in gateway.output()
    assert url.split("=", 1)[1].split(".")[0] + ".<secret>" in gateway.output()


# The terminal's whole buffer, as text (xterm.js draws on a canvas: the page holds no text).
SCREEN = """
() => {
  const buffer = window.jobgateTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}
"""


async def screen_shows(page: Page, wanted: str, timeout: float = 10) -> str:
    text = ""
    for _ in range(int(timeout * 10)):
        screen: str = await page.evaluate(SCREEN)
        text = "\n" + screen + "\n"  # every line between newlines
        if wanted in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"the terminal never showed {wanted!r}:\n{text}")


async def test_a_terminal_session_is_a_shell_inside_the_job_as_its_account(
    gateway: ServeProcess, browser: Browser
) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", product="shell", seconds=600))
    await wait_for_state(alice, job_id, "RUNNING")
    payload = await open_session(alice, job_id, "TERMINAL")
    assert payload["userErrors"] == []
    (session,) = payload["sessions"]
    # A product without terminals offers none.
    (other,) = await submit(alice, job_spec("sleep", seconds=600))
    await wait_for_state(alice, other, "RUNNING")
    refused = await open_session(alice, other, "TERMINAL")
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_SUPPORTED"]

    context = await browser.new_context(viewport={"width": 1000, "height": 600})
    page = await context.new_page()
    await page.route("**/*", only_the_gateway(gateway.port))
    await page.goto(session["url"])
    # Its WebSocket is open: keys reach the shell (the terminal holds them until it reads).
    await page.wait_for_function("window.jobgateTerminalOpen === true")
    await page.keyboard.type("echo $JOBGATE_JOB_ID; id -un\n")
    account = "nobody" if os.geteuid() == 0 else getpass.getuser()
    text = await screen_shows(page, f"\n{account}\n")
    assert f"\n{job_id}\n{account}\n" in text, text
    await page.screenshot(path=str(ARTIFACTS / "terminal-session.png"))

    # Resized with its window, the shell learns its new size.
    await page.set_viewport_size({"width": 700, "height": 400})
    await page.wait_for_timeout(300)
    columns, rows = await page.evaluate(
        "[window.jobgateTerminal.cols, window.jobgateTerminal.rows]"
    )
    assert columns < 100  # it did shrink, to what the smaller window holds
    await page.keyboard.type("clear; stty size\n")
    await screen_shows(page, f"\n{rows} {columns}\n")

    # The job's end ends the shell and the session.
    await alice.execute(CANCEL, {"ids": [job_id, other]})
    await wait_for_state(alice, job_id, "SUCCESS")
    await page.wait_for_function("window.jobgateTerminalClosed !== undefined", timeout=10_000)
    response = await page.reload()
    assert response is not None
    assert response.status == 403
    await context.close()


def only_the_gateway(port: int) -> Any:
    """A route handler refusing every host but the gateway on `port`: the terminal's assets
    are the gateway's own."""

    async def route(handled: Route, request: Request) -> None:
        if request.url.startswith((f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/")):
            await handled.continue_()
        else:
            await handled.abort()

    return route


# How much of noVNC's canvas is light, and how much dark: a desktop with a window on it has
# both; a blank canvas (nothing drawn yet, or a failed connection) is all one colour.
CANVAS = """
() => {
  const canvas = document.querySelector("#screen canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let light = 0, dark = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const level = pixels[i] + pixels[i + 1] + pixels[i + 2];
    if (level > 600) light++;
    else if (level < 150) dark++;
  }
  return [light, dark, pixels.length / 4];
}
"""


async def shows_a_desktop(page: Page, url: str, screenshot: str) -> None:
    """Open a VNC session's page at `url` and see a desktop with a window on it (saved as
    `screenshot` in the artifacts)."""
    await page.goto(url)
    # The desktop may take a moment to listen: reload as a user would until it connects.
    for _ in range(20):
        try:
            await page.wait_for_function("window.jobgateDesktopConnected === true", timeout=2000)
            break
        except PlaywrightTimeout:
            await page.reload()
    await page.wait_for_function("window.jobgateDesktopConnected === true", timeout=2000)
    for _ in range(50):  # the first frames arrive
        light, dark, total = await page.evaluate(CANVAS)
        if light > 0.05 * total and dark > 0.05 * total:
            break
        await asyncio.sleep(0.1)
    await page.screenshot(path=str(ARTIFACTS / screenshot))
    assert light > 0.05 * total, "no window on the desktop"
    assert dark > 0.05 * total, "the desktop is blank"


async def test_a_vnc_session_shows_the_jobs_desktop(
    gateway: ServeProcess, browser: Browser
) -> None:
    alice = gateway.client(ALICE)
    spec = {
        "application": {"name": "desktop", "version": "1"},
        "product": {"id": "desktop", "category": "cpu", "provider": "local"},
        "parameters": [],
    }
    (job_id,) = await submit(alice, spec)
    await wait_for_state(alice, job_id, "RUNNING")
    payload = await open_session(alice, job_id, "VNC")
    assert payload["userErrors"] == []
    (session,) = payload["sessions"]

    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    page = await context.new_page()
    await page.route("**/*", only_the_gateway(gateway.port))
    await shows_a_desktop(page, session["url"], "vnc-session.png")

    await alice.execute(CANCEL, {"ids": [job_id]})
    await wait_for_state(alice, job_id, "SUCCESS")
    await page.wait_for_function("window.jobgateDesktopDisconnected === true", timeout=10_000)
    await context.close()
