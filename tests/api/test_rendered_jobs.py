"""A page of jobs asked again is served from its jobs' kept renderings
(`jobgate/schema/rendered_jobs.py`) while they are what they were: each change a user could
see (an update, a share, the caller, the variables, retention) shows in the next answer."""

from __future__ import annotations

from typing import Any

from tests.api.documents import REPORT, job_spec, submit, wait_for_state
from tests.gateway import ALICE, BATCH_PROVIDER, CAROL, Gateway, GraphQLClient

PAGE = """
query($last: Int) {
  jobs(first: 10, orderBy: {field: CREATED_AT, direction: ASC}) {
    nodes {
      id
      status { state }
      updates(last: $last) { state status }
      permissions { myself others { entity { ... on AclUser { username } } } }
    }
  }
}
"""
SHARE = """
mutation($id: ID!, $username: String!) {
  updateJobAcl(input: {changes: [{jobId: $id,
    added: [{entity: {username: $username}, permissions: [READ]}]}]}) {
    userErrors { code message }
  }
}
"""


async def quiet_backlog(gateway: Gateway) -> list[str]:
    """Three jobs of proj-a on the one-at-a-time provider: the first runs for ten minutes,
    the others wait behind it. Nothing changes them after that but the test."""
    alice = gateway.client(ALICE)
    spec = job_spec("sleep", provider="batch", product="cpu-batch", seconds=600)
    ids = await submit(alice, spec, spec, spec, project="proj-a")
    await wait_for_state(alice, ids[0], "RUNNING")
    return ids


async def page(client: GraphQLClient, last: int | None = None) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = (await client.execute(PAGE, {"last": last}))["jobs"]["nodes"]
    return nodes


def store_calls(gateway: Gateway) -> dict[str, int]:
    """The store's round trips so far, by kind, but the update feed's own (in the background)."""
    counted = gateway.services.store.round_trips.by_kind
    return {kind: n for kind, n in counted.items() if kind not in ("read_log", "latest")}


def calls_since(gateway: Gateway, before: dict[str, int]) -> dict[str, int]:
    now = store_calls(gateway)
    return {kind: n - before.get(kind, 0) for kind, n in now.items() if n != before.get(kind, 0)}


async def test_a_page_asked_again_reads_no_updates_until_a_job_changes(gateway: Gateway) -> None:
    alice, batch = gateway.client(ALICE), gateway.client(BATCH_PROVIDER)
    ids = await quiet_backlog(gateway)
    first = await page(alice)
    assert [job["id"] for job in first] == ids

    before = store_calls(gateway)
    assert await page(alice) == first
    # The page and the log's horizon; no job's updates were read again.
    assert calls_since(gateway, before) == {"find_jobs": 1, "log_horizon": 1}

    reported = await batch.execute(
        REPORT, {"updates": [{"jobId": ids[1], "status": "still waiting for a node"}]}
    )
    assert reported["reportJobUpdates"]["results"][0]["outcome"] == "APPLIED"
    before = store_calls(gateway)
    changed = await page(alice)
    assert changed[1]["updates"][-1] == {"state": None, "status": "still waiting for a node"}
    assert changed[0] == first[0]
    assert changed[2] == first[2]
    # Only the changed job's updates were read.
    assert calls_since(gateway, before)["updates_of"] == 1


async def test_each_caller_sees_their_own_permissions_and_a_share_at_once(
    gateway: Gateway,
) -> None:
    alice, carol = gateway.client(ALICE), gateway.client(CAROL)
    ids = await quiet_backlog(gateway)
    (alices,) = [job for job in await page(alice) if job["id"] == ids[0]]
    assert alices["permissions"]["myself"] == ["ADMIN", "READ", "EDIT"]
    assert alices["permissions"]["others"] == [{"entity": {"username": "alice"}}]
    # Carol, a plain member of proj-a, sees nothing of alice's jobs until one is shared.
    assert await page(carol) == []

    shared = await alice.execute(SHARE, {"id": ids[0], "username": "carol"})
    assert shared["updateJobAcl"]["userErrors"] == []
    (alices,) = [job for job in await page(alice) if job["id"] == ids[0]]
    assert alices["permissions"]["others"] == [
        {"entity": {"username": "alice"}},
        {"entity": {"username": "carol"}},
    ]
    (carols,) = await page(carol)
    assert carols["id"] == ids[0]
    assert carols["permissions"] == {"myself": ["READ"], "others": None}
    assert carols["updates"] == alices["updates"]


async def test_the_same_document_with_other_variables_is_rendered_for_them(
    gateway: Gateway,
) -> None:
    alice = gateway.client(ALICE)
    await quiet_backlog(gateway)
    everything, newest, newest_two = await page(alice), await page(alice, 1), await page(alice, 2)
    running = everything[0]["updates"]
    assert [update["state"] for update in running][:2] == ["IN_QUEUE", "RUNNING"]
    assert newest[0]["updates"] == running[-1:]
    assert newest_two[0]["updates"] == running[-2:]
    assert await page(alice) == everything
