"""The README's reverse proxy (`examples/nginx-sessions.conf`), as shipped, in front of a
gateway with sessions on hosts of their own: over HTTPS, a browser opens a session through the
proxy, uses the job's page, its WebSocket and a terminal, each on its own host."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.api.documents import CANCEL, job_spec, submit, wait_for_state
from tests.browser.test_graphiql import ARTIFACTS
from tests.gateway import ALICE
from tests.processes import ServeProcess, write_config
from tests.servers import ROOT, Nginx
from tests.sessions.test_web_sessions_in_chromium import (
    ECHO,
    OPEN,
    SESSIONS,
    chromium,
    end_jobs_left_in,
    screen_shows,
    until_served,
)

EXAMPLE = ROOT / "examples" / "nginx-sessions.conf"
DOMAIN = "sessions.test"
GATEWAY = "jobgate.test"

# GraphQL from a page of the gateway's own origin, as a frontend's script sends it.
FETCH = """
async ({url, token, query, variables}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": `Bearer ${token}`},
    body: JSON.stringify({query, variables}),
  });
  return await response.json();
}
"""


def site(example: str, gateway_port: int, folder: Path) -> str:
    """The example with this test's names, certificate and ports; each replaced part must be
    in it, so the example cannot drift from what is tested."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={GATEWAY}",
            "-addext", f"subjectAltName=DNS:{GATEWAY},DNS:*.{DOMAIN}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    replacements = {
        "listen 443 ssl;": "listen 127.0.0.1:{port} ssl;",
        "jobgate.example.org": GATEWAY,
        "*.sessions.example.org;": f"*.{DOMAIN};",
        "/etc/ssl/jobgate/fullchain.pem": str(cert),
        "/etc/ssl/jobgate/privkey.pem": str(key),
        "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{gateway_port};",
    }
    for old, new in replacements.items():
        assert old in example, f"the example no longer has {old!r}"
        example = example.replace(old, new)
    return example


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("behind-nginx")
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
def nginx(gateway: ServeProcess, tmp_path: Path) -> Iterator[Nginx]:
    server = Nginx(tmp_path, site(EXAMPLE.read_text(), gateway.port, tmp_path)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    rules = f"MAP *.{DOMAIN} 127.0.0.1, MAP {GATEWAY} 127.0.0.1"
    async with chromium(f"--host-resolver-rules={rules}") as browser:
        # The test's own certificate: a site's is signed by an authority browsers know.
        context = await browser.new_context(
            viewport={"width": 900, "height": 500}, ignore_https_errors=True
        )
        yield await context.new_page()


async def test_behind_the_readmes_nginx_sessions_work_over_https_on_their_own_hosts(
    gateway: ServeProcess, nginx: Nginx, page: Page
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

    # Opened through the proxy, from a page of the gateway's origin.
    base = f"https://{GATEWAY}:{nginx.port}"
    await page.goto(f"{base}/livez")
    sessions = [
        {"jobId": web_job, "rank": 0, "type": "WEB"},
        {"jobId": shell_job, "rank": 0, "type": "TERMINAL"},
    ]
    answer: dict[str, Any] = await page.evaluate(
        FETCH,
        {
            "url": f"{base}/graphql",
            "token": ALICE,
            "query": OPEN,
            "variables": {"input": {"sessions": sessions}},
        },
    )
    payload = answer["data"]["openInteractiveSessions"]
    assert payload["userErrors"] == []
    web, shell = payload["sessions"]
    # Addresses the browser can use: https, the session's own host, the proxy's port.
    address = re.compile(rf"^https://[0-9a-f]{{16}}\.{re.escape(DOMAIN)}:{nginx.port}/\?")
    assert address.match(web["url"]), web["url"]
    assert address.match(shell["url"]), shell["url"]

    await until_served(page, web["url"])
    assert await page.text_content("#served") == f"Served by job {web_job}, replica 0"
    assert await page.evaluate(ECHO) == "echo: hello from the browser"  # wss:// through nginx
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "jobgate_session"]
    assert cookie["secure"]
    assert cookie["httpOnly"]
    await page.screenshot(path=str(ARTIFACTS / "web-session-behind-nginx.png"))

    await page.goto(shell["url"])
    await page.wait_for_function("window.jobgateTerminalOpen === true")
    await page.keyboard.type("echo $JOBGATE_JOB_ID\n")
    await screen_shows(page, f"\n{shell_job}\n")
    await page.screenshot(path=str(ARTIFACTS / "terminal-session-behind-nginx.png"))
    await alice.execute(CANCEL, {"ids": [web_job, shell_job]})
