"""Who is calling: a user (with projects) or a provider, identified by a static bearer token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from jobgate.domain.job import Job
from jobgate.errors import UserErrorCode
from jobgate.storage.base import Visibility


@dataclass(frozen=True, slots=True)
class User:
    username: str
    projects: frozenset[str]

    @property
    def visibility(self) -> Visibility:
        return Visibility.for_user(self.username, self.projects)


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    provider_id: str

    @property
    def visibility(self) -> Visibility:
        return Visibility.for_provider(self.provider_id)


Identity = User | ProviderIdentity


class Permission:
    READ = "READ"
    EDIT = "EDIT"
    ADMIN = "ADMIN"
    PROVIDER = "PROVIDER"


def permissions_on(identity: Identity, job: Job) -> list[str]:
    """What `identity` may do with `job` (empty when it may not even read it)."""
    if not identity.visibility.allows(job):
        return []
    if isinstance(identity, ProviderIdentity):
        return [Permission.PROVIDER, Permission.READ, Permission.EDIT]
    if job.owner.created_by == identity.username:
        return [Permission.ADMIN, Permission.READ, Permission.EDIT]
    return [Permission.READ, Permission.EDIT]


def report_refusal(provider_id: str, job: Job | None) -> tuple[UserErrorCode, str] | None:
    """Why a provider may not report on `job` (its updates or its log lines), if it may not:
    only a job's own provider may. Another provider's job is answered as a missing one, word for
    word, so a provider cannot tell which job ids exist elsewhere."""
    if job is None or job.provider != provider_id:
        return UserErrorCode.NOT_FOUND, "no such job"
    return None


class Authenticator:
    """Maps bearer tokens to identities. Tokens are compared in constant time, as digests, and
    are never logged."""

    def __init__(self, tokens: Mapping[str, Identity]) -> None:
        self._by_digest = [(_digest(token), identity) for token, identity in tokens.items()]

    def identify(self, token: str) -> Identity | None:
        wanted = _digest(token)
        found: Identity | None = None
        # Look at every entry, so the time taken does not tell how many tokens matched early.
        for digest, identity in self._by_digest:
            if hmac.compare_digest(digest, wanted):
                found = identity
        return found

    def from_authorization(self, header: str | None) -> Identity | None:
        """The identity of an `Authorization: Bearer <token>` value, if it names one."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.identify(token.strip())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
