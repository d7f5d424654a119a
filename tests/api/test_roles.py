"""UCloud's project roles and job ACLs (ucloud-jobs.md §7), on both stores: who reads, changes
and shares which job, sharing with a user and with a group, and a share taken back from a
watcher who is subscribed at that moment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.api.documents import (
    CANCEL,
    EXTEND,
    JOBS,
    REPORT,
    WATCH,
    get_job,
    job_spec,
    latest_cursor,
    submit,
    wait_for_state,
)
from tests.gateway import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GRACE,
    PROVIDER,
    Gateway,
    GraphQLClient,
    GraphQLError,
    subscribe,
)

UPDATE_ACL = """
mutation($changes: [JobAclChange!]!) {
  updateJobAcl(input: {changes: $changes}) {
    jobs { id permissions { myself others { entity { __typename ... on AclUser { username }
      ... on AclProjectGroup { projectId group } } permissions } } }
    userErrors { index field code message jobId }
  }
}
"""
ME = "{ me { username projects { projectId title role groups } } }"
PERMISSIONS = "query($id: ID!) { job(id: $id) { id permissions { myself } } }"
OTHERS = """query($id: ID!) {
  job(id: $id) { permissions { others { entity { ... on AclUser { username } } permissions } } }
}"""


def user(name: str) -> dict[str, Any]:
    return {"username": name}


def group(name: str, project: str = "proj-a") -> dict[str, Any]:
    return {"projectGroup": {"projectId": project, "group": name}}


def grant(entity: dict[str, Any], *permissions: str) -> dict[str, Any]:
    return {"entity": entity, "permissions": list(permissions)}


async def share(
    client: GraphQLClient,
    job_id: str,
    added: Sequence[Any] = (),
    deleted: Sequence[Any] = (),
) -> dict[str, Any]:
    data = await client.execute(
        UPDATE_ACL, {"changes": [{"jobId": job_id, "added": list(added), "deleted": list(deleted)}]}
    )
    payload: dict[str, Any] = data["updateJobAcl"]
    return payload


async def myself(client: GraphQLClient, job_id: str) -> list[str] | None:
    job = (await client.execute(PERMISSIONS, {"id": job_id}))["job"]
    return None if job is None else list(job["permissions"]["myself"])


async def listed(client: GraphQLClient, job_id: str) -> bool:
    data = await client.execute(JOBS, {"filter": {"ids": [job_id]}})
    return [node["id"] for node in data["jobs"]["nodes"]] == [job_id]


async def edit_outcome(client: GraphQLClient, job_id: str) -> str:
    """What extending the job by a minute answers: OK, or the user error's code."""
    data = await client.execute(
        EXTEND, {"requests": [{"jobId": job_id, "requestedTime": {"minutes": 1}}]}
    )
    errors = data["extendJobs"]["userErrors"]
    return "OK" if not errors else str(errors[0]["code"])


async def admin_outcome(client: GraphQLClient, job_id: str) -> str:
    """What sharing the job with bob answers (taken back at once when it works)."""
    payload = await share(client, job_id, [grant(user("bob"), "READ")])
    if payload["userErrors"]:
        return str(payload["userErrors"][0]["code"])
    await share(client, job_id, deleted=[user("bob")])
    return "OK"


ROLES = [
    # caller, what `permissions.myself` says, listed, EDIT, ADMIN
    ("alice (PI)", ALICE, ["ADMIN", "READ", "EDIT"], True, "OK", "OK"),
    ("dave (admin)", DAVE, ["ADMIN", "READ", "EDIT"], True, "OK", "OK"),
    ("carol (member, its creator)", CAROL, ["READ", "EDIT"], True, "OK", "FORBIDDEN"),
    ("grace (member)", GRACE, None, False, "NOT_FOUND", "NOT_FOUND"),
    ("bob (not a member)", BOB, None, False, "NOT_FOUND", "NOT_FOUND"),
]


async def test_every_role_gets_exactly_what_ucloud_gives_it(gateway: Gateway) -> None:
    carol = gateway.client(CAROL)
    (job_id,) = await submit(carol, job_spec("sleep", seconds=60), project="proj-a")
    await wait_for_state(carol, job_id, "RUNNING")
    seen = []
    for role, token, permissions, in_list, edit, admin in ROLES:
        client = gateway.client(token)
        got = (
            await myself(client, job_id),
            await listed(client, job_id),
            await edit_outcome(client, job_id),
            await admin_outcome(client, job_id),
        )
        seen.append((role, *got))
        assert got == (permissions, in_list, edit, admin), role
    # The job's provider: PROVIDER, READ and EDIT, but user operations are for users.
    provider = gateway.client(PROVIDER)
    assert await myself(provider, job_id) == ["PROVIDER", "READ", "EDIT"]
    with pytest.raises(GraphQLError) as refused:
        await share(provider, job_id, [grant(user("bob"), "READ")])
    assert refused.value.codes == ["FORBIDDEN"]
    # Only carol's own job counts as hers: a colleague's job in the project is not.
    (grace_job,) = await submit(
        gateway.client(GRACE), job_spec(message="grace's"), project="proj-a"
    )
    assert await myself(carol, grace_job) is None
    await carol.execute(CANCEL, {"ids": [job_id]})


async def test_a_job_shared_with_a_user_and_with_a_group_reaches_exactly_them(
    gateway: Gateway,
) -> None:
    alice, carol = gateway.client(ALICE), gateway.client(CAROL)
    grace, bob = gateway.client(GRACE), gateway.client(BOB)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=60), project="proj-a")
    assert await myself(carol, job_id) is None
    payload = await share(alice, job_id, [grant(group("analysts"), "READ", "EDIT")])
    assert payload["userErrors"] == []
    others = payload["jobs"][0]["permissions"]["others"]
    assert {"entity": {"__typename": "AclProjectGroup", "projectId": "proj-a",
                       "group": "analysts"}, "permissions": ["READ", "EDIT"]} in others  # fmt: skip
    assert await myself(carol, job_id) == ["READ", "EDIT"]  # carol is an analyst
    assert await myself(grace, job_id) is None  # grace is not
    await share(alice, job_id, [grant(user("grace"), "READ")])
    assert await myself(grace, job_id) == ["READ"]
    assert await edit_outcome(grace, job_id) == "FORBIDDEN"  # READ is not EDIT
    # Bob is no member of proj-a: a grant names him, but a project's jobs stay in it.
    await share(alice, job_id, [grant(user("bob"), "READ")])
    assert await myself(bob, job_id) is None
    # Only ADMINs see who else was granted access.
    job = (await carol.execute(OTHERS, {"id": job_id}))["job"]
    assert job["permissions"]["others"] is None
    # Every member: the project's group "all".
    (other,) = await submit(alice, job_spec(message="for all"), project="proj-a")
    await share(alice, other, [grant(group("all"), "READ")])
    assert await myself(grace, other) == ["READ"]
    await alice.execute(CANCEL, {"ids": [job_id]})


async def test_a_personal_job_is_shared_with_users_and_what_cannot_be_shared_is_refused(
    gateway: Gateway,
) -> None:
    alice, bob = gateway.client(ALICE), gateway.client(BOB)
    (personal,) = await submit(alice, job_spec(message="mine"))
    assert (await share(alice, personal, [grant(user("bob"), "READ", "EDIT")]))["userErrors"] == []
    assert await myself(bob, personal) == ["READ", "EDIT"]
    (project_job,) = await submit(alice, job_spec(message="ours"), project="proj-a")
    refusals = [
        (personal, [grant(group("all"), "READ")]),  # a personal job has no groups
        (project_job, [grant(group("all", project="proj-b"), "READ")]),  # another project's
        (project_job, [grant(group("nobody"), "READ")]),  # no such group
        (project_job, [grant(user("bob"), "ADMIN")]),  # ADMIN is not granted
        (project_job, [grant(user("bob"))]),  # nothing granted
        (project_job, [grant(user("../etc"), "READ")]),  # not a username
        (project_job, [grant(user(""), "READ")]),  # no username at all
    ]
    for job_id, added in refusals:
        payload = await share(alice, job_id, added)
        assert payload["jobs"] == [], added
        ((code, field),) = [(e["code"], e["field"]) for e in payload["userErrors"]]
        assert code == "INVALID_PARAMETER", added
        assert field[:4] == ["changes", "0", "added", "0"], field
    # Nothing was stored on the way: the ACL holds its creator alone.
    job = (await alice.execute(OTHERS, {"id": project_job}))["job"]
    assert job["permissions"]["others"] == [
        {"entity": {"username": "alice"}, "permissions": ["READ", "EDIT"]}
    ]


async def test_a_share_taken_back_stops_the_updates_of_a_subscribed_watcher(
    gateway: Gateway,
) -> None:
    alice, grace = gateway.client(ALICE), gateway.client(GRACE)
    provider = gateway.client(PROVIDER)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=60), project="proj-a")
    await wait_for_state(alice, job_id, "RUNNING")
    await share(alice, job_id, [grant(user("grace"), "READ")])
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, WATCH, after, token=GRACE) as everything,
        subscribe(gateway, WATCH, {"ids": [job_id]}, token=GRACE) as this_job,
        subscribe(gateway, WATCH, after) as pi,
    ):
        await provider.execute(REPORT, {"updates": [{"jobId": job_id, "status": "one"}]})
        assert (await everything.next())["jobUpdates"]["update"]["status"] == "one"
        history = await this_job.take(3)  # IN_QUEUE, RUNNING, "one"
        assert history[-1]["jobUpdates"]["update"]["status"] == "one"
        assert (await pi.next())["jobUpdates"]["update"]["status"] == "one"
        await share(alice, job_id, deleted=[user("grace")])
        await provider.execute(REPORT, {"updates": [{"jobId": job_id, "status": "two"}]})
        assert (await pi.next())["jobUpdates"]["update"]["status"] == "two"
        for stream in (everything, this_job):
            with pytest.raises(TimeoutError):
                await stream.next(timeout=1.5)
    assert await get_job(grace, job_id) is None
    await alice.execute(CANCEL, {"ids": [job_id]})


async def test_me_tells_a_user_their_projects_roles_and_groups(gateway: Gateway) -> None:
    alice = await gateway.client(ALICE).execute(ME)
    assert alice["me"] == {
        "username": "alice",
        "projects": [
            {"projectId": "proj-a", "title": "Project A", "role": "PI", "groups": ["all"]}
        ],
    }
    carol = await gateway.client(CAROL).execute(ME)
    assert carol["me"]["projects"] == [
        {"projectId": "proj-a", "title": "Project A", "role": "USER",
         "groups": ["all", "analysts"]}
    ]  # fmt: skip
    dave = await gateway.client(DAVE).execute(ME)  # an admin by the project alone
    assert [p["role"] for p in dave["me"]["projects"]] == ["ADMIN"]
    assert (await gateway.client(PROVIDER).execute(ME))["me"] is None
