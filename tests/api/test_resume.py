"""Resuming jobUpdates: watchers that come and go through a burst, a quiet spell and a restart
receive every update exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from jobgate.storage.base import LogQuery
from tests.api.documents import REPORT, job_spec, submit
from tests.gateway import (
    ALICE,
    BATCH_PROVIDER,
    Gateway,
    gateway_settings,
    running_gateway,
    subscribe,
)

FEED = "subscription($after: String) { jobUpdates(after: $after) { cursor } }"
JOBS = 20
BATCH = 25


class Watcher:
    """A client that disconnects at random points and resumes from its last cursor."""

    def __init__(self, name: int, start: str) -> None:
        self.random = random.Random(name)
        self.cursor = start
        self.seen: list[int] = []
        self.gateway: Gateway | None = None
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        while not self.stopped.is_set():
            gateway = self.gateway
            if gateway is None:
                await asyncio.sleep(0.05)
                continue
            wanted = self.random.randint(1, 150)
            # A closed connection (the gateway restarting) is just another disconnect.
            with contextlib.suppress(TimeoutError, OSError, ConnectionClosed):
                # A bound on the whole visit: closing a socket to a stopping server can hang.
                async with (
                    asyncio.timeout(10),
                    subscribe(gateway, FEED, {"after": self.cursor}) as stream,
                ):
                    for number in range(wanted):
                        # The replay that opens a visit may take a while (FerretDB scans the log
                        # for it, slowly under load); later events come from the live feed.
                        event = await stream.next(timeout=5 if number == 0 else 0.5)
                        self.cursor = event["jobUpdates"]["cursor"]
                        self.seen.append(int(self.cursor))
            await asyncio.sleep(self.random.random() * 0.05)


async def report_burst(gateway: Gateway, job_ids: list[str], count: int, tag: str) -> None:
    provider = gateway.client(BATCH_PROVIDER)
    updates = [{"jobId": job_ids[n % len(job_ids)], "status": f"{tag} {n}"} for n in range(count)]
    for start in range(0, count, BATCH):
        await provider.execute(REPORT, {"updates": updates[start : start + BATCH]})


# FerretDB v1 (SQLite) evaluates every log query by scanning the collection, so the MongoDB run of
# this burst takes far longer than the SQLite one; a real mongod uses its indexes.
@pytest.mark.timeout(360)
async def test_watchers_that_come_and_go_miss_nothing_and_see_nothing_twice(
    storage_url: str, tmp_path: Path
) -> None:
    # The production deadline for the store, not the tests' short one (made for outages):
    # nothing fails here, but FerretDB scans the whole log for every replay, and a batch of
    # reports racing three replays took longer than 1.5 s on a loaded machine.
    storage = {"url": storage_url, "server_selection_timeout_ms": 5000}
    settings = gateway_settings(tmp_path / "data", storage_url, storage=storage)
    watchers: list[Watcher] = []
    tasks: list[asyncio.Task[None]] = []
    async with running_gateway(settings) as first:
        alice = first.client(ALICE)
        queued = (job_spec("sleep", provider="batch", product="cpu-batch", seconds=600),) * JOBS
        job_ids = await submit(alice, *queued)
        start = (await alice.execute("{ latestUpdateCursor }"))["latestUpdateCursor"]
        watchers = [Watcher(n, start) for n in range(3)]
        tasks = [asyncio.create_task(w.run()) for w in watchers]
        for watcher in watchers:
            watcher.gateway = first
        await report_burst(first, job_ids, 500, "burst")
        # A quiet spell for the watchers: updates land while nobody is subscribed.
        for watcher in watchers:
            watcher.gateway = None
        await asyncio.sleep(0.6)
        await report_burst(first, job_ids, 200, "unwatched")
    async with running_gateway(settings) as second:
        for watcher in watchers:
            watcher.gateway = second
        await report_burst(second, job_ids, 300, "after restart")
        await asyncio.sleep(0.5)
        store = second.services.store
        latest = await store.latest_seq()
        truth: list[int] = []
        position = int(start)
        while position < latest:
            entries = await store.read_log(LogQuery(after=position, up_to=latest, limit=500))
            truth += [entry.update.seq for entry in entries]
            position = truth[-1]
        deadline = asyncio.get_running_loop().time() + 60
        while any(not w.seen or w.seen[-1] < latest for w in watchers):
            assert asyncio.get_running_loop().time() < deadline, "the watchers did not catch up"
            await asyncio.sleep(0.1)
        for watcher in watchers:
            watcher.stopped.set()
        await asyncio.gather(*tasks)
    assert len(truth) >= 1000
    for watcher in watchers:
        assert watcher.seen[: len(truth)] == truth
        assert len(watcher.seen) == len(truth)
