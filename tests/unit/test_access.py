"""`jobgate.access`, the one owner of who may do what: every role on every kind of job, and the
visibility the stores turn into queries agreeing with it."""

from __future__ import annotations

import pytest

from jobgate.access import (
    Project,
    Projects,
    ProviderIdentity,
    User,
    changed_acl,
    initial_acl,
    permissions_on,
)
from jobgate.domain.acl import AclEntity, AclEntry, Permission
from jobgate.domain.job import Job, JobStatus
from jobgate.domain.values import ResourceOwner
from tests.factories import spec

PROJECTS = Projects(
    [
        Project(
            "lab",
            "The lab",
            pis=frozenset({"pia"}),
            admins=frozenset({"adam"}),
            groups=(("analysts", frozenset({"ann"})),),
        )
    ]
)
READ, EDIT, ADMIN = Permission.READ, Permission.EDIT, Permission.ADMIN


def job(created_by: str, project: str | None, *entries: AclEntry) -> Job:
    owner = ResourceOwner(created_by, project)
    return Job("1", owner, spec(), JobStatus(), 0, 1, initial_acl(owner) + entries)


def grant(entity: AclEntity, *permissions: Permission) -> AclEntry:
    return AclEntry(entity, frozenset(permissions))


MEMBERS = {"mem", "ann"}  # claimed membership; pia and adam are members by their roles


def user(name: str) -> User:
    return PROJECTS.user(name, {"lab"} if name in MEMBERS else ())


@pytest.mark.parametrize(
    ("caller", "the_job", "expected"),
    [
        # A project job made by mem: its PI and admin run it, mem on its ACL, no one else.
        ("pia", job("mem", "lab"), [ADMIN, READ, EDIT]),
        ("adam", job("mem", "lab"), [ADMIN, READ, EDIT]),
        ("mem", job("mem", "lab"), [READ, EDIT]),
        ("ann", job("mem", "lab"), []),
        ("out", job("mem", "lab"), []),
        # Shared with a group: its members; EDIT alone still reads.
        ("ann", job("mem", "lab", grant(AclEntity.project_group("lab", "analysts"), EDIT)),
         [READ, EDIT]),
        ("ann", job("mem", "lab", grant(AclEntity.project_group("lab", "all"), READ)), [READ]),
        # A grant to someone outside the project gives nothing.
        ("out", job("mem", "lab", grant(AclEntity.user("out"), READ, EDIT)), []),
        # Personal: its creator everything, a user it is shared with what they got.
        ("mem", job("mem", None), [ADMIN, READ, EDIT]),
        ("pia", job("mem", None), []),
        ("out", job("mem", None, grant(AclEntity.user("out"), READ)), [READ]),
    ],
)  # fmt: skip
def test_every_role_on_every_kind_of_job(caller: str, the_job: Job, expected: list[str]) -> None:
    identity = user(caller)
    assert permissions_on(identity, the_job) == expected
    assert identity.visibility.allows(the_job) == bool(expected)


def test_a_provider_has_its_own_jobs_only() -> None:
    mine = job("mem", "lab")
    assert permissions_on(ProviderIdentity(mine.provider), mine) == [
        Permission.PROVIDER,
        READ,
        EDIT,
    ]
    assert permissions_on(ProviderIdentity("elsewhere"), mine) == []


def test_roles_and_groups_come_from_the_projects_config() -> None:
    (pia,) = PROJECTS.user("pia").memberships
    assert (pia.project, pia.role.value, pia.groups) == ("lab", "PI", frozenset())
    (ann,) = PROJECTS.user(
        "ann", {"lab", "/ignored-not-a-project"} - {"/ignored-not-a-project"}
    ).memberships
    assert (ann.role.value, ann.groups) == ("USER", frozenset({"analysts"}))
    # Listed in a group without naming the project: not a member.
    assert PROJECTS.user("ann").memberships == ()


def test_an_acl_change_widens_entries_and_removes_entities() -> None:
    carol = AclEntity.user("carol")
    acl = changed_acl((), [grant(carol, READ)], [])
    acl = changed_acl(acl, [grant(carol, EDIT)], [])
    assert acl == (grant(carol, READ, EDIT),)
    assert changed_acl(acl, [], [carol]) == ()
