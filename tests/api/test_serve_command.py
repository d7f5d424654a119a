"""`jobgate serve` and `jobgate agent` as an operator runs them: one gateway per data folder,
the port bound before anything is settled, a demo token that survives restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.documents import CANCEL, job_spec, submit, wait_for_state
from tests.api.test_restart import process_alive
from tests.gateway import GraphQLClient
from tests.processes import JOBGATE, ServeProcess, write_config
from tests.servers import free_port, wait_for_port


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    config = write_config(
        tmp_path / "jobgate.toml",
        data_dir=tmp_path / "data",
        storage=f"sqlite://{tmp_path}/jobgate.db",
    )
    process = ServeProcess(config)
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)


def without_jobgate_variables() -> dict[str, str]:
    """This environment without JOBGATE_ variables: the command sees only what a test gives."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}


def jobgate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JOBGATE), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=without_jobgate_variables(),
        check=False,
    )


async def a_running_sleep(serve: ServeProcess, tmp_path: Path) -> tuple[GraphQLClient, str, int]:
    """Start the gateway and a long job on it: its client, the job's id and its process's pid."""
    alice = serve.start()
    (job_id,) = await submit(alice, job_spec("sleep", seconds=300))
    await wait_for_state(alice, job_id, "RUNNING")
    marker = tmp_path / "data" / "local" / "local" / job_id / "processes.json"
    (process,) = json.loads(marker.read_text())
    pid: int = process["pid"]
    return alice, job_id, pid


async def test_a_second_gateway_on_the_same_data_folder_refuses_and_touches_nothing(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice, job_id, pid = await a_running_sleep(serve, tmp_path)

    second = jobgate("serve", "--config", str(serve.config), "--port", str(free_port()))

    assert second.returncode == 2
    assert "another gateway" in second.stderr
    assert str(tmp_path / "data") in second.stderr
    assert second.stderr.count("\n") == 1, second.stderr
    assert process_alive(pid)
    job = await wait_for_state(alice, job_id, "RUNNING")
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING"]


async def test_a_gateway_whose_port_is_taken_stops_before_settling_any_job(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice, job_id, pid = await a_running_sleep(serve, tmp_path)
    serve.stop(signal.SIGKILL)  # a crash: the job's process is left over
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = jobgate("serve", "--config", str(serve.config), "--port", str(port))
        assert result.returncode == 2
        assert result.stderr.strip().startswith(
            f"jobgate: server.port: cannot listen on 127.0.0.1:{port}"
        )
        assert process_alive(pid)  # nothing was settled
        # Started properly, the gateway follows the job it left: a cancel reaches it.
        alice = serve.start()
        await alice.execute(CANCEL, {"ids": [job_id]})
        job = await wait_for_state(alice, job_id, "SUCCESS")
        assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
        assert job["updates"][-1]["status"] == "The job was cancelled by its user"
        assert not process_alive(pid)
    finally:
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)


def start_demo(cwd: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(JOBGATE), "serve", "--port", str(port)],
            cwd=cwd,
            env=without_jobgate_variables(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port)
    return process, port


def printed_token(log: Path) -> str:
    line = next(line for line in log.read_text().splitlines() if "Bearer" in line)
    token: str = json.loads(line.strip())["Authorization"].removeprefix("Bearer ")
    return token


async def test_the_demo_token_stays_the_same_across_restarts(tmp_path: Path) -> None:
    first, port = start_demo(tmp_path, tmp_path / "first.log")
    try:
        token = printed_token(tmp_path / "first.log")
    finally:
        first.terminate()
        first.wait(20)
    second, port = start_demo(tmp_path, tmp_path / "second.log")
    try:
        assert printed_token(tmp_path / "second.log") == token
        assert (
            f"GraphiQL:  http://127.0.0.1:{port}/graphql" in (tmp_path / "second.log").read_text()
        )
        client = GraphQLClient(f"http://127.0.0.1:{port}/graphql", token)
        assert (await client.execute("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 0
    finally:
        second.terminate()
        second.wait(20)
    token_file = tmp_path / "jobgate-data" / "demo-token"
    assert token_file.stat().st_mode & 0o077 == 0  # readable by its owner alone


async def test_a_configured_gateway_prints_its_address(serve: ServeProcess) -> None:
    serve.start()
    assert f"GraphiQL:  {serve.url}" in serve.output()


async def test_an_agent_with_a_wrong_token_says_so_once(
    serve: ServeProcess, tmp_path: Path
) -> None:
    serve.start()
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text(f'workdir = "{tmp_path / "agent"}"\n[adapter]\nkind = "local"\n')
    result = jobgate(
        "agent", "--gateway", serve.url, "--token", "wrong", "--config", str(agent_config)
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    message = line.removeprefix("jobgate agent: ")
    assert message
    assert line.count(message) == 1
    assert "; " + message not in line, line
