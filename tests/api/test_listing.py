"""jobs: filters, ordering, cursor pagination and the cost of nested data."""

from __future__ import annotations

import pytest

from jobgate import cursors
from jobgate.storage.base import JobFilter, JobOrder
from tests.api.documents import JOBS, job_spec, submit, wait_for_state
from tests.gateway import ALICE, Gateway

NESTED = """
query($first: Int) {
  jobs(first: $first) {
    nodes {
      id
      updates { cursor state }
      last: updates(last: 1) { state }
      status { state resolvedProduct { name } resolvedApplication { name } }
      permissions { myself }
    }
  }
}
"""


async def test_nested_updates_cost_a_bounded_number_of_round_trips(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    backlog = (
        job_spec("sleep", provider="batch", product="cpu-batch", seconds=600) for _ in range(100)
    )
    await submit(alice, *backlog, project="proj-a")
    first_id = await alice.execute(JOBS, {"orderBy": {"field": "CREATED_AT", "direction": "ASC"}})
    await wait_for_state(alice, first_id["jobs"]["nodes"][0]["id"], "RUNNING")
    trips = gateway.services.store.round_trips
    costs = {}
    for first in (10, 100):
        before = dict(trips.by_kind)
        data = await alice.execute(NESTED, {"first": first})
        # The update feed reads the log in the background; count what this query caused.
        costs[first] = sum(
            count - before.get(kind, 0)
            for kind, count in trips.by_kind.items()
            if kind not in ("read_log", "latest")
        )
        nodes = data["jobs"]["nodes"]
        assert len(nodes) == first
        assert all(node["updates"][0]["state"] == "IN_QUEUE" for node in nodes)
        assert all(node["status"]["resolvedProduct"]["name"] == "cpu-batch" for node in nodes)
        assert all(len(node["last"]) == 1 for node in nodes)
    # One page query, the log's horizon (kept renderings are valid under it), plus one batched
    # load per distinct `updates(last:)` argument.
    assert costs == {10: 4, 100: 4}


async def test_pages_follow_cursors_to_the_end(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    await submit(alice, *(job_spec(name=name, message=name) for name in names))
    order = {"field": "NAME", "direction": "ASC"}
    seen: list[str] = []
    after = None
    while True:
        page = (await alice.execute(JOBS, {"orderBy": order, "first": 2, "after": after}))["jobs"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [node["specification"]["name"] for node in page["nodes"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(names)


async def test_filters_narrow_the_list(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (echo_id,) = await submit(alice, job_spec(name="needle in a haystack"))
    (sleep_id,) = await submit(alice, job_spec("sleep", seconds=30))

    async def matching(job_filter: dict[str, object]) -> list[str]:
        data = await alice.execute(JOBS, {"filter": job_filter})
        return [node["id"] for node in data["jobs"]["nodes"]]

    assert await matching({"application": "sleep"}) == [sleep_id]
    assert await matching({"query": "NEEDLE"}) == [echo_id]
    assert await matching({"ids": [echo_id, "777777"]}) == [echo_id]
    assert await matching({"createdAfter": "2999-01-01T00:00:00Z"}) == []
    assert sorted(await matching({"createdBefore": "2999-01-01T00:00:00+02:00"})) == sorted(
        [echo_id, sleep_id]
    )
    assert await matching({"provider": "other"}) == []
    await alice.execute(
        "mutation($i: [ID!]!) { cancelJobs(input: {ids: $i}) { jobs { id } } }", {"i": [sleep_id]}
    )


async def test_bad_listing_arguments_get_coded_errors(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    await submit(alice, job_spec(), job_spec(message="2"))
    first_page = await alice.execute(JOBS, {"first": 1})
    cursor = first_page["jobs"]["pageInfo"]["endCursor"]
    cases = [
        ({"first": 1, "after": cursor, "filter": {"application": "echo"}}, "INVALID_CURSOR"),
        ({"after": "garbage"}, "INVALID_CURSOR"),
        ({"first": 0}, "BAD_USER_INPUT"),
        ({"first": 1001}, "BAD_USER_INPUT"),
        ({"filter": {"createdAfter": "2024-01-01T00:00:00"}}, "BAD_USER_INPUT"),
    ]
    for variables, code in cases:
        body = await alice.raw(JOBS, variables)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], variables


async def test_a_document_that_does_not_fit_the_schema_is_a_validation_error(
    sqlite_gateway: Gateway,
) -> None:
    body = await sqlite_gateway.client(ALICE).raw("{ jobs { nodes { colour } } }")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_page_makes_only_the_cursors_its_query_asks_for(
    sqlite_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page read as `nodes` encodes no cursor (nor hashes its filter for them)."""
    hashed: list[object] = []
    fingerprint = cursors.fingerprint

    def counted(job_filter: JobFilter, order: JobOrder) -> str:
        hashed.append(job_filter)
        return fingerprint(job_filter, order)

    monkeypatch.setattr(cursors, "fingerprint", counted)
    alice = sqlite_gateway.client(ALICE)
    await submit(alice, *(job_spec(message=str(n)) for n in range(3)))
    page = await alice.execute("query { jobs(first: 2) { nodes { id } } }")
    assert len(page["jobs"]["nodes"]) == 2
    assert hashed == []
    page = await alice.execute("query { jobs(first: 2) { nodes { id } pageInfo { endCursor } } }")
    assert len(hashed) == 1
    after = page["jobs"]["pageInfo"]["endCursor"]
    rest = await alice.execute(
        "query($after: String) { jobs(first: 2, after: $after) { edges { cursor node { id } } } }",
        {"after": after},
    )
    ids = [node["id"] for node in page["jobs"]["nodes"]]
    ids += [edge["node"]["id"] for edge in rest["jobs"]["edges"]]
    assert len(set(ids)) == 3
    assert all(edge["cursor"] for edge in rest["jobs"]["edges"])
