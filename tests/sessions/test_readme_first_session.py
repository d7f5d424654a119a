"""The README's "A first session", as written, on the demo that `scripts/serve` starts: the
`notebook` application's web page and a terminal inside its job, in Chromium."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.api.documents import CANCEL, wait_for_state
from tests.api.test_serve_command import printed_token, start_demo
from tests.browser.test_graphiql import ARTIFACTS, readme_block
from tests.gateway import GraphQLClient
from tests.sessions.test_web_sessions_in_chromium import chromium, screen_shows, until_served

SUBMIT = readme_block("A first session", 0)
OPEN = readme_block("A first session", 1)


async def test_the_readmes_first_session_works_on_the_demo_as_written(tmp_path: Path) -> None:
    demo, port = start_demo(tmp_path, tmp_path / "demo.log")
    try:
        alice = GraphQLClient(
            f"http://127.0.0.1:{port}/graphql", printed_token(tmp_path / "demo.log")
        )
        submitted = (await alice.execute(SUBMIT))["submitJobs"]
        assert submitted["userErrors"] == []
        (job,) = submitted["jobs"]
        await wait_for_state(alice, job["id"], "RUNNING")
        opened = (await alice.execute(OPEN.replace("<id>", job["id"])))["openInteractiveSessions"]
        assert opened["userErrors"] == []
        web, terminal = opened["sessions"]
        assert (web["type"], terminal["type"]) == ("WEB", "TERMINAL")

        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 900, "height": 500})
            # "the first shows the job's folder as its web server lists it"
            await until_served(page, web["url"])
            assert "Directory listing for /" in await page.content()
            await page.screenshot(path=str(ARTIFACTS / "readme-first-session-web.png"))
            # "the second a shell inside the job's sandbox"
            shell = await browser.new_page(viewport={"width": 900, "height": 500})
            await shell.goto(terminal["url"])
            await shell.wait_for_function("window.jobgateTerminalOpen === true")
            await shell.keyboard.type("echo $JOBGATE_JOB_ID\n")
            await screen_shows(shell, f"\n{job['id']}\n")
            await shell.screenshot(path=str(ARTIFACTS / "readme-first-session-terminal.png"))
            # "Both stop working when the job ends"
            await alice.execute(CANCEL, {"ids": [job["id"]]})
            await wait_for_state(alice, job["id"], "SUCCESS")
            await shell.wait_for_function("window.jobgateTerminalClosed !== undefined")
            response = await page.reload()
            assert response is not None
            assert response.status == 403
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(20)
