"""Reconciliation (UCloud's verify): jobs their provider no longer knows become FAILURE."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from jobgate.domain.job import Job
from jobgate.providers.local import LocalProvider, _Folder
from jobgate.storage.base import JobStore
from tests.api.documents import get_job, job_spec, submit, wait_for_state
from tests.factories import spec, submission
from tests.gateway import ALICE, Gateway, gateway_settings, running_gateway

FAST = {"interval_seconds": 0.2, "grace_seconds": 0}


async def test_a_job_the_local_provider_does_not_run_becomes_failure(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/db", reconcile=FAST)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (running,) = await submit(alice, job_spec("sleep", seconds=60))
        await wait_for_state(alice, running, "RUNNING")
        # Handed over as far as the outbox knows, but the provider has no trace of it: as if
        # its folder and process vanished unseen.
        store = gateway.services.store
        created = await store.create_jobs(submission(spec()))
        (orphan,) = (job.id for job in created.jobs)
        await store.complete_handovers([orphan])

        lost = await wait_for_state(alice, orphan, "FAILURE", timeout=10)
        assert lost["updates"][-1]["status"] == "Provider 'local' no longer knows this job"
        await asyncio.sleep(1)  # several more rounds
        job = await get_job(alice, running)
        assert job is not None
        assert job["status"]["state"] == "RUNNING"


async def test_a_job_left_in_the_outbox_is_handed_over_at_start_and_never_failed(
    tmp_path: Path, storage_url: str, store: JobStore
) -> None:
    # What a gateway killed between storing jobs and handing them over leaves behind.
    created = await store.create_jobs(submission(spec(message="left behind")))
    (job_id,) = (job.id for job in created.jobs)
    settings = gateway_settings(tmp_path / "data", storage_url, reconcile=FAST)
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE")
        assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"], job[
            "updates"
        ]
        output = tmp_path / "data" / "local" / "local" / job_id / "stdout-0.log"
        assert output.read_text() == "left behind\n"
    assert await store.pending_handovers() == []


async def test_a_job_taken_while_the_restart_scan_runs_is_started_once(
    sqlite_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local provider makes a bulk submit's folders in a thread. The scan a start makes
    for jobs given before (`_follow_after_restart`) must not take a job whose folder that
    thread has just made for it as one given before: it would run twice."""
    store = sqlite_gateway.services.store
    created = await store.create_jobs(submission(spec(message="once")))
    (job_id,) = (job.id for job in created.jobs)
    await store.complete_handovers([job_id])  # handed over below, by hand
    adapter = sqlite_gateway.services.jobs.providers.get("local")
    assert isinstance(adapter, LocalProvider)
    made, go_on = threading.Event(), threading.Event()
    prepare = adapter._prepare_folders

    def slowly(jobs: Sequence[Job]) -> list[OSError | _Folder]:
        outcomes = prepare(jobs)  # the folder and its GIVEN mark are there now
        made.set()
        go_on.wait(10)
        return outcomes

    monkeypatch.setattr(adapter, "_prepare_folders", slowly)
    taking = asyncio.create_task(adapter.submit(created.jobs))
    assert await asyncio.to_thread(made.wait, 10)
    await adapter._follow_after_restart()  # the scan, while the submit is still taking the job
    go_on.set()
    await taking
    alice = sqlite_gateway.client(ALICE)
    job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE")
    updates = [(u["state"], u["status"]) for u in job["updates"]]
    assert [state for state, _ in updates] == ["IN_QUEUE", "RUNNING", "SUCCESS"], updates
