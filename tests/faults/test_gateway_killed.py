"""The gateway SIGKILLed in a burst of submits: every accepted job reaches its provider once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.agent.test_agent import edge_spec, wait_online
from tests.api.documents import latest_cursor
from tests.faults.helpers import (
    ResumingWatcher,
    every_update_once,
    final_jobs,
    gateway_and_agent,
    states,
    submit_until_accepted,
)

BURST = 50


async def test_a_gateway_killed_in_a_burst_of_submits_loses_no_job_and_runs_none_twice(
    tmp_path: Path, storage_url: str
) -> None:
    # Reconciliation every second with no grace: it must not fail a job on its way.
    with gateway_and_agent(tmp_path, reconcile_seconds=1, storage=storage_url) as (serve, agent):
        alice = serve.start()
        agent.start()
        await wait_online(alice, True)
        watcher = ResumingWatcher(serve, await latest_cursor(alice)).start()

        async def client(number: int) -> str:
            await asyncio.sleep(number * 0.02)  # a burst of a second
            return await submit_until_accepted(
                alice, edge_spec(message=f"job {number}"), f"burst-{number}"
            )

        clients = [asyncio.create_task(client(number)) for number in range(BURST)]
        await asyncio.sleep(0.5)
        serve.stop(signal.SIGKILL)
        serve.start()
        job_ids = await asyncio.gather(*clients)
        assert len(set(job_ids)) == BURST

        jobs = await final_jobs(alice, job_ids)
        for number, job in enumerate(jobs):
            assert states(job) == ["IN_QUEUE", "RUNNING", "SUCCESS"], (number, job["updates"])
            output = tmp_path / "agent-work" / "local" / "edge" / job["id"] / "stdout-0.log"
            assert output.read_text() == f"job {number}\n"  # ran, and ran once
        await asyncio.sleep(1)  # the last events on their way
        await watcher.stop()
        every_update_once(watcher, jobs)
