"""Who is calling: a user (with projects) or a provider, identified by a bearer token: a static
one from the config, or an access token of the site's OpenID Connect provider (`jobgate.oidc`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from jobgate.access import Identity, Projects
from jobgate.oidc import IssuerUnreachable, OidcVerifier, TokenRejected


@dataclass(frozen=True, slots=True)
class Authentication:
    """What a request's credentials say: who it is, or why the credentials sent were refused
    (words that name a rule, never the token), and when they stop being valid, if they do."""

    identity: Identity | None = None
    rejection: str | None = None
    expires_at: float | None = None  # seconds since the epoch
    access_token_id: str | None = None  # when a personal access token named the caller
    # The credentials could not be checked now (the identity provider is away): try again.
    unavailable: bool = False


class AccessTokenCheck(Protocol):
    """Personal access tokens (`jobgate.services.tokens`)."""

    async def authenticate(self, token: str) -> Authentication: ...


# What personal access tokens begin with (`jobgate.services.tokens`).
ACCESS_TOKEN_PREFIX = "jgp_"  # noqa: S105 (a prefix, not a secret)


ANONYMOUS = Authentication()
# What a caller without usable credentials is told.
NO_CREDENTIALS_HINT = "send 'Authorization: Bearer <token>'"


class Authenticator:
    """Maps bearer tokens to identities: the config's static tokens first (compared in constant
    time, as digests), then, where configured, the OpenID Connect provider's access tokens.
    Tokens are never logged."""

    def __init__(
        self,
        tokens: Mapping[str, Identity],
        oidc: OidcVerifier | None = None,
        projects: Projects | None = None,
    ) -> None:
        self._by_digest = [(token_digest(token), identity) for token, identity in tokens.items()]
        self.oidc = oidc
        self.projects = projects or Projects()
        # Set by the app once the store is there.
        self.access_tokens: AccessTokenCheck | None = None

    async def authenticate(self, header: str | None) -> Authentication:
        """The caller an `Authorization` value names (`ANONYMOUS` without one)."""
        if not header:
            return ANONYMOUS
        token = bearer_token(header)
        if token is None:
            return Authentication(rejection=NO_CREDENTIALS_HINT)
        identity = self.identify(token)
        if identity is not None:
            return Authentication(identity)
        if token.startswith(ACCESS_TOKEN_PREFIX) and self.access_tokens is not None:
            return await self.access_tokens.authenticate(token)
        if self.oidc is None:
            return Authentication(rejection="the bearer token is not valid")
        try:
            verified = await self.oidc.verify(token)
        except IssuerUnreachable as error:
            return Authentication(rejection=error.reason, unavailable=True)
        except TokenRejected as error:
            return Authentication(rejection=f"the bearer token is not valid: {error.reason}")
        user = self.projects.user(verified.username, verified.groups, verified.unix_user)
        return Authentication(user, expires_at=verified.expires_at)

    def identify(self, token: str) -> Identity | None:
        wanted = token_digest(token)
        found: Identity | None = None
        # Look at every entry, so the time taken does not tell how many tokens matched early.
        for digest, identity in self._by_digest:
            if hmac.compare_digest(digest, wanted):
                found = identity
        return found


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for any other."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_digest(token: str) -> bytes:
    """What a static token is compared as (in constant time): its SHA-256."""
    return hashlib.sha256(token.encode()).digest()
