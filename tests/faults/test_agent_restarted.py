"""An agent SIGKILLed and restarted: its local jobs run on, are followed again, and one that
ended meanwhile is reported with its exit code, never as a failure."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from tests.agent.test_agent import edge_spec, wait_online
from tests.api.documents import CANCEL, get_job, latest_cursor, submit, wait_for_state
from tests.api.test_restart import process_alive
from tests.faults.helpers import ResumingWatcher, every_update_once, gateway_and_agent, states


async def test_a_killed_agent_s_local_jobs_survive_and_are_followed_again(tmp_path: Path) -> None:
    with gateway_and_agent(tmp_path) as (serve, agent):
        alice = serve.start()
        agent.start()
        await wait_online(alice, True)
        watcher = ResumingWatcher(serve, await latest_cursor(alice)).start()
        (running,) = await submit(alice, edge_spec("sleep", seconds=60))
        (ends_meanwhile,) = await submit(alice, edge_spec("sleep", seconds=2))
        await wait_for_state(alice, running, "RUNNING", timeout=30)
        await wait_for_state(alice, ends_meanwhile, "RUNNING", timeout=30)
        folder = tmp_path / "agent-work" / "local" / "edge"
        (replica,) = json.loads((folder / running / "processes.json").read_text())

        agent.stop(signal.SIGKILL)
        await asyncio.sleep(3)  # `ends_meanwhile` ends while its agent is dead
        assert process_alive(replica["pid"])
        agent.start()

        ended = await wait_for_state(alice, ends_meanwhile, "SUCCESS", "FAILURE", timeout=30)
        assert states(ended) == ["IN_QUEUE", "RUNNING", "SUCCESS"]
        assert ended["updates"][-1]["status"] == "The program exited with code 0"
        job = await wait_for_state(alice, running, "RUNNING")
        assert states(job) == ["IN_QUEUE", "RUNNING"]
        await alice.execute(CANCEL, {"ids": [running]})
        cancelled = await wait_for_state(alice, running, "SUCCESS", timeout=30)
        assert cancelled["updates"][-1]["status"] == "The job was cancelled by its user"
        assert not process_alive(replica["pid"])
        await asyncio.sleep(1)  # the last events on their way
        await watcher.stop()
        finished = [await get_job(alice, job_id) for job_id in (running, ends_meanwhile)]
        every_update_once(watcher, [job for job in finished if job is not None])
