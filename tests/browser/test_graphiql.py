"""GraphiQL in a real browser (Debian's Chromium, driven by Playwright), with no internet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
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

README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_block(heading: str, index: int = 0) -> str:
    """The graphql block under a README heading (the first, or the `index`-th): the test runs
    what users read."""
    section = README.split(f"### {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```graphql\n")[1 + index].split("```", 1)[0]


MUTATION = readme_block("A first mutation")
SUBSCRIPTION = readme_block("A first subscription")


async def set_headers(page: Page, headers: dict[str, str]) -> None:
    """Open the Headers tab and put the JSON in its editor, as a person pastes it."""
    await page.get_by_role("button", name="Headers").click()
    editor = page.locator(".graphiql-editor-tool .CodeMirror").last
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(json.dumps(headers))


async def type_query(page: Page, text: str) -> None:
    """Replace the active tab's document, as a person pastes one."""
    await page.locator(".graphiql-query-editor .CodeMirror").first.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)
    # GraphiQL works out the document's operations a moment after an edit, as a person pauses.
    await page.wait_for_timeout(500)


async def switch_to_tab(page: Page, index: int) -> None:
    await page.locator(".graphiql-tab").nth(index).locator(".graphiql-tab-button").click()
    await page.wait_for_timeout(500)  # a person looks at the tab before running anything


async def result_text(page: Page) -> str:
    """The whole result pane (CodeMirror draws only the lines in view)."""
    text: str = await page.evaluate(
        "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
    )
    return text


async def wait_for_result(page: Page, predicate: Callable[[str], bool], timeout: float = 20) -> str:
    text = ""
    try:
        async with asyncio.timeout(timeout):
            while not predicate(text := await result_text(page)):
                await page.wait_for_timeout(100)
    except TimeoutError:
        await page.screenshot(path=str(ARTIFACTS / "graphiql-timeout.png"))
        raise AssertionError(f"GraphiQL shows: {text[-2000:]}") from None
    return text


def job_ids(text: str) -> list[str]:
    return re.findall(r'"id": "(\d+)"', text)


def offline_route(
    gateway: Gateway, outside: list[str]
) -> Callable[[Route, Request], Awaitable[None]]:
    async def only_this_gateway(route: Route, request: Request) -> None:
        # The gateway must serve every asset itself: any other host is refused, as offline.
        if request.url.startswith(
            (f"http://127.0.0.1:{gateway.port}/", f"ws://127.0.0.1:{gateway.port}/")
        ):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    return only_this_gateway


@contextlib.asynccontextmanager
async def graphiql(gateway: Gateway, fragment: str = "") -> AsyncIterator[Page]:
    """GraphiQL in Chromium, every other host refused, the token pasted into its Headers tab."""
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.route("**/*", offline_route(gateway, outside))
            await page.goto(gateway.url + fragment)
            await page.wait_for_selector(".graphiql-execute-button")
            # "paste the printed line into GraphiQL's Headers tab"
            await set_headers(page, {"Authorization": f"Bearer {ALICE}"})
            yield page
        finally:
            await browser.close()
    assert outside == [], "GraphiQL loaded something from elsewhere"


async def test_the_readmes_first_hour_works_in_graphiql_as_written(sqlite_gateway: Gateway) -> None:
    async with graphiql(sqlite_gateway) as page:
        # A first mutation
        await type_query(page, MUTATION)
        await page.locator(".graphiql-execute-button").click()
        (first,) = job_ids(await wait_for_result(page, lambda t: bool(job_ids(t))))
        # "Open a second GraphiQL tab, paste this and run it"
        await page.get_by_role("button", name="Add tab").click()
        await type_query(page, SUBSCRIPTION)
        await page.locator(".graphiql-execute-button").click()
        await wait_for_result(page, lambda t: '"events"' in t)
        # "Go back to the first tab and run Submit again"
        await switch_to_tab(page, 0)
        await page.locator(".graphiql-execute-button").click()
        (second,) = job_ids(
            await wait_for_result(page, lambda t: bool(job_ids(t)) and first not in t)
        )
        # "then come back to the second": the updates are listed there, in order
        await switch_to_tab(page, 1)
        events = await wait_for_result(page, lambda t: '"SUCCESS"' in t)
        await page.screenshot(path=str(ARTIFACTS / "graphiql-first-hour.png"))
    updates = [e["data"]["jobUpdates"] for e in json.loads(events)["events"]]
    assert [u["update"]["state"] for u in updates if u["jobId"] == second] == [
        "IN_QUEUE",
        "RUNNING",
        "SUCCESS",
    ]


SLEEP_WATCH = """subscription Watch {
  jobUpdates { jobId stateAfter update { status } }
}"""


async def test_a_subscription_over_a_named_field_alias_goes_over_the_websocket(
    sqlite_gateway: Gateway,
) -> None:
    """The transport comes from the parsed document, not a pattern: `subscription { jobUpdates
    { id: jobId } }` (which a regular expression took for a query) streams."""
    async with graphiql(sqlite_gateway) as page:
        await type_query(
            page, "# subscription is a word here too\nsubscription { jobUpdates { id: jobId } }"
        )
        await page.locator(".graphiql-execute-button").click()
        await wait_for_result(page, lambda t: '"events"' in t)
        (job_id,) = await submit(sqlite_gateway.client(ALICE), job_spec())
        text = await wait_for_result(page, lambda t: t.count(f'"id": "{job_id}"') >= 3)
    assert "errors" not in text


async def test_graphiql_streams_a_jobs_updates_with_the_typed_token(
    sqlite_gateway: Gateway,
) -> None:
    async with graphiql(sqlite_gateway, f"#query={quote(SLEEP_WATCH)}") as page:
        await page.locator(".graphiql-execute-button").click()
        await wait_for_result(page, lambda t: '"events"' in t)
        # A sleeping job stays RUNNING long enough to be seen, until a second client cancels
        # it; the pane lists every event.
        alice = sqlite_gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
        running = await wait_for_result(page, lambda t: '"RUNNING"' in t)
        await page.screenshot(path=str(ARTIFACTS / "graphiql-running.png"))
        await alice.execute(CANCEL, {"ids": [job_id]})
        finished = await wait_for_result(page, lambda t: "cancelled" in t)
        await page.screenshot(path=str(ARTIFACTS / "graphiql-success.png"))
    assert f'"jobId": "{job_id}"' in running
    assert [e["data"]["jobUpdates"]["stateAfter"] for e in json.loads(finished)["events"]] == [
        "IN_QUEUE",
        "RUNNING",
        "SUCCESS",
    ]
