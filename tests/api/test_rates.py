"""Rates, connections and quotas: a caller past its allowance per minute gets a coded refusal
with when to retry (HTTP 429 and Retry-After), shared by replicas through Redis; sockets that
send nothing, or their head a byte at a time, are closed; a flood of connections neither takes
the descriptors jobs need nor stops a well-behaved client; callers hold a bounded number of
WebSockets and subscriptions; users a bounded number of active jobs and replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.proc import rss_kib
from tests.api.documents import SUBMIT, job_spec, submit
from tests.gateway import (
    ALICE,
    BOB,
    Gateway,
    GraphQLError,
    Json,
    gateway_settings,
    http_client,
    running_gateway,
    subscribe,
)
from tests.processes import ServeProcess, write_config
from tests.servers import RedisServer

HEALTHY = "{ jobs(first: 5) { nodes { id } } }"
STATE = "query($id: ID!) { job(id: $id) { status { state } } }"
PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]


@contextlib.asynccontextmanager
async def limited_gateway(tmp_path: Path, name: str = "g", **limits: Any) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        tmp_path / f"data-{name}", f"sqlite://{tmp_path}/{name}.db", limits=limits
    )
    async with running_gateway(settings) as gateway:
        yield gateway


async def post(gateway: Gateway, query: str, token: str | None = ALICE) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with http_client(30) as http:
        return await http.post(gateway.url, json={"query": query}, headers=headers)


def rate_refusal(response: httpx.Response, limit: str) -> int:
    """The Retry-After of a 429 refusing for `limit`; fails the test otherwise."""
    assert response.status_code == 429, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["limit"] == limit
    retry_after = int(response.headers["retry-after"])
    assert retry_after == error["extensions"]["retryAfter"]
    assert 1 <= retry_after <= 60
    return retry_after


async def test_a_caller_past_its_requests_per_minute_gets_429_and_others_are_served(
    tmp_path: Path,
) -> None:
    async with limited_gateway(tmp_path, requests_per_minute=20) as gateway:
        statuses = [(await post(gateway, HEALTHY)).status_code for _ in range(20)]
        assert statuses == [200] * 20
        rate_refusal(await post(gateway, HEALTHY), "limits.requests_per_minute")
        # Another user, and a caller without a token (by address), have their own allowance.
        assert (await post(gateway, HEALTHY, token=BOB)).status_code == 200
        anonymous = await post(gateway, "{ latestUpdateCursor }", token=None)
        assert anonymous.status_code == 200
        # The refused request did not run: still refused, nothing else changed for alice.
        rate_refusal(await post(gateway, HEALTHY), "limits.requests_per_minute")


async def test_a_caller_past_its_cost_per_minute_is_refused_before_the_query_runs(
    tmp_path: Path,
) -> None:
    page = "{ jobs(first: 100) { nodes { id createdAt } } }"
    async with limited_gateway(tmp_path, cost_per_minute=1000, max_cost=1000) as gateway:
        served = 0
        while (response := await post(gateway, page)).status_code == 200:
            assert "errors" not in response.json()
            served += 1
            assert served < 10, "the cost allowance never ran out"
        assert served >= 1
        rate_refusal(response, "limits.cost_per_minute")
        assert "data" not in response.json()
        # A cheap request still fits what is left of the allowance.
        assert (await post(gateway, "{ latestUpdateCursor }")).status_code == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("field", ["jobUpdates", "jobLogs(jobId: 1)"])
async def test_subscriptions_spend_the_same_allowance(
    tmp_path: Path, protocol: str, field: str
) -> None:
    query = f"subscription {{ {field} {{ cursor }} }}"
    async with limited_gateway(tmp_path, requests_per_minute=3) as gateway:
        for _ in range(3):
            assert (await post(gateway, HEALTHY)).status_code == 200
        with pytest.raises(GraphQLError) as refused:
            async with subscribe(gateway, query, protocol=protocol) as subscription:
                await subscription.next(timeout=10)
        (error,) = refused.value.errors
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["limit"] == "limits.requests_per_minute"
        assert error["extensions"]["retryAfter"] >= 1


async def test_replicas_on_redis_share_each_callers_allowance(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    bus = {"url": redis_server.url}
    a_settings = gateway_settings(
        tmp_path / "a", f"sqlite://{tmp_path}/a.db", bus=bus, limits={"requests_per_minute": 10}
    )
    b_settings = gateway_settings(
        tmp_path / "b", f"sqlite://{tmp_path}/b.db", bus=bus, limits={"requests_per_minute": 10}
    )
    async with running_gateway(a_settings) as a, running_gateway(b_settings) as b:
        for _ in range(5):
            assert (await post(a, HEALTHY)).status_code == 200
            assert (await post(b, HEALTHY)).status_code == 200
        rate_refusal(await post(a, HEALTHY), "limits.requests_per_minute")
        rate_refusal(await post(b, HEALTHY), "limits.requests_per_minute")

        # Redis away: each replica counts on its own, and serves meanwhile.
        redis_server.stop()
        assert (await post(a, HEALTHY, token=BOB)).status_code == 200
        for _ in range(9):
            assert (await post(a, HEALTHY, token=BOB)).status_code == 200
        rate_refusal(await post(a, HEALTHY, token=BOB), "limits.requests_per_minute")


# --- connections ----------------------------------------------------------------------------


async def close_all(streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in streams:
        writer.close()
    for _, writer in streams:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def wait_closed_by_server(
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], within: float
) -> None:
    async def closed(reader: asyncio.StreamReader) -> None:
        # Closed by the server: the stream ends, or is reset when bytes the client sent reach
        # the server after it closed (its kernel answers them with RST): a dribbler's.
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(4096):
                pass  # a 503 or nothing, then the end

    await asyncio.wait_for(asyncio.gather(*(closed(r) for r, _ in streams)), within)


def serve(tmp_path: Path, limits: str = "", files: int | None = None) -> ServeProcess:
    """`jobgate serve` with `[limits]` lines, and an open-file limit if given."""
    config = write_config(
        tmp_path / "jobgate.toml",
        data_dir=tmp_path / "data",
        storage=f"sqlite://{tmp_path}/j.db",
        extra=f"\n[limits]\n{limits}\n",
    )
    process = ServeProcess(config)
    if files is None:
        process.start()
    else:
        limit = (files, files)
        process.start(preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit))
    return process


class Footprint:
    """The gateway process's memory and log, before and after what a test does to it."""

    def __init__(self, process: ServeProcess) -> None:
        self.process = process
        assert process.process is not None
        self.pid = process.process.pid
        self.rss_kib = rss_kib(self.pid)
        self.log_bytes = process.log_file.stat().st_size
        self.log_lines = process.output().count("\n")

    def assert_bounded(
        self, *, rss_mib: float, log_bytes: int, log_lines: int | None = None
    ) -> None:
        grown_mib = (rss_kib(self.pid) - self.rss_kib) / 1024
        assert grown_mib < rss_mib, f"the gateway grew by {grown_mib:.1f} MiB"
        logged = self.process.log_file.stat().st_size - self.log_bytes
        assert logged < log_bytes, self.process.output()[-2000:]
        if log_lines is not None:
            lines = self.process.output().count("\n") - self.log_lines
            assert lines <= log_lines, self.process.output()[-2000:]


async def test_idle_and_slow_header_connections_are_closed_and_others_served(
    tmp_path: Path,
) -> None:
    gateway = serve(tmp_path, "header_timeout_seconds = 1.5")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    dribblers: list[asyncio.Task[None]] = []
    try:
        footprint = Footprint(gateway)
        idle += [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(200)]
        slow += [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(50)]

        async def dribble(writer: asyncio.StreamWriter) -> None:
            head = b"POST /graphql HTTP/1.1\r\nhost: x\r\n" + b"x-pad: y\r\n" * 100
            with contextlib.suppress(ConnectionError):
                for byte in head:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)

        dribblers += [asyncio.create_task(dribble(w)) for _, w in slow]
        started = time.monotonic()
        assert await gateway.client(ALICE).execute(HEALTHY)  # served meanwhile
        await wait_closed_by_server(idle + slow, within=10)
        assert time.monotonic() - started < 8
        for task in dribblers:
            task.cancel()
        await close_all(idle + slow)
        # A keep-alive client that sends its requests whole is not cut off.
        async with http_client(10) as http:
            for _ in range(3):
                response = await http.post(
                    gateway.url,
                    json={"query": HEALTHY},
                    headers={"Authorization": f"Bearer {ALICE}"},
                )
                assert response.status_code == 200
                await asyncio.sleep(1)
        footprint.assert_bounded(rss_mib=20, log_bytes=2_000)
    finally:
        for task in dribblers:  # a failure above must not leave 250 sockets to the next test
            task.cancel()
        await close_all(idle + slow)
        gateway.stop()


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_subscription_outlives_the_head_timeout(tmp_path: Path, protocol: str) -> None:
    """The head timeout is for request heads: a WebSocket's connection, upgraded, is past it.
    Found by the fan-out benchmark: every subscriber was cut off (1006) about one timeout
    after it connected, the timer armed again once the upgrade request was read."""
    gateway = serve(tmp_path, "header_timeout_seconds = 1")
    try:
        alice = gateway.client(ALICE)
        watch = "subscription($after: String) { jobUpdates(after: $after) { jobId } }"
        after = (await alice.execute("{ latestUpdateCursor }"))["latestUpdateCursor"]
        async with subscribe(gateway, watch, {"after": after}, protocol=protocol) as stream:
            await asyncio.sleep(3)  # three timeouts
            (job_id,) = await submit(alice, job_spec())
            event = await stream.next(timeout=10)
        assert event["jobUpdates"]["jobId"] == job_id
    finally:
        gateway.stop()


async def test_a_flood_of_anonymous_requests_is_refused_cheaply(tmp_path: Path) -> None:
    gateway = serve(tmp_path, "requests_per_minute = 100")
    try:
        footprint = Footprint(gateway)
        statuses: list[int] = []
        async with http_client(30) as http:

            async def flood() -> None:
                for _ in range(100):
                    response = await http.post(gateway.url, json={"query": HEALTHY})
                    statuses.append(response.status_code)

            started = time.monotonic()
            await asyncio.gather(*(flood() for _ in range(20)))
            seconds = time.monotonic() - started
        assert (
            statuses.count(429) + statuses.count(200) == 2000
        )  # each answered, one way or the other
        # A sliding window: 100 in any minute. A flood that crosses the limiter's minute boundary
        # may also take the part of the previous minute's 100 that has slid out meanwhile.
        assert statuses.count(200) <= 100 + math.ceil(100 * seconds / 60), seconds
        # The flood spent the address's allowance, not a user's.
        assert await gateway.client(ALICE).execute(HEALTHY)
        # uvicorn's access log: one short line per request (with its request id, ALICE's too),
        # nothing more for a 429; each the limit let through (100, or a few more across the
        # window's boundary, as above) is answered UNAUTHENTICATED, one line more.
        let_through = statuses.count(200)
        footprint.assert_bounded(
            rss_mib=20, log_bytes=(2001 + let_through) * 130, log_lines=2001 + let_through
        )
    finally:
        gateway.stop()


def raise_own_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def test_a_flood_of_sockets_on_1024_descriptors_leaves_room_for_jobs(
    tmp_path: Path,
) -> None:
    raise_own_file_limit(4096)
    gateway = serve(tmp_path, files=1024)
    footprint = Footprint(gateway)
    flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(1100):
            flood.append(await asyncio.open_connection("127.0.0.1", gateway.port))
        # The gateway takes 1024 - 256 of them; those past that are answered 503 and closed
        # at once, while the others stay open (until their head timeout).
        reads = [asyncio.ensure_future(reader.read()) for reader, _ in flood]
        done, pending = await asyncio.wait(reads, timeout=3)
        assert 1100 - 768 <= len(done) <= 1100 - 768 + 5
        assert all(read.result().startswith(b"HTTP/1.1 503 ") for read in done)
        for read in pending:
            read.cancel()
        alice = gateway.client(ALICE)
        # The flood holds every connection the gateway takes, so a new one would be refused
        # too: free some room for the client, as the flood's idle sockets would time out.
        await close_all(flood[:20])
        await asyncio.sleep(0.5)
        (job_id,) = await submit(alice, job_spec("echo", message="through the flood"))
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline:
            job = (await alice.execute(STATE, {"id": job_id}))["job"]
            state = job["status"]["state"]
            if state in ("SUCCESS", "FAILURE"):
                break
            await asyncio.sleep(0.3)
        assert state == "SUCCESS"
        assert "Too many open files" not in gateway.output()
        footprint.assert_bounded(rss_mib=40, log_bytes=2_000)
    finally:
        await close_all(flood)
        gateway.stop()
    assert "taking 768 connections" in gateway.output()


async def test_connections_past_max_connections_get_503_and_the_gateway_serves_on(
    tmp_path: Path,
) -> None:
    async with limited_gateway(tmp_path, max_connections=30) as gateway:
        flood = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(40)]
        answers = []
        for reader, _ in flood[30:]:
            answers.append(await asyncio.wait_for(reader.read(), 5))
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 503 ")
            body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
            assert body["errors"][0]["extensions"]["limit"] == "limits.max_connections"
        await close_all(flood)
        await asyncio.sleep(0.3)
        assert (await post(gateway, HEALTHY)).status_code == 200


# --- WebSockets per caller ------------------------------------------------------------------


async def open_initialised(gateway: Gateway, protocol: str, token: str = ALICE) -> ClientConnection:
    ws = await connect(gateway.ws_url, subprotocols=[Subprotocol(protocol)], open_timeout=5)
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    return ws


async def first_message(ws: ClientConnection) -> Json:
    message: Json = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_caller_holds_at_most_its_websockets(tmp_path: Path, protocol: str) -> None:
    async with limited_gateway(tmp_path, max_websockets_per_caller=3) as gateway:
        held = [await open_initialised(gateway, protocol) for _ in range(3)]
        for ws in held:
            assert (await first_message(ws))["type"] == "connection_ack"
        extra = await open_initialised(gateway, protocol)
        with pytest.raises(ConnectionClosed):
            await first_message(extra)
        assert extra.close_code == 1013
        assert "max_websockets_per_caller" in (extra.close_reason or "")
        # Another caller is not affected; a closed connection gives its place back.
        bob = await open_initialised(gateway, protocol, token=BOB)
        assert (await first_message(bob))["type"] == "connection_ack"
        await held[0].close()
        await asyncio.sleep(0.3)
        again = await open_initialised(gateway, protocol)
        assert (await first_message(again))["type"] == "connection_ack"
        for ws in [*held, bob, again]:
            await ws.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_caller_holds_at_most_its_subscriptions(tmp_path: Path, protocol: str) -> None:
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with limited_gateway(tmp_path, max_subscriptions_per_caller=2) as gateway:
        ws = await open_initialised(gateway, protocol)
        assert (await first_message(ws))["type"] == "connection_ack"
        for operation in ("1", "2", "3"):
            query = "subscription { jobUpdates { cursor } }"
            await ws.send(json.dumps({"id": operation, "type": start, "payload": {"query": query}}))
        while True:
            message = await first_message(ws)
            if message["type"] == "error":
                break
        assert message["id"] == "3"
        payload = message["payload"]
        error = payload[0] if isinstance(payload, list) else payload
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert error["extensions"]["limit"] == "limits.max_subscriptions_per_caller"
        await ws.close()
        await asyncio.sleep(0.3)
        assert gateway.services.occupancy.subscriptions_of("user:alice") == 0
        assert gateway.services.occupancy.websockets_of("user:alice") == 0


# --- quotas ---------------------------------------------------------------------------------


async def submit_errors(gateway: Gateway, *specs: Json) -> list[Json]:
    data = await gateway.client(ALICE).execute(SUBMIT, {"input": {"jobs": list(specs)}})
    errors: list[Json] = data["submitJobs"]["userErrors"]
    if errors:
        assert data["submitJobs"]["jobs"] == []  # all or nothing
    return errors


def replicated(spec: Json, replicas: int) -> Json:
    return {**spec, "replicas": replicas}


async def test_a_user_has_at_most_its_active_jobs_and_replicas(tmp_path: Path) -> None:
    async with limited_gateway(
        tmp_path, max_active_jobs_per_user=2, max_active_replicas_per_user=4
    ) as gateway:
        sleeper = job_spec("sleep", seconds=30)
        assert await submit_errors(gateway, sleeper) == []
        (refused,) = await submit_errors(gateway, sleeper, sleeper)
        assert refused["code"] == "QUOTA_EXCEEDED"
        assert "limits.max_active_jobs_per_user" in refused["message"]
        (refused,) = await submit_errors(gateway, replicated(sleeper, 4))
        assert refused["code"] == "QUOTA_EXCEEDED"
        assert "limits.max_active_replicas_per_user" in refused["message"]
        assert await submit_errors(gateway, replicated(sleeper, 3)) == []
        # Another user has their own quota.
        bob = gateway.client(BOB)
        await submit(bob, sleeper)


async def test_the_local_provider_counts_replicas_not_jobs(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/j.db")
    local = settings.providers[0].model_copy(update={"max_concurrent_jobs": 3})
    settings = settings.model_copy(update={"providers": [local, *settings.providers[1:]]})
    async with running_gateway(settings) as gateway:
        sleeper = job_spec("sleep", seconds=30)
        (refused,) = await submit_errors(gateway, replicated(sleeper, 4))
        assert refused["code"] == "INVALID_PARAMETER"
        assert refused["field"] == ["replicas"]
        alice = gateway.client(ALICE)
        first, second = await submit(alice, replicated(sleeper, 2), replicated(sleeper, 2))
        query = STATE
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = (await alice.execute(query, {"id": first}))["job"]["status"]["state"]
            if state == "RUNNING":
                break
            await asyncio.sleep(0.2)
        assert state == "RUNNING"
        await asyncio.sleep(1.5)
        # 2 + 2 replicas > 3: the second job waits for the first.
        assert (await alice.execute(query, {"id": second}))["job"]["status"]["state"] == "IN_QUEUE"
