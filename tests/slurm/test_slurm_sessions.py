"""Sessions of Slurm jobs, in Chromium: a web app on a compute node (behind the bridge, which
lets in only the gateway), and a terminal that is a shell in the job's allocation."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Any

from jobgate.settings import ApplicationSettings, InteractiveSettings, Settings
from tests.api.documents import CANCEL, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS
from tests.gateway import ALICE, gateway_settings, running_gateway
from tests.servers import SlurmCluster
from tests.sessions.test_web_sessions_in_chromium import (
    ECHO,
    JOB_SERVER,
    chromium,
    only_the_gateway,
    open_session,
    screen_shows,
    shows_a_desktop,
    until_served,
)
from tests.slurm.setup import hpc_provider, hpc_spec


def sessions_settings(
    tmp_path: Path, product: dict[str, Any], app: ApplicationSettings | None = None
) -> Settings:
    """The test gateway with sessions, provider `hpc` offering `product`, and `app` besides
    the usual applications."""
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        providers=[hpc_provider(products=[product])],
        sessions={"enabled": True},
    )
    if app is None:
        return settings
    return settings.model_copy(update={"applications": [*settings.applications, app]})


SHELL_PRODUCT = {"name": "hpc-shell", "category": "cpu", "cpu": 1, "support": {"terminal": True}}


async def test_a_terminal_session_is_a_shell_in_the_jobs_allocation(
    tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    settings = sessions_settings(tmp_path, SHELL_PRODUCT)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        # A Slurm job of its own first, so that the two ids differ even on a fresh cluster.
        clean_queue.run(
            "sbatch", "--parsable", "--partition=debug", "--output=/dev/null", "--wrap=true"
        )
        (job_id,) = await submit(alice, hpc_spec("sleep", product="hpc-shell", seconds=600))
        job = await wait_for_state(alice, job_id, "RUNNING", timeout=30)
        slurm_id = job["providerGeneratedId"]
        assert slurm_id != job_id
        payload = await open_session(alice, job_id, "TERMINAL")
        assert payload["userErrors"] == []
        (session,) = payload["sessions"]

        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1000, "height": 600})
            await page.route("**/*", only_the_gateway(gateway.port))
            await page.goto(session["url"])
            # Its WebSocket is open: keys reach the shell (the terminal holds them until it reads).
            await page.wait_for_function("window.jobgateTerminalOpen === true")
            await page.keyboard.type("echo $JOBGATE_JOB_ID $SLURM_JOB_ID; id -un\n")
            account = getpass.getuser()  # the test cluster's jobs are the gateway's own
            # The shell runs in the job's allocation, with the job's environment.
            await screen_shows(page, f"\n{job_id} {slurm_id}\n{account}\n")
            await page.screenshot(path=str(ARTIFACTS / "terminal-session-slurm.png"))

            await alice.execute(CANCEL, {"ids": [job_id]})
            await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
            await page.wait_for_function(
                "window.jobgateTerminalClosed !== undefined", timeout=15_000
            )


WEB_PRODUCT = {"name": "hpc-web", "category": "cpu", "cpu": 1, "support": {"web": True}}
WEB_ECHO = ApplicationSettings(
    name="web-echo",
    version="1",
    command=["python3", "-c", JOB_SERVER, "{port}"],
    interactive=InteractiveSettings(web=True),
)


async def test_a_web_session_reaches_the_app_on_its_compute_node_and_no_one_else_does(
    tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    settings = sessions_settings(tmp_path, WEB_PRODUCT, WEB_ECHO)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        spec = hpc_spec("echo", product="hpc-web")
        spec["application"] = {"name": "web-echo", "version": "1"}
        spec["parameters"] = []
        (job_id,) = await submit(alice, spec)
        await wait_for_state(alice, job_id, "RUNNING", timeout=30)
        payload = await open_session(alice, job_id, "WEB")
        assert payload["userErrors"] == []
        (session,) = payload["sessions"]

        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 900, "height": 500})
            await until_served(page, session["url"])
            assert await page.text_content("#served") == f"Served by job {job_id}, replica 0"
            assert await page.text_content("#path") == "/"
            assert await page.evaluate(ECHO) == "echo: hello from the browser"
            await page.screenshot(path=str(ARTIFACTS / "web-session-slurm.png"))

            # The node's port lets in only who brings the job's secret (the gateway).
            folder = tmp_path / "data" / "slurm" / "hpc" / job_id / "interactive"
            address = json.loads((folder / "web-0.json").read_text())
            reader, writer = await asyncio.open_connection(address["host"], address["port"])
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert await asyncio.wait_for(reader.read(), timeout=15) == b""
            writer.close()

            await alice.execute(CANCEL, {"ids": [job_id]})
            await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
            response = await page.reload()
            assert response is not None
            assert response.status == 403


VNC_PRODUCT = {"name": "hpc-desktop", "category": "cpu", "cpu": 1, "support": {"vnc": True}}
# On a node there is no private /tmp: Xvnc picks a free display itself (-displayfd).
SLURM_DESKTOP = (
    "exec 3>display; Xvnc -displayfd 3 -rfbport $JOBGATE_PORT -localhost -nolisten tcp "
    "-SecurityTypes None -geometry 800x600 & "
    "until [ -s display ]; do sleep 0.1; done; "
    'DISPLAY=:$(cat display) exec xmessage -center -geometry 400x200 "Hello from job $JOBGATE_JOB_ID"'
)
DESKTOP_APP = ApplicationSettings(
    name="desktop",
    version="1",
    command=["sh", "-c", SLURM_DESKTOP],
    interactive=InteractiveSettings(vnc=True),
)


async def test_a_vnc_session_shows_the_desktop_of_a_job_on_its_compute_node(
    tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    settings = sessions_settings(tmp_path, VNC_PRODUCT, DESKTOP_APP)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        spec = hpc_spec("echo", product="hpc-desktop")
        spec["application"] = {"name": "desktop", "version": "1"}
        spec["parameters"] = []
        (job_id,) = await submit(alice, spec)
        await wait_for_state(alice, job_id, "RUNNING", timeout=30)
        (session,) = (await open_session(alice, job_id, "VNC"))["sessions"]

        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1000, "height": 700})
            await shows_a_desktop(page, session["url"], "vnc-session-slurm.png")
        await alice.execute(CANCEL, {"ids": [job_id]})
