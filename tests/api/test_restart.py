"""The real `jobgate serve` command: durable updates across restarts, and a database outage."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.documents import CANCEL, JOBS, WATCH, get_job, job_spec, submit, wait_for_state
from tests.gateway import ALICE, GraphQLError, gateway_settings, running_gateway, subscribe
from tests.processes import ServeProcess, write_config
from tests.servers import FerretDB


@pytest.fixture
def serve(tmp_path: Path, storage_url: str) -> Iterator[ServeProcess]:
    config = write_config(
        tmp_path / "jobgate.toml", data_dir=tmp_path / "data", storage=storage_url
    )
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


def job_folder(tmp_path: Path, job_id: str) -> Path:
    return tmp_path / "data" / "local" / "local" / job_id


def replica_pid(tmp_path: Path, job_id: str) -> int:
    (process,) = json.loads((job_folder(tmp_path, job_id) / "processes.json").read_text())
    pid: int = process["pid"]
    return pid


async def test_local_jobs_outlive_a_crashed_gateway_and_are_followed_again(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    (finished,) = await submit(alice, job_spec())
    await wait_for_state(alice, finished, "SUCCESS")
    before = await get_job(alice, finished)
    (running,) = await submit(alice, job_spec("sleep", seconds=60))
    (ends_meanwhile,) = await submit(alice, job_spec("sleep", seconds=2))
    await wait_for_state(alice, running, "RUNNING")
    await wait_for_state(alice, ends_meanwhile, "RUNNING")
    pid = replica_pid(tmp_path, running)

    serve.stop(signal.SIGKILL)  # a crash: nothing is shut down cleanly
    await asyncio.sleep(3)  # `ends_meanwhile` ends while no gateway watches
    assert process_alive(pid)
    alice = serve.start()

    assert await get_job(alice, finished) == before
    ended = await wait_for_state(alice, ends_meanwhile, "SUCCESS", "FAILURE")
    assert [u["state"] for u in ended["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert ended["updates"][-1]["status"] == "The program exited with code 0"
    # Still the same process, followed again: a cancel reaches it.
    job = await wait_for_state(alice, running, "RUNNING")
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING"]
    assert replica_pid(tmp_path, running) == pid
    await alice.execute(CANCEL, {"ids": [running]})
    cancelled = await wait_for_state(alice, running, "SUCCESS")
    assert cancelled["updates"][-1]["status"] == "The job was cancelled by its user"
    assert not process_alive(pid)


async def test_a_graceful_stop_leaves_local_jobs_running(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    (running,) = await submit(alice, job_spec("sleep", seconds=3))
    await wait_for_state(alice, running, "RUNNING")
    pid = replica_pid(tmp_path, running)

    serve.stop(signal.SIGTERM)
    assert process_alive(pid)
    alice = serve.start()

    job = await wait_for_state(alice, running, "SUCCESS", "FAILURE", timeout=15)
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert job["updates"][-1]["status"] == "The program exited with code 0"


async def test_a_job_whose_supervisor_died_meanwhile_fails_and_leaves_nothing_running(
    serve: ServeProcess, tmp_path: Path
) -> None:
    alice = serve.start()
    (running,) = await submit(alice, job_spec("sleep", seconds=300))
    await wait_for_state(alice, running, "RUNNING")
    pid = replica_pid(tmp_path, running)
    supervisor = json.loads((job_folder(tmp_path, running) / "supervisor.json").read_text())

    serve.stop(signal.SIGKILL)
    os.kill(supervisor["pid"], signal.SIGKILL)  # no record of how the job ended is left
    alice = serve.start()

    lost = await wait_for_state(alice, running, "FAILURE")
    assert "supervisor" in lost["updates"][-1]["status"]
    for _ in range(100):
        if not process_alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not process_alive(pid)


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


async def test_a_gateway_started_before_its_database_answers_watchers_and_recovers(
    tmp_path: Path,
) -> None:
    database = FerretDB(tmp_path / "ferretdb")  # not started yet
    try:
        settings = gateway_settings(tmp_path / "data", f"{database.url}/jobgate")
        async with running_gateway(settings) as gateway:
            with pytest.raises(GraphQLError) as waiting:
                async with subscribe(gateway, WATCH) as stream:
                    await stream.next(timeout=15)
            assert waiting.value.codes == ["STORE_UNAVAILABLE"]
            database.start()
            alice = gateway.client(ALICE)
            # The documented way to miss nothing: take the latest cursor, then subscribe after it.
            latest = (await alice.execute("{ latestUpdateCursor }"))["latestUpdateCursor"]
            async with subscribe(gateway, WATCH, {"after": latest}) as stream:
                (job_id,) = await submit(alice, job_spec())
                events = await stream.take(3)
            assert [e["jobUpdates"]["jobId"] for e in events] == [job_id] * 3
    finally:
        database.stop()
