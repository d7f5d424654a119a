"""`/metrics` as Prometheus and its tools read it: what a job, a refused request and a
subscription leave there, who may read it, `promtool`'s checks, and a real Prometheus that
scrapes a running gateway."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.api.documents import job_spec, submit, wait_for_state
from tests.api.scraping import samples, scrape, value
from tests.gateway import ALICE, Gateway, gateway_settings, http_client, running_gateway, subscribe
from tests.servers import PrometheusServer

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_TOKEN = "operator-secret"
FEED = "subscription { jobUpdates { cursor jobId } }"
# More aliases than `limits.max_aliases` (50) allows: refused before it runs.
TOO_MANY_ALIASES = "{ " + " ".join(f"a{n}: jobs {{ nodes {{ id }} }}" for n in range(60)) + " }"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.2)


async def test_a_job_and_a_refusal_show_in_the_metrics(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec(message="measured"))
    job = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    refused = await alice.raw(TOO_MANY_ALIASES)
    assert refused["errors"][0]["extensions"]["limit"] == "limits.max_aliases"

    found = await samples(sqlite_gateway)
    # Every update the job has, its first (IN_QUEUE, stored at submit) included.
    applied = value(found, "jobgate_job_updates_total", provider="local", result="applied")
    assert applied == len(job["updates"])
    assert value(found, "jobgate_jobs", provider="local", state="SUCCESS") == 1
    assert value(found, "jobgate_graphql_requests_total", operation="submitJobs", outcome="ok") == 1
    assert (
        value(
            found, "jobgate_graphql_requests_total", operation="invalid", outcome="LIMIT_EXCEEDED"
        )
        == 1
    )
    assert value(found, "jobgate_limit_refusals_total", limit="limits.max_aliases") == 1
    assert (
        value(
            found, "jobgate_provider_calls_total", provider="local", command="submit", outcome="ok"
        )
        == 1
    )
    assert value(found, "jobgate_provider_online", provider="local") == 1
    assert value(found, "jobgate_store_round_trips_total", kind="write") > 0
    count = value(found, "jobgate_graphql_request_seconds_count", operation="submitJobs")
    assert count == 1
    # The store's and the bus's round trips are timed; none failed.
    writes = value(found, "jobgate_store_round_trip_seconds_count", kind="write")
    assert writes == value(found, "jobgate_store_round_trips_total", kind="write")
    assert value(found, "jobgate_store_round_trip_seconds_sum", kind="write") > 0
    assert value(found, "jobgate_store_errors_total", kind="write") == 0
    assert value(found, "jobgate_bus_round_trips_total", kind="publish") > 0
    assert value(found, "jobgate_bus_round_trip_seconds_sum", kind="publish") > 0
    # The feed read every update of the job (and took its time doing it).
    assert value(found, "jobgate_feed_lag_seconds_count") >= len(job["updates"])


async def test_open_connections_and_subscriptions_are_gauges(sqlite_gateway: Gateway) -> None:
    async with subscribe(sqlite_gateway, FEED):

        async def counted() -> bool:
            found = await samples(sqlite_gateway)
            return (
                value(found, "jobgate_subscriptions", field="jobUpdates") == 1
                and value(found, "jobgate_websocket_connections", protocol="graphql-transport-ws")
                == 1
            )

        await eventually(counted)

    async def gone() -> bool:
        found = await samples(sqlite_gateway)
        return (
            value(found, "jobgate_subscriptions", field="jobUpdates") == 0
            and value(found, "jobgate_websocket_connections", protocol="graphql-transport-ws") == 0
        )

    await eventually(gone)


async def test_metrics_are_for_operators_only(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        operations={"allow_from": ["10.0.0.0/8"], "token": OPERATOR_TOKEN},
    )
    async with running_gateway(settings) as gateway:
        assert (await scrape(gateway)).status_code == 403
        assert (await scrape(gateway, token=ALICE)).status_code == 403  # a user is no operator
        assert (await scrape(gateway, token=OPERATOR_TOKEN)).status_code == 200


async def test_metrics_can_be_left_out(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", operations={"metrics": False}
    )
    async with running_gateway(settings) as gateway:
        await submit(gateway.client(ALICE), job_spec())
        assert (await scrape(gateway)).status_code == 404
        (family,) = gateway.services.metrics.requests.collect()
        assert family.samples == []  # the operation was served, and not measured


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: run scripts/test, which installs Prometheus"
    return subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, check=False, timeout=60
    )


async def test_the_scrape_passes_promtool_and_the_example_rules_too(
    sqlite_gateway: Gateway,
) -> None:
    (job_id,) = await submit(sqlite_gateway.client(ALICE), job_spec())
    await wait_for_state(sqlite_gateway.client(ALICE), job_id, "SUCCESS", timeout=30)
    text = (await scrape(sqlite_gateway)).text
    checked = await asyncio.to_thread(promtool, "check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = ROOT / "examples" / "prometheus-alerts.yml"
    checked = await asyncio.to_thread(promtool, "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.timeout(120)
async def test_a_real_prometheus_scrapes_the_gateway(
    sqlite_gateway: Gateway, tmp_path: Path
) -> None:
    prometheus = PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{sqlite_gateway.port}")
    prometheus.start()
    try:
        alice = sqlite_gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec(message="scraped"))
        job = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
        query = 'sum(jobgate_job_updates_total{provider="local",result="applied"})'

        async def scraped() -> bool:
            async with http_client() as client:
                answer = await client.get(f"{prometheus.url}/api/v1/query", params={"query": query})
            if answer.status_code != 200:
                return False
            result = answer.json()["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) == len(job["updates"])

        await eventually(scraped, timeout=60)
    finally:
        prometheus.stop()
