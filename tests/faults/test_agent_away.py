"""Jobs cancelled while their agent is stalled (SIGSTOP) or dead (SIGKILL) never start."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.agent.test_agent import edge_spec, wait_online
from tests.api.documents import CANCEL, latest_cursor, submit
from tests.faults.helpers import (
    ResumingWatcher,
    every_update_once,
    final_jobs,
    gateway_and_agent,
    states,
)


@pytest.mark.parametrize("fault", ["stalled", "killed"])
async def test_jobs_cancelled_while_their_agent_is_away_never_start(
    tmp_path: Path, fault: str
) -> None:
    with gateway_and_agent(tmp_path) as (serve, agent):
        alice = serve.start()
        agent.start()
        await wait_online(alice, True)
        watcher = ResumingWatcher(serve, await latest_cursor(alice)).start()
        assert agent.process is not None
        if fault == "stalled":
            os.kill(agent.process.pid, signal.SIGSTOP)
        else:
            agent.stop(signal.SIGKILL)

        job_ids = [await submit(alice, edge_spec("sleep", seconds=30)) for _ in range(5)]
        ids = [job_id for (job_id,) in job_ids]
        cancelled = await alice.execute(CANCEL, {"ids": ids})
        assert cancelled["cancelJobs"]["userErrors"] == []

        if fault == "stalled":
            assert agent.process is not None
            os.kill(agent.process.pid, signal.SIGCONT)
        else:
            agent.start()
        jobs = await final_jobs(alice, ids, timeout=30)
        await asyncio.sleep(1)  # the last events on their way
        await watcher.stop()
        every_update_once(watcher, jobs)
        for job in jobs:
            assert states(job) == ["IN_QUEUE", "SUCCESS"], job["updates"]
            assert "cancelled" in job["updates"][-1]["status"]
            folder = tmp_path / "agent-work" / "local" / "edge" / job["id"]
            assert not (folder / "launch.json").exists(), "a cancelled job was started"
