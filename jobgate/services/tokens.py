"""Personal access tokens, as GitHub's and Slurm's `scontrol token`: a signed-in user makes
one with a name and a lifetime for scripts and agents' operators, sees its secret once, lists
and revokes them. A token carries its user's identity, with the projects their sign-in named
when it was made. Stores keep a digest of the secret only (`jobgate.storage.tokens`)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobgate.access import Projects, User
from jobgate.auth import ACCESS_TOKEN_PREFIX, Authentication
from jobgate.errors import UserErrorCode, UserProblem
from jobgate.services.jobs import now_ms
from jobgate.storage.tokens import AccessTokenRecord, AccessTokenStore

# `jgp_<id>_<secret>`: the prefix tells the token from an identity provider's JWT and lets
# secret scanners find one (GitHub's `ghp_`); the id finds its record without the secret.
PREFIX = ACCESS_TOKEN_PREFIX
TOKEN = re.compile(re.escape(PREFIX) + r"([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
MAX_TOKENS_PER_USER = 50
MAX_NAME_LENGTH = 100
MAX_DAYS = 366
DAY_MS = 86_400_000
# A token's last use is written at most this often (not on every request).
TOUCH_EVERY_MS = 60_000
REJECTED = "the bearer token is not valid"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MadeToken:
    """A new token: its secret (shown this once) and its record."""

    secret: str
    record: AccessTokenRecord


class AccessTokens:
    def __init__(
        self, store: AccessTokenStore, projects: Projects, clock: Callable[[], int] = now_ms
    ) -> None:
        self.store = store
        self.projects = projects
        self.clock = clock
        self._touched: dict[str, int] = {}

    async def create(
        self, user: User, name: str, expires_in_days: int | None
    ) -> tuple[MadeToken | None, list[UserProblem]]:
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            return None, [
                UserProblem(
                    UserErrorCode.INVALID_PARAMETER,
                    f"a token's name has 1 to {MAX_NAME_LENGTH} characters",
                    field=("name",),
                )
            ]
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
            return None, [
                UserProblem(
                    UserErrorCode.INVALID_PARAMETER,
                    f"a token lives 1 to {MAX_DAYS} days, or without end (null)",
                    field=("expiresInDays",),
                )
            ]
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        created = self.clock()
        record = AccessTokenRecord(
            id=token_id,
            username=user.username,
            name=name,
            secret_digest=digest(secret),
            projects=tuple(sorted(user.projects)),
            unix_user=user.unix_user,
            created_at=created,
            expires_at=None if expires_in_days is None else created + expires_in_days * DAY_MS,
        )
        if not await self.store.add_access_token(record, MAX_TOKENS_PER_USER):
            return None, [
                UserProblem(
                    UserErrorCode.TOO_MANY_ITEMS,
                    f"a user has at most {MAX_TOKENS_PER_USER} tokens; revoke one first",
                )
            ]
        return MadeToken(f"{PREFIX}{token_id}_{secret}", record), []

    async def of(self, user: User) -> Sequence[AccessTokenRecord]:
        return await self.store.access_tokens_of(user.username)

    async def revoke(self, user: User, token_id: str) -> list[UserProblem]:
        if await self.store.revoke_access_token(user.username, token_id):
            self._touched.pop(token_id, None)
            return []
        return [UserProblem(UserErrorCode.NOT_FOUND, "you have no such token", field=("id",))]

    async def authenticate(self, token: str) -> Authentication:
        """Who a personal access token names, or why it is refused (a revoked, expired or made
        up token alike: nothing tells which)."""
        shaped = TOKEN.fullmatch(token)
        if shaped is None:
            return Authentication(rejection=REJECTED)
        token_id, secret = shaped.groups()
        record = await self.store.access_token(token_id)
        if record is None or not hmac.compare_digest(record.secret_digest, digest(secret)):
            return Authentication(rejection=REJECTED)
        now = self.clock()
        if record.expires_at is not None and now >= record.expires_at:
            return Authentication(rejection=f"{REJECTED}: it has expired")
        last = max(record.last_used_at or 0, self._touched.get(token_id, 0))
        if now - last >= TOUCH_EVERY_MS:
            self._touched[token_id] = now
            await self.store.touch_access_token(token_id, now)
        user = self.projects.user(record.username, record.projects, record.unix_user)
        expires = None if record.expires_at is None else record.expires_at / 1000
        return Authentication(user, expires_at=expires, access_token_id=token_id)
