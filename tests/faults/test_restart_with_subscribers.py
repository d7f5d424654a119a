"""A gateway restarted (SIGTERM) under 200 open subscriptions and a burst of updates: every
client is told to reconnect (1012), resumes from its cursor on the new process, and sees each
update exactly once, in order."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.api.documents import REPORT, get_job, job_spec, latest_cursor, submit, wait_for_state
from tests.faults.helpers import ResumingWatcher, every_update_once
from tests.gateway import BATCH_PROVIDER, GraphQLClient, GraphQLError
from tests.processes import ServeProcess, write_config

WATCHERS = 200
# Provider `batch` runs one job at a time: the others wait IN_QUEUE, and their updates are the
# provider's reports.
EXTRA = f"""
[limits]
max_websockets_per_caller = 400
max_subscriptions_per_caller = 400
requests_per_minute = 100000

[[providers]]
id = "batch"
kind = "local"
token = "{BATCH_PROVIDER}"
max_concurrent_jobs = 1
[[providers.products]]
name = "cpu-batch"
category = "cpu"
"""


async def report_until_stopped(
    provider: GraphQLClient, job_ids: list[str], stop: asyncio.Event
) -> int:
    """Status updates for the jobs, one after another, through the restart (a report the
    gateway cannot take is sent again); how many were accepted."""
    accepted = 0
    while not stop.is_set():
        job_id = job_ids[accepted % len(job_ids)]
        update = {"jobId": job_id, "status": f"tick {accepted}"}
        try:
            await provider.execute(REPORT, {"updates": [update]})
        except (httpx.HTTPError, GraphQLError):
            await asyncio.sleep(0.1)  # the gateway is restarting
            continue
        accepted += 1
        await asyncio.sleep(0.02)
    return accepted


@pytest.mark.timeout(300)
async def test_a_restart_under_200_subscriptions_loses_and_repeats_nothing(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "jobgate.toml",
        data_dir=tmp_path / "data",
        storage="",
        server="drain_seconds = 1",
        extra=EXTRA,
    )
    serve = ServeProcess(config)
    alice = serve.start()
    provider = serve.client(BATCH_PROVIDER)
    watchers: list[ResumingWatcher] = []
    try:
        specs = [job_spec("sleep", provider="batch", product="cpu-batch", seconds=600)] * 3
        job_ids = await submit(alice, *specs)
        # The provider runs one of them (the others wait): then nothing changes by itself.
        await wait_for_state(alice, job_ids[0], "RUNNING", timeout=30)
        before = {
            job_id: len((await get_job(alice, job_id) or {})["updates"]) for job_id in job_ids
        }
        after = await latest_cursor(alice)
        watchers = [ResumingWatcher(serve, after).start() for _ in range(WATCHERS)]
        stop = asyncio.Event()
        reporter = asyncio.create_task(report_until_stopped(provider, job_ids, stop))
        await asyncio.sleep(2)

        assert serve.process is not None
        serve.process.send_signal(signal.SIGTERM)  # drains 1 s, then closes every WebSocket
        await asyncio.to_thread(serve.process.wait, 60)
        serve.start()  # the new process, on the same port and store
        await asyncio.sleep(2)
        stop.set()
        assert await reporter > 0

        jobs = [await get_job(alice, job_id) or {} for job_id in job_ids]
        # What each watcher must see: every update stored after its cursor.
        expected = [{**job, "updates": job["updates"][before[job["id"]] :]} for job in jobs]
        count = sum(len(job["updates"]) for job in expected)
        for _ in range(300):
            if all(len(watcher.seen) >= count for watcher in watchers):
                break
            await asyncio.sleep(0.2)
    finally:
        for watcher in watchers:
            await watcher.stop()
        serve.stop(signal.SIGKILL)
    assert count > len(job_ids)  # updates flowed before, during and after the restart
    for watcher in watchers:
        assert 1012 in watcher.close_codes, watcher.close_codes
        every_update_once(watcher, expected)
