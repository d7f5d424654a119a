"""Personal access tokens as stores keep them: never the secret, only its SHA-256 digest (the
secret is 256 random bits, so a fast digest is as good as a slow one and keeps every request's
check cheap)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """One personal access token. `projects` are the projects its user's sign-in named when it
    was made (an identity provider's groups), `unix_user` the Unix account it named: the token
    carries that identity."""

    id: str
    username: str
    name: str
    secret_digest: str
    projects: tuple[str, ...]
    created_at: int  # milliseconds since the epoch, as every time here
    expires_at: int | None
    last_used_at: int | None = None
    unix_user: str | None = None


class AccessTokenStore(Protocol):
    async def add_access_token(self, record: AccessTokenRecord, most: int) -> bool:
        """Store it unless its user has `most` tokens already (False then)."""

    async def access_token(self, token_id: str) -> AccessTokenRecord | None:
        """The token with this id, if it exists (revoked ones do not)."""

    async def access_tokens_of(self, username: str) -> Sequence[AccessTokenRecord]:
        """A user's tokens, oldest first."""

    async def revoke_access_token(self, username: str, token_id: str) -> bool:
        """Forget the user's token; False if they have none with that id."""

    async def touch_access_token(self, token_id: str, at: int) -> None:
        """Note that the token was used at `at`."""
