"""MongoDB (FerretDB) SIGKILLed in a burst of submits and provider reports: an answer of failure
means nothing was done, every job has its first update, and no call waits past the timeout."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.documents import REPORT, SUBMIT, job_spec, latest_cursor, submit
from tests.faults.helpers import ResumingWatcher, every_update_once
from tests.gateway import ALICE, BATCH_PROVIDER, GraphQLClient
from tests.processes import ServeProcess
from tests.servers import FerretDB

LISTING = """
query($after: String) {
  jobs(first: 500, after: $after) {
    nodes { id specification { name } updates { cursor state status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
TIMEOUT_MS = 1500  # storage.server_selection_timeout_ms below
CONFIG = f"""
[server]
data_dir = "{{data}}"
[storage]
url = "{{storage}}"
server_selection_timeout_ms = {TIMEOUT_MS}
[[users]]
username = "alice"
token = "{ALICE}"
[[providers]]
id = "batch"
kind = "local"
token = "{BATCH_PROVIDER}"
max_concurrent_jobs = 1  # the rest stay IN_QUEUE: a backlog that runs nothing
[[providers.products]]
name = "cpu-batch"
category = "cpu"
[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{{{seconds}}}}"]
parameters = [{{{{ name = "seconds", type = "integer" }}}}]
"""


def write_config(folder: Path, storage: str) -> Path:
    path = folder / "jobgate.toml"
    path.write_text(CONFIG.format(data=folder / "data", storage=storage))
    return path


# Seconds for everything but the store: PyMongo looks for a server every 0.5 s (so it notices
# a spent deadline up to then), HTTP, and scheduling on a busy 2-core machine.
SLACK = 1.0


def queued() -> dict[str, Any]:
    """A job of the provider that runs one at a time: it waits, and nothing else runs."""
    return job_spec("sleep", provider="batch", product="cpu-batch", seconds=60)


class Outcomes:
    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.refused: set[str] = set()
        self.slowest = 0.0

    def note(self, key: str, ok: bool, seconds: float) -> None:
        (self.accepted if ok else self.refused).add(key)
        self.slowest = max(self.slowest, seconds)


async def timed(client: GraphQLClient, query: str, variables: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    body = await client.raw(query, variables)
    return body, time.monotonic() - started


def refused_for_the_store(body: dict[str, Any]) -> bool:
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert codes in ([], ["STORE_UNAVAILABLE"]), body
    return bool(codes)


async def test_a_killed_database_leaves_no_half_done_write_and_no_call_waits_past_the_timeout(
    tmp_path: Path,
) -> None:
    database = FerretDB(tmp_path / "ferretdb").start()
    # Its own process, as in production: the latencies measured are the gateway's, not this
    # test's event loop's.
    serve = ServeProcess(write_config(tmp_path, f"{database.url}/jobgate"))
    try:
        alice = serve.start()
        provider = serve.client(BATCH_PROVIDER)
        watcher = ResumingWatcher(serve, await latest_cursor(alice)).start()
        await submit(alice, queued())  # takes the one slot
        (target,) = await submit(alice, queued())  # queued
        submits, reports = Outcomes(), Outcomes()
        stop = asyncio.Event()

        async def submitter(worker: int) -> None:
            for round_ in range(10_000):
                if stop.is_set():
                    return
                name = f"w{worker}-{round_}"
                spec = {**queued(), "name": name}
                body, seconds = await timed(alice, SUBMIT, {"input": {"jobs": [spec]}})
                submits.note(name, not refused_for_the_store(body), seconds)

        async def reporter(worker: int) -> None:
            for round_ in range(10_000):
                if stop.is_set():
                    return
                status = f"report w{worker}-{round_}"
                update = {"jobId": target, "status": status}
                body, seconds = await timed(provider, REPORT, {"updates": [update]})
                ok = not refused_for_the_store(body)
                if ok:
                    (result,) = body["data"]["reportJobUpdates"]["results"]
                    assert result["outcome"] == "APPLIED", result
                reports.note(status, ok, seconds)

        workers = [asyncio.create_task(submitter(n)) for n in range(12)]
        workers += [asyncio.create_task(reporter(n)) for n in range(4)]
        await asyncio.sleep(1.0)
        # In threads: a stall of this test's own loop would count in every call's time.
        await asyncio.to_thread(database.kill)  # mid-burst
        await asyncio.sleep(2.5)
        restarted = FerretDB(tmp_path / "ferretdb", port=database.port)
        database = await asyncio.to_thread(restarted.start)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*workers)
        assert submits.refused, "the outage was not seen"
        assert reports.refused, "the outage was not seen"

        await asyncio.sleep(1)  # the gateway catches up with what it committed
        jobs = await all_jobs(alice)
        await watcher.stop()
        every_update_once(watcher, jobs)
        named = {job["specification"]["name"]: job for job in jobs if job["specification"]["name"]}
        assert set(named) == submits.accepted  # refused ones were not done; none lost
        for job in jobs:
            assert job["updates"], job
            assert job["updates"][0]["state"] == "IN_QUEUE", job
        statuses = {u["status"] for u in next(j for j in jobs if j["id"] == target)["updates"]}
        assert {s for s in statuses if s.startswith("report ")} == reports.accepted
        limit = TIMEOUT_MS / 1000 + SLACK
        assert submits.slowest <= limit, submits.slowest
        assert reports.slowest <= limit, reports.slowest
    finally:
        serve.stop(signal.SIGKILL)
        database.stop()


async def all_jobs(client: GraphQLClient) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    after = None
    while True:
        for _ in range(20):
            try:
                data = await client.execute(LISTING, {"after": after})
                break
            except (AssertionError, httpx.HTTPError):
                await asyncio.sleep(0.5)
        page = data["jobs"]
        jobs += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return jobs
        after = page["pageInfo"]["endCursor"]
