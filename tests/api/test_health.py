"""`/livez` and `/readyz` as load balancers and orchestrators probe them: readiness follows the
store and the bus as they go and come back, and only operators are told why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.scraping import samples, value
from tests.gateway import Gateway, gateway_settings, http_client, running_gateway
from tests.servers import FerretDB, RedisServer

OPERATOR_TOKEN = "operator-secret"


async def probe(gateway: Gateway, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with http_client() as client:
        response = await client.get(f"http://127.0.0.1:{gateway.port}{path}", headers=headers)
    return response.status_code, response.json()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.2)


async def test_a_started_gateway_is_live_and_ready(sqlite_gateway: Gateway) -> None:
    assert await probe(sqlite_gateway, "/livez") == (200, {"status": "ok"})
    assert await probe(sqlite_gateway, "/healthz") == (200, {"status": "ok"})
    # The tests call from loopback, an operator's address by default: they see the checks.
    assert await probe(sqlite_gateway, "/readyz") == (200, {"status": "ready", "failures": {}})


async def test_only_operators_are_told_why_it_is_not_ready(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        operations={"allow_from": ["10.0.0.0/8"], "token": OPERATOR_TOKEN},
    )
    async with running_gateway(settings) as gateway:
        gateway.app.state.readiness.draining = True  # what SIGTERM does (tested in serve)
        assert await probe(gateway, "/readyz") == (503, {"status": "not ready"})
        assert await probe(gateway, "/readyz", token="a guess") == (503, {"status": "not ready"})
        status, body = await probe(gateway, "/readyz", token=OPERATOR_TOKEN)
        assert status == 503
        assert body == {"status": "not ready", "failures": {"draining": "shutting down"}}


async def test_readiness_follows_the_database_as_it_stops_and_comes_back(tmp_path: Path) -> None:
    database = FerretDB(tmp_path / "ferretdb").start()
    settings = gateway_settings(tmp_path / "data", f"{database.url}/jobgate")
    try:
        async with running_gateway(settings) as gateway:

            async def ready() -> bool:
                return (await probe(gateway, "/readyz"))[0] == 200

            async def store_down() -> bool:
                status, body = await probe(gateway, "/readyz")
                return status == 503 and set(body["failures"]) == {"store"}

            await eventually(ready)
            database.kill()
            await eventually(store_down)
            assert (await probe(gateway, "/livez"))[0] == 200  # alive all the while
            # The metrics count the store's failed round trips (readiness's pings, here).
            assert value(await samples(gateway), "jobgate_store_errors_total", kind="ping") > 0
            database = FerretDB(tmp_path / "ferretdb", port=database.port).start()
            await eventually(ready)
    finally:
        database.stop()


async def test_readiness_follows_the_bus_as_it_stops_and_comes_back(tmp_path: Path) -> None:
    redis = RedisServer().start()
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", bus={"url": redis.url}
    )
    try:
        async with running_gateway(settings) as gateway:

            async def ready() -> bool:
                return (await probe(gateway, "/readyz"))[0] == 200

            async def bus_down() -> bool:
                status, body = await probe(gateway, "/readyz")
                return status == 503 and set(body["failures"]) == {"bus"}

            await eventually(ready)
            redis.kill()
            await eventually(bus_down)
            assert value(await samples(gateway), "jobgate_bus_errors_total", kind="ping") > 0
            redis = RedisServer(port=redis.port).start()
            await eventually(ready)
    finally:
        redis.stop()


async def test_a_flood_of_probes_costs_the_store_one_round_trip_a_second(
    sqlite_gateway: Gateway,
) -> None:
    trips = sqlite_gateway.services.store.round_trips
    before = trips.by_kind.get("ping", 0)
    async with http_client() as client:
        url = f"http://127.0.0.1:{sqlite_gateway.port}/readyz"
        answers = await asyncio.gather(*(client.get(url) for _ in range(50)))
    assert {answer.status_code for answer in answers} == {200}
    assert trips.by_kind.get("ping", 0) - before <= 2
