"""Reconciliation (UCloud's verify): jobs their provider no longer knows become FAILURE."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.documents import get_job, job_spec, submit, wait_for_state
from tests.factories import spec, submission
from tests.gateway import ALICE, gateway_settings, running_gateway

FAST = {"interval_seconds": 0.2, "grace_seconds": 0}


async def test_a_job_the_local_provider_does_not_run_becomes_failure(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/db", reconcile=FAST)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (running,) = await submit(alice, job_spec("sleep", seconds=60))
        await wait_for_state(alice, running, "RUNNING")
        # In the store, but never handed to the provider: as if its process vanished unseen.
        created = await gateway.services.store.create_jobs(submission(spec()))
        (orphan,) = (job.id for job in created.jobs)

        lost = await wait_for_state(alice, orphan, "FAILURE", timeout=10)
        assert lost["updates"][-1]["status"] == "Provider 'local' no longer knows this job"
        await asyncio.sleep(1)  # several more rounds
        job = await get_job(alice, running)
        assert job is not None
        assert job["status"]["state"] == "RUNNING"
