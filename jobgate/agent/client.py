"""`GatewayClient`: the agent's GraphQL calls over HTTP, with the provider's token."""

from __future__ import annotations

from typing import Any

import httpx

from jobgate.errors import JobgateError

Json = dict[str, Any]


class GatewayUnavailable(JobgateError):
    """The gateway did not answer; the call may be retried."""

    code = "UNAVAILABLE"


class GatewayRefused(JobgateError):
    """The gateway answered with GraphQL errors; retrying the same call will not help."""

    code = "REFUSED"

    def __init__(self, message: str, codes: list[str]) -> None:
        super().__init__(message)
        self.codes = codes


# Codes of errors that pass: the gateway's store did not answer, the gateway itself failed
# (as an HTTP 5xx does), or the provider asked too much this minute. The call is tried again
# later; an agent must outlive them all.
PASSING_CODES = frozenset({"STORE_UNAVAILABLE", "INTERNAL_SERVER_ERROR", "RATE_LIMITED"})


def failure_of(errors: list[Json], call: str = "") -> GatewayUnavailable | GatewayRefused:
    """What a GraphQL answer's errors mean to the agent: a passing failure, or a refusal."""
    codes = [str(e.get("extensions", {}).get("code")) for e in errors]
    prefix = f"{call}: " if call else ""
    if PASSING_CODES.intersection(codes):
        return GatewayUnavailable(prefix + str(errors[0].get("message", "unavailable")))
    # Each message once: several fields refused for one reason say it once.
    messages = dict.fromkeys(str(e.get("message", "")) for e in errors)
    return GatewayRefused(prefix + "; ".join(messages), codes)


class GatewayClient:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._http = httpx.AsyncClient(
            timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    async def close(self) -> None:
        await self._http.aclose()

    async def execute(self, query: str, variables: Json | None = None) -> Json:
        """The `data` of a response without errors."""
        try:
            response = await self._http.post(
                self.url, json={"query": query, "variables": variables or {}}
            )
        except httpx.HTTPError as error:
            raise GatewayUnavailable(
                f"the gateway at {self.url} did not answer: {error}"
            ) from error
        if response.status_code >= 500:
            raise GatewayUnavailable(f"the gateway answered {response.status_code}")
        try:
            body: Json = response.json()
        except ValueError as error:
            raise GatewayUnavailable(f"the gateway answered {response.status_code}") from error
        errors = body.get("errors")
        if errors:
            raise failure_of(errors)
        data: Json = body["data"]
        return data
