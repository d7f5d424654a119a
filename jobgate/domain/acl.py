"""A job's access control list, as UCloud's: entries granting READ and/or EDIT to a user or to
a group of the job's project. Who may do what with them is `jobgate.access`'s to say."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Permission(enum.StrEnum):
    """UCloud's permissions on a resource, in the order they are shown."""

    ADMIN = "ADMIN"
    READ = "READ"
    EDIT = "EDIT"
    PROVIDER = "PROVIDER"


# Only these may be granted through an ACL; ADMIN comes from the workspace, PROVIDER from the
# product.
GRANTABLE = frozenset({Permission.READ, Permission.EDIT})
# The group every member of a project is in.
ALL_MEMBERS = "all"


@dataclass(frozen=True, slots=True)
class AclEntity:
    """A user, or a group of a project: exactly one of the two."""

    username: str | None = None
    project: str | None = None
    group: str | None = None
    # How stores index it: `user:<name>` or `group:<project>/<group>` (neither a username nor
    # a project id holds ':' or '/'). Made once: visibility checks ask it of every entry.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.username is not None:
            key = f"user:{self.username}"
        else:
            key = f"group:{self.project}/{self.group}"
        object.__setattr__(self, "key", key)

    @classmethod
    def user(cls, username: str) -> AclEntity:
        return cls(username=username)

    @classmethod
    def project_group(cls, project: str, group: str) -> AclEntity:
        return cls(project=project, group=group)

    @classmethod
    def from_key(cls, key: str) -> AclEntity:
        kind, _, name = key.partition(":")
        if kind == "user":
            return cls.user(name)
        project, _, group = name.partition("/")
        return cls.project_group(project, group)


@dataclass(frozen=True, slots=True)
class AclEntry:
    entity: AclEntity
    permissions: frozenset[Permission]

    def to_doc(self) -> dict[str, object]:
        return {"entity": self.entity.key, "permissions": sorted(self.permissions)}

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> AclEntry:
        permissions = doc["permissions"]
        assert isinstance(permissions, list)
        return cls(
            AclEntity.from_key(str(doc["entity"])), frozenset(Permission(p) for p in permissions)
        )


Acl = tuple[AclEntry, ...]


def acl_to_docs(acl: Acl) -> list[dict[str, object]]:
    return [entry.to_doc() for entry in acl]


def acl_from_docs(docs: list[dict[str, object]] | None) -> Acl:
    return tuple(AclEntry.from_doc(doc) for doc in docs or [])


def readers(acl: Acl) -> list[str]:
    """The keys of the entities an ACL lets read the job (EDIT cannot be used unread)."""
    return sorted({entry.entity.key for entry in acl if entry.permissions & GRANTABLE})
