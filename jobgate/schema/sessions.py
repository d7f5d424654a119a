"""The GraphQL side of interactive sessions (the contract's [sessions] parts)."""

from __future__ import annotations

import strawberry

from jobgate.schema.enums import SessionType
from jobgate.schema.payloads import UserError
from jobgate.schema.scalars import DateTime
from jobgate.services.sessions import OpenedSession, SessionRequest


@strawberry.type(
    description="A capability URL on the gateway for one user; it ends when the job ends."
)
class InteractiveSession:
    job_id: strawberry.ID
    rank: int
    type: SessionType
    url: str = strawberry.field(
        description="Open it in a browser: it needs no other credential. It must be first used "
        "before `expiresAt`; from then on it lasts as long as the job runs."
    )
    expires_at: DateTime

    @classmethod
    def of(cls, opened: OpenedSession, url: str) -> InteractiveSession:
        return cls(
            job_id=strawberry.ID(opened.job_id),
            rank=opened.rank,
            type=opened.type,
            url=url,
            expires_at=DateTime(opened.expires_at),
        )


@strawberry.input
class InteractiveSessionRequest:
    job_id: strawberry.ID
    rank: int = 0
    type: SessionType

    def to_domain(self) -> SessionRequest:
        return SessionRequest(str(self.job_id), self.rank, self.type)


@strawberry.input
class OpenInteractiveSessionsInput:
    sessions: list[InteractiveSessionRequest]


@strawberry.type
class OpenInteractiveSessionsPayload:
    sessions: list[InteractiveSession]
    user_errors: list[UserError]
