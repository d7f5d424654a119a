"""GraphiQL's sign-in through a real Keycloak, in Chromium: the authorization-code flow with
PKCE on Keycloak's own login page, then a subscription that shows the user's job, a refreshed
token, and "Sign out"."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Request, Route, async_playwright

from tests.api.documents import job_spec, submit
from tests.api.test_oidc import oidc_settings
from tests.browser.test_graphiql import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    type_query,
    wait_for_result,
)
from tests.gateway import Gateway, gateway_settings, running_gateway
from tests.servers import Keycloak

WATCH = "subscription { jobUpdates { jobId stateAfter } }"
LIST = "{ jobs(first: 5) { nodes { id owner { createdBy } } } }"


@pytest.fixture
async def signing_in_gateway(keycloak: Keycloak, tmp_path: Path) -> AsyncIterator[Gateway]:
    oidc = oidc_settings(keycloak, graphiql_client_id="jobgate-graphiql")
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", auth={"oidc": oidc}
    )
    async with running_gateway(settings) as running:
        yield running


async def stored_tokens(page: Page) -> dict[str, Any] | None:
    text = await page.evaluate("() => window.sessionStorage.getItem('jobgate:tokens')")
    return None if text is None else dict(json.loads(text))


@contextlib.asynccontextmanager
async def browser_page(gateway: Gateway, keycloak: Keycloak) -> AsyncIterator[Page]:
    """Chromium that reaches the gateway and Keycloak, and nothing else."""
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    allowed = (f"http://127.0.0.1:{gateway.port}/", f"ws://127.0.0.1:{gateway.port}/", keycloak.url)

    async def only_these(route: Route, request: Request) -> None:
        if request.url.startswith(allowed):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.route("**/*", only_these)
            yield page
        finally:
            await browser.close()
    assert outside == [], "the page loaded something from elsewhere"


async def test_graphiql_signs_in_through_keycloak_and_streams_the_users_job(
    signing_in_gateway: Gateway, keycloak: Keycloak
) -> None:
    gateway = signing_in_gateway
    async with browser_page(gateway, keycloak) as page:
        await page.goto(gateway.url)
        button = page.locator("#sign-in-button")
        await button.wait_for()
        assert await button.text_content() == "Sign in"
        await button.click()
        # Keycloak's own login page.
        await page.wait_for_url(f"{keycloak.issuer}/**")
        await page.fill("#username", "erin")
        await page.fill("#password", "erin-password")
        await page.click("#kc-login")
        await page.wait_for_url(f"{gateway.url}**")
        # The bar says who signed in, or why it failed.
        said = page.locator("#signed-in-as:not(:empty)")
        await said.wait_for()
        assert await said.text_content() == "Signed in as erin"
        assert await button.text_content() == "Sign out"
        assert "code=" not in page.url  # the code is used once, and leaves the address
        await page.wait_for_selector(".graphiql-execute-button")
        # A subscription, with no token typed anywhere: the sign-in's goes along.
        await type_query(page, WATCH)
        await page.locator(".graphiql-execute-button").click()
        await wait_for_result(page, lambda t: '"events"' in t)
        erin = gateway.client(keycloak.token("erin", "erin-password"))
        (job_id,) = await submit(erin, job_spec(message="from erin"))
        text = await wait_for_result(page, lambda t: '"SUCCESS"' in t and job_id in t)
        await page.screenshot(path=str(ARTIFACTS / "graphiql-signed-in.png"))
        events = [e["data"]["jobUpdates"] for e in json.loads(text)["events"]]
        assert [e["stateAfter"] for e in events if e["jobId"] == job_id] == [
            "IN_QUEUE",
            "RUNNING",
            "SUCCESS",
        ]
        # Refreshed before it expires (this client's access tokens live 20 s).
        first = await stored_tokens(page)
        assert first is not None
        async with asyncio.timeout(30):
            while (now := await stored_tokens(page)) is None or now["access"] == first["access"]:
                await page.wait_for_timeout(500)
        await page.locator(".graphiql-execute-button").click()  # stop the subscription
        await type_query(page, LIST)
        await page.locator(".graphiql-execute-button").click()
        listed = await wait_for_result(page, lambda t: job_id in t or "errors" in t)
        assert job_id in listed, listed
        # "Sign out" forgets the token: the same query is refused.
        await button.click()
        await page.wait_for_url(f"{gateway.url}**")
        await page.wait_for_selector("#sign-in-button:has-text('Sign in')")
        assert await stored_tokens(page) is None
        await page.wait_for_selector(".graphiql-execute-button")
        await type_query(page, LIST)
        await page.locator(".graphiql-execute-button").click()
        refused = await wait_for_result(page, lambda t: "UNAUTHENTICATED" in t or job_id in t)
        assert "UNAUTHENTICATED" in refused


async def test_without_a_graphiql_client_there_is_no_sign_in(
    keycloak: Keycloak, tmp_path: Path
) -> None:
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", auth={"oidc": oidc_settings(keycloak)}
    )
    async with running_gateway(settings) as gateway, browser_page(gateway, keycloak) as page:
        await page.goto(gateway.url)
        await page.wait_for_selector(".graphiql-execute-button")
        assert not await page.locator("#sign-in-button").is_visible()
