"""Who may do what with a job: UCloud's workspaces, project roles and job ACLs
(`ucloud-jobs.md` §7). The one owner of these rules: stores turn `Visibility` into queries,
services ask `permissions_on`, the feed and the renderer ask both.

- A personal job: its creator has ADMIN, READ and EDIT; users it is shared with what they got.
- A project job: the project's PIs and admins have ADMIN, READ and EDIT; a plain member has what
  the job's ACL gives them or a group of theirs (the creator is put on it at submit, READ and
  EDIT); anyone else nothing, whatever the ACL says (a member who leaves loses their grants).
- A provider has PROVIDER, READ and EDIT on the jobs of its products.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from jobgate.domain.acl import ALL_MEMBERS, GRANTABLE, Acl, AclEntity, AclEntry, Permission
from jobgate.domain.job import Job
from jobgate.domain.values import ResourceOwner
from jobgate.errors import UserErrorCode

FULL = (Permission.ADMIN, Permission.READ, Permission.EDIT)
AS_PROVIDER = (Permission.PROVIDER, Permission.READ, Permission.EDIT)
# What the creator of a project job is given on its ACL.
CREATOR_GRANT = frozenset({Permission.READ, Permission.EDIT})


class ProjectRole(enum.StrEnum):
    PI = "PI"
    ADMIN = "ADMIN"
    USER = "USER"


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's place in one project: their role and the project's groups they are in."""

    project: str
    role: ProjectRole
    groups: frozenset[str] = frozenset()  # besides ALL_MEMBERS, which every member is in


@dataclass(frozen=True, slots=True)
class User:
    username: str
    memberships: tuple[Membership, ...] = ()
    # The Unix account mapped to them (a static `unix_user`, or their sign-in's claim), for
    # providers that run jobs as their users' accounts (`jobgate.unix`).
    unix_user: str | None = None
    # Derived from the memberships once: the rules ask it for every job a caller is shown,
    # and for every update a watcher is sent.
    visibility: Visibility = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        managed = frozenset(m.project for m in self.memberships if m.role is not ProjectRole.USER)
        entities = {AclEntity.user(self.username).key}
        for m in self.memberships:
            for group in m.groups | {ALL_MEMBERS}:
                entities.add(AclEntity.project_group(m.project, group).key)
        visibility = Visibility(
            username=self.username,
            managed=managed,
            member=frozenset(m.project for m in self.memberships) - managed,
            entities=frozenset(entities),
        )
        object.__setattr__(self, "visibility", visibility)

    @classmethod
    def member_of(cls, username: str, projects: Iterable[str]) -> User:
        """A plain member of `projects` (no role, no groups): for tests and tools."""
        return cls(username, tuple(Membership(p, ProjectRole.USER) for p in sorted(projects)))

    @property
    def projects(self) -> frozenset[str]:
        return self.visibility.managed | self.visibility.member

    @property
    def managed(self) -> frozenset[str]:
        """The projects this user is a PI or an admin of: every job of them is theirs to run."""
        return self.visibility.managed

    @property
    def entities(self) -> frozenset[str]:
        """The ACL entities that stand for this user: themselves, and each group of theirs."""
        return self.visibility.entities


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    provider_id: str

    @property
    def visibility(self) -> Visibility:
        return Visibility(provider=self.provider_id)


Identity = User | ProviderIdentity


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which jobs a caller may read: everything, one provider's, or a user's: their personal
    jobs, every job of the projects they manage, and the jobs of the projects they are a member
    of (or personal ones) whose ACL names one of `entities`. Stores express it as a query."""

    everything: bool = False
    provider: str | None = None
    username: str | None = None
    managed: frozenset[str] = frozenset()
    member: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()

    def allows(self, job: Job) -> bool:
        if self.everything:
            return True
        if self.provider is not None:
            return job.provider == self.provider
        project = job.owner.project
        if project is None and job.owner.created_by == self.username:
            return True
        if project in self.managed:
            return True
        if project is None or project in self.member:
            # A loop, not any() over a generator: the feed asks this of every watcher for
            # every update.
            for entry in job.acl:
                if entry.entity.key in self.entities:
                    return True
        return False


@dataclass(frozen=True, slots=True)
class Project:
    """A project of the config (`[[projects]]`): its PIs, admins and groups."""

    id: str
    title: str | None = None
    pis: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    groups: tuple[tuple[str, frozenset[str]], ...] = ()


class Projects:
    """The projects the site defined, and what a user is in them. Members are the PIs, the
    admins, and every user whose static `projects` list or identity provider's groups claim
    names the project (a project nobody defined has plain members only). A group lists users
    who are members; it makes no one a member."""

    def __init__(self, projects: Iterable[Project] = ()) -> None:
        self._by_id = {project.id: project for project in projects}

    def title(self, project_id: str) -> str | None:
        project = self._by_id.get(project_id)
        return None if project is None else project.title

    def groups_of(self, project_id: str) -> frozenset[str]:
        """The groups defined in a project, besides `all`."""
        project = self._by_id.get(project_id)
        return frozenset() if project is None else frozenset(name for name, _ in project.groups)

    def user(
        self, username: str, claimed: Iterable[str] = (), unix_user: str | None = None
    ) -> User:
        ids = set(claimed) | {p.id for p in self._by_id.values() if username in p.pis | p.admins}
        memberships = []
        for project_id in sorted(ids):
            project = self._by_id.get(project_id, Project(project_id))
            if username in project.pis:
                role = ProjectRole.PI
            elif username in project.admins:
                role = ProjectRole.ADMIN
            else:
                role = ProjectRole.USER
            groups = frozenset(name for name, names in project.groups if username in names)
            memberships.append(Membership(project_id, role, groups))
        return User(username, tuple(memberships), unix_user)


def permissions_on(identity: Identity, job: Job) -> list[Permission]:
    """What `identity` may do with `job`, in UCloud's order (empty: it may not even read it)."""
    if isinstance(identity, ProviderIdentity):
        return list(AS_PROVIDER) if job.provider == identity.provider_id else []
    visibility = identity.visibility
    project = job.owner.project
    if project is None and job.owner.created_by == identity.username:
        return list(FULL)
    if project is not None and project in visibility.managed:
        return list(FULL)
    if project is not None and project not in visibility.member:
        return []
    entities = visibility.entities
    granted: set[Permission] = set()
    for entry in job.acl:
        if entry.entity.key in entities:
            granted |= entry.permissions
    if granted:
        granted.add(Permission.READ)  # EDIT cannot be used on a job one cannot read
    return [p for p in FULL if p in granted]


def initial_acl(owner: ResourceOwner) -> Acl:
    """A new job's ACL: a project job's creator is on it (READ and EDIT), so that a plain member
    sees and controls their own jobs; a personal job's creator needs no entry."""
    if owner.project is None:
        return ()
    return (AclEntry(AclEntity.user(owner.created_by), CREATOR_GRANT),)


def acl_problem(job: Job, entity: AclEntity, permissions: Sequence[Permission]) -> str | None:
    """Why `entity` cannot be given `permissions` on `job`, if it cannot: only READ and EDIT
    are grantable; a group must be one of the job's own project; a personal job is shared with
    users only."""
    if not permissions:
        return "name at least one permission (READ, EDIT)"
    if not set(permissions) <= GRANTABLE:
        return "only READ and EDIT can be granted"
    if entity.username is None:
        if job.owner.project is None:
            return "a personal job is shared with users, not with groups"
        if entity.project != job.owner.project:
            return "share a job with a group of its own project"
    return None


def changed_acl(acl: Acl, added: Sequence[AclEntry], deleted: Sequence[AclEntity]) -> Acl:
    """`acl` with `deleted` entities removed, then `added` ones given their permissions (an
    entity already there gets the union: an entry widens, as UCloud's updateAcl does)."""
    by_entity = {entry.entity: entry.permissions for entry in acl}
    for entity in deleted:
        by_entity.pop(entity, None)
    for entry in added:
        by_entity[entry.entity] = by_entity.get(entry.entity, frozenset()) | entry.permissions
    return tuple(
        AclEntry(entity, perms)
        for entity, perms in sorted(by_entity.items(), key=lambda item: item[0].key)
    )


def report_refusal(provider_id: str, job: Job | None) -> tuple[UserErrorCode, str] | None:
    """Why a provider may not report on `job` (its updates or its log lines), if it may not:
    only a job's own provider may. Another provider's job is answered as a missing one, word for
    word, so a provider cannot tell which job ids exist elsewhere."""
    if job is None or job.provider != provider_id:
        return UserErrorCode.NOT_FOUND, "no such job"
    return None
