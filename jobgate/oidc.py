"""`OidcVerifier`: access tokens of the site's OpenID Connect provider, checked locally.

A token is a JWT signed by the issuer. It is accepted when, with PyJWT:
- its algorithm is on the allow-list (`auth.oidc.algorithms`: asymmetric only, so never
  `none` and never an HS* "signature" made with the issuer's public key);
- its signature verifies with the issuer's key named by its `kid`, from the issuer's JWKS
  (found by discovery, kept in memory). An unknown `kid` fetches the JWKS again, at most once
  per `jwks_refresh_seconds`: the issuer's key rotation works, and tokens with made-up key ids
  cannot make the gateway hammer the issuer;
- `iss` is the issuer, `exp` and `nbf` hold (with `leeway_seconds` of clock skew), and `aud`
  names `audience` (or, as Keycloak puts it for a client's own tokens, `azp` does);
- it names a user (`username_claim`) that is a valid username.
Any failure is a `TokenRejected` whose reason names the rule, never the token or a claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWKSetError,
    PyJWTError,
)

from jobgate.domain.paths import FOLDER_NAME
from jobgate.settings import OidcSettings
from jobgate.unix import name_problem

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
# Why PyJWT refused a token, in words that name the rule and nothing of the token.
REASONS: tuple[tuple[type[PyJWTError], str], ...] = (
    (ExpiredSignatureError, "it has expired"),
    (ImmatureSignatureError, "it is not valid yet"),
    (InvalidIssuerError, "it was not issued by this gateway's identity provider"),
    (InvalidSignatureError, "its signature does not verify"),
    (MissingRequiredClaimError, "it lacks a required claim (exp, iss)"),
)


class TokenRejected(Exception):
    """A token that is not accepted; `reason` says which rule, and nothing of the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IssuerUnreachable(TokenRejected):
    """The token cannot be checked now: the issuer's keys could not be fetched. No fault of the
    token; the caller may try again."""

    def __init__(self) -> None:
        super().__init__("the identity provider cannot be reached to check the token; try again")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What an accepted token says of its user."""

    username: str
    groups: frozenset[str]
    expires_at: float  # seconds since the epoch
    unix_user: str | None = None  # from `unix_user_claim`, when it names a valid account


class OidcVerifier:
    """Checks access tokens against the issuer's keys (see the module)."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
        self._jwks_uri: str | None = None
        # The issuer's discovery document, once fetched (GraphiQL's sign-in reads endpoints).
        self.discovery: dict[str, Any] | None = None
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last fetch tried
        self._fetch_failed = False  # the last fetch tried did not get the keys
        self._fetch_lock = asyncio.Lock()

    async def open(self) -> None:
        """Fetch the issuer's keys; an issuer that does not answer yet is tried again when a
        token arrives (no more often than `jwks_refresh_seconds`)."""
        try:
            await self._refresh()
        except TokenRejected as error:
            log.warning("OpenID Connect: %s; will try again when a token arrives", error.reason)

    async def close(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> VerifiedToken:
        """The user a token names, or `TokenRejected`."""
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise TokenRejected("it is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in settings.algorithms:
            raise TokenRejected("its signing algorithm is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except PyJWTError as error:
            reason = next((r for kind, r in REASONS if isinstance(error, kind)), "it is not valid")
            raise TokenRejected(reason) from None
        if not _names_audience(claims, settings.audience):
            raise TokenRejected("it is not meant for this gateway (audience)")
        username = claims.get(settings.username_claim)
        if not isinstance(username, str) or not FOLDER_NAME.fullmatch(username):
            raise TokenRejected(f"its {settings.username_claim} claim is not a valid username")
        return VerifiedToken(
            username=username,
            groups=_groups(claims.get(settings.groups_claim)),
            expires_at=float(claims["exp"]),
            unix_user=_unix_user(claims, settings.unix_user_claim),
        )

    async def _key(self, kid: object) -> PyJWK:
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("it names no signing key (kid)")
        key = self._keys.get(kid)
        if key is None:
            async with self._fetch_lock:
                key = self._keys.get(kid)  # another request may have fetched it meanwhile
                if key is None and self._may_refresh():
                    await self._refresh()
                    key = self._keys.get(kid)
        if key is None:
            if self._fetch_failed:  # the keys it may be among could not be had
                raise IssuerUnreachable
            raise TokenRejected("its signing key is not one of the issuer's")
        return key

    async def browser_sign_in(self) -> dict[str, str] | None:
        """What GraphiQL needs to sign users in (`graphiql_client_id`), or None: not set, or
        the issuer has not answered discovery yet (tried again, within the refetch bound)."""
        client_id = self.settings.graphiql_client_id
        if client_id is None:
            return None
        if self.discovery is None and self._may_refresh():
            with contextlib.suppress(TokenRejected):
                async with self._fetch_lock:
                    if self.discovery is None:
                        await self._refresh()
        discovery = self.discovery
        if discovery is None:
            return None
        found = {
            name: discovery.get(name)
            for name in ("authorization_endpoint", "token_endpoint", "end_session_endpoint")
        }
        return {"clientId": client_id, **{k: v for k, v in found.items() if isinstance(v, str)}}

    def _may_refresh(self) -> bool:
        last = self._fetched_at
        return last is None or time.monotonic() - last >= self.settings.jwks_refresh_seconds

    async def _refresh(self) -> None:
        """Fetch the JWKS (and, the first time, discover where it is)."""
        self._fetched_at = time.monotonic()
        try:
            if self._jwks_uri is None:
                discovery = await self._get_json(self.settings.issuer + DISCOVERY_PATH)
                if discovery.get("issuer") != self.settings.issuer:
                    raise TokenRejected("the identity provider names another issuer")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise TokenRejected("the identity provider names no jwks_uri")
                self._jwks_uri = jwks_uri
                self.discovery = discovery
            keys = PyJWKSet.from_dict(await self._get_json(self._jwks_uri)).keys
        except (httpx.HTTPError, ValueError, PyJWKError, PyJWKSetError) as error:
            log.warning("OpenID Connect: the issuer's keys could not be fetched: %s", error)
            self._fetch_failed = True
            raise IssuerUnreachable from None
        self._fetch_failed = False
        # Signing keys only (Keycloak also publishes an encryption key).
        self._keys = {
            key.key_id: key for key in keys if key.key_id and key.public_key_use in (None, "sig")
        }
        log.info("OpenID Connect: %d signing keys from %s", len(self._keys), self._jwks_uri)

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return body


def _names_audience(claims: dict[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return audience in named or claims.get("azp") == audience


def _unix_user(claims: dict[str, Any], claim: str | None) -> str | None:
    """The account the claim names; none for a missing or unusable one (such a user is refused
    at submit by providers that need an account, with the reason; the sign-in stands)."""
    value = None if claim is None else claims.get(claim)
    if isinstance(value, list) and len(value) == 1:  # a multivalued user attribute
        value = value[0]
    if not isinstance(value, str) or name_problem(value) is not None:
        return None
    return value


def _groups(value: object) -> frozenset[str]:
    """Project ids from the groups claim: Keycloak's full group paths ("/proj-a") allowed."""
    if not isinstance(value, list):
        return frozenset()
    groups = (item.lstrip("/") for item in value if isinstance(item, str))
    return frozenset(group for group in groups if FOLDER_NAME.fullmatch(group))
