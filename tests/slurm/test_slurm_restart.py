"""A gateway restart in the middle of Slurm jobs: the adapter re-attaches and loses nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jobgate.storage.sqlite import SqliteJobStore
from tests.api.documents import CANCEL, get_job, submit, wait_for_state
from tests.factories import spec, submission
from tests.gateway import ALICE, running_gateway
from tests.servers import SlurmCluster
from tests.slurm.setup import hpc_spec, slurm_settings


def wait_until_purged(cluster: SlurmCluster, slurm_id: str, timeout: float = 40) -> None:
    """Until slurmctld forgets the finished job (MinJobAge), so only `sacct -c` knows it."""
    deadline = time.monotonic() + timeout
    while cluster.run("squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T", check=False).strip():
        assert time.monotonic() < deadline, f"Slurm job {slurm_id} was not purged"
        time.sleep(0.5)


async def test_after_a_restart_jobs_are_followed_again_by_their_slurm_ids(
    tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    db = tmp_path / "jobgate.db"
    settings = slurm_settings(tmp_path / "data", f"sqlite://{db}")
    async with running_gateway(settings) as first:
        alice = first.client(ALICE)
        long_id, short_id = await submit(
            alice, hpc_spec("sleep", seconds=300), hpc_spec("sleep", seconds=2)
        )
        long_job = await wait_for_state(alice, long_id, "RUNNING", timeout=30)
        short_job = await wait_for_state(alice, short_id, "RUNNING", timeout=30)

    # While no gateway runs: the short job ends and Slurm forgets it. Two more jobs are in the
    # store as a crashed gateway could leave them: one sbatch'ed before its id was recorded, one
    # never sent at all.
    await asyncio.to_thread(wait_until_purged, clean_queue, short_job["providerGeneratedId"])
    store = SqliteJobStore(db)
    await store.open()
    created = await store.create_jobs(
        submission(
            spec("sleep", provider="hpc", product="hpc-cpu"),
            spec("echo", provider="hpc", product="hpc-cpu"),
        )
    )
    await store.close()
    sent, unsent = (job.id for job in created.jobs)
    script = tmp_path / "sent.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --comment=jobgate:hpc:{sent}\nsleep 3\n")
    sent_slurm_id = clean_queue.run("sbatch", "--parsable", "-o", "/dev/null", str(script)).strip()

    async with running_gateway(settings) as second:
        alice = second.client(ALICE)
        short = await wait_for_state(alice, short_id, "SUCCESS", timeout=30)
        assert short["updates"][-1]["status"] == "The program exited with code 0"

        found = await wait_for_state(alice, sent, "SUCCESS", timeout=30)
        assert found["providerGeneratedId"] == sent_slurm_id
        comments = clean_queue.run("squeue", "-h", "-t", "all", "-o", "%k").split()
        assert comments.count(f"jobgate:hpc:{sent}") == 1  # not submitted a second time

        late = await wait_for_state(alice, unsent, "SUCCESS", timeout=30)
        assert late["providerGeneratedId"] not in (None, sent_slurm_id)

        still = await get_job(alice, long_id)
        assert still is not None
        assert still["status"]["state"] == "RUNNING"
        assert still["providerGeneratedId"] == long_job["providerGeneratedId"]
        assert (await alice.execute(CANCEL, {"ids": [long_id]}))["cancelJobs"]["userErrors"] == []
        cancelled = await wait_for_state(alice, long_id, "SUCCESS", timeout=30)
        assert cancelled["updates"][-1]["status"] == "The job was cancelled by its user"
