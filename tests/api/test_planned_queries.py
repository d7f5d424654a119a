"""Queries completed by plans (`jobgate/schema/planned.py`) answer exactly what graphql-core
alone answers, on the real schema and stores: the gateway serves each document over HTTP, and
the same services behind an endpoint whose queries graphql-core completes (no plans, no kept
jobs) serve it again; the two answers must be the same JSON, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import httpx

from jobgate.app import JobgateGraphQL
from tests.api.documents import JOB_FIELDS, JOBS, job_spec, submit, wait_for_state
from tests.gateway import ALICE, CAROL, Gateway

SHARE = """
mutation($id: ID!) {
  updateJobAcl(input: {changes: [{jobId: $id,
    added: [{entity: {username: "carol"}, permissions: [READ]},
            {entity: {projectGroup: {projectId: "proj-a", group: "analysts"}},
             permissions: [READ, EDIT]}]}]}) {
    userErrors { code message }
  }
}
"""

DOCUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "every field of a job, on a page": (
        f"query {{ jobs(first: 20) {{ nodes {{ {JOB_FIELDS} }} }} }}",
        {},
    ),
    "the listing a frontend pages with": (JOBS, {"first": 3}),
    "fragments, aliases, typenames and updates by argument": (
        """
        query($last: Int, $withUpdates: Boolean!) {
          page: jobs(first: 10, orderBy: {field: NAME, direction: ASC}) {
            __typename
            edges {
              cursor
              node {
                ...Job
                newest: updates(last: $last) { state status }
                none: updates(last: 0) { cursor }
                belowZero: updates(last: -2) { cursor }
              }
            }
            pageInfo { hasNextPage endCursor }
          }
        }
        fragment Job on Job {
          __typename id
          ... on Job { status { state __typename } }
          all: updates @include(if: $withUpdates) { cursor timestamp }
          permissions {
            myself
            others { permissions entity { __typename ... on AclUser { username }
                                          ... on AclProjectGroup { projectId group } } }
          }
        }
        """,
        {"last": 1, "withUpdates": True},
    ),
    "one job, and one that is not there": (
        f'query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} none: job(id: "99999") {{ id }} }}',
        {},
    ),
}


async def jobs_of_every_kind(gateway: Gateway) -> list[str]:
    """Finished jobs (one exits with 3) with parameters of several kinds, one shared with a user
    and a group (`permissions.others` lists both kinds of entity)."""
    alice = gateway.client(ALICE)
    ids = await submit(
        alice,
        job_spec("echo", message="hello", name="b-echo"),
        job_spec("fail", name="a-fail"),
        job_spec("shout", word="hi", times=2, loud=True, name="c-shout"),
        project="proj-a",
    )
    await wait_for_state(alice, ids[0], "SUCCESS")
    await wait_for_state(alice, ids[1], "SUCCESS", "FAILURE")
    await wait_for_state(alice, ids[2], "SUCCESS", "FAILURE")
    shared = await alice.execute(SHARE, {"id": ids[0]})
    assert shared["updateJobAcl"]["userErrors"] == []
    return ids


async def test_planned_answers_are_graphql_cores_byte_for_byte(gateway: Gateway) -> None:
    ids = await jobs_of_every_kind(gateway)
    graphql_core = JobgateGraphQL(gateway.services, graphiql=False, plans=False)
    transport = httpx.ASGITransport(app=graphql_core)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as reference:
        for token in (ALICE, CAROL):  # a PI sees the ACL; a member does not
            client = gateway.client(token)
            for name, (document, variables) in DOCUMENTS.items():
                variables = {"id": ids[0], **variables} if "$id" in document else variables
                planned = await client.raw(document, variables)
                response = await reference.post(
                    "/graphql",
                    json={"query": document, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
                expected = response.json()
                assert "errors" not in planned, (name, planned["errors"])
                assert json.dumps(planned) == json.dumps(expected), name
    # Each document showed what it selects (not a page of nothing compared to another).
    page = await gateway.client(ALICE).raw(*DOCUMENTS["every field of a job, on a page"])
    nodes = page["data"]["jobs"]["nodes"]
    assert {node["id"] for node in nodes} >= set(ids)
    kinds = {
        value["value"]["__typename"]
        for node in nodes
        for value in node["specification"]["parameters"]
    }
    assert kinds >= {"TextValue", "IntegerValue", "BooleanValue"}
