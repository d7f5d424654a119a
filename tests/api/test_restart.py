"""The real `jobgate serve` command: durable updates across restarts, and a database outage."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.documents import JOBS, get_job, job_spec, submit, wait_for_state
from tests.gateway import ALICE, GraphQLClient, gateway_settings, running_gateway
from tests.services import FerretDB, free_port, wait_for_port

JOBGATE = Path(sys.executable).parent / "jobgate"

CONFIG = """
[server]
data_dir = "{data}"

[storage]
url = "{storage}"
server_selection_timeout_ms = 1500

[[users]]
username = "alice"
token = "alice-secret"
projects = ["proj-a"]

[[providers]]
id = "local"
kind = "local"
token = "provider-secret"

[[providers.products]]
name = "cpu-small"
category = "cpu"
cpu = 1
memoryInGigs = 1
support = {{ logs = true, timeExtension = true, suspension = false }}

[[applications]]
name = "echo"
version = "1"
command = ["echo", "{{message}}"]
parameters = [{{ name = "message", type = "text" }}]

[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{seconds}}"]
parameters = [{{ name = "seconds", type = "integer" }}]
"""


class ServeProcess:
    """`jobgate serve --config FILE --port P` as a separate process."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GraphQLClient:
        self.process = subprocess.Popen(
            [str(JOBGATE), "serve", "--config", str(self.config), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return GraphQLClient(f"http://127.0.0.1:{self.port}/graphql", ALICE)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(20)


@pytest.fixture
def serve(tmp_path: Path, storage_url: str) -> Iterator[ServeProcess]:
    config = tmp_path / "jobgate.toml"
    config.write_text(CONFIG.format(data=tmp_path / "data", storage=storage_url))
    process = ServeProcess(config)
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_updates_survive_a_restart_and_lost_processes_become_failures(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    (finished,) = await submit(alice, job_spec())
    await wait_for_state(alice, finished, "SUCCESS")
    (running,) = await submit(alice, job_spec("sleep", seconds=300))
    await wait_for_state(alice, running, "RUNNING")
    before = await get_job(alice, finished)
    marker = tmp_path / "data" / "local" / "local" / running / "processes.json"
    (leftover,) = json.loads(marker.read_text())

    serve.stop(signal.SIGKILL)  # a crash: nothing is shut down cleanly
    assert process_alive(leftover["pid"])  # the job's process outlived the gateway
    alice = serve.start()

    assert await get_job(alice, finished) == before
    lost = await wait_for_state(alice, running, "FAILURE")
    assert "restarted" in lost["updates"][-1]["status"]
    for _ in range(100):
        if not process_alive(leftover["pid"]):
            break
        await asyncio.sleep(0.05)
    assert not process_alive(leftover["pid"])


async def test_the_gateway_reports_an_unreachable_database_and_recovers(tmp_path: Path) -> None:
    database = FerretDB(tmp_path / "ferretdb").start()
    try:
        settings = gateway_settings(tmp_path / "data", f"{database.url}/jobgate")
        async with running_gateway(settings) as gateway:
            alice = gateway.client(ALICE)
            (job_id,) = await submit(alice, job_spec())
            database.stop()
            body = await alice.raw(JOBS)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["STORE_UNAVAILABLE"]
            refused = await alice.raw(
                "mutation($i: SubmitJobsInput!) { submitJobs(input: $i) { jobs { id } } }",
                {"i": {"jobs": [job_spec()]}},
            )
            assert [e["extensions"]["code"] for e in refused["errors"]] == ["STORE_UNAVAILABLE"]
            database.start()
            job = await wait_for_state(alice, job_id, "SUCCESS")
            assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
            listed = await alice.execute(JOBS)
            assert listed["jobs"]["totalCount"] == 1
    finally:
        database.stop()
