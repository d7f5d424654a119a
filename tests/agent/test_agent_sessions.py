"""Sessions of a remote provider's jobs, relayed through its agent, in Chromium: the agent's
local job serves a page, a WebSocket echo and a terminal, which the browser reaches through the
gateway although the gateway never connects to the agent's side: the agent dials back."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.agent.setup import AgentProcess, write_agent_config, write_gateway_config
from tests.agent.test_agent import wait_online
from tests.api.documents import CANCEL, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS
from tests.processes import ServeProcess
from tests.sessions.test_web_sessions_in_chromium import (
    ECHO,
    JOB_SERVER,
    chromium,
    open_session,
    screen_shows,
    until_served,
)

SESSIONS = f"""
[sessions]
enabled = true

[[providers.products]]
name = "edge-web"
category = "cpu"
support = {{ logs = true, web = true, terminal = true }}

[[applications]]
name = "web-echo"
version = "1"
command = ["python3", "-c", {json.dumps(JOB_SERVER)}, "{{port}}"]
interactive = {{ web = true }}
"""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    config = write_gateway_config(tmp_path)
    config.write_text(config.read_text() + SESSIONS)
    process = ServeProcess(config)
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)


@pytest.fixture
def agent(tmp_path: Path, serve: ServeProcess) -> Iterator[AgentProcess]:
    process = AgentProcess(write_agent_config(tmp_path, "local"), serve.url)
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_a_remote_jobs_web_app_and_terminal_are_relayed_by_its_agent(
    serve: ServeProcess, agent: AgentProcess, browser: Browser
) -> None:
    alice = serve.start()
    agent.start()
    await wait_online(alice, True)
    spec = {
        "application": {"name": "web-echo", "version": "1"},
        "product": {"id": "edge-web", "category": "cpu", "provider": "edge"},
        "parameters": [],
    }
    (job_id,) = await submit(alice, spec)
    await wait_for_state(alice, job_id, "RUNNING")
    (web,) = (await open_session(alice, job_id))["sessions"]
    (shell,) = (await open_session(alice, job_id, "TERMINAL"))["sessions"]

    page = await browser.new_page(viewport={"width": 900, "height": 500})
    await until_served(page, web["url"])
    assert await page.text_content("#served") == f"Served by job {job_id}, replica 0"
    assert await page.text_content("#path") == "/"
    assert await page.evaluate(ECHO) == "echo: hello from the browser"
    await page.screenshot(path=str(ARTIFACTS / "web-session-remote.png"))

    terminal = await browser.new_page(viewport={"width": 900, "height": 500})
    await terminal.goto(shell["url"])
    await terminal.wait_for_function("window.jobgateTerminalOpen === true")
    await terminal.keyboard.type("echo $JOBGATE_JOB_ID; echo relayed\n")
    await screen_shows(terminal, f"\n{job_id}\nrelayed\n")
    await terminal.screenshot(path=str(ARTIFACTS / "terminal-session-remote.png"))

    await alice.execute(CANCEL, {"ids": [job_id]})
    await wait_for_state(alice, job_id, "SUCCESS")
    await terminal.wait_for_function("window.jobgateTerminalClosed !== undefined")
    response = await page.reload()
    assert response is not None
    assert response.status == 403
    assert "cannot relay" not in agent.output()
