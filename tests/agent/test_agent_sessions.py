"""Sessions of a remote provider's jobs, relayed through its agent, in Chromium: the agent's
local job serves a page, a WebSocket echo and a terminal, which the browser reaches through the
gateway although the gateway never connects to the agent's side: the agent dials back. Behind
two replicas, the browser uses one and the agent is connected to the other."""

from __future__ import annotations

import asyncio
import getpass
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.agent.setup import AgentProcess, write_agent_config, write_gateway_config
from tests.agent.test_agent import wait_online
from tests.api.documents import CANCEL, job_spec, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS
from tests.gateway import GraphQLClient
from tests.processes import ServeProcess
from tests.servers import RedisServer, SlurmCluster, fresh_database
from tests.sessions.test_web_sessions_in_chromium import (
    DESKTOP,
    ECHO,
    JOB_SERVER,
    chromium,
    open_session,
    screen_shows,
    shows_a_desktop,
    until_served,
)

# The interactive product and application, after the gateway's config.
SESSIONS = f"""
[[providers.products]]
name = "edge-web"
category = "cpu"
support = {{ logs = true, web = true, terminal = true }}

[[providers.products]]
name = "edge-desktop"
category = "cpu"
support = {{ vnc = true }}

[[applications]]
name = "web-echo"
version = "1"
command = ["python3", "-c", {json.dumps(JOB_SERVER)}, "{{port}}"]
interactive = {{ web = true }}

[[applications]]
name = "desktop"
version = "1"
command = ["sh", "-c", {json.dumps(DESKTOP)}]
interactive = {{ vnc = true }}
"""


def with_sessions(config: Path, extra: str = "") -> Path:
    """The gateway's config with sessions enabled (`extra`: more keys of `[sessions]`) and the
    interactive product and application."""
    config.write_text(f"[sessions]\nenabled = true\n{extra}\n" + config.read_text() + SESSIONS)
    return config


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(with_sessions(write_gateway_config(tmp_path)))
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
    (job_id,) = await submit(alice, SPEC)
    await wait_for_state(alice, job_id, "RUNNING")
    await use_web_and_terminal(browser, alice, job_id, "remote")
    assert "cannot relay" not in agent.output()


SPEC = {
    "application": {"name": "web-echo", "version": "1"},
    "product": {"id": "edge-web", "category": "cpu", "provider": "edge"},
    "parameters": [],
}


async def test_a_remote_jobs_desktop_is_relayed_by_its_agent(
    serve: ServeProcess, agent: AgentProcess, browser: Browser
) -> None:
    alice = serve.start()
    agent.start()
    await wait_online(alice, True)
    spec = {
        "application": {"name": "desktop", "version": "1"},
        "product": {"id": "edge-desktop", "category": "cpu", "provider": "edge"},
        "parameters": [],
    }
    (job_id,) = await submit(alice, spec)
    await wait_for_state(alice, job_id, "RUNNING")
    (session,) = (await open_session(alice, job_id, "VNC"))["sessions"]
    page = await browser.new_page(viewport={"width": 1000, "height": 700})
    await shows_a_desktop(page, session["url"], "vnc-session-remote.png")
    await alice.execute(CANCEL, {"ids": [job_id]})
    await wait_for_state(alice, job_id, "SUCCESS")
    await page.wait_for_function("window.jobgateDesktopDisconnected === true", timeout=10_000)
    assert "cannot relay" not in agent.output()


@pytest.mark.timeout(180)
async def test_a_terminal_of_a_slurm_agents_job_is_a_shell_in_its_allocation(
    serve: ServeProcess, tmp_path: Path, clean_queue: SlurmCluster, browser: Browser
) -> None:
    alice = serve.start()
    agent = AgentProcess(write_agent_config(tmp_path, "slurm"), serve.url).start()
    try:
        await wait_online(alice, True)
        # A Slurm job of its own first, so that the two ids differ even on a fresh cluster.
        clean_queue.run(
            "sbatch", "--parsable", "--partition=debug", "--output=/dev/null", "--wrap=true"
        )
        spec = job_spec("sleep", provider="edge", product="edge-web", seconds=600)
        (job_id,) = await submit(alice, spec)
        job = await wait_for_state(alice, job_id, "RUNNING", timeout=30)
        slurm_id = job["providerGeneratedId"]
        assert slurm_id != job_id
        (session,) = (await open_session(alice, job_id, "TERMINAL"))["sessions"]
        page = await browser.new_page(viewport={"width": 1000, "height": 600})
        await page.goto(session["url"])
        await page.wait_for_function("window.jobgateTerminalOpen === true")
        await page.keyboard.type("echo $JOBGATE_JOB_ID $SLURM_JOB_ID; id -un\n")
        # The agent's Slurm jobs run as the agent's own account here, as the test cluster's.
        await screen_shows(page, f"\n{job_id} {slurm_id}\n{getpass.getuser()}\n", timeout=20)
        await page.screenshot(path=str(ARTIFACTS / "terminal-session-slurm-agent.png"))
        await alice.execute(CANCEL, {"ids": [job_id]})
        await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
        await page.wait_for_function("window.jobgateTerminalClosed !== undefined", timeout=15_000)
    finally:
        agent.stop(signal.SIGKILL)
    assert "cannot relay" not in agent.output()


async def use_web_and_terminal(
    browser: Browser, alice: GraphQLClient, job_id: str, name: str, *, ended_within: float = 0
) -> None:
    """Alice opens the job's web app and a terminal through her gateway (`alice`), uses both,
    cancels the job, and finds both dead (the web app at once, or within `ended_within`
    seconds of the job's end being readable: a replica that did not store it learns it from
    its feed)."""
    (web,) = (await open_session(alice, job_id))["sessions"]
    (shell,) = (await open_session(alice, job_id, "TERMINAL"))["sessions"]
    assert web["url"].startswith(alice.url.removesuffix("graphql"))

    page = await browser.new_page(viewport={"width": 900, "height": 500})
    await until_served(page, web["url"])
    assert await page.text_content("#served") == f"Served by job {job_id}, replica 0"
    assert await page.text_content("#path") == "/"
    assert await page.evaluate(ECHO) == "echo: hello from the browser"
    await page.screenshot(path=str(ARTIFACTS / f"web-session-{name}.png"))

    terminal = await browser.new_page(viewport={"width": 900, "height": 500})
    await terminal.goto(shell["url"])
    await terminal.wait_for_function("window.jobgateTerminalOpen === true")
    await terminal.keyboard.type("echo $JOBGATE_JOB_ID; echo relayed\n")
    await screen_shows(terminal, f"\n{job_id}\nrelayed\n")
    await terminal.screenshot(path=str(ARTIFACTS / f"terminal-session-{name}.png"))

    await alice.execute(CANCEL, {"ids": [job_id]})
    await wait_for_state(alice, job_id, "SUCCESS")
    await terminal.wait_for_function("window.jobgateTerminalClosed !== undefined")
    deadline = time.monotonic() + ended_within
    response = await page.reload()
    while response is not None and response.status != 403 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        response = await page.reload()
    assert response is not None
    assert response.status == 403


@pytest.fixture
def replicas(
    tmp_path: Path, mongo_server: str, redis_server: RedisServer
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    """Two gateway replicas on one MongoDB, Redis their bus, each telling where it is reached."""
    storage = fresh_database(mongo_server)
    started = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            config = write_gateway_config(folder, storage=storage)
            replica = ServeProcess(config)
            with_sessions(config, f'replica_url = "http://127.0.0.1:{replica.port}"')
            config.write_text(config.read_text() + f'\n[bus]\nurl = "{redis_server.url}"\n')
            replica.start()
            started.append(replica)
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop(signal.SIGKILL)


async def test_a_session_used_through_another_replica_is_relayed_by_the_agent_wherever_it_is(
    tmp_path: Path, replicas: tuple[ServeProcess, ServeProcess], browser: Browser
) -> None:
    a, b = replicas
    agent = AgentProcess(write_agent_config(tmp_path, "local"), a.url).start()
    try:
        await wait_online(a.client(), True)
        alice_b = b.client()
        (job_id,) = await submit(alice_b, SPEC)
        await wait_for_state(alice_b, job_id, "RUNNING")
        # Less than the gate's sweep (RECHECK_SECONDS): the feed tells replica b at once.
        await use_web_and_terminal(
            browser, alice_b, job_id, "remote-other-replica", ended_within=1.0
        )
    finally:
        agent.stop(signal.SIGKILL)
    assert "cannot relay" not in agent.output()
    assert "cannot hand a relay" not in a.output()
