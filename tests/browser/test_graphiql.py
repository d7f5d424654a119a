"""GraphiQL in a real browser (Debian's Chromium, driven by Playwright), with no internet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Page, Request, Route, async_playwright

from tests.api.documents import CANCEL, job_spec, submit
from tests.gateway import ALICE, Gateway

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As this machine's probe starts it: no sandbox (root), no GPU, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SUBSCRIPTION = """subscription Watch {
  jobUpdates { jobId stateAfter update { status } }
}"""


async def set_headers(page: Page, headers: dict[str, str]) -> None:
    """Open the Headers tab and put the JSON in its editor, as a person pastes it."""
    await page.get_by_role("button", name="Headers").click()
    editor = page.locator(".graphiql-editor-tool .CodeMirror").last
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(json.dumps(headers))


async def test_graphiql_streams_a_jobs_updates_with_the_typed_token(
    sqlite_gateway: Gateway,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []

    async def only_this_gateway(route: Route, request: Request) -> None:
        # The gateway must serve every asset itself: any other host is refused, as offline.
        if request.url.startswith(
            f"http://127.0.0.1:{sqlite_gateway.port}/"
        ) or request.url.startswith(f"ws://127.0.0.1:{sqlite_gateway.port}/"):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.route("**/*", only_this_gateway)
            url = (
                sqlite_gateway.url.replace("/graphql", "") + f"/graphql#query={quote(SUBSCRIPTION)}"
            )
            await page.goto(url)
            await page.wait_for_selector(".graphiql-execute-button")
            await set_headers(page, {"Authorization": f"Bearer {ALICE}"})
            await page.locator(".graphiql-execute-button").click()
            result = page.locator(".result-window")
            await page.wait_for_timeout(500)  # the subscription is on its way

            # GraphiQL shows a subscription's newest event: a sleeping job stays RUNNING long
            # enough to be seen, until a second client cancels it.
            alice = sqlite_gateway.client(ALICE)
            (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
            await result.get_by_text('"RUNNING"').wait_for(timeout=20_000)
            running = await result.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "graphiql-running.png"))
            await alice.execute(CANCEL, {"ids": [job_id]})
            await result.get_by_text('"SUCCESS"').wait_for(timeout=20_000)
            finished = await result.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "graphiql-success.png"))
        finally:
            await browser.close()
    assert f'"jobId": "{job_id}"' in running.replace("\xa0", " ")
    assert "cancelled" in finished
    assert outside == []
