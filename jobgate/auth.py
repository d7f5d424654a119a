"""Who is calling: a user (with projects) or a provider, identified by a bearer token: a static
one from the config, or an access token of the site's OpenID Connect provider (`jobgate.oidc`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from jobgate.domain.job import Job
from jobgate.errors import UserErrorCode
from jobgate.oidc import OidcVerifier, TokenRejected
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


@dataclass(frozen=True, slots=True)
class Authentication:
    """What a request's credentials say: who it is, or why the credentials sent were refused
    (words that name a rule, never the token), and when they stop being valid, if they do."""

    identity: Identity | None = None
    rejection: str | None = None
    expires_at: float | None = None  # seconds since the epoch


ANONYMOUS = Authentication()
# What a caller without usable credentials is told.
NO_CREDENTIALS_HINT = "send 'Authorization: Bearer <token>'"


class Authenticator:
    """Maps bearer tokens to identities: the config's static tokens first (compared in constant
    time, as digests), then, where configured, the OpenID Connect provider's access tokens.
    Tokens are never logged."""

    def __init__(self, tokens: Mapping[str, Identity], oidc: OidcVerifier | None = None) -> None:
        self._by_digest = [(_digest(token), identity) for token, identity in tokens.items()]
        self.oidc = oidc

    async def authenticate(self, header: str | None) -> Authentication:
        """The caller an `Authorization` value names (`ANONYMOUS` without one)."""
        if not header:
            return ANONYMOUS
        token = _bearer_token(header)
        if token is None:
            return Authentication(rejection=NO_CREDENTIALS_HINT)
        identity = self.identify(token)
        if identity is not None:
            return Authentication(identity)
        if self.oidc is None:
            return Authentication(rejection="the bearer token is not valid")
        try:
            verified = await self.oidc.verify(token)
        except TokenRejected as error:
            return Authentication(rejection=f"the bearer token is not valid: {error.reason}")
        user = User(verified.username, verified.groups)
        return Authentication(user, expires_at=verified.expires_at)

    def identify(self, token: str) -> Identity | None:
        wanted = _digest(token)
        found: Identity | None = None
        # Look at every entry, so the time taken does not tell how many tokens matched early.
        for digest, identity in self._by_digest:
            if hmac.compare_digest(digest, wanted):
                found = identity
        return found


def _bearer_token(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
