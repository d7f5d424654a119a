"""Jobs on the real Slurm run as their users' own Unix accounts (`user_accounts`): Slurm sees
the user submit, their output is theirs, and a user with no account is refused before Slurm
hears of the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobgate.unix import Account
from tests.api.documents import CANCEL, EXTEND, SUBMIT, submit, wait_for_state
from tests.gateway import ALICE, CAROL, GRACE, Gateway, gateway_settings, running_gateway
from tests.servers import SlurmCluster
from tests.slurm.setup import hpc_provider, hpc_spec

ME = '{ jobs(first: 50, filter: {createdBy: "alice"}) { nodes { id } } }'


@pytest.fixture
async def hpc(
    tmp_path: Path,
    shared_folder: Path,
    clean_queue: SlurmCluster,
    unix_accounts: dict[str, Account],
) -> AsyncIterator[Gateway]:
    """`hpc` runs jobs as "jgt-<username>" unless a user has an account of their own (carol:
    jgt-erin); `hpc-mapped` only as accounts mapped to users by name."""
    mapped = hpc_provider(
        id="hpc-mapped", token=None, user_accounts=True, workdir=str(shared_folder / "mapped")
    )
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        users=[
            {"username": "alice", "token": ALICE},
            {"username": "carol", "token": CAROL, "unix_user": "jgt-erin"},
            {"username": "grace", "token": GRACE},
        ],
        projects=[],
        providers=[
            hpc_provider(
                user_accounts=True,
                unix_user_template="jgt-{username}",
                workdir=str(shared_folder / "jobs"),
                files_root=str(shared_folder / "files"),
            ),
            mapped,
        ],
    )
    async with running_gateway(settings) as gateway:
        yield gateway


def owner_of(path: Path) -> int:
    return path.stat().st_uid


async def squeue_user(cluster: SlurmCluster, slurm_id: str) -> str:
    return (
        await asyncio.to_thread(cluster.run, "squeue", "-h", "-j", slurm_id, "-o", "%u")
    ).strip()


async def test_a_job_runs_as_its_users_account_and_its_output_is_theirs(
    hpc: Gateway, shared_folder: Path, clean_queue: SlurmCluster, unix_accounts: dict[str, Account]
) -> None:
    alice = hpc.client(ALICE)
    account = unix_accounts["jgt-alice"]
    (whoami, sleeper) = await submit(
        alice, hpc_spec("whoami"), hpc_spec("sleep", seconds=300, minutes=10)
    )
    done = await wait_for_state(alice, whoami, "SUCCESS", timeout=30)
    assert done["unixUser"] == "jgt-alice"
    folder = shared_folder / "jobs" / whoami
    assert (folder / "stdout-0.log").read_text() == "jgt-alice\n"
    assert owner_of(folder / "stdout-0.log") == account.uid
    assert owner_of(folder) == account.uid
    assert owner_of(shared_folder / "files" / "users" / "alice") == account.uid

    running = await wait_for_state(alice, sleeper, "RUNNING", timeout=30)
    slurm_id = running["providerGeneratedId"]
    assert await squeue_user(clean_queue, slurm_id) == "jgt-alice"

    # Extending is the operator's (root's) right in Slurm; the gateway does it for her.
    extend = {"jobId": sleeper, "requestedTime": {"hours": 0, "minutes": 5, "seconds": 0}}
    data = await alice.execute(EXTEND, {"requests": [extend]})
    assert data["extendJobs"]["userErrors"] == []
    for _ in range(50):
        limit = await asyncio.to_thread(clean_queue.run, "squeue", "-h", "-j", slurm_id, "-o", "%l")
        if limit.strip() == "15:00":
            break
        await asyncio.sleep(0.1)
    assert limit.strip() == "15:00"

    # Cancelling is hers: scancel runs as jgt-alice.
    assert (await alice.execute(CANCEL, {"ids": [sleeper]}))["cancelJobs"]["userErrors"] == []
    ended = await wait_for_state(alice, sleeper, "SUCCESS", timeout=30)
    assert "cancel" in ended["updates"][-1]["status"].lower()


async def test_a_users_own_account_comes_before_the_template(
    hpc: Gateway, shared_folder: Path, unix_accounts: dict[str, Account]
) -> None:
    carol = hpc.client(CAROL)
    (job_id,) = await submit(carol, hpc_spec("whoami"))
    done = await wait_for_state(carol, job_id, "SUCCESS", timeout=30)
    assert done["unixUser"] == "jgt-erin"
    output = shared_folder / "jobs" / job_id / "stdout-0.log"
    assert output.read_text() == "jgt-erin\n"
    assert owner_of(output) == unix_accounts["jgt-erin"].uid


async def test_a_user_without_an_account_is_refused_and_nothing_reaches_slurm(
    hpc: Gateway, clean_queue: SlurmCluster
) -> None:
    alice, grace = hpc.client(ALICE), hpc.client(GRACE)
    mapped_only = hpc_spec("whoami", product="hpc-cpu")
    mapped_only["product"]["provider"] = "hpc-mapped"

    # In one bulk submit beside a job she may run: nothing is created.
    data = await alice.execute(SUBMIT, {"input": {"jobs": [hpc_spec("whoami"), mapped_only]}})
    payload = data["submitJobs"]
    assert payload["jobs"] == []
    (error,) = payload["userErrors"]
    assert (error["code"], error["index"], error["field"]) == ("NO_UNIX_ACCOUNT", 1, ["product"])
    assert "hpc-mapped" in error["message"]
    assert "no account is mapped to you" in error["message"]

    # The template names an account this host does not have.
    data = await grace.execute(SUBMIT, {"input": {"jobs": [hpc_spec("whoami")]}})
    (error,) = data["submitJobs"]["userErrors"]
    assert error["code"] == "NO_UNIX_ACCOUNT"
    assert error["message"] == "provider 'hpc' has no Unix account 'jgt-grace'"

    assert (await alice.execute(ME))["jobs"]["nodes"] == []
    assert clean_queue.job_ids() == []


async def test_a_job_folder_users_cannot_reach_fails_the_job_with_the_reason(
    tmp_path: Path, clean_queue: SlurmCluster, unix_accounts: dict[str, Account]
) -> None:
    """pytest's folders are root's alone: a job there could not even be read by its user."""
    provider = hpc_provider(user_accounts=True, unix_user_template="jgt-{username}")
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        providers=[provider],
        users=[{"username": "alice", "token": ALICE}],
        projects=[],
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, hpc_spec("whoami"))
        job = await wait_for_state(alice, job_id, "FAILURE", timeout=30)
    status = job["updates"][-1]["status"]
    assert status.startswith("Refused: jobs run as their users' accounts, who "), status
    assert status.endswith("o+x, or set workdir to a folder users may reach")
    assert clean_queue.job_ids() == []
