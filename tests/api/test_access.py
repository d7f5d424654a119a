"""Identity: who sees and changes which job, and what a missing or wrong token gets."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.documents import CANCEL, JOB, JOBS, REPORT, WATCH, get_job, job_spec, submit
from tests.gateway import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GRACE,
    OTHER_PROVIDER,
    PROVIDER,
    Gateway,
    GraphQLError,
    subscribe,
)


async def test_alice_can_neither_see_nor_cancel_bobs_job(gateway: Gateway) -> None:
    alice, bob = gateway.client(ALICE), gateway.client(BOB)
    (bobs,) = await submit(bob, job_spec("sleep", seconds=30))
    assert await get_job(alice, bobs) is None
    listed = await alice.execute(JOBS)
    assert bobs not in [node["id"] for node in listed["jobs"]["nodes"]]
    cancel = await alice.execute(CANCEL, {"ids": [bobs]})
    assert cancel["cancelJobs"]["jobs"] == []
    assert [(e["code"], e["jobId"]) for e in cancel["cancelJobs"]["userErrors"]] == [
        ("NOT_FOUND", bobs)
    ]
    job = await get_job(bob, bobs)
    assert job is not None
    assert job["status"]["state"] in ("IN_QUEUE", "RUNNING")
    # An id that does not exist answers exactly like bob's: ids do not leak.
    missing = await alice.execute(CANCEL, {"ids": ["987654"]})
    assert [e["code"] for e in missing["cancelJobs"]["userErrors"]] == ["NOT_FOUND"]
    with pytest.raises(GraphQLError) as watching:
        async with subscribe(gateway, WATCH, {"ids": [bobs]}, token=ALICE) as stream:
            await stream.next()
    assert watching.value.codes == ["NOT_FOUND"]
    await bob.execute(CANCEL, {"ids": [bobs]})


async def test_a_member_sees_their_own_project_jobs_and_its_pi_and_admins_see_all(
    gateway: Gateway,
) -> None:
    alice, dave = gateway.client(ALICE), gateway.client(DAVE)  # proj-a's PI and admin
    carol, grace = gateway.client(CAROL), gateway.client(GRACE)  # its members
    bob = gateway.client(BOB)  # not in it
    (carols,) = await submit(carol, job_spec(), project="proj-a")
    (personal,) = await submit(alice, job_spec(message="mine"))
    for leader in (alice, dave):
        seen = await get_job(leader, carols)
        assert seen is not None
        assert seen["permissions"]["myself"] == ["ADMIN", "READ", "EDIT"]
    seen_by_carol = await get_job(carol, carols)
    assert seen_by_carol is not None
    assert seen_by_carol["permissions"]["myself"] == ["READ", "EDIT"]
    # A colleague's job takes sharing; another workspace's is never there.
    assert await get_job(grace, carols) is None
    assert await get_job(bob, carols) is None
    assert await get_job(carol, personal) is None
    only_project = await carol.execute(JOBS, {"filter": {"project": "proj-a"}})
    assert [n["id"] for n in only_project["jobs"]["nodes"]] == [carols]
    cancelled = await grace.execute(CANCEL, {"ids": [carols]})
    assert [e["code"] for e in cancelled["cancelJobs"]["userErrors"]] == ["NOT_FOUND"]


async def test_a_user_cannot_report_job_updates(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    body = await alice.raw(REPORT, {"updates": [{"jobId": job_id, "state": "FAILURE"}]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    job = await get_job(alice, job_id)
    assert job is not None
    assert job["status"]["state"] != "FAILURE"
    await alice.execute(CANCEL, {"ids": [job_id]})


async def test_only_the_jobs_own_provider_may_report_on_it(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    other = gateway.client(OTHER_PROVIDER)
    result = await other.execute(REPORT, {"updates": [{"jobId": job_id, "status": "hi"}]})
    (outcome,) = result["reportJobUpdates"]["results"]
    missing = await other.execute(REPORT, {"updates": [{"jobId": "999999", "status": "hi"}]})
    # The same answer as for a job that does not exist: nothing tells the two apart.
    assert (outcome["outcome"], outcome["code"]) == ("REJECTED", "NOT_FOUND")
    assert outcome["message"] == missing["reportJobUpdates"]["results"][0]["message"]
    assert (await other.execute(JOB, {"id": job_id}))["job"] is None
    provider = gateway.client(PROVIDER)
    assert (await provider.execute(JOB, {"id": job_id}))["job"]["permissions"]["myself"] == [
        "PROVIDER",
        "READ",
        "EDIT",
    ]
    await alice.execute(CANCEL, {"ids": [job_id]})


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_no_token_or_a_wrong_token_is_unauthenticated(
    sqlite_gateway: Gateway, token: str | None
) -> None:
    client = sqlite_gateway.client(token)
    for document in (JOBS, "{ applications { name } }", "{ latestUpdateCursor }"):
        body = await client.raw(document)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    submitted = await client.raw(
        "mutation($i: SubmitJobsInput!) { submitJobs(input: $i) { jobs { id } } }",
        {"i": {"jobs": [job_spec()]}},
    )
    assert [e["extensions"]["code"] for e in submitted["errors"]] == ["UNAUTHENTICATED"]


async def test_a_websocket_without_a_token_gets_unauthenticated(sqlite_gateway: Gateway) -> None:
    with pytest.raises(GraphQLError) as missing:
        async with subscribe(sqlite_gateway, WATCH, token=None) as stream:
            await stream.next()
    assert missing.value.codes == ["UNAUTHENTICATED"]


async def test_a_websocket_with_a_wrong_token_is_closed_as_forbidden(
    sqlite_gateway: Gateway,
) -> None:
    with pytest.raises(ConnectionClosed) as refused:
        async with subscribe(sqlite_gateway, WATCH, token="wrong") as stream:
            await stream.next()
    assert refused.value.rcvd is not None
    assert refused.value.rcvd.code == 4403


async def test_a_legacy_websocket_with_a_wrong_token_gets_a_connection_error(
    sqlite_gateway: Gateway,
) -> None:
    with pytest.raises(GraphQLError) as refused:
        async with subscribe(sqlite_gateway, WATCH, token="wrong", protocol="graphql-ws") as s:
            await s.next()
    assert refused.value.codes == ["UNAUTHENTICATED"]


async def test_tokens_never_reach_the_logs(
    sqlite_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await sqlite_gateway.client("wrong-token-value").raw(JOBS)
    await submit(sqlite_gateway.client(ALICE), job_spec())
    assert "wrong-token-value" not in caplog.text
    assert ALICE not in caplog.text
