"""Remote providers: `jobgate serve` and `jobgate agent` as separate processes."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobgate.storage.sqlite import SqliteJobStore
from jobgate.unix import Account
from tests.agent.setup import AgentProcess, write_agent_config, write_gateway_config
from tests.api.documents import (
    CANCEL,
    EXTEND,
    RESUME,
    SUSPEND,
    get_job,
    job_spec,
    submit,
    wait_for_state,
)
from tests.api.test_logs import LOGS, lines
from tests.factories import spec, submission
from tests.gateway import GraphQLClient, subscribe
from tests.processes import ServeProcess
from tests.servers import SlurmCluster

PROVIDERS = "{ providers { id kind online } }"


def edge_spec(app: str = "echo", **parameters: Any) -> dict[str, Any]:
    return job_spec(app, provider="edge", product="edge-cpu", **parameters)


@pytest.fixture
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServeProcess]:
    """The gateway; reconciliation (VERIFY commands every second) only for tests marked
    `verifying`, so the others can expect every command to be acknowledged at the end."""
    verifying = request.node.get_closest_marker("verifying") is not None
    config = write_gateway_config(tmp_path, reconcile_seconds=1 if verifying else 3600)
    process = ServeProcess(config)
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)


@pytest.fixture
def local_agent(tmp_path: Path, serve: ServeProcess) -> Iterator[AgentProcess]:
    agent = AgentProcess(write_agent_config(tmp_path, "local"), serve.url)
    try:
        yield agent
    finally:
        agent.stop(signal.SIGKILL)


async def online(client: GraphQLClient) -> bool:
    (provider,) = (await client.execute(PROVIDERS))["providers"]
    assert provider["kind"] == "remote"
    value: bool = provider["online"]
    return value


async def wait_online(client: GraphQLClient, expected: bool, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.1)):
        if await online(client) is expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"Provider.online did not become {expected}")


def states(job: dict[str, Any]) -> list[str]:
    return [u["state"] for u in job["updates"] if u["state"]]


async def pending_commands(db: Path) -> list[Any]:
    store = SqliteJobStore(db)
    await store.open()
    try:
        return list(await store.pending_commands("edge"))
    finally:
        await store.close()


async def test_a_job_waits_for_an_offline_agent_and_starts_when_it_connects(
    serve: ServeProcess, local_agent: AgentProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    assert await online(alice) is False
    (job_id,) = await submit(alice, edge_spec(message="from afar"))
    await asyncio.sleep(1)
    waiting = await get_job(alice, job_id)
    assert waiting is not None
    assert waiting["status"]["state"] == "IN_QUEUE"
    assert waiting["updates"][-1]["status"] == "Waiting for the agent of provider 'edge' to connect"

    local_agent.start()
    await wait_online(alice, True)
    done = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    assert states(done) == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert done["updates"][-1]["status"] == "The program exited with code 0"
    output = tmp_path / "agent-work" / "local" / "edge" / job_id / "stdout-0.log"
    assert output.read_text() == "from afar\n"
    # The agent forwarded the job's output: jobLogs at the gateway has it, and ends.
    async with subscribe(serve, LOGS, {"id": job_id}) as stream:
        events = await stream.rest(timeout=15)
    assert stream.completed
    assert lines(events) == [(0, "stdout", "from afar")]
    for _ in range(50):
        if not await pending_commands(tmp_path / "jobgate.db"):
            break
        await asyncio.sleep(0.1)
    assert await pending_commands(tmp_path / "jobgate.db") == []

    local_agent.stop()
    await wait_online(alice, False)


async def test_cancel_and_extend_reach_the_agent(
    serve: ServeProcess, local_agent: AgentProcess
) -> None:
    alice = serve.start()
    local_agent.start()
    await wait_online(alice, True)
    (job_id,) = await submit(alice, edge_spec("sleep", seconds=60))
    await wait_for_state(alice, job_id, "RUNNING", timeout=30)
    requests = [{"jobId": job_id, "requestedTime": {"hours": 0, "minutes": 30, "seconds": 0}}]
    assert (await alice.execute(EXTEND, {"requests": requests}))["extendJobs"]["userErrors"] == []
    for _ in range(100):
        job = await get_job(alice, job_id)
        assert job is not None
        if job["updates"][-1]["newTimeAllocation"] is not None:
            break
        await asyncio.sleep(0.1)
    assert job is not None
    assert job["updates"][-1]["newTimeAllocation"] == {"hours": 0, "minutes": 30, "seconds": 0}

    assert (await alice.execute(CANCEL, {"ids": [job_id]}))["cancelJobs"]["userErrors"] == []
    cancelled = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    assert cancelled["updates"][-1]["status"] == "The job was cancelled by its user"


@pytest.mark.verifying
async def test_a_job_the_agent_does_not_know_becomes_failure(
    serve: ServeProcess, local_agent: AgentProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    local_agent.start()
    await wait_online(alice, True)
    (running,) = await submit(alice, edge_spec("sleep", seconds=60))
    await wait_for_state(alice, running, "RUNNING", timeout=30)
    # Handed over as far as the gateway's outbox knows, but never sent to the agent.
    store = SqliteJobStore(tmp_path / "jobgate.db")
    await store.open()
    created = await store.create_jobs(submission(spec(provider="edge", product="edge-cpu")))
    (ghost,) = (job.id for job in created.jobs)
    await store.complete_handovers([ghost])
    await store.close()

    lost = await wait_for_state(alice, ghost, "FAILURE", timeout=30)
    assert lost["updates"][-1]["status"] == "Provider 'edge' no longer knows this job"
    still = await get_job(alice, running)
    assert still is not None
    assert still["status"]["state"] == "RUNNING"


@pytest.mark.timeout(180)
async def test_killing_a_slurm_agent_mid_job_loses_and_repeats_nothing(
    serve: ServeProcess, tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    alice = serve.start()
    agent = AgentProcess(write_agent_config(tmp_path, "slurm"), serve.url).start()
    try:
        await wait_online(alice, True)
        (first,) = await submit(alice, edge_spec("sleep", seconds=6))
        await wait_for_state(alice, first, "RUNNING", timeout=30)

        agent.stop(signal.SIGKILL)  # mid-job: the Slurm job runs on without its agent
        await wait_online(alice, False)
        (second,) = await submit(alice, edge_spec(message="while away"))
        (suspended,) = await submit(alice, edge_spec("sleep", seconds=300))
        await asyncio.sleep(1)
        assert (await get_job(alice, second) or {})["status"]["state"] == "IN_QUEUE"

        agent.start()
        await wait_online(alice, True)
        for job_id in (first, second):
            done = await wait_for_state(alice, job_id, "SUCCESS", timeout=60)
            assert states(done) == ["IN_QUEUE", "RUNNING", "SUCCESS"], done["updates"]
            assert done["updates"][-1]["status"] == "The program exited with code 0"

        # Suspend and resume go through the agent to scontrol.
        await wait_for_state(alice, suspended, "RUNNING", timeout=30)
        assert (await alice.execute(SUSPEND, {"ids": [suspended]}))["suspendJobs"][
            "userErrors"
        ] == []
        await wait_for_state(alice, suspended, "SUSPENDED", timeout=30)
        assert (await alice.execute(RESUME, {"ids": [suspended]}))["resumeJobs"]["userErrors"] == []
        await wait_for_state(alice, suspended, "RUNNING", timeout=30)
        assert (await alice.execute(CANCEL, {"ids": [suspended]}))["cancelJobs"]["userErrors"] == []
        await wait_for_state(alice, suspended, "SUCCESS", timeout=30)
    finally:
        agent.stop(signal.SIGKILL)

    # Each job went to Slurm exactly once (the adapter reports every sbatch), and every
    # command was acknowledged.
    for job_id in (first, second, suspended):
        job = await get_job(alice, job_id)
        assert job is not None
        submitted = [u for u in job["updates"] if (u["status"] or "").startswith("Submitted to")]
        assert len(submitted) == 1, job["updates"]
    for _ in range(50):
        if not await pending_commands(tmp_path / "jobgate.db"):
            break
        await asyncio.sleep(0.1)
    assert await pending_commands(tmp_path / "jobgate.db") == []


async def test_an_agents_local_jobs_reach_the_network_only_on_a_product_that_allows_it(
    serve: ServeProcess, local_agent: AgentProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    local_agent.start()
    await wait_online(alice, True)
    folder = tmp_path / "agent-work" / "local" / "edge"
    outputs = {}
    for product in ("edge-cpu", "edge-net"):
        probe = job_spec("probe", provider="edge", product=product, port=serve.port)
        (job_id,) = await submit(alice, probe)
        await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
        outputs[product] = (folder / job_id / "stdout-0.log").read_text()
    assert outputs == {"edge-cpu": "", "edge-net": "reached\n"}


async def test_a_slurm_agent_runs_a_job_as_the_account_the_gateway_picked(
    tmp_path: Path,
    shared_folder: Path,
    clean_queue: SlurmCluster,
    unix_accounts: dict[str, Account],
) -> None:
    """The gateway maps the user to an account (its template for provider `edge`); the job
    carries it to the agent, whose Slurm adapter submits it as that account."""
    config = write_gateway_config(
        tmp_path, provider_extra='user_accounts = true\nunix_user_template = "jgt-{username}"'
    )
    serve = ServeProcess(config)
    agent = AgentProcess(
        write_agent_config(tmp_path, "slurm", workdir=shared_folder / "agent-work"), serve.url
    )
    try:
        alice = serve.start()
        agent.start()
        await wait_online(alice, True)
        (job_id,) = await submit(alice, edge_spec("whoami"))
        done = await wait_for_state(alice, job_id, "SUCCESS", timeout=60)
    finally:
        agent.stop(signal.SIGKILL)
        serve.stop(signal.SIGKILL)
    assert done["unixUser"] == "jgt-alice"
    output = shared_folder / "agent-work" / "slurm" / job_id / "stdout-0.log"
    assert output.read_text() == "jgt-alice\n"
    assert output.stat().st_uid == unix_accounts["jgt-alice"].uid


async def test_an_agent_logs_json_lines_when_asked(serve: ServeProcess, tmp_path: Path) -> None:
    """`[logging] format = "json"` in agent.toml: every line it writes is one JSON object."""
    config = write_agent_config(tmp_path, "local")
    config.write_text(config.read_text() + '\n[logging]\nformat = "json"\n')
    alice = serve.start()
    agent = AgentProcess(config, serve.url).start()
    try:
        await wait_online(alice, True)
    finally:
        agent.stop()
    records = [json.loads(line) for line in agent.output().splitlines() if line.strip()]
    started = [r for r in records if r["message"].startswith("agent of provider edge started")]
    assert started, records
    assert {"time", "level", "logger"} <= started[0].keys()
