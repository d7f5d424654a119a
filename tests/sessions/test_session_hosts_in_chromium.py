"""Sessions on hosts of their own (`[sessions] host`), in Chromium: each session is its own
origin, served from `/`, and no session's page can use another session, even in the same
browser. The wildcard name resolves to loopback through Chromium's own host rules, as a
wildcard DNS record would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser

from tests.api.documents import CANCEL, job_spec, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS
from tests.gateway import ALICE
from tests.processes import ServeProcess, write_config
from tests.sessions.test_web_sessions_in_chromium import (
    ECHO,
    SESSIONS,
    chromium,
    end_jobs_left_in,
    open_session,
    until_served,
)

DOMAIN = "sessions.test"

# What a job's page (under whoever's control) tries against another session of the same user:
# a WebSocket to that session's terminal, with the cookie the browser holds for it.
HIJACK = """
async (url) => await new Promise((resolve) => {
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => { socket.close(); resolve("opened"); });
  socket.addEventListener("close", () => resolve("refused"));
})
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("session-hosts")
    extra = SESSIONS.replace("enabled = true", f'enabled = true\nhost = "{DOMAIN}"', 1)
    config = write_config(
        folder / "jobgate.toml", data_dir=folder / "data", storage="", extra=extra
    )
    process = ServeProcess(config)
    process.start()
    yield process
    process.stop()
    end_jobs_left_in(folder / "data")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium(f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1") as launched:
        yield launched


async def test_each_session_is_an_origin_of_its_own_that_no_other_page_can_use(
    gateway: ServeProcess, browser: Browser
) -> None:
    alice = gateway.client(ALICE)
    web_spec = {
        "application": {"name": "web-echo", "version": "1"},
        "product": {"id": "web-sandboxed", "category": "cpu", "provider": "local"},
        "parameters": [],
    }
    (web_job,) = await submit(alice, web_spec)
    (shell_job,) = await submit(alice, job_spec("sleep", product="shell", seconds=600))
    await wait_for_state(alice, web_job, "RUNNING")
    await wait_for_state(alice, shell_job, "RUNNING")
    (web,) = (await open_session(alice, web_job))["sessions"]
    (shell,) = (await open_session(alice, shell_job, "TERMINAL"))["sessions"]
    address = re.compile(rf"^http://([0-9a-f]{{16}})\.{re.escape(DOMAIN)}:{gateway.port}/\?")
    web_host, shell_host = (address.match(s["url"]) for s in (web, shell))
    assert web_host is not None, web["url"]
    assert shell_host is not None, shell["url"]

    context = await browser.new_context(viewport={"width": 900, "height": 500})
    # The terminal first: the browser now holds that session's cookie.
    terminal = await context.new_page()
    await terminal.goto(shell["url"])
    await terminal.wait_for_function("window.jobgateTerminalOpen === true")
    # The web app, served from / on its own host.
    page = await context.new_page()
    await until_served(page, web["url"])
    assert page.url == f"http://{web_host[1]}.{DOMAIN}:{gateway.port}/"
    assert await page.text_content("#served") == f"Served by job {web_job}, replica 0"
    assert await page.text_content("#path") == "/"
    assert await page.evaluate(ECHO) == "echo: hello from the browser"
    await page.screenshot(path=str(ARTIFACTS / "web-session-own-host.png"))

    # The job's page cannot reach the terminal of the other session, cookie or not.
    other = f"ws://{shell_host[1]}.{DOMAIN}:{gateway.port}/socket"
    assert await page.evaluate(HIJACK, other) == "refused"
    # ...which its own page can (the same check, passing).
    assert await terminal.evaluate(HIJACK, other) == "opened"

    # Nothing of a job is served under the gateway's own origin.
    async with httpx.AsyncClient() as client:
        path = f"http://127.0.0.1:{gateway.port}/interactive/{web_job}/0/web/"
        assert (await client.get(path)).status_code == 404
    await alice.execute(CANCEL, {"ids": [web_job, shell_job]})
    await context.close()
