"""Reconciliation against Slurm: a job Slurm has no record of becomes FAILURE."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.documents import REPORT, get_job, submit, wait_for_state
from tests.factories import spec, submission
from tests.gateway import ALICE, running_gateway
from tests.servers import SlurmCluster
from tests.slurm.setup import HPC, hpc_spec, slurm_settings


async def test_a_job_unknown_to_slurm_becomes_failure(
    tmp_path: Path, clean_queue: SlurmCluster
) -> None:
    settings = slurm_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/db",
        reconcile={"interval_seconds": 0.3, "grace_seconds": 0},
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (real,) = await submit(alice, hpc_spec("sleep", seconds=60))
        await wait_for_state(alice, real, "RUNNING", timeout=30)
        created = await gateway.services.store.create_jobs(
            submission(spec(provider="hpc", product="hpc-cpu"))
        )
        (ghost,) = (job.id for job in created.jobs)
        await gateway.services.store.complete_handovers([ghost])  # handed over, as far as known
        # The provider once said it runs as a Slurm job that does not exist (purged from the
        # completion log too, say).
        update = {"jobId": ghost, "state": "RUNNING", "providerGeneratedId": "987654"}
        await gateway.client(HPC).execute(REPORT, {"updates": [update]})

        lost = await wait_for_state(alice, ghost, "FAILURE", timeout=10)
        assert lost["updates"][-1]["status"] == "Provider 'hpc' no longer knows this job"
        await asyncio.sleep(1)
        job = await get_job(alice, real)
        assert job is not None
        assert job["status"]["state"] == "RUNNING"
