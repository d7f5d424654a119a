"""Acting on jobs through the local provider: cancel, extend, expiry, failures, gating."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.api.documents import (
    CANCEL,
    EXTEND,
    RESUME,
    SUSPEND,
    WATCH,
    get_job,
    job_spec,
    submit,
    wait_for_state,
)
from tests.gateway import ALICE, Gateway, subscribe


async def test_a_cancelled_sleep_ends_in_success_with_a_cancelled_status(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
    await wait_for_state(alice, job_id, "RUNNING")
    result = await alice.execute(CANCEL, {"ids": [job_id]})
    assert [j["id"] for j in result["cancelJobs"]["jobs"]] == [job_id]
    assert result["cancelJobs"]["userErrors"] == []
    job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE", "EXPIRED")
    assert job["status"]["state"] == "SUCCESS"
    assert "cancelled" in job["updates"][-1]["status"]
    again = await alice.execute(CANCEL, {"ids": [job_id]})
    assert [e["code"] for e in again["cancelJobs"]["userErrors"]] == ["INVALID_STATE"]


async def test_a_non_zero_exit_is_success_with_the_exit_code(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("fail"))
    job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE")
    assert job["status"]["state"] == "SUCCESS"
    assert job["updates"][-1]["status"] == "The program exited with code 3"


async def test_a_command_that_cannot_start_is_a_failure(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("missing"))
    job = await wait_for_state(alice, job_id, "SUCCESS", "FAILURE")
    assert job["status"]["state"] == "FAILURE"
    assert "Could not start" in job["updates"][-1]["status"]
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "FAILURE"]


async def test_a_job_past_its_time_allocation_expires(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    spec = {**job_spec("sleep", seconds=30), "timeAllocation": {"seconds": 1}}
    (job_id,) = await submit(alice, spec)
    job = await wait_for_state(alice, job_id, "EXPIRED", "SUCCESS", "FAILURE", timeout=15)
    assert job["status"]["state"] == "EXPIRED"
    assert job["status"]["expiresAt"] is not None


async def test_an_extension_is_confirmed_with_the_new_allocation(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    spec = {**job_spec("sleep", seconds=3), "timeAllocation": {"seconds": 2}}
    (job_id,) = await submit(alice, spec)
    await wait_for_state(alice, job_id, "RUNNING")
    result = await alice.execute(
        EXTEND, {"requests": [{"jobId": job_id, "requestedTime": {"minutes": 1}}]}
    )
    assert result["extendJobs"]["userErrors"] == []
    job = await wait_for_state(alice, job_id, "SUCCESS", "EXPIRED", timeout=15)
    # Without the extension the two-second allocation would have expired the job.
    assert job["status"]["state"] == "SUCCESS"
    confirmations = [u["newTimeAllocation"] for u in job["updates"] if u["newTimeAllocation"]]
    assert confirmations == [{"hours": 0, "minutes": 1, "seconds": 2}]
    assert job["specification"]["timeAllocation"] == {"hours": 0, "minutes": 1, "seconds": 2}


async def test_unsupported_actions_are_refused_and_nothing_is_sent(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (basic,) = await submit(alice, job_spec("sleep", product="cpu-basic", seconds=30))
    await wait_for_state(alice, basic, "RUNNING")
    extend = await alice.execute(
        EXTEND, {"requests": [{"jobId": basic, "requestedTime": {"minutes": 1}}]}
    )
    assert [e["code"] for e in extend["extendJobs"]["userErrors"]] == ["NOT_SUPPORTED"]
    for document, name in ((SUSPEND, "suspendJobs"), (RESUME, "resumeJobs")):
        result = await alice.execute(document, {"ids": [basic]})
        assert result[name]["jobs"] == []
        assert [e["code"] for e in result[name]["userErrors"]] == ["NOT_SUPPORTED"]
    job = await get_job(alice, basic)
    assert job is not None
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "RUNNING"]
    await alice.execute(CANCEL, {"ids": [basic]})


async def test_bad_extension_requests_name_the_field(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    result = await alice.execute(
        EXTEND,
        {
            "requests": [
                {"jobId": job_id, "requestedTime": {"minutes": 75}},
                {"jobId": job_id, "requestedTime": {}},
            ]
        },
    )
    errors = result["extendJobs"]["userErrors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, ["requests", "0", "requestedTime", "minutes"]),
        (1, ["requests", "1", "requestedTime"]),
    ]
    await alice.execute(CANCEL, {"ids": [job_id]})


async def test_parameters_reach_the_program_as_single_arguments(
    sqlite_gateway: Gateway, tmp_path: Path
) -> None:
    alice = sqlite_gateway.client(ALICE)
    tricky = "$(touch pwned); echo 'x' > pwned2"
    (job_id,) = await submit(alice, job_spec("shout", word=tricky, times=2))
    await wait_for_state(alice, job_id, "SUCCESS")
    workdir = tmp_path / "data" / "local" / "local" / job_id
    assert (workdir / "stdout-0.log").read_text() == f"{tricky}|--times=2"
    assert not (workdir / "pwned").exists()
    assert not (workdir / "pwned2").exists()


async def test_every_replica_runs(sqlite_gateway: Gateway, tmp_path: Path) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, {**job_spec(message="r"), "replicas": 3})
    job = await wait_for_state(alice, job_id, "SUCCESS")
    assert job["updates"][1]["status"] == "Running on this host (3 processes)"
    assert job["updates"][-1]["status"] == "The programs exited with codes 0, 0, 0"
    workdir = tmp_path / "data" / "local" / "local" / job_id
    assert sorted(p.name for p in workdir.glob("stdout-*.log")) == [
        "stdout-0.log",
        "stdout-1.log",
        "stdout-2.log",
    ]


async def test_the_watch_of_a_cancelled_job_completes(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
    await wait_for_state(alice, job_id, "RUNNING")
    async with subscribe(gateway, WATCH, {"ids": [job_id]}) as stream:
        history = await stream.take(2)
        await alice.execute(CANCEL, {"ids": [job_id]})
        rest = await stream.rest()
    states = [e["jobUpdates"]["stateAfter"] for e in history + rest]
    assert states == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert stream.completed


async def test_a_job_waiting_for_a_slot_is_cancelled_at_once(
    sqlite_gateway: Gateway, tmp_path: Path
) -> None:
    alice = sqlite_gateway.client(ALICE)
    running, waiting = await submit(
        alice,
        job_spec("sleep", provider="batch", product="cpu-batch", seconds=600),
        job_spec("sleep", provider="batch", product="cpu-batch", seconds=601),
    )
    await wait_for_state(alice, running, "RUNNING")
    await alice.execute(CANCEL, {"ids": [waiting]})
    job = await wait_for_state(alice, waiting, "SUCCESS", timeout=5)
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE", "SUCCESS"]
    assert "cancelled" in job["updates"][-1]["status"]
    await alice.execute(CANCEL, {"ids": [running]})
    await wait_for_state(alice, running, "SUCCESS")
    # The cancelled job never started, not even after the slot came free.
    await submit(alice, job_spec(provider="batch", product="cpu-batch"))
    await asyncio.sleep(0.5)
    folder = tmp_path / "data" / "local" / "batch" / waiting
    assert (folder / "given").exists()  # the provider had it...
    assert not (folder / "launch.json").exists()  # ...and never launched it
    still = await get_job(alice, waiting)
    assert still is not None
    assert [u["state"] for u in still["updates"]] == ["IN_QUEUE", "SUCCESS"]


def uncollected(pids: list[int]) -> list[int]:
    """Those of `pids` that ended and were never collected (zombies)."""
    found = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # collected, and gone
        if state == "Z":
            found.append(pid)
    return found


async def test_ended_jobs_leave_no_uncollected_process(
    sqlite_gateway: Gateway, tmp_path: Path
) -> None:
    alice = sqlite_gateway.client(ALICE)
    # Many at once: a supervisor may still be ending when its record is read.
    job_ids = await submit(alice, *[job_spec() for _ in range(40)])
    for job_id in job_ids:
        await wait_for_state(alice, job_id, "SUCCESS")
    await asyncio.sleep(0.5)
    folders = [tmp_path / "data" / "local" / "local" / job_id for job_id in job_ids]
    supervisors = [json.loads((f / "supervisor.json").read_text())["pid"] for f in folders]
    assert uncollected(supervisors) == []
