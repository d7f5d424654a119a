"""The slurm adapter against a real single-node Slurm: every path a user of a cluster takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.documents import (
    CANCEL,
    EXTEND,
    RESUME,
    SUBMIT,
    SUSPEND,
    get_job,
    submit,
    wait_for_state,
)
from tests.api.scraping import samples, value
from tests.api.test_logs import LOGS, lines
from tests.gateway import ALICE, Gateway, gateway_settings, running_gateway, subscribe
from tests.servers import SlurmCluster
from tests.slurm.setup import hpc_provider, hpc_spec, slurm_settings


@pytest.fixture
async def hpc(tmp_path: Path, clean_queue: SlurmCluster) -> AsyncIterator[Gateway]:
    url = f"sqlite://{tmp_path}/jobgate.db"
    async with running_gateway(slurm_settings(tmp_path / "data", url)) as gateway:
        yield gateway


def slurm_job(cluster: SlurmCluster, slurm_id: str) -> dict[str, str]:
    """`scontrol -o show job` as a dict, to check what Slurm was asked for."""
    fields: dict[str, str] = {}
    for token in cluster.run("scontrol", "-o", "show", "job", slurm_id).split():
        key, _, value = token.partition("=")
        fields.setdefault(key, value)
    return fields


def last_status(job: dict[str, Any]) -> str:
    status: str = job["updates"][-1]["status"]
    return status


async def test_a_job_runs_as_a_batch_job_with_its_arguments_quoted(
    hpc: Gateway, clean_queue: SlurmCluster, tmp_path: Path
) -> None:
    alice = hpc.client(ALICE)
    message = 'it\'s $(touch pwned) `id` ; "done"'
    (job_id,) = await submit(alice, hpc_spec(message=message, minutes=90, name="my run"))
    job = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    slurm_id = job["providerGeneratedId"]
    assert slurm_id is not None
    assert slurm_id.isdigit()
    assert [u["state"] for u in job["updates"] if u["state"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert last_status(job) == "The program exited with code 0"

    folder = tmp_path / "data" / "slurm" / "hpc" / job_id
    assert (folder / "stdout-0.log").read_text() == message + "\n"
    assert not list(tmp_path.rglob("pwned"))  # noqa: ASYNC240 (a test's small folder)
    details = slurm_job(clean_queue, slurm_id)
    assert details["JobName"] == "my-run"
    assert details["TimeLimit"] == "01:30:00"
    assert details["WorkDir"] == str(folder)
    assert details["Partition"] == "debug"
    assert details["Comment"] == f"jobgate:hpc:{job_id}"
    # Slurm's commands are timed in the metrics, by command and outcome.
    found = await samples(hpc)
    timed = value(
        found, "jobgate_slurm_command_seconds_count", provider="hpc", command="sbatch", outcome="ok"
    )
    assert timed == 1
    assert (
        value(
            found,
            "jobgate_slurm_command_seconds_count",
            provider="hpc",
            command="squeue",
            outcome="ok",
        )
        > 0
    )


async def test_replicas_become_tasks_with_one_output_file_each(
    hpc: Gateway, tmp_path: Path
) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec("count", to=3, replicas=2))
    await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    folder = tmp_path / "data" / "slurm" / "hpc" / job_id
    for rank in (0, 1):
        assert (folder / f"stdout-{rank}.log").read_text() == "1\n2\n3\n"


async def test_a_non_zero_exit_is_success_with_the_code(hpc: Gateway) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec("fail"))
    job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE", timeout=30)
    assert job["status"]["state"] == "SUCCESS"
    assert last_status(job) == "The program exited with code 3"


async def test_a_job_slurm_refuses_fails_with_slurms_reason(hpc: Gateway) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec(product="hpc-huge"))
    job = await wait_for_state(alice, job_id, "FAILURE", timeout=30)
    assert last_status(job).startswith("Slurm refused the job: sbatch: ")
    assert job["providerGeneratedId"] is None


async def test_cancel_is_scancel_and_ends_in_success_cancelled(
    hpc: Gateway, clean_queue: SlurmCluster
) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec("sleep", seconds=300))
    job = await wait_for_state(alice, job_id, "RUNNING", timeout=30)
    data = await alice.execute(CANCEL, {"ids": [job_id]})
    assert data["cancelJobs"]["userErrors"] == []
    job = await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
    assert last_status(job) == "The job was cancelled by its user"
    states = clean_queue.run(
        "squeue", "-h", "-t", "all", "-j", job["providerGeneratedId"], "-o", "%T"
    )
    assert states.strip() == "CANCELLED"


async def test_extend_sets_slurms_time_limit_and_is_confirmed(
    hpc: Gateway, clean_queue: SlurmCluster
) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec("sleep", seconds=300, minutes=10))
    job = await wait_for_state(alice, job_id, "RUNNING", timeout=30)
    data = await alice.execute(
        EXTEND,
        {
            "requests": [
                {"jobId": job_id, "requestedTime": {"hours": 1, "minutes": 5, "seconds": 0}}
            ]
        },
    )
    assert data["extendJobs"]["userErrors"] == []
    extended = await get_job(alice, job_id)
    assert extended is not None
    assert extended["updates"][-1]["newTimeAllocation"] == {"hours": 1, "minutes": 15, "seconds": 0}
    assert slurm_job(clean_queue, job["providerGeneratedId"])["TimeLimit"] == "01:15:00"


async def test_suspend_and_resume_where_the_product_supports_them(
    hpc: Gateway, clean_queue: SlurmCluster
) -> None:
    alice = hpc.client(ALICE)
    (job_id, basic_id) = await submit(
        alice, hpc_spec("sleep", seconds=300), hpc_spec("sleep", product="hpc-basic", seconds=300)
    )
    job = await wait_for_state(alice, job_id, "RUNNING", timeout=30)
    basic = await wait_for_state(alice, basic_id, "RUNNING", timeout=30)

    refused = (await alice.execute(SUSPEND, {"ids": [basic_id]}))["suspendJobs"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_SUPPORTED"]
    assert slurm_job(clean_queue, basic["providerGeneratedId"])["JobState"] == "RUNNING"

    assert (await alice.execute(SUSPEND, {"ids": [job_id]}))["suspendJobs"]["userErrors"] == []
    await wait_for_state(alice, job_id, "SUSPENDED")
    assert slurm_job(clean_queue, job["providerGeneratedId"])["JobState"] == "SUSPENDED"

    assert (await alice.execute(RESUME, {"ids": [job_id]}))["resumeJobs"]["userErrors"] == []
    await wait_for_state(alice, job_id, "RUNNING")
    assert slurm_job(clean_queue, job["providerGeneratedId"])["JobState"] == "RUNNING"
    final = await get_job(alice, job_id)
    assert final is not None
    assert [u["state"] for u in final["updates"] if u["state"]] == [
        "IN_QUEUE",
        "RUNNING",
        "SUSPENDED",
        "RUNNING",
    ]


async def test_job_logs_tail_the_output_files(hpc: Gateway) -> None:
    alice = hpc.client(ALICE)
    (job_id,) = await submit(alice, hpc_spec("chatty", pause=2))
    await wait_for_state(alice, job_id, "RUNNING", timeout=30)
    async with subscribe(hpc, LOGS, {"id": job_id}) as stream:
        events = await stream.rest(timeout=30)
    assert stream.completed
    assert sorted(lines(events)) == [
        (0, "stderr", "two"),
        (0, "stdout", "one"),
        (0, "stdout", "three"),
    ]


@pytest.mark.timeout(240)
async def test_a_job_past_its_time_limit_expires(hpc: Gateway) -> None:
    alice = hpc.client(ALICE)
    # Slurm's smallest limit is one minute, and it checks limits about every 30 s.
    (job_id,) = await submit(alice, hpc_spec("sleep", seconds=600, minutes=1))
    job = await wait_for_state(alice, job_id, "EXPIRED", timeout=200)
    assert last_status(job) == "The job's time allocation ran out"


async def test_the_default_workdir_under_a_relative_data_dir_works(
    tmp_path: Path, clean_queue: SlurmCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a site would start it: `data_dir` relative to where the gateway runs, no `workdir`.
    monkeypatch.chdir(tmp_path)
    settings = slurm_settings(Path("jobgate-data"), f"sqlite://{tmp_path}/jobgate.db")
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, hpc_spec(message="relative"))
        job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE", timeout=30)
    assert last_status(job) == "The program exited with code 0"
    folder = tmp_path / "jobgate-data" / "slurm" / "hpc" / job_id
    assert (folder / "stdout-0.log").read_text() == "relative\n"
    assert slurm_job(clean_queue, job["providerGeneratedId"])["WorkDir"] == str(folder)


async def test_a_slurm_job_gets_a_clean_environment_and_paths_inside_its_workspace(
    tmp_path: Path, clean_queue: SlurmCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway's environment may hold tokens (JOBGATE_USERS): sbatch passes its own on.
    monkeypatch.setenv("JOBGATE_TEST_SECRET", "gateway-environment-secret")
    applications = [
        {"name": "env", "version": "1", "command": ["env"]},
        {
            "name": "read",
            "version": "1",
            "command": ["cat", "--", "{file}"],
            "parameters": [{"name": "file", "type": "input_file"}],
        },
    ]
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        providers=[hpc_provider()],
        applications=applications,
    )
    workspace = tmp_path / "data" / "files" / "users" / "alice"

    def read(path: str) -> dict[str, Any]:
        spec = hpc_spec("env")
        spec["application"]["name"] = "read"
        spec["parameters"] = [{"name": "file", "value": {"file": {"path": path}}}]
        return spec

    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, hpc_spec("env"))
        await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
        variables = (tmp_path / "data/slurm/hpc" / job_id / "stdout-0.log").read_text()
        assert "gateway-environment-secret" not in variables
        assert f"HOME={workspace}" in variables.splitlines()
        assert f"JOBGATE_WORKSPACE={workspace}" in variables.splitlines()

        (workspace / "in.txt").write_text("data\n")
        (workspace / "out").symlink_to(tmp_path / "data")
        refused = await alice.execute(SUBMIT, {"input": {"jobs": [read("out/jobgate.db")]}})
        assert [e["code"] for e in refused["submitJobs"]["userErrors"]] == ["INVALID_PARAMETER"]
        (job_id,) = await submit(alice, read("/in.txt"))
        await wait_for_state(alice, job_id, "SUCCESS", timeout=30)
        assert (tmp_path / "data/slurm/hpc" / job_id / "stdout-0.log").read_text() == "data\n"
