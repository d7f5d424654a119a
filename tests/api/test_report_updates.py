"""reportJobUpdates: a provider's updates under UCloud's rules, through the API."""

from __future__ import annotations

from typing import Any

from tests.api.documents import CANCEL, REPORT, get_job, job_spec, submit, wait_for_state
from tests.gateway import ALICE, PROVIDER, Gateway, GraphQLClient

Json = dict[str, Any]


async def report(client: GraphQLClient, *updates: Json) -> list[Json]:
    data = await client.execute(REPORT, {"updates": list(updates)})
    results: list[Json] = data["reportJobUpdates"]["results"]
    return results


async def test_updates_apply_in_request_order_with_their_outcomes(gateway: Gateway) -> None:
    alice, provider = gateway.client(ALICE), gateway.client(PROVIDER)
    # Once RUNNING, a long sleep reports nothing more: only this test's updates move the job.
    (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
    await wait_for_state(alice, job_id, "RUNNING")
    results = await report(
        provider,
        {"jobId": job_id, "state": "RUNNING", "status": "started", "expectedState": "EXPIRED"},
        {"jobId": job_id, "status": "a message only"},
        {"jobId": job_id, "state": "SUCCESS", "allowRestart": True, "outputFolder": "/out"},
        {"jobId": job_id, "state": "RUNNING"},
        {"jobId": job_id, "state": "RUNNING", "allowRestart": True},
        {"jobId": "123456", "status": "nobody"},
    )
    assert [(r["index"], r["outcome"], r["code"]) for r in results] == [
        (0, "SKIPPED", "PRECONDITION_FAILED"),
        (1, "APPLIED", None),
        (2, "APPLIED", None),
        (3, "SKIPPED", "PRECONDITION_FAILED"),
        (4, "REJECTED", "INVALID_PARAMETER"),
        (5, "REJECTED", "NOT_FOUND"),
    ]
    applied = [r["update"] for r in results if r["outcome"] == "APPLIED"]
    assert [u["status"] for u in applied] == ["a message only", None]
    assert int(applied[0]["cursor"]) < int(applied[1]["cursor"])
    job = await get_job(alice, job_id)
    assert job is not None
    assert job["status"]["state"] == "SUCCESS"
    assert job["status"]["allowRestart"] is True
    assert "a message only" in [u["status"] for u in job["updates"]]


async def test_the_server_sets_the_timestamp(sqlite_gateway: Gateway) -> None:
    alice, provider = sqlite_gateway.client(ALICE), sqlite_gateway.client(PROVIDER)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    (result,) = await report(provider, {"jobId": job_id, "status": "tick"})
    job = await get_job(alice, job_id)
    assert job is not None
    assert result["update"]["timestamp"] >= job["createdAt"]
    await alice.execute(CANCEL, {"ids": [job_id]})
