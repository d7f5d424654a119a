"""Retention as a site sees it: a gateway with short windows removes old jobs and updates in
the background, an old cursor gets CURSOR_EXPIRED, `latestUpdateCursor` then `after` works; and
compaction never holds a writer back for more than one of its batches."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from jobgate.domain.job import JobStatus, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.services.jobs import now_ms
from jobgate.services.retention import Retention
from jobgate.settings import RetentionSettings
from jobgate.storage.base import JobStore
from tests.api.documents import (
    CANCEL,
    WATCH,
    get_job,
    job_spec,
    latest_cursor,
    submit,
    wait_for_state,
)
from tests.factories import spec, submission
from tests.gateway import ALICE, GraphQLError, gateway_settings, running_gateway, subscribe

DAY_SECONDS = 86_400
WINDOW_SECONDS = 3.0


async def test_old_jobs_and_updates_go_and_a_cursor_from_before_them_expires(
    storage_url: str, tmp_path: Path
) -> None:
    window = WINDOW_SECONDS / DAY_SECONDS
    settings = gateway_settings(
        tmp_path / "data",
        storage_url,
        retention={
            "final_jobs_days": window,
            "update_log_days": window,
            "interval_seconds": 0.5,
        },
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        before = await latest_cursor(alice)
        (ended,) = await submit(alice, job_spec("echo"))
        (running,) = await submit(alice, job_spec("sleep", seconds=120))
        await wait_for_state(alice, ended, "SUCCESS")
        await wait_for_state(alice, running, "RUNNING")

        # The ended job goes once it has been final for the window (and a run comes by).
        deadline = time.monotonic() + 30
        while await get_job(alice, ended) is not None:
            assert time.monotonic() < deadline, "retention did not remove the final job"
            await asyncio.sleep(0.2)
        (fresh,) = await submit(alice, job_spec("sleep", seconds=120))

        # The running job stays, with what is kept of its history; the new one has all of its.
        kept = await get_job(alice, running)
        assert kept is not None
        assert kept["status"]["state"] == "RUNNING"
        newest = await get_job(alice, fresh)
        assert newest is not None
        assert [u["state"] for u in newest["updates"]][:1] == ["IN_QUEUE"]
        deadline = time.monotonic() + 30
        while (job := await get_job(alice, running)) is not None and job["updates"]:
            assert time.monotonic() < deadline, "retention did not trim the running job's log"
            await asyncio.sleep(0.2)

        # A resume from before what is kept is refused, with the code that says why.
        async with subscribe(gateway, WATCH, {"after": before}) as stream:
            with pytest.raises(GraphQLError) as refused:
                await stream.next()
        assert refused.value.codes == ["CURSOR_EXPIRED"]

        # From `latestUpdateCursor`, every update comes again, none missed.
        resume = await latest_cursor(alice)
        async with subscribe(gateway, WATCH, {"after": resume}) as stream:
            await alice.execute(CANCEL, {"ids": [running]})
            while True:
                event = (await stream.next())["jobUpdates"]
                if event["jobId"] == running and event["job"]["status"]["isFinal"]:
                    break
        # A whole history is what is kept of it.
        async with subscribe(gateway, WATCH, {"ids": [fresh]}) as stream:
            first = (await stream.next())["jobUpdates"]
        assert first["update"]["state"] == "IN_QUEUE"
        await alice.execute(CANCEL, {"ids": [fresh]})


class TimedStore:
    """The store, with the time each retention batch took recorded."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.batches: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def _timed(self, call: Callable[[], Awaitable[int]]) -> int:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            self.batches.append(time.perf_counter() - started)

    async def forget_updates(self, before: int, limit: int) -> int:
        return await self._timed(lambda: self.store.forget_updates(before, limit))

    async def forget_final_jobs(self, finished_before: int, limit: int) -> int:
        return await self._timed(lambda: self.store.forget_final_jobs(finished_before, limit))


async def test_compaction_holds_a_writer_back_for_one_batch_at_most(
    store: JobStore, storage_url: str
) -> None:
    # Old work: jobs that ended long ago, and a long-running job's old updates.
    mongo = storage_url.startswith("mongodb")
    jobs_count, updates_each = (100, 3) if mongo else (2_000, 4)
    old = 1_000
    jobs = []
    for first in range(0, jobs_count, 100):
        batch = [spec() for _ in range(min(100, jobs_count - first))]
        jobs += (await store.create_jobs(submission(*batch, at=old))).jobs
    for number, job in enumerate(jobs):
        for step in range(updates_each):
            state = JobState.SUCCESS if step == updates_each - 1 and number % 2 else None
            status = JobStatus(state or job.status.state)
            request = UpdateRequest(job.id, state=state, status=f"step {step}")
            stored = await store.commit_update(job, request, status, old + step)
            assert stored is not None
            job = dataclasses.replace(job, status=status, version=job.version + 1)

    timed = TimedStore(store)
    retention = Retention(
        cast(JobStore, timed),
        RetentionSettings(final_jobs_days=1, update_log_days=1, batch_size=100),
        now_ms,
    )
    waits: list[float] = []
    done = asyncio.Event()

    async def write() -> None:
        while not done.is_set():
            started = time.perf_counter()
            (job,) = (await store.create_jobs(submission(at=now_ms()))).jobs
            request = UpdateRequest(job.id, state=JobState.RUNNING)
            await store.commit_update(job, request, JobStatus(JobState.RUNNING), now_ms())
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    started = time.perf_counter()
    try:
        removed = await retention.run_once()
    finally:
        done.set()
        await writer
    run = time.perf_counter() - started

    assert removed.jobs == jobs_count // 2
    assert removed.updates == (jobs_count // 2) * (updates_each + 1)
    longest_batch = max(timed.batches)
    print(
        f"run {run:.2f} s in {len(timed.batches)} batches (longest {longest_batch * 1000:.0f} ms);"
        f" {len(waits)} writes, longest {max(waits) * 1000:.0f} ms"
    )
    assert len(waits) > 10
    # Each write waits for one batch at most, besides its own work (the slowest alone) ...
    assert max(waits) < longest_batch + 4 * sorted(waits)[len(waits) // 2] + 0.1
    # ... and no writer waited for the run: batching broken (one batch for everything) fails.
    assert max(waits) * 4 < run
